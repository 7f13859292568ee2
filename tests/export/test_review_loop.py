"""The review loop as a reviewer runs it: export a run (COCO, GPKG, Label Studio), edit the file
as in CVAT / QGIS, `elnet import` it back. Faults found walking docs/review.md:

* COCO / GPKG exports refused an annotate run folder (Label Studio tasks took it);
* the category was "foreground" for every run (now the run's domain: "road", "oil spill");
* polygons of labels without a CRS lay mirrored over the image in QGIS (``--pixel-coords qgis``);
* COCO ``file_name`` / GPKG ``source`` were the label's name, not the image's (``x.png`` for
  ``x.jpg``), when no ``--images`` was given although the run's quality.csv names the image;
* there was no way back from QGIS: ``elnet import --from vector``.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from helpers_data import write_png, write_tif
from helpers_logs import run_main_err as _cli
from PIL import Image
from rasterio import features
from review_helpers import make_run
from shapely.geometry import box

from sam2elnet.data.domain import category_name
from sam2elnet.data.vector import rasterize_vector
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.labelstudio import export_label_studio
from sam2elnet.export.run_info import default_category
from sam2elnet.export.vector_import import import_vector

SCORES = {"a": 0.8, "b": 0.3, "c": 0.9}  # b is rejected (< 0.5)
H, W = 40, 60


def _png_label() -> np.ndarray:
    """An asymmetric 0/255 label: a 10x20 block near the top right, a 5x5 block bottom left."""
    m = np.zeros((H, W), np.uint8)
    m[2:12, 35:55] = 255
    m[30:35, 3:8] = 255
    return m


def _mask(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


# ------------------------------------------------------------------ run folders, names, category


def test_coco_and_gpkg_take_a_run_folder_with_its_rejected_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "coco.json"
    rc, err = _cli(capsys, "export", "--labels", run, "--format", "coco", "--out", out)
    assert rc == 0, err
    assert "exported 2 kept labels (labels/) and 1 the quality filter rejected" in err
    coco = json.loads(out.read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == ["a.tif", "b.tif", "c.tif"]
    q = {i["file_name"]: i["predicted_quality"] for i in coco["images"]}
    assert q == {"a.tif": 0.8, "b.tif": 0.3, "c.tif": 0.9}
    gp = tmp_path / "run.gpkg"
    rc, err = _cli(capsys, "export", "--labels", run, "--out", gp, "--no-progress")
    assert rc == 0, err
    g = gpd.read_file(gp, layer="labels")
    assert sorted(set(g["label"])) == ["a.tif", "b.tif", "c.tif"] and g.crs.to_epsg() == 32633
    # the labels/ folder alone: the kept ones only
    res = export_labels(run / "labels", tmp_path / "kept.json", progress=False)
    assert res.n_labels == 2 and not any("rejected" in n for n in res.notes)


def test_coco_file_names_and_gpkg_sources_come_from_the_runs_quality_csv(tmp_path: Path) -> None:
    """PNG labels of JPEG images: without --images the names were the labels' (x.png)."""
    run = tmp_path / "run"
    (run / "labels").mkdir(parents=True)
    Image.fromarray(_png_label()).save(run / "labels" / "10791_sat.png")
    (run / "quality.csv").write_text(
        "image,label,predicted_iou,kept\n/data/imgs/10791_sat.jpg,labels/10791_sat.png,0.7,True\n"
    )
    export_labels(run, tmp_path / "c.json", progress=False)
    coco = json.loads((tmp_path / "c.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["10791_sat.jpg"]
    export_labels(run, tmp_path / "p.gpkg", progress=False)
    g = gpd.read_file(tmp_path / "p.gpkg", layer="labels")
    assert set(g["source"]) == {"10791_sat.jpg"} and set(g["label"]) == {"10791_sat.png"}


def test_category_names_of_domains() -> None:
    assert category_name("roads") == "road"
    assert category_name("other", "sar") == "oil spill"
    assert category_name("other", "optical") is None and category_name(None) is None
    assert category_name(None, task="oil-spill") == "oil spill"
    assert category_name(None, task="road") == "road"


def _model_file(path: Path, domain: str, modality: str) -> Path:
    """A model file's payload as read_model_file checks it (no network needed for the domain)."""
    payload = {
        "format": "sam2elnet.model",
        "format_version": 1,
        "config": {},
        "state": {},
        "encoder": {},
        "extra": {"train": {"domain": domain, "modality": modality}},
    }
    torch.save(payload, path)
    return path


def test_category_defaults_to_the_runs_domain_and_can_be_overridden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path, SCORES)
    assert default_category(run) == ("foreground", "default")  # model.pt is not a model file
    # an older run: only the model file tells (its training record)
    model = _model_file(tmp_path / "roads.pt", "roads", "optical")
    (run / "summary.json").write_text(json.dumps({"task": "annotate", "model": str(model)}))
    rc, err = _cli(capsys, "export", "--labels", run, "--out", tmp_path / "c.json", "--no-progress")
    assert rc == 0, err
    cats = json.loads((tmp_path / "c.json").read_text())["categories"]
    assert cats == [{"id": 1, "name": "road", "supercategory": "road"}]
    assert "category 'road': the domain of the run's model" in err
    # a newer run records the category itself; a file in labels/ finds it too
    (run / "summary.json").write_text(
        json.dumps({"model": "gone.pt", "domain": {"domain": "other", "category": "oil spill"}})
    )
    assert default_category(run / "labels" / "a.tif")[0] == "oil spill"
    ls = export_label_studio(run, tmp_path / "ls" / "t.json", progress=False)
    assert 'Label value="oil spill"' in ls.config.read_text()
    task = json.loads(ls.out.read_text())[0]
    assert task["predictions"][0]["result"][0]["value"]["brushlabels"] == ["oil spill"]
    rc, err = _cli(
        capsys, "export", "--labels", run, "--out", tmp_path / "o.json", "--category", "slick"
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["categories"][0]["name"] == "slick"
    # ground truth of a synthetic dataset: its dataset.json task
    data = tmp_path / "data"
    (data / "masks").mkdir(parents=True)
    Image.fromarray(_png_label()).save(data / "masks" / "x.png")
    (data / "dataset.json").write_text(json.dumps({"task": "road", "modality": "optical"}))
    res = export_labels(data / "masks", tmp_path / "gt.json", progress=False)
    assert json.loads(res.out.read_text())["categories"][0]["name"] == "road"


def test_annotate_summary_and_serve_name_the_domain() -> None:
    from sam2elnet.engine.folder_settings import domain_summary
    from sam2elnet.pipeline.serve import MLBackend

    class _Pred:
        extra = {"train": {"domain": "roads", "modality": "optical"}}

    assert domain_summary(_Pred()) == {
        "domain": "roads",
        "modality": "optical",
        "category": "road",
    }
    assert domain_summary(object())["category"] is None  # a predictor without a record
    assert MLBackend._category(_Pred()) == "road"
    assert MLBackend._category(object()) == "foreground"


# ------------------------------------------------------------------------ --pixel-coords qgis


def test_pixel_coords_qgis_overlays_the_image_and_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "labels").mkdir()
    Image.fromarray(_png_label()).save(tmp_path / "labels" / "img.png")
    img = write_png(tmp_path / "img.png", np.full((H, W), 100, np.uint8))
    out = tmp_path / "q.gpkg"
    rc, err = _cli(
        capsys, "export", "--labels", tmp_path / "labels", "--out", out, "--pixel-coords", "qgis"
    )
    assert rc == 0, err
    assert "x = column, y = -row; --pixel-coords qgis" in err
    g = gpd.read_file(out, layer="labels")
    assert g.crs is None
    assert sorted(tuple(b) for b in g.geometry.bounds.to_numpy()) == [
        (3.0, -35.0, 8.0, -30.0),
        (35.0, -12.0, 55.0, -2.0),
    ]
    assert sorted(g["area_px"]) == [25.0, 200.0]
    # burnt with QGIS's transform of a raster without georeference: the label, pixel for pixel
    qgis = Affine(1, 0, 0, 0, -1, 0)
    burnt = features.rasterize(list(g.geometry), out_shape=(H, W), transform=qgis)
    assert np.array_equal(burnt > 0, _png_label() > 0)
    # the vector-label reader places it on the same pixels (as the default export)
    assert np.array_equal(rasterize_vector(out, img), _png_label() > 0)
    # the default stays x = column, y = row (C07)
    export_labels(tmp_path / "labels", tmp_path / "d.gpkg", progress=False)
    d = gpd.read_file(tmp_path / "d.gpkg", layer="labels")
    assert d.total_bounds.tolist() == [3.0, 2.0, 55.0, 35.0]
    # a bad value: one error line, nothing written
    rc, err = _cli(
        capsys, "export", "--labels", tmp_path / "labels", "--out", tmp_path / "x.gpkg",
        "--pixel-coords", "down",
    )  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--pixel-coords" in err
    assert not (tmp_path / "x.gpkg").exists()


def test_pixel_coords_qgis_leaves_georeferenced_labels_alone(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"a": 0.9})
    a = export_labels(run / "labels", tmp_path / "a.gpkg", progress=False)
    b = export_labels(run / "labels", tmp_path / "b.gpkg", progress=False, pixel_coords="qgis")
    assert any("labels without a CRS only; ignored" in n for n in b.notes)
    ga, gb = (gpd.read_file(r.out, layer="labels") for r in (a, b))
    assert ga.geometry.equals(gb.geometry) and gb.crs.to_epsg() == 32633
    c = export_labels(run / "labels", tmp_path / "c.json", progress=False, pixel_coords="qgis")
    assert any("COCO stays in image coordinates" in n for n in c.notes)


# -------------------------------------------------------------------- QGIS -> elnet import


def test_gpkg_reviewed_in_qgis_imports_with_georeference_and_nodata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path, SCORES)
    # b and c lie 1 and 2 km east of a (make_run puts every image on one grid)
    for name, sub, dx in (("b", "rejected", 1000), ("c", "labels", 2000)):
        for f in (tmp_path / "images" / f"{name}.tif", run / sub / f"{name}.tif"):
            with rasterio.open(f, "r+") as ds:
                ds.transform = Affine(10, 0, 500000 + dx, 0, -10, 4000000)
    # image a gets a nodata corner: the mask keeps it as 127
    with rasterio.open(tmp_path / "images" / "a.tif", "r+") as ds:
        ds.nodata = 0
        d = ds.read()
        d[:, :4, :4] = 0
        ds.write(d)
    gp = tmp_path / "review.gpkg"
    export_labels(run, gp, progress=False)
    g = gpd.read_file(gp, layer="labels")
    # the reviewer: deletes every polygon of c, draws a square in b (source filled in) and one
    # without attributes over a (placed by its map coordinates)
    with rasterio.open(tmp_path / "images" / "b.tif") as ds:
        tb = ds.transform
    sq = box(*(tb * (40, 30)), *(tb * (46, 24)))  # columns 40..46, rows 24..30 of b
    g = g[g["label"] != "c.tif"]
    with rasterio.open(tmp_path / "images" / "a.tif") as ds:
        ta = ds.transform
    free = box(*(ta * (44, 38)), *(ta * (48, 36)))  # columns 44..48, rows 36..38 of a
    added = gpd.GeoDataFrame(
        {"source": ["b.tif", None], "label": [None, None]}, geometry=[sq, free], crs=g.crs
    )
    edited = gpd.GeoDataFrame(
        gpd.pd.concat([g, added], ignore_index=True), geometry="geometry", crs=g.crs
    )
    gp.unlink()  # QGIS saves the edits into the exported file (its _review.json stays beside)
    edited.to_file(gp, layer="labels")
    out = tmp_path / "masks"
    rc, err = _cli(
        capsys, "import", gp, "--from", "qgis",
        "--images", tmp_path / "images", "--out", out, "--no-progress",
    )  # fmt: skip
    assert rc == 0, err
    assert "1 of 3 masks is all background" in err and "warning" not in err
    for name in "abc":
        with (
            rasterio.open(out / f"{name}.tif") as ds,
            rasterio.open(tmp_path / "images" / f"{name}.tif") as im,
        ):
            assert ds.crs == im.crs and ds.transform == im.transform and ds.nodata == 127
    want_a = np.where(_mask(run / "labels" / "a.tif") > 0, 255, 0).astype(np.uint8)
    want_a[36:38, 44:48] = 255
    want_a[:4, :4] = 127
    assert np.array_equal(_mask(out / "a.tif"), want_a)
    want_b = np.where(_mask(run / "rejected" / "b.tif") > 0, 255, 0).astype(np.uint8)
    want_b[24:30, 40:46] = 255
    assert np.array_equal(_mask(out / "b.tif"), want_b)
    assert not _mask(out / "c.tif").any()


@pytest.mark.parametrize("pixel_coords", ["gdal", "qgis"])
def test_gpkg_of_png_labels_round_trips_both_pixel_conventions(
    tmp_path: Path, pixel_coords: str
) -> None:
    (tmp_path / "labels").mkdir()
    Image.fromarray(_png_label()).save(tmp_path / "labels" / "img.png")
    write_png(tmp_path / "images" / "img.png", np.full((H, W), 90, np.uint8))
    write_png(tmp_path / "images" / "other.png", np.full((H, W), 90, np.uint8))
    gp = tmp_path / "l.gpkg"
    export_labels(tmp_path / "labels", gp, progress=False, pixel_coords=pixel_coords)
    g = gpd.read_file(gp, layer="labels")
    ys = -1 if pixel_coords == "qgis" else 1
    drawn = box(20, min(20 * ys, 25 * ys), 24, max(20 * ys, 25 * ys))  # rows 20..25, cols 20..24
    added = gpd.GeoDataFrame({"source": ["img.png", None]}, geometry=[drawn, drawn])
    gpd.GeoDataFrame(gpd.pd.concat([g, added], ignore_index=True), geometry="geometry").to_file(
        tmp_path / "e.gpkg", layer="labels"
    )
    res = import_vector(tmp_path / "e.gpkg", tmp_path / "m", images=tmp_path / "images")
    assert sum("y is read as the row" in n for n in res.notes) == (pixel_coords == "gdal")
    want = _png_label() > 0
    want[20:25, 20:24] = True
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m" / "img.png")) > 0, want)
    # other.png was not exported and no feature names it: no mask made up for it
    assert not (tmp_path / "m" / "other.png").exists()
    assert any("1 image of" in n and "has no feature in the layer" in n for n in res.notes)
    # the unnamed square: no CRS, so its image is unknown
    assert any("1 feature has no source / label attribute" in n for n in res.notes)


def test_vector_import_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gp = tmp_path / "l.gpkg"
    gpd.GeoDataFrame({"source": ["x.png"]}, geometry=[box(0, 0, 3, 3)]).to_file(gp)
    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--out", tmp_path / "m")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--images is needed" in err
    write_png(tmp_path / "images" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UserError, match="'category' attribute"):
        import_vector(gp, tmp_path / "m", images=tmp_path / "images", category="road")
    (tmp_path / "bad.gpkg").write_text("not a geopackage")
    rc, err = _cli(
        capsys, "import", tmp_path / "bad.gpkg", "--from", "qgis", "--images",
        tmp_path / "images", "--out", tmp_path / "m",
    )  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "bad.gpkg" in err
    assert not (tmp_path / "m").exists()
    # a GeoTIFF image without labels for it still gets its georeference
    write_tif(tmp_path / "geo" / "t.tif", np.ones((1, 8, 8), np.uint8))
    gpd.GeoDataFrame(
        {"source": ["t.tif"]}, geometry=[box(500000, 3999940, 500020, 4000000)], crs="EPSG:32633"
    ).to_file(tmp_path / "g.gpkg")
    import_vector(tmp_path / "g.gpkg", tmp_path / "gm", images=tmp_path / "geo", progress=False)
    m = _mask(tmp_path / "gm" / "t.tif")
    assert m[:6, :2].all() and m.sum() == 12 * 255


def test_label_studio_import_names_the_wrong_export_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Elnet's own tasks file and COCO files said 'no task has a usable annotation; review tasks
    in Label Studio' (the reviewer had reviewed them). JSON-MIN exports are read
    (tests/export/test_review_import.py)."""
    cases = {
        "tasks.json": ([{"data": {"image": "x"}, "predictions": []}], "export the reviewed"),
        "coco.json": ({"images": [], "annotations": [], "categories": []}, "use --from coco"),
    }
    for name, (doc, want) in cases.items():
        (tmp_path / name).write_text(json.dumps(doc))
        rc, err = _cli(
            capsys, "import", tmp_path / name, "--from", "label-studio", "--out", tmp_path / "m"
        )
        assert rc == 2 and want in err and len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "m").exists()


def test_coco_and_label_studio_imports_keep_png_nodata(tmp_path: Path) -> None:
    """A PNG image whose alpha marks no data (transparent corner): the imported mask is 127 there
    (GeoTIFF images kept their nodata before; PNG images lost it)."""
    from sam2elnet.export.coco_import import import_coco
    from sam2elnet.export.labelstudio_import import import_label_studio

    rgba = np.full((H, W, 4), 120, np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :6, 3] = 0
    write_png(tmp_path / "images" / "p.png", rgba)
    coco = {
        "images": [{"id": 1, "file_name": "p.png", "height": H, "width": W}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]], "area": 200, "bbox": [10, 10, 20, 10]}
        ],
        "categories": [{"id": 1, "name": "oil spill"}],
    }  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    want = np.zeros((H, W), np.uint8)
    want[10:20, 10:30] = 255
    want[:5, :6] = 127
    import_coco(tmp_path / "c.json", tmp_path / "mc", images=tmp_path / "images", progress=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "mc" / "p.png")), want)
    pts = [[100 * x / W, 100 * y / H] for x, y in ((10, 10), (30, 10), (30, 20), (10, 20))]
    ls = [
        {
            "id": 1,
            "data": {"image": "/data/local-files/?d=v/p.png", "name": "p"},
            "annotations": [
                {
                    "id": 5,
                    "result": [
                        {"type": "polygonlabels", "original_width": W, "original_height": H,
                         "value": {"points": pts, "polygonlabels": ["oil spill"]}}
                    ],
                }
            ],
        }
    ]  # fmt: skip
    (tmp_path / "ls.json").write_text(json.dumps(ls))
    import_label_studio(tmp_path / "ls.json", tmp_path / "ml", images=tmp_path / "images")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ml" / "p.png")), want)
