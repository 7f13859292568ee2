"""Synthetic scenes: shapes, determinism (same seed, same bytes), speed and learnability cues."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sam2elnet.data.coarse_ops import iou
from sam2elnet.data.synthetic import GENERATOR_VERSION, generate_dataset, make_scene
from sam2elnet.errors import DataError


@pytest.mark.parametrize(("task", "bands"), [("oil-spill", 1), ("road", 3)])
def test_scene_contract(task, bands):
    sc = make_scene(task, 64, seed=5)
    assert sc.image.shape == (bands, 64, 64) and sc.image.dtype == np.uint8
    assert sc.mask.shape == (64, 64) and sc.mask.dtype == bool
    again = make_scene(task, 64, seed=5)
    np.testing.assert_array_equal(sc.image, again.image)
    np.testing.assert_array_equal(sc.mask, again.mask)
    assert not np.array_equal(sc.image, make_scene(task, 64, seed=6).image)


def test_unknown_task():
    with pytest.raises(DataError, match="task"):
        make_scene("cloud", 32)


def test_generate_same_seed_same_bytes(tmp_path):
    a = generate_dataset(
        tmp_path / "a", "oil-spill", count=3, size=48, seed=7, progress=False
    ).parent
    b = generate_dataset(
        tmp_path / "b", "oil-spill", count=3, size=48, seed=7, progress=False
    ).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 10  # 3 x (image, mask, coarse) + dataset.json
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    meta = json.loads((a / "dataset.json").read_text())
    assert meta["task"] == "oil-spill" and meta["modality"] == "sar" and meta["count"] == 3
    assert (
        meta["size"] == 48 and meta["seed"] == 7 and meta["generator_version"] == GENERATOR_VERSION
    )
    img = cv2.imread(str(a / "images" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert img.ndim == 2 and img.dtype == np.uint8  # grey PNG
    mask = cv2.imread(str(a / "masks" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) <= {0, 255}
    c = generate_dataset(
        tmp_path / "c", "oil-spill", count=3, size=48, seed=8, progress=False
    ).parent
    assert (c / "images" / "00000.png").read_bytes() != (a / "images" / "00000.png").read_bytes()


def test_generate_road_and_bad_args(tmp_path):
    root = generate_dataset(tmp_path / "r", "road", count=2, size=64, seed=0, progress=False).parent
    img = cv2.imread(str(root / "images" / "00001.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 64, 3)
    with pytest.raises(DataError):
        generate_dataset(tmp_path / "x", "road", count=0, progress=False)
    with pytest.raises(DataError):
        generate_dataset(tmp_path / "x", "lake", count=1, progress=False)


def test_oil_spill_learnable_but_not_trivial():
    slick, look, sea, imgs, masks = [], [], [], [], []
    empty = 0
    for i in range(30):
        sc = make_scene("oil-spill", 96, i)
        g = cv2.GaussianBlur(sc.image[0].astype(np.float32), (0, 0), 2)
        empty += int(not sc.mask.any())
        if sc.mask.any():
            slick.append(g[sc.mask].mean())
        if sc.distractor is not None and sc.distractor.any():
            look.append(g[sc.distractor].mean())
        sea.append(g[~sc.mask].mean())
        imgs.append(g)
        masks.append(sc.mask)
    assert 0 < empty < 15  # both empty and oil scenes
    assert np.mean(slick) + 10 < np.mean(look) < np.mean(sea)  # slicks darker than look-alikes
    g, m = np.stack(imgs), np.stack(masks)
    best = max(iou(m, g < t) for t in range(40, 220, 10))
    assert best < 0.6  # one global grey threshold does not solve it


def test_roads_occluded_by_trees_in_image_only():
    sc = make_scene("road", 128, 3)
    rgb = sc.image.astype(np.int16)
    greenish = (rgb[1] > rgb[0] + 15) & (rgb[1] > rgb[2] + 15)
    assert (greenish & sc.mask).any()  # some road pixels are hidden under trees
    assert 0.02 < sc.mask.mean() < 0.6
