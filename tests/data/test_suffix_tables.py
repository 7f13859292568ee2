"""The file-suffix tables have one owner, :mod:`sam2elnet.data.naming`, and the modules that
read files follow its rules (docs/architecture.md, "Where to add ... An input format")."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import sam2elnet
from sam2elnet.data import naming


def test_no_module_but_naming_exports_a_suffix_table() -> None:
    """``SCENE_SUFFIXES`` was re-exported by engine.scene_inputs and again by engine.scene,
    ``VECTOR_SUFFIXES`` by data.vector, and the pairing rule ``mask_key`` by engine.metrics: a
    reader could not tell which was the owner. Now only data.naming lists them in ``__all__``."""
    tables = {n for n in naming.__all__ if n.endswith("_SUFFIXES")} | {"mask_key"}
    assert {"SCENE_SUFFIXES", "VECTOR_SUFFIXES", "CV2_SUFFIXES", "MASK_SUFFIXES"} <= tables
    found = []
    for info in pkgutil.walk_packages(sam2elnet.__path__, "sam2elnet."):
        if info.name == "sam2elnet.data.naming" or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [f"{info.name}.{n}" for n in getattr(module, "__all__", ()) if n in tables]
    assert found == []


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".gif", ".tif"])
def test_header_and_pixels_are_read_by_one_reader(tmp_path: Path, suffix: str) -> None:
    """data.grids kept its own list of files without a GDAL header (PNG, JPEG, BMP, GIF) while
    data.images decodes only PNG / JPEG with OpenCV and reads BMP / GIF through GDAL. Now both
    follow naming.CV2_SUFFIXES: a BMP or GIF mask has a header (its 32 x 24 px size) like a
    GeoTIFF, a PNG / JPEG none."""
    from sam2elnet.data.grids import raster_header

    mask = np.zeros((24, 32), np.uint8)
    mask[4:20, 8:24] = 255
    path = tmp_path / f"m{suffix}"
    if suffix == ".gif":
        Image.fromarray(mask).save(path)
    else:
        assert cv2.imwrite(str(path), mask)
    shape = raster_header(path).shape
    assert shape == (None if suffix in naming.CV2_SUFFIXES else (24, 32))


def test_bmp_and_gif_ground_truth_is_scored(tmp_path: Path) -> None:
    """BMP and GIF are mask suffixes of evaluation (naming.MASK_SUFFIXES): a 16 x 16 px square
    truth and a prediction missing its top 4 rows score IoU 192 / 256 = 0.75."""
    from sam2elnet.engine.evaluate import evaluate_folders

    (tmp_path / "t").mkdir()
    (tmp_path / "p").mkdir()
    truth = np.zeros((32, 32), np.uint8)
    truth[8:24, 8:24] = 255
    pred = truth.copy()
    pred[8:12] = 0
    assert cv2.imwrite(str(tmp_path / "t" / "a.bmp"), truth)
    Image.fromarray(truth).save(tmp_path / "t" / "b.gif")
    for k in "ab":
        assert cv2.imwrite(str(tmp_path / "p" / f"{k}.png"), pred)
    res = evaluate_folders(tmp_path / "p", tmp_path / "t", progress=False)
    assert [(r["image"], r["iou"]) for r in res.rows()] == [("a", 0.75), ("b", 0.75)]
