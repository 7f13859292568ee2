"""The training optimizers take AdamW's multi-tensor (``foreach``) form on a CPU too: the same
update bit for bit as torch's per-tensor default there, so models and tables do not move."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam2elnet.engine.downstream_config import DownstreamConfig
from sam2elnet.engine.downstream_train import downstream_optimizer
from sam2elnet.engine.train_schedule import adamw, param_groups
from sam2elnet.model.unet import UNet


def _trained(make_opt, steps: int = 4) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = UNet(in_bands=1, width=4, depth=2)
    opt = make_opt(model)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 32, 32, generator=g)
    y = (torch.rand(2, 1, 32, 32, generator=g) > 0.5).float()
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_training_adamw_is_foreach_and_bit_identical_to_the_per_tensor_update() -> None:
    opt = adamw(list(torch.nn.Linear(3, 2).parameters()), lr=1e-3, weight_decay=0.01)
    assert all(g["foreach"] is True for g in opt.param_groups)
    assert all(not g["fused"] for g in opt.param_groups)
    ours = _trained(lambda m: adamw(list(m.parameters()), lr=1e-2, weight_decay=0.01))
    per_tensor = _trained(
        lambda m: torch.optim.AdamW(
            param_groups(list(m.parameters()), 0.01), lr=1e-2, foreach=False
        )
    )
    assert _equal(ours, per_tensor)
    # the fused kernel stays what it was (its own rounding): no foreach beside it
    fused = adamw(list(torch.nn.Linear(3, 2).parameters()), lr=1e-3, weight_decay=0.0, fused=True)
    assert all(g["fused"] and not g["foreach"] for g in fused.param_groups)


def test_downstream_adamw_is_foreach_and_bit_identical_to_the_per_tensor_update() -> None:
    cfg = DownstreamConfig(lr=1e-2, weight_decay=1e-4)
    opt = downstream_optimizer(torch.nn.Linear(3, 2), cfg)
    assert opt.param_groups[0]["foreach"] is True
    assert opt.param_groups[0]["lr"] == 1e-2 and opt.param_groups[0]["weight_decay"] == 1e-4
    ours = _trained(lambda m: downstream_optimizer(m, cfg))
    per_tensor = _trained(
        lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=1e-4, foreach=False)
    )
    assert _equal(ours, per_tensor)
    # and the update does move the weights (the comparison is not of untouched models)
    assert not _equal(ours, _trained(lambda m: downstream_optimizer(m, cfg), steps=0))


def test_a_resumed_optimizer_keeps_its_foreach_form() -> None:
    """A ``last.pt`` written before the foreach form holds ``foreach`` None in its optimiser
    groups; torch's ``load_state_dict`` takes the saved groups whole, so a resumed run went back
    to the per-tensor update. Now it keeps the form it was built with, and the saved state."""
    from sam2elnet.engine.train_checkpoints import load_optimizer_state

    torch.manual_seed(0)
    model = UNet(in_bands=1, width=4, depth=2)
    old = torch.optim.AdamW(param_groups(list(model.parameters()), 0.01), lr=1e-2)
    model(torch.randn(1, 1, 32, 32)).sum().backward()
    old.step()
    saved = old.state_dict()
    assert all(g["foreach"] is None for g in saved["param_groups"])
    opt = adamw(list(model.parameters()), lr=1e-3, weight_decay=0.01)
    load_optimizer_state(opt, saved)
    assert all(g["foreach"] is True and not g["fused"] for g in opt.param_groups)
    assert [g["lr"] for g in opt.param_groups] == [1e-2] * len(opt.param_groups)  # saved
    first = next(iter(model.parameters()))
    assert torch.equal(opt.state[first]["exp_avg"], old.state[first]["exp_avg"])
