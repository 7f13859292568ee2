"""The same pixels as PNG and as GeoTIFF train the same: ``prepare_data`` and the training
``SegmentationDataset`` give bit-identical image, mask, valid and coarse tensors for a folder of
3-band uint8 PNG tiles with 0/255 PNG masks and a folder of georeferenced GeoTIFF copies of
them (a roads trial suspected the GeoTIFF form of a training collapse: docs/training.md, "Road
runs whose IoU falls to 0")."""

from __future__ import annotations

import numpy as np
from helpers_data import road_mask, small_cfg, write_mask_png, write_png, write_tif

from sam2elnet.data.datasets import SegmentationDataset
from sam2elnet.engine.train_data import prepare_data, training_recipe


def _tiles(n: int = 4, size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """(H, W, 3) uint8 image with darker roads, (H, W) bool road mask."""
    out = []
    for k in range(n):
        m = road_mask(size, seed=k)
        rng = np.random.default_rng(k)
        img = rng.integers(90, 230, (size, size, 3), dtype=np.uint8)
        img[m] = rng.integers(20, 80, (int(m.sum()), 3), dtype=np.uint8)
        out.append((img, m))
    return out


def test_png_and_geotiff_copies_give_the_same_training_tensors(tmp_path):
    tiles = _tiles()
    for k, (img, m) in enumerate(tiles):
        write_png(tmp_path / "png" / "images" / f"t{k}.png", img)
        write_mask_png(tmp_path / "png" / "masks" / f"t{k}.png", m)
        write_tif(tmp_path / "tif" / "images" / f"t{k}.tif", img.transpose(2, 0, 1))
        write_tif(tmp_path / "tif" / "masks" / f"t{k}.tif", m[None].astype(np.uint8) * 255)
    items = {}
    for form in ("png", "tif"):
        cfg = small_cfg(tmp_path / form, tmp_path / f"out-{form}", val_fraction=0.25)
        data = prepare_data(cfg)
        _, aug, _ = training_recipe(cfg, data.domain)
        assert data.in_bands == 3
        ds = SegmentationDataset(
            data.train_samples, data.norm, size=32, train=True, seed=0, bands=data.in_bands,
            augmentation=aug,
        )  # fmt: skip
        ds.set_epoch(2)
        items[form] = {s.id: ds[i] for i, s in enumerate(ds.samples)}
        items[form + "_val"] = [s.id for s in data.val_samples]
    assert items["png_val"] == items["tif_val"] and len(items["png"]) == 3
    for sid, a in items["png"].items():
        b = items["tif"][sid]
        for key in ("image", "mask", "valid", "coarse", "has_coarse"):
            assert torch_equal(a[key], b[key]), (sid, key)
        assert a["mask"].sum() > 0 and a["valid"].min() == 1.0  # roads kept, nothing ignored
        assert 0.0 <= float(a["image"].min()) and float(a["image"].max()) <= 1.5


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())
