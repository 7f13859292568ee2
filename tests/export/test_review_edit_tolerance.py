"""A frame nobody touched is not an edit because its polygons were re-projected on the way back.

`elnet export --simplify` writes polygons whose edges run through pixel centres; QGIS's *Save As*
in another CRS (or a WGS84 GeoJSON) re-projects them, and those pixels then fall on either side by
rounding. Before, the record held a digest of the exported mask only, so every untouched image
of such a layer counted as edited and `--reviewed-only` imported the unreviewed labels as truth.
The record now holds the exported mask and the pixels whose centre lies within a quarter pixel of
an exported edge (:mod:`sam2elnet.export.review_edits`); only those are not compared, so a real
correction (a 2 x 2 px hole, a 20-px blob removed, an edge moved by one pixel) still counts.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_logs import run_main as _cli
from PIL import Image
from review_helpers import make_run
from shapely.geometry import box

from sam2elnet.data.vector import burn_shapes
from sam2elnet.export.review_edits import (
    exported_fields,
    loose_pixels,
    unchanged,
    unpack_mask,
)

# pycocotools 2.0.x on numpy 2 warns about its own np.array(copy=False) call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def _simplified_layer(tmp_path: Path, hole_in: str | None, capsys) -> tuple[Path, Path, Path]:
    """Three labels exported with --simplify 10 (1 px), the layer saved again in EPSG:4326 as
    QGIS's Save As does; ``hole_in``: cut a 2 x 2 px hole in the middle of that image's disc
    first (a real correction). Returns (layer saved again, its record, images)."""
    make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3})
    out = tmp_path / "q" / "labels.gpkg"
    rc, _, err = _cli(capsys, "export", "--labels", tmp_path / "run" / "rejected", "--out", out,
                      "--simplify", "10", "--no-progress")  # fmt: skip
    assert rc == 0, err
    g = gpd.read_file(out, layer="labels")
    if hole_in is not None:  # the disc of label_mask: centre row 26, column 32, radius 6 px
        hole = box(500000 + 10 * 31, 4000000 - 10 * 27, 500000 + 10 * 33, 4000000 - 10 * 25)
        mine = (g["source"].str.startswith(hole_in)) & g.geometry.contains(hole)
        assert mine.sum() == 1
        g.loc[mine, "geometry"] = g.loc[mine, "geometry"].difference(hole)
    again = tmp_path / "q2" / "labels.gpkg"
    again.parent.mkdir()
    g.to_crs(4326).to_file(again)
    return again, tmp_path / "q" / "labels_review.json", tmp_path / "images"


def test_reprojected_simplified_layer_comes_back_unchanged_but_a_hole_counts(
    tmp_path: Path, capsys
) -> None:
    layer, record, images = _simplified_layer(tmp_path, "a", capsys)
    rc, _, err = _cli(capsys, "import", layer, "--from", "qgis", "--images", images,
                      "--out", tmp_path / "m", "--review-set", record, "--reviewed-only",
                      "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "m").glob("*.tif")] == ["a.tif"], err
    assert "2 images come back as exported" in err and "b.tif, c.tif" in err, err
    got = _fg(tmp_path / "m" / "a.tif")
    assert not got[25:27, 31:33].any() and got[24, 30] and got[27, 33]  # the hole, on its pixels

    # every image's exported mask and loose pixels are in the record; the loose ones are few
    # and on the boundary: the disc's inside is compared
    for e in json.loads(record.read_text())["images"]:
        shape = tuple(e["mask_shape"])
        loose = unpack_mask(e["loose_bits"], shape)
        assert 0 < loose.sum() < unpack_mask(e["mask_bits"], shape).sum() / 3
        assert not loose[23:30, 29:36].any()


def test_a_digest_only_record_compares_exactly_and_says_so(tmp_path: Path, capsys) -> None:
    """A record of an older export (digests only): the same layer comes back all edited, and a
    note says why and what to do."""
    layer, record, images = _simplified_layer(tmp_path, None, capsys)
    data = json.loads(record.read_text())
    for e in data["images"]:
        for k in ("mask_shape", "mask_bits", "loose_bits"):
            e.pop(k, None)
    record.write_text(json.dumps(data))
    rc, _, err = _cli(capsys, "import", layer, "--from", "qgis", "--images", images,
                      "--out", tmp_path / "m", "--review-set", record, "--reviewed-only",
                      "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert len(list((tmp_path / "m").glob("*.tif"))) == 3
    assert "3 images count as edited by a review record that holds the exported masks' " in err
    assert "digests only" in err and "export again" in err, err


def _simplified_label() -> tuple[np.ndarray, dict]:
    """A 48 x 48 label of a disc (its edges simplified by 1 px: through pixel centres), a
    straight-edged block and a 4 x 5 px blob, and its record fields."""
    from shapely.geometry import Point

    disc = Point(16, 16).buffer(11).simplify(1.0)
    block, blob = box(30, 4, 44, 20), box(30, 36, 35, 40)  # blob: 5 columns x 4 rows
    polys = [disc, block, blob]
    mask = burn_shapes(polys, 48, 48) > 0
    return mask, exported_fields(mask, loose_pixels(polys, 48, 48, None))


def test_the_tolerance_hides_no_real_correction() -> None:
    mask, entry = _simplified_label()
    loose = unpack_mask(entry["loose_bits"], (48, 48))
    assert loose.any() and not loose[36:40, 30:35].any()  # the disc's edges; no pixel-edge side
    assert unchanged(entry, mask)
    assert unchanged(entry, mask ^ loose)  # every pixel a re-projection could flip, flipped

    no_blob = mask.copy()
    no_blob[36:40, 30:35] = False  # the reviewer deletes the 20-px false positive
    assert mask[36:40, 30:35].sum() == 20 and not unchanged(entry, no_blob)
    added = mask.copy()
    added[44, 4] = True  # one pixel drawn
    assert not unchanged(entry, added)
    poked = mask.copy()
    poked[16, 16] = False  # one pixel inside the disc
    assert not unchanged(entry, poked)
    moved = mask.copy()
    moved[4:20, 44] = True  # the block's right edge moved out by one pixel
    assert not unchanged(entry, moved)
    assert not unchanged(entry, mask[:, :47])  # another size


def test_cvat_segmentation_mask_of_polygons_comes_back_unchanged(tmp_path: Path, capsys):
    """COCO polygons out; CVAT's "Segmentation mask 1.1" rasterises them with pycocotools
    (datumaro's polygons_to_masks): the untouched frames are recognised, the frame where the
    reviewer erased a blob is not. The record holds each label's mask."""
    mu = pytest.importorskip("pycocotools.mask", reason="pycocotools is in the dev extra")
    make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3})
    coco = tmp_path / "cvat" / "weak.json"
    rc, _, err = _cli(capsys, "export", "--labels", tmp_path / "run" / "rejected", "--format",
                      "coco", "--images", tmp_path / "images", "--out", coco,
                      "--no-progress")  # fmt: skip
    assert rc == 0, err
    record = json.loads((tmp_path / "cvat" / "weak_coco_review.json").read_text())
    for e in record["images"]:
        lab = _fg(tmp_path / "run" / "rejected" / e["label"])
        assert (unpack_mask(e["mask_bits"], tuple(e["mask_shape"])) == lab).all()
        assert "loose_bits" not in e  # pixel-edge polygons: every pixel compared
    data = json.loads(coco.read_text())
    assert any(isinstance(a["segmentation"], list) for a in data["annotations"])
    z = tmp_path / "cvat" / "task_seg.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("labelmap.txt", "# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
                    "oil spill:250,50,83::\n")  # fmt: skip
        for im in data["images"]:
            h, w = im["height"], im["width"]
            m = np.zeros((h, w), bool)
            for a in (a for a in data["annotations"] if a["image_id"] == im["id"]):
                seg = a["segmentation"]
                if isinstance(seg, list):
                    rles = mu.frPyObjects([[round(v, 2) for v in p] for p in seg], h, w)
                else:
                    rles = [mu.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg]
                m |= mu.decode(mu.merge(rles)).astype(bool)
            if im["file_name"] == "b.tif":
                assert m[h - 2, 1]
                m[h - 2, 1] = False  # the reviewer erases the one-pixel speck
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[m] = (250, 50, 83)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, "PNG")
            zf.writestr(f"SegmentationClass/{Path(im['file_name']).stem}.png", buf.getvalue())
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", tmp_path / "images",
                      "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "m").glob("*.tif")] == ["b.tif"], err
    # the images, not their masks (before: a.png, c.png)
    assert "2 images come back as exported" in err and "a.tif, c.tif" in err, err
