"""The optimisation recipe of a training run: learning-rate schedule, AdamW parameter groups,
the epoch-seeded sampler and the training loader (batch size, workers, ragged last batch).

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

__all__ = ["EpochSampler", "auto_workers", "lr_lambda", "param_groups", "train_loader"]


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
        from torch.utils.data.distributed import DistributedSampler

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
