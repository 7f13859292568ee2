"""Labels out as COCO (polygons and own RLE reproduce the mask) and as image chips."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from helpers_export import label_array, write_labels_folder

from sam2elnet.errors import DataError
from sam2elnet.export.api import export_labels
from sam2elnet.export.coco import (
    rle_decode,
)


@pytest.fixture
def label_tif(tmp_path: Path) -> Path:
    return write_labels_folder(tmp_path)


def test_coco_polygons_and_rle_reproduce_the_mask(tmp_path: Path, label_tif: Path):
    from rasterio import features

    lab = label_array()
    lab[:3, :3] = 127
    mask = lab == 255
    for rle in (False, True):
        out = tmp_path / f"coco_{rle}.json"
        export_labels(label_tif, out, "coco", coco_rle=rle, category="oil", progress=False)
        coco = json.loads(out.read_text())
        assert coco["categories"][0]["name"] == "oil"
        assert len(coco["images"]) == 1 and len(coco["annotations"]) == 4
        img = coco["images"][0]
        assert (img["height"], img["width"]) == mask.shape
        rebuilt = np.zeros_like(mask)
        for ann in coco["annotations"]:
            seg = ann["segmentation"]
            if isinstance(seg, dict):
                m = rle_decode(seg)
            else:
                m = np.zeros(mask.shape, np.uint8)
                for poly in seg:
                    ring = list(zip(poly[::2], poly[1::2], strict=True))
                    features.rasterize([({"type": "Polygon", "coordinates": [ring]}, 1)], out=m)
                m = m.astype(bool)
            assert m.sum() == ann["area"]
            x, y, w, h = ann["bbox"]
            assert m[y : y + h, x : x + w].sum() == ann["area"]
            rebuilt |= m
        np.testing.assert_array_equal(rebuilt, mask)
        if not rle:  # the region with a hole must be RLE even in polygon mode
            assert any(isinstance(a["segmentation"], dict) for a in coco["annotations"])
            assert any(isinstance(a["segmentation"], list) for a in coco["annotations"])


def test_chips_and_coco_over_chips(tmp_path: Path, label_tif: Path):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    with rasterio.open(label_tif) as lab:
        prof = dict(lab.profile, dtype="uint16", nodata=0, count=3)
    img = (1 + rng.random((3, 200, 240)) * 4000).astype(np.uint16)
    img[:, 195:, :] = 0  # image nodata (tag 0) in the last 5 rows
    with rasterio.open(img_dir / "a.tif", "w", **prof) as d:
        d.write(img)
    res = export_labels(
        label_tif,
        tmp_path / "chips.json",
        "coco",
        images=img_dir,
        chips=tmp_path / "chips",
        chip_size=128,
        progress=False,
    )
    imgs = sorted((tmp_path / "chips" / "images").glob("*.png"))
    masks = sorted((tmp_path / "chips" / "masks").glob("*.png"))
    assert res.n_chips == len(imgs) == len(masks) == 4  # 2 x 2 grid, edge chips shifted inward
    a = cv2.imread(str(imgs[0]), cv2.IMREAD_UNCHANGED)
    m = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8 and m.shape == (128, 128)
    # label convention: 0 / 255, nodata 127 where the label is nodata (corner) ...
    lab = label_array()
    assert [p.name for p in masks] == [f"a_r{r}_c{c}.png" for r in (0, 72) for c in (0, 112)]
    assert (m[:3, :3] == 127).all() and set(np.unique(m)) == {0, 127, 255}
    np.testing.assert_array_equal(m[3:, 3:], lab[3:128, 3:128])
    # ... and where the image has no measurement (rows 195-199 = chip rows 123-127)
    last = cv2.imread(str(masks[3]), cv2.IMREAD_UNCHANGED)
    assert (last[123:] == 127).all() and not (last[:123] == 127).any()
    np.testing.assert_array_equal(last[:123], lab[72:195, 112:240])
    with rasterio.open(masks[3]) as ds:  # GDAL reads the PNG tRNS chunk as nodata 127
        assert ds.nodata == 127 and ds.dataset_mask()[123:].max() == 0
    coco = json.loads((tmp_path / "chips.json").read_text())
    assert {i["file_name"] for i in coco["images"]} == {f"images/{p.name}" for p in imgs}
    # chips without images is a clear error
    with pytest.raises(DataError, match="no source image"):
        export_labels(label_tif, tmp_path / "x.gpkg", chips=tmp_path / "c2", progress=False)
