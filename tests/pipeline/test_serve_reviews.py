"""``elnet serve`` stores a reviewed mask as ``elnet import`` writes it: a GeoTIFF task image
gives a ``.tif`` mask with the image's CRS, transform and nodata, a PNG one a ``.png`` mask; both
pair with their image for fine-tuning (no model needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers_data import grey_rgb, write_png, write_tif

from sam2elnet.data.layouts import discover
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.pipeline.serve_reviews import count_reviews, review_folder, store_review


def test_a_geotiff_review_keeps_the_image_georeference_and_pairs(tmp_path: Path):
    import rasterio

    img = np.random.default_rng(0).integers(1, 4000, (3, 40, 48)).astype(np.uint16)
    img[:, :4, :6] = 0  # a nodata corner (nodata=0 tag)
    tif = write_tif(tmp_path / "in" / "a.tif", img, nodata=0)
    png = write_png(tmp_path / "in" / "b.png", grey_rgb(32, 1))
    data = review_folder(tmp_path / "w")
    write_png(data / "masks" / "a.png", np.zeros((40, 48), np.uint8))  # an earlier review
    edit = np.zeros((40, 48), bool)
    edit[10:30, 12:40] = True
    task = {"id": 1, "data": {"image": str(tif), "name": "a"}}
    ann = {"result": mask_result(edit, "foreground")}
    assert store_review(data, task, ann, lambda t: Path(t["data"]["image"])) == 1
    assert sorted(p.name for p in (data / "masks").iterdir()) == ["a.tif"]  # a.png replaced
    with rasterio.open(data / "masks" / "a.tif") as m, rasterio.open(tif) as src:
        assert m.crs == src.crs and m.crs.to_epsg() == 32633
        assert m.transform == src.transform and m.nodata == 127
        got = m.read(1)
    want = np.where(edit, 255, 0).astype(np.uint8)
    want[:4, :6] = 127  # the image's nodata
    assert np.array_equal(got, want)
    # a PNG image: a plain .png mask (0/255)
    edit_b = np.zeros((32, 32), bool)
    edit_b[3:9, 4:20] = True
    task_b = {"id": 2, "data": {"image": str(png)}}
    ann_b = {"result": mask_result(edit_b, "foreground")}
    assert store_review(data, task_b, ann_b, lambda t: Path(t["data"]["image"])) == 1
    assert sorted(p.name for p in (data / "masks").iterdir()) == ["a.tif", "task2_b.png"]
    assert count_reviews(data) == 2
    # fine-tuning's training folder: each mask pairs with its image by name
    pairs = {(s.image.name, s.mask.name) for s in discover(data).samples}
    assert pairs == {("a.tif", "a.tif"), ("task2_b.png", "task2_b.png")}


def test_a_task_image_already_in_the_review_folder_is_kept(tmp_path: Path):
    """A task whose image is the review folder's own copy (a task re-created from it, or a
    second review of the same image) keeps that image: it was deleted before being copied."""
    data = review_folder(tmp_path / "w")
    img = write_png(data / "images" / "a.png", grey_rgb(32, 1))
    before = img.read_bytes()
    edit = np.zeros((32, 32), bool)
    edit[2:10, 3:12] = True
    task = {"id": 5, "data": {"image": str(img), "name": "a"}}
    ann = {"result": mask_result(edit, "foreground")}
    assert store_review(data, task, ann, lambda t: Path(t["data"]["image"])) == 1
    assert img.read_bytes() == before
    assert sorted(p.name for p in (data / "images").iterdir()) == ["a.png"]
    assert sorted(p.name for p in (data / "masks").iterdir()) == ["a.png"]
    assert count_reviews(data) == 1


def test_a_transparent_png_task_gets_nodata_as_the_import_gives_it(tmp_path: Path):
    """A PNG task image with transparent pixels (alpha 0): the reviewed mask is 127 there, as
    ``elnet import`` writes the same annotation (one shared rule); before, serve wrote 0/255."""
    from PIL import Image

    from sam2elnet.export.labelstudio_import import import_label_studio

    rgba = np.zeros((32, 40, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = 255
    rgba[:, 30:, 3] = 0  # columns 30.. transparent: outside the imaged swath
    img = tmp_path / "in" / "t.png"
    img.parent.mkdir()
    Image.fromarray(rgba, "RGBA").save(img)
    edit = np.zeros((32, 40), bool)
    edit[5:20, 10:35] = True  # reaches into the transparent part
    task = {"id": 3, "data": {"image": str(img), "name": "t"}}
    ann = {"id": 1, "result": mask_result(edit, "foreground")}
    data = review_folder(tmp_path / "w")
    assert store_review(data, task, ann, lambda t: Path(t["data"]["image"])) == 1
    served = np.asarray(Image.open(data / "masks" / "t.png"))
    want = np.where(edit, 255, 0).astype(np.uint8)
    want[:, 30:] = 127
    assert np.array_equal(served, want)
    # elnet import of the same task writes the same mask
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{**task, "annotations": [ann]}]))
    import_label_studio(export, tmp_path / "imported", images=img.parent, progress=False)
    imported = np.asarray(Image.open(tmp_path / "imported" / "t.png"))
    assert np.array_equal(imported, served)
