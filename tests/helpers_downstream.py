"""Downstream U-Net tests' data and configuration (tests/engine/test_downstream*.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sam2elnet.engine.downstream import DownstreamConfig


def write_disk_pairs(root: Path, n: int, size: int = 32, seed: int = 0, empty_labels: bool = False):
    """``n`` pairs of ``size`` px: dark disks (oil-like) on brighter noise; returns
    ``[(image, mask)]`` as 8-bit grey PNG files (``<i>_sat.png``, ``<i>_mask.png``, 0/255)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    pairs = []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.15, size * 0.3)
        m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img = np.clip(160 - 110 * m + rng.normal(0, 12, m.shape), 0, 255).astype(np.uint8)
        ip, mp = root / f"{i:03d}_sat.png", root / f"{i:03d}_mask.png"
        cv2.imwrite(str(ip), img)
        cv2.imwrite(str(mp), np.zeros_like(img) if empty_labels else m.astype(np.uint8) * 255)
        pairs.append((ip, mp))
    return pairs


def tiny_downstream_config(**kw) -> DownstreamConfig:
    """A U-Net of width 4, depth 2, 4 epochs at 32 px: ``kw`` overrides any field."""
    base = dict(
        model_options={"width": 4, "depth": 2, "norm": "batch"},
        epochs=4,
        image_size=32,
        batch_size=4,
        lr=1e-2,
        progress=False,
    )
    base.update(kw)
    return DownstreamConfig(**base)
