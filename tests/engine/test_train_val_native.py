"""Validation during training scores each image at native scale: its centred window of the crop
size (the whole image along a shorter side), batched by shape, not resized to the crop size
(engine.train_val)."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import cv2
import numpy as np
import torch
from helpers_data import small_cfg

SIZES = [(48, 48), (24, 40), (48, 48), (24, 40), (48, 48), (24, 40)]


def _thin_lines(root: Path) -> Path:
    """images/ + masks/ of two sizes whose objects are 1 px lines (lost or thickened by resizing)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for i, (h, w) in enumerate(SIZES):
        m = np.zeros((h, w), np.uint8)
        m[:, 5 + 3 * i : 6 + 3 * i] = 255  # one vertical 1 px line
        m[h // 2 + (i % 3), :] = 255  # one horizontal 1 px line near the centre
        img = (rng.normal(90, 20, (h, w)) + (m > 0) * 90).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"s{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"s{i}.png"), m)
    return root


def test_validation_sees_native_windows_batched_by_shape(tmp_path: Path, monkeypatch) -> None:
    import sam2elnet.engine.train as tr

    seen: list[tuple[list[str], torch.Tensor, torch.Tensor]] = []
    real = tr.validate

    def spy(model, loader, *a, **k):
        for batch in loader:  # what the validation pass is given, batch by batch
            seen.append((list(batch["id"]), batch["image"].clone(), batch["mask"].clone()))
        return real(model, loader, *a, **k)

    monkeypatch.setattr(tr, "validate", spy)
    data = _thin_lines(tmp_path / "d")
    res = tr.train(small_cfg(data, tmp_path / "run", fit_quality=False, batch_size=4))
    val_ids = res.splits["val"]
    assert len(val_ids) == 3 and seen
    assert {i for ids, _, _ in seen for i in ids} == set(val_ids)
    for ids, images, masks in seen:
        assert len({tuple(x.shape) for x in images}) == 1  # one shape per batch
        for j, sid in enumerate(ids):
            h, w = SIZES[int(sid[1:])]
            ch, cw = min(h, 32), min(w, 32)  # the centred window of --image-size 32
            r, c = (h - ch) // 2, (w - cw) // 2
            assert tuple(images[j].shape) == (1, ch, cw)
            truth = cv2.imread(str(data / "masks" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE) > 0
            # the label's own pixels: the 1 px lines are neither lost nor thickened
            assert np.array_equal(masks[j, 0].numpy() > 0.5, truth[r : r + ch, c : c + cw])
