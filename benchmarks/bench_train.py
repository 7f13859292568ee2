"""Training speed, side by side with the reference design, in one process.

For each image size the script builds the reference (``benchmarks/reference.py``: frozen Hiera
trunk + adapters, RFB reductions, DoubleConv decoder with deep supervision, fp32, AdamW, batch 4 at
256 px / 2 at 512 px) and our network as ``elnet train`` runs it by default (bf16 autocast where
the CPU runs bf16 natively, else float32 - ``--precision auto``, ``engine.runtime.resolve_precision`` -,
channels-last, the batch formed by pixels - 4 at 256 px, 2 at 512 px, as without ``--batch-size``
-, a coarse label on half the batch, the full loss with deep supervision and edge term, backward,
gradient clipping, AdamW, the per-step LR schedule: one call of the product's training pass,
``engine.train_epoch.train_epoch``, on a one-batch loader), plus each speed lever
(``old-default``: channels-first, batch 8, as shipped before 2026-12-01), and times one training
step of each in turn — reference, ours, levers, reference, ... — on the same random inputs
(``reference-lib``: the reference with ``transformers``' own Hiera attention, as runs before
2026-12-01 measured it; ``reference`` shares our LeanAttention). The reference keeps its own step
(``reference.reference_train_step``: its loss, no clipping, no schedule, as its design trains).
It prints images/s and the ratio to the reference (goal >= 2x at 256 and 512 px).

Peak memory per configuration is in ``bench_scale.py`` (one fresh process per point).

Usage::

    python benchmarks/bench_train.py              # 256 and 512 px, 3 alternating rounds
    python benchmarks/bench_train.py --quick      # 2 rounds, no fp32 row
    python benchmarks/bench_train.py --smoke      # micro model, 64 px: checks the script runs
    python benchmarks/bench_train.py --cpu-time --levers bf16-forced fused-adamw  # busy machine
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
import torch
from common import (
    HISTORY_LEVERS,
    LEVERS,
    TRAIN_LEVERS,
    Goals,
    Lever,
    add_reference_lib_option,
    alternate,
    apply_lever,
    build_ours,
    lever_batch,
    lever_channels_last,
    lever_precision,
    library_attention,
    machine,
    machine_levers,
)
from reference import build_reference, reference_batch, reference_train_step

TRAIN_STEP_LEVERS: dict[str, tuple[str, dict]] = {
    "fused-adamw": ("default", {"fused": True}),
}
"""Training-only rows, (the ``common.LEVERS`` row they start from, ``our_step`` options):
``fused-adamw`` torch's fused AdamW (not the default: no measurable gain in a whole step,
docs/benchmarks.md; the gradient clipping is ``foreach`` in every row, ``clip_grad_norm_`` picks it
for CPU tensors). Only with ``--levers``, as is ``bf16-forced`` (``common.LEVERS``: bf16 autocast
even where ``elnet train`` runs float32 because the CPU has no native bf16; on a CPU with native
bf16 it is the default itself)."""


def base_lever(name: str) -> Lever:
    """The ``common.Lever`` a row of ``--levers`` builds its network with."""
    return LEVERS[TRAIN_STEP_LEVERS[name][0]] if name in TRAIN_STEP_LEVERS else LEVERS[name]


class _NoBar:
    """The progress bar ``train_epoch`` updates, silent."""

    n = 0

    def update(self, k: int) -> None:
        pass

    def set_postfix(self, **kwargs: object) -> None:
        pass


def our_step(  # noqa: ANN201
    model,  # noqa: ANN001
    lever: Lever,
    batch: int,
    size: int,
    fused: bool = False,
):
    """A closure running one step of ``elnet train``: the product's training pass
    (``engine.train_epoch.train_epoch``) over a one-batch loader of fixed random inputs, with the
    run's optimiser (``engine.train_schedule.adamw``; ``fused``: torch's fused AdamW), per-step LR
    schedule, clipping and ``TrainConfig``'s defaults (learning rate, weight decay, warm-up, clip
    norm), at ``lever``'s precision (``lever_precision``: as shipped, bf16 autocast only where the
    CPU runs bf16 natively, else float32) and memory format (``model`` comes from
    ``apply_lever(..., train=True)``; the pass converts each batch to channels-last itself, as in
    a run). Besides the network, loss, backward, clipping and optimiser the pass steps the LR
    schedule and sums the loss and pixel counts, as every step of a run does."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.losses import LossWeights
    from sam2elnet.engine.train_epoch import train_epoch
    from sam2elnet.engine.train_schedule import adamw, lr_lambda

    def default(name: str):  # noqa: ANN202
        return TrainConfig.model_fields[name].default

    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 1, size, size, generator=g)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.7).float()
    has = torch.tensor([float(i % 2) for i in range(batch)])
    loader = [
        {
            "image": x,
            "mask": mask,
            "valid": torch.ones_like(mask),
            "coarse": mask * has[:, None, None, None],
            "has_coarse": has,
        }
    ]
    params = model.trainable_parameters()
    opt = adamw(params, default("lr"), default("weight_decay"), fused)
    steps = 1000  # a schedule longer than any run of this script: its shape does not matter
    warmup = int(round(default("warmup_fraction") * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(steps, warmup, default("min_lr_ratio"))
    )
    kwargs = {
        "device": torch.device("cpu"),
        "precision": lever_precision(lever),
        "channels_last": lever_channels_last(lever, train=True),
        "grad_clip": default("grad_clip"),
        "bar": _NoBar(),
        "show_loss": False,
        "distributed": False,
    }
    weights = LossWeights()
    model.train()

    def step() -> None:
        train_epoch(model, loader, opt, sched, params, weights, **kwargs)

    return step


def bench_size(args: argparse.Namespace, size: int, goals: Goals) -> dict:
    rb = reference_batch(size) if args.ref_batch is None else args.ref_batch
    ref, ref_opt = build_reference(args.model_size)
    g = torch.Generator().manual_seed(2)
    x3 = torch.rand(rb, 1, size, size, generator=g).repeat(1, 3, 1, 1)
    m = (torch.rand(rb, 1, size, size, generator=g) > 0.7).float()
    fns = {"reference": lambda: reference_train_step(ref, ref_opt, x3, m)}
    batches = {"reference": rb}
    if args.reference_lib:
        ref_lib, ref_lib_opt = build_reference(args.model_size)
        library_attention(ref_lib)
        fns["reference-lib"] = lambda: reference_train_step(ref_lib, ref_lib_opt, x3, m)
        batches["reference-lib"] = rb
    for name in args.levers:
        lv = base_lever(name)
        b = lever_batch(lv, args.batch, rb, size, train=True)
        model = apply_lever(
            build_ours(args.model_size, lv.detail_width, trunk_scale=lv.trunk_scale), lv, train=True
        )
        fns[name] = our_step(model, lv, b, size, **TRAIN_STEP_LEVERS.get(name, ("", {}))[1])
        batches[name] = b
    t = alternate(fns, args.reps, args.clock)
    ips = {k: batches[k] / sec for k, sec in t.items()}
    print(f"\n{size} px; reference batch {rb}")
    print(f"{'contender':<16} batch  step s   img/s  x reference")
    for k, sec in t.items():
        print(
            f"{k:<16} {batches[k]:5d}  {sec:6.2f}  {ips[k]:6.2f}  {ips[k] / ips['reference']:10.2f}x",
            flush=True,
        )
    goals.add(
        f"training {size} px: ours as shipped / reference", ips["default"] / ips["reference"], 2.0
    )
    return {"size": size, "step_s": t, "batches": batches, "img_s": ips}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument(
        "--batch",
        type=int,
        default=None,
        help="our batch size (default: elnet train's pixel rule, 4 at 256 px, 2 at 512 px)",
    )
    ap.add_argument("--ref-batch", type=int, default=None, help="default 4 at <=256 px, else 2")
    ap.add_argument("--reps", type=int, default=3, help="alternating timed rounds")
    ap.add_argument(
        "--levers", nargs="+", default=None, choices=list(LEVERS) + list(TRAIN_STEP_LEVERS)
    )
    add_reference_lib_option(ap)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds, no fp32 / channels-first / reference-lib rows nor the rows of earlier "
        "defaults (prev-default, old-default)",
    )
    ap.add_argument("--smoke", action="store_true", help="micro model, 64 px, 1 round")
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time (all threads) instead of wall time: ratios that "
        "other load on a busy machine disturbs far less; img/s are then per CPU second",
    )
    ap.add_argument("--json", help="write the results and goals here")
    args = ap.parse_args(argv)
    args.clock = time.process_time if args.cpu_time else None
    if args.levers is None:  # --quick: no fp32 / channels-first / history rows, no reference-lib
        quick_out = ("fp32", "channels-first", *HISTORY_LEVERS) if args.quick else ()
        args.levers = machine_levers([lv for lv in TRAIN_LEVERS if lv not in quick_out])
        args.reference_lib = args.reference_lib and not args.quick
    if "default" not in args.levers:
        args.levers.insert(0, "default")
    if args.smoke:
        args.sizes, args.model_size, args.reps = [64], "micro", 1
    elif args.quick:
        args.reps = 2
    print(f"machine: {machine()}")
    goals = Goals()
    results = [bench_size(args, s, goals) for s in args.sizes]
    goals.print("bench_train")
    goals.dump(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
