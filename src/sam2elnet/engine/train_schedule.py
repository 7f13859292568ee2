"""The optimisation recipe of a training run: the batch (images per step), learning-rate
schedule, AdamW and its parameter groups, the epoch-seeded sampler and the training loader
(workers, ragged last batch).

Used by :func:`sam2elnet.engine.train.train`; pure functions of the configuration, so ``--resume``
rebuilds exactly the same schedule and data order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

__all__ = [
    "auto_epochs",
    "AUTO_BATCH_RANGE",
    "TRAIN_BATCH_PIXELS",
    "EpochSampler",
    "adamw",
    "auto_batch_size",
    "auto_workers",
    "batch_plan",
    "collapse_note",
    "lr_lambda",
    "param_groups",
    "resolve_batch_size",
    "train_loader",
]

TRAIN_BATCH_PIXELS = 4 * 256 * 256
"""Crop pixels per optimiser step when ``--batch-size`` is not given (262,144 px = 4 x 256^2 =
1 x 512^2). Quiet ``make bench`` of 2026-12-01 on a 2-core CPU (bf16, Hiera-tiny): a step of 8
crops of 512 px ran at 0.53 img/s, of 2 at 0.81; 8 crops of 256 px at 2.78, 4 at 3.01 - the
activations of a large batch fall out of the caches (docs/benchmarks.md)."""

AUTO_BATCH_RANGE = (2, 8)
"""(floor, cap) of the pixel rule: one-image steps are noisy; 8 was the fixed default before."""


def auto_batch_size(image_size: int) -> int:
    """Images per step formed by pixels: ``TRAIN_BATCH_PIXELS // image_size**2`` clamped to
    :data:`AUTO_BATCH_RANGE` (256 px -> 4, <= 181 px -> 8, >= 320 px -> 2).

    Args:
        image_size: training crop side in pixels (>= 1).
    """
    lo, hi = AUTO_BATCH_RANGE
    return max(lo, min(hi, TRAIN_BATCH_PIXELS // (int(image_size) ** 2)))


def resolve_batch_size(batch_size: int | None, image_size: int) -> tuple[int, str]:
    """(images per step, rule): ``batch_size`` as given (rule ``"given"``: the same number at
    any crop size), or :func:`auto_batch_size` when it is None (rule ``"pixels"``)."""
    if batch_size is not None:
        return int(batch_size), "given"
    return auto_batch_size(image_size), "pixels"


def batch_plan(cfg: Any) -> tuple[int, str, bool, str]:
    """(images per step, batch rule, channels-last, the log line saying both) of a
    :class:`~sam2elnet.config.TrainConfig` (:func:`resolve_batch_size`,
    :func:`sam2elnet.engine.runtime.channels_last_default`)."""
    from sam2elnet.engine.runtime import channels_last_default

    batch, rule = resolve_batch_size(cfg.batch_size, cfg.image_size)
    channels_last = channels_last_default(cfg.channels_last)
    lo, hi = AUTO_BATCH_RANGE
    why = (
        f"formed by pixels at {cfg.image_size} px: at most {TRAIN_BATCH_PIXELS:,} px per step, "
        f"{lo}-{hi} images"
        if rule == "pixels"
        else "--batch-size"
    )
    layout = "channels-last" if channels_last else "channels-first"
    return batch, rule, channels_last, f"batch {batch} ({why}), {layout}"


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Any:
    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def param_groups(params: Sequence[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm scales (1-D tensors): decaying them only hurts."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def adamw(
    params: Sequence[torch.nn.Parameter],
    lr: float,
    weight_decay: float,
    fused: bool = False,
) -> torch.optim.AdamW:
    """The training run's AdamW over :func:`param_groups`.

    ``fused=True`` (torch's one-kernel AdamW, CPU and CUDA) is the same update up to float
    rounding and, measured alone, 2.4x faster (2026-12-01, Hiera-tiny's 0.86 M trainable
    parameters in ~160 tensors, 2 threads, CPU time, medians of 20 steps: 4.5 ms per step against
    10.7 ms), but a whole training step takes 5-10 CPU s, and ``bench_train.py --levers
    fused-adamw`` could not tell the two apart (docs/benchmarks.md, "Training step levers"): not
    the default.

    Args:
        params: the trainable parameters.
        lr: peak learning rate.
        weight_decay: decoupled weight decay of the >= 2-D tensors.
        fused: torch's fused kernel. Otherwise the multi-tensor (``foreach``) form, also on a
            CPU (where torch's default is one tensor at a time): the same update bit for bit,
            its Python overhead paid once per step instead of once per tensor
            (:func:`sam2elnet.engine.downstream_train.train_downstream` likewise).
    """
    return torch.optim.AdamW(
        param_groups(params, weight_decay),
        lr=lr,
        fused=True if fused else None,
        foreach=None if fused else True,
    )


class EpochSampler(torch.utils.data.Sampler[int]):
    """Shuffles with a generator seeded by (seed, epoch): data order is a pure function of both,
    which is what makes ``--resume`` reproduce an uninterrupted run."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.epoch, 71])
        )
        return iter(rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def auto_workers(device: torch.device) -> int:
    """0 on small CPU machines: decoding a 256 px JPEG costs ~1 ms, a worker would steal a core
    from the forward pass (measured in docs/training.md); GPUs get a few workers."""
    # looked up per call, not at module import: tests replace utils.threads.available_cpus
    from sam2elnet.utils.threads import available_cpus

    cores = available_cpus()
    if device.type == "cuda":
        return min(8, max(1, cores - 1))
    return 0 if cores <= 4 else min(4, cores // 4)


def train_loader(
    train_ds: Any,
    batch_size: int,
    seed: int,
    device: torch.device,
    num_workers: int | None,
    dist_info: Any,
) -> tuple[Any, DataLoader]:
    """(sampler, loader) over the training set.

    ``DistributedSampler`` under DDP (``dist_info.enabled``), else :class:`EpochSampler`; both
    need ``set_epoch(epoch)`` before each epoch. The ragged last batch is dropped (tiny batches
    make noisy steps) unless the (per-rank) training set is smaller than one batch.
    ``num_workers`` None picks :func:`auto_workers`.
    """
    if dist_info.enabled:
        sampler: Any = DistributedSampler(
            train_ds,
            num_replicas=dist_info.world,
            rank=dist_info.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
    else:
        sampler = EpochSampler(len(train_ds), seed)
    drop_last = len(train_ds) // max(1, dist_info.world) >= batch_size
    workers = num_workers if num_workers is not None else auto_workers(device)
    loader = DataLoader(
        train_ds,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    return sampler, loader


LATE_BEST_SHARE = 0.8
"""A best validation epoch after this share of the run's epochs counts as "still improving"
(:func:`late_best_note`)."""


def auto_epochs(steps_per_epoch: int) -> tuple[int, str]:
    """The epochs of an ``--epochs auto`` run (``TrainConfig.epochs`` None) and its log line.

    ``ceil(AUTO_UPDATES / steps_per_epoch)`` clipped to :data:`~sam2elnet.config.AUTO_EPOCHS`
    (the constants and the measurements behind them: :mod:`sam2elnet.config`).

    Args:
        steps_per_epoch: optimiser updates per epoch (the training loader's length, per rank
            under DDP); 0 (no full batch) gives the fewest epochs.

    Returns:
        (epochs, line), e.g. ``(120, "epochs: 120 (auto: about 1,200 optimiser updates at 10
        per epoch; --epochs N sets them for a new run)")``.
    """
    from sam2elnet.config import AUTO_EPOCHS, AUTO_UPDATES

    low, high = AUTO_EPOCHS
    if int(steps_per_epoch) <= 0:  # no full batch (more DDP ranks than images): no updates
        return low, f"epochs: {low} (auto: no full batch per epoch, so the fewest, {low})"
    steps = int(steps_per_epoch)
    epochs = min(high, max(low, math.ceil(AUTO_UPDATES / steps)))
    aim = f"about {AUTO_UPDATES:,} optimiser updates at {steps:,} per epoch"
    if epochs * steps < AUTO_UPDATES:
        aim += f", capped at {high} epochs: {epochs * steps:,} updates"
    elif epochs == low and epochs * steps > AUTO_UPDATES:
        aim += f", at least {low} epochs: {epochs * steps:,} updates"
    return epochs, f"epochs: {epochs} (auto: {aim}; --epochs N sets them for a new run)"


def late_best_note(best_epoch: int, epochs: int, updates: int, validated: bool) -> str | None:
    """One log line when the best validation epoch came at the end of the run, else None.

    A best epoch in the last 20 % of a run of at least 5 epochs means validation was still
    improving when the learning-rate schedule ended: the model is probably under-trained and
    more ``--epochs`` are likely to help. Measured (docs/training.md, "More updates for roads"):
    roads-dev, fold 1 of 5, Hiera-tiny with a random trunk, the best epoch came at 27 of 30 and
    at 115 of 120; the 120-epoch model scored +10.7 road IoU points [8.0, 14.4] higher on the
    fold's 12 test images.

    Args:
        best_epoch: the best epoch, 1-based (0 or less: none).
        epochs: the run's ``--epochs``.
        updates: optimiser updates of the whole run (steps per epoch x epochs).
        validated: whether a validation split chose the epoch (without one the last epoch is
            always "best", which says nothing).

    Returns:
        The line, or None when the rule does not apply.
    """
    if not validated or epochs < 5 or best_epoch <= LATE_BEST_SHARE * epochs:
        return None
    return (
        f"note: the best validation epoch was {best_epoch} of {epochs} ({updates:,} optimiser "
        "updates): validation was still improving at the end, so the model is probably "
        f"under-trained; more --epochs are likely to help, e.g. --epochs {2 * epochs} for a new run "
        "(docs/training.md, 'More updates')"
    )


COLLAPSE_IOU = 0.01
"""Train IoU below which an epoch predicted almost no foreground (:func:`collapse_note`)."""
LEARNED_IOU = 0.05
"""Train IoU an earlier epoch must have reached for a run ending below :data:`COLLAPSE_IOU` to
count as collapsed rather than never started (:func:`collapse_note`)."""


def collapse_note(history: list[dict[str, Any]], best_epoch: int, lr: float) -> str | None:
    """One warning line when training collapsed to background, else None.

    Collapsed: the last epoch's train IoU is below :data:`COLLAPSE_IOU` (the network predicts
    almost no foreground) after an earlier epoch reached :data:`LEARNED_IOU`. The line names the
    first epoch of the final run of epochs below the floor, the best train IoU and its epoch,
    the kept epoch, and what to try. Seen on a tiny road run (micro, random trunk, 4-band
    tiles): train IoU 0 from epoch 6 of 15, kept epoch 1, and nothing said.

    Args:
        history: the run's per-epoch rows (``epoch`` 1-based, ``train_iou``), in order.
        best_epoch: the kept epoch, 1-based.
        lr: the run's peak learning rate (``--lr``), quoted in the advice.
    """
    ious = [float(r.get("train_iou", float("nan"))) for r in history]
    if not ious or not ious[-1] < COLLAPSE_IOU:
        return None
    top = max(range(len(ious)), key=lambda i: ious[i] if ious[i] == ious[i] else -1.0)
    if not ious[top] >= LEARNED_IOU:
        return None
    first = len(ious) - 1
    while first > 0 and ious[first - 1] < COLLAPSE_IOU:
        first -= 1
    ep = [int(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    return (
        f"warning: training collapsed to background: from epoch {ep[first]} of {ep[-1]} on the "
        f"network predicted almost no foreground (train IoU < {COLLAPSE_IOU:g}; it reached "
        f"{ious[top]:.3f} at epoch {ep[top]}); the kept model.pt is epoch {best_epoch}'s. With a "
        "random trunk and few images this happens: try a lower --lr (this run: "
        f"{lr:g}), more labelled images or SAM2 weights (--weights)"
    )
