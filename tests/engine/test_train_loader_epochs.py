"""Every epoch draws new crops and coarse labels, also in DataLoader workers that persist across
epochs (GPU runs and CPUs with more than 4 cores get workers: ``train_schedule.auto_workers``).
The epoch used to be a plain attribute set in the main process, which persistent workers never
saw: on an H200 every epoch repeated the first one's crops (roads-dev, training IoU 0.97 while
validation fell from epoch ~20; docs/training.md)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from helpers_data import road_mask, write_mask_png, write_png

from sam2elnet.data.datasets import SegmentationDataset
from sam2elnet.data.layouts import Sample
from sam2elnet.engine.train_schedule import train_loader


def _dataset(tmp_path) -> SegmentationDataset:
    samples = []
    for k in range(4):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        write_png(tmp_path / f"i{k}.png", img)
        write_mask_png(tmp_path / f"m{k}.png", road_mask(64, seed=k))
        samples.append(Sample(f"s{k}", tmp_path / f"i{k}.png", tmp_path / f"m{k}.png"))
    return SegmentationDataset(samples, size=32, train=True, seed=0, coarse_prob=1.0)


def _epochs(ds: SegmentationDataset, workers: int, n: int = 3) -> list[torch.Tensor]:
    one = SimpleNamespace(enabled=False, world=1, rank=0)
    sampler, loader = train_loader(ds, 4, 0, torch.device("cpu"), workers, one)
    out = []
    for epoch in range(n):
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        order = np.argsort(np.asarray(list(iter(sampler))))  # the batch in sample order
        out.append(torch.cat([batch["image"].flatten(1), batch["coarse"].flatten(1)], 1)[order])
    return out


def test_persistent_workers_see_each_epoch(tmp_path) -> None:
    ds = _dataset(tmp_path)
    assert ds.epoch == 0
    in_process = _epochs(ds, workers=0)
    in_workers = _epochs(ds, workers=2)  # persistent: started once, at epoch 0
    assert not torch.equal(in_process[0], in_process[1])  # a new crop each epoch
    for a, b in zip(in_process, in_workers, strict=True):
        assert torch.equal(a, b)  # the workers draw what the main process would
    assert ds.epoch == 2
