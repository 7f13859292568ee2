"""One training pass over the loader: the inner loop of :func:`sam2elnet.engine.train.train`.

Every step moves a batch to the device (channels-last when the run uses it), runs the network
under the run's autocast precision, takes the segmentation loss
(:func:`~sam2elnet.engine.losses.segmentation_loss`), clips the gradient norm, steps the optimiser
and the per-step LR schedule, and accumulates the loss and the pixel counts on the device (no
host sync per step; that matters on GPUs). Under DDP the sums of all ranks are added
(``all_reduce``), so every rank returns the epoch's totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from sam2elnet.engine.losses import segmentation_loss
from sam2elnet.engine.runtime import autocast
from sam2elnet.engine.train_metrics import pixel_counts

__all__ = ["EpochSums", "train_epoch"]


@dataclass
class EpochSums:
    """Totals of one training pass (all ranks under DDP).

    ``loss_sum``: summed per-image loss (loss x batch images); ``counts``: pixel counts
    ``[tp, fp, fn]`` of the thresholded logits on valid pixels
    (:func:`~sam2elnet.engine.train_metrics.pixel_counts`); ``n_img``: images seen.
    """

    loss_sum: float
    counts: list[float]
    n_img: int


def train_epoch(
    model: torch.nn.Module,
    loader: Iterable[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    params: Sequence[torch.nn.Parameter],
    weights: Any,
    *,
    device: torch.device,
    precision: str,
    channels_last: bool,
    grad_clip: float,
    bar: Any,
    show_loss: bool,
    distributed: bool,
) -> EpochSums:
    """Train ``model`` (already in train mode) for one pass over ``loader``.

    Args:
        model: the network to call (the DDP wrapper under torchrun).
        loader: batches with ``image`` (B, C, H, W), ``mask`` / ``valid`` / ``coarse``
            (B, 1, H, W) and ``has_coarse`` (B,).
        optimizer, scheduler: stepped once per batch (the schedule is per step).
        params: the trainable parameters, whose gradient norm is clipped to ``grad_clip``.
        weights: the loss weights (:func:`~sam2elnet.engine.losses.segmentation_loss`).
        device, precision: where and at which autocast precision (``"bf16"`` / ``"32"``) to run.
        channels_last: convert images and coarse labels to channels-last memory format.
        bar: the run's progress bar (``update(1)`` per batch, ``set_postfix`` every 10 batches
            with ``show_loss``).
        show_loss: show the batch loss on the bar.
        distributed: add the sums of every rank (``torch.distributed.all_reduce``).
    """
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    counts = torch.zeros(3, dtype=torch.float64, device=device)
    n_img = 0
    for batch in loader:
        x = batch["image"].to(device, non_blocking=True)
        m = batch["mask"].to(device, non_blocking=True)
        v = batch["valid"].to(device, non_blocking=True)
        c = batch["coarse"].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            c = c.contiguous(memory_format=torch.channels_last)
        has = batch["has_coarse"].to(device, non_blocking=True)
        with autocast(device, precision):
            out = model(x, c, has)
        loss, _parts = segmentation_loss(
            out.logits, m, v, out.side_logits, out.edge_logits, weights
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach().double() * x.shape[0]
        counts += pixel_counts(out.logits, m, v)
        n_img += x.shape[0]
        if show_loss and bar.n % 10 == 0:
            bar.set_postfix(
                loss=f"{float(loss.detach()):.3f}", refresh=False
            )  # no autograd warning
        bar.update(1)
    if distributed:
        agg = torch.cat(
            [
                loss_sum.reshape(1),
                counts,
                torch.tensor([float(n_img)], dtype=torch.float64, device=device),
            ]
        )
        dist.all_reduce(agg)
        loss_sum, counts, n_img = agg[0], agg[1:4], int(agg[4].item())
    return EpochSums(float(loss_sum.cpu()), counts.cpu().tolist(), n_img)
