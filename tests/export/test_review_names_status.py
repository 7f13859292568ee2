"""Review loop faults found on 2026-12-02 (after the CVAT fixes of the same day):

* Label Studio import: two tasks of images with one name in different folders
  (``palsar/x.png``, ``sentinel/x.png``) gave one mask ``x.png``, the first task's; the second
  reviewed label was dropped with "skipped x: a second task with the same image name". The
  COCO / CVAT import already stopped with one line naming both; now both use one rule
  (:func:`sam2elnet.export.image_lookup.check_unique_stems`);
* the polygon export had no attribute telling a QGIS reviewer which labels the quality filter
  rejected, and no ``category`` (``elnet import --from vector --category`` needed one added by
  hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from helpers_logs import run_main_err as _cli
from review_helpers import label_mask, make_run

from sam2elnet.export.api import export_labels
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.export.labelstudio_import import import_label_studio
from sam2elnet.export.vector_import import import_vector

H, W = 8, 10


def _block(r0: int, r1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r1, 2:7] = True
    return m


def _task(tid: int, path: str, mask: np.ndarray) -> dict:
    """A task of an image Label Studio serves from local storage (folders kept in ``d=``)."""
    return {
        "id": tid,
        "data": {"image": f"/data/local-files/?d={path}"},
        "annotations": [{"id": 10 + tid, "result": mask_result(mask, "oil spill")}],
    }


def _json_min(tasks: list[dict]) -> list[dict]:
    """Label Studio's JSON-MIN records of these tasks (one annotation each; see
    ``tests/export/test_review_import.py`` for the converter's rules)."""
    out = []
    for t in tasks:
        ann = t["annotations"][0]
        regions = [
            dict(
                r["value"], original_width=r["original_width"], original_height=r["original_height"]
            )
            for r in ann["result"]
        ]
        out.append(dict(t["data"], id=t["id"], label=regions, annotator=1, annotation_id=ann["id"]))
    return out


@pytest.mark.parametrize("kind", ["json", "json-min"])
def test_label_studio_two_images_with_one_name_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    tasks = [_task(1, "palsar/x.png", _block(1, 3)), _task(2, "sentinel/x.png", _block(4, 7))]
    exp = tmp_path / "export.json"
    exp.write_text(json.dumps(tasks if kind == "json" else _json_min(tasks)))
    rc, err = _cli(capsys, "import", exp, "--from", "label-studio", "--out", tmp_path / "m",
                   "--no-progress")  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "palsar/x.png" in err and "sentinel/x.png" in err and "overwrite" in err
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_label_studio_task_duplicated_for_one_image_is_no_clash(tmp_path: Path) -> None:
    """The same image twice (the tasks file imported twice): the first reviewed task's mask."""
    tasks = [_task(1, "palsar/x.png", _block(1, 3)), _task(2, "palsar/x.png", _block(4, 7))]
    (tmp_path / "e.json").write_text(json.dumps(tasks))
    res = import_label_studio(tmp_path / "e.json", tmp_path / "m", progress=False)
    assert [p.name for p in res.written] == ["x.png"]
    assert [s for s, _ in res.skipped] == ["x"]
    with rasterio.open(tmp_path / "m" / "x.png") as d:
        assert np.array_equal(d.read(1) == 255, _block(1, 3))


# ----------------------------------------------------------------------- polygon attributes


def _run(tmp_path: Path) -> Path:
    """A run of three labels: a kept (0.9), b rejected (0.3), c without a kept value."""
    run = make_run(tmp_path, {"a": 0.9, "b": 0.3, "c": 0.8})
    q = run / "quality.csv"
    lines = q.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ","  # c: an empty 'kept' cell, as a hand-made table
    q.write_text("\n".join(lines) + "\n")
    summary = json.loads((run / "summary.json").read_text())
    summary["domain"] = {"category": "oil spill"}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.mark.parametrize("ext", ["gpkg", "shp"])
def test_polygons_carry_status_and_category(tmp_path: Path, ext: str) -> None:
    run = _run(tmp_path)
    out = tmp_path / f"weak.{ext}"
    export_labels(run, out, progress=False)
    g = pyogrio.read_dataframe(out, layer="labels" if ext == "gpkg" else None)
    want = {"a.tif": ("kept", 0.9), "b.tif": ("rejected", 0.3), "c.tif": ("", 0.8)}
    assert sorted(set(g["label"])) == sorted(want)
    for _, row in g.iterrows():
        status, q = want[row["label"]]
        # "" (unknown): a Shapefile's DBF reads an empty text back as null
        got = "" if ext == "shp" and not isinstance(row["status"], str) else row["status"]
        assert got == status, row["label"]
        assert row["quality"] == pytest.approx(q)
        assert row["category"] == "oil spill"
    # the COCO export names the same category
    export_labels(run, tmp_path / "weak.json", progress=False)
    coco = json.loads((tmp_path / "weak.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["oil spill"]


def test_polygons_without_a_quality_table_have_empty_status(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "quality.csv").unlink()
    export_labels(run / "labels", tmp_path / "w.gpkg", category="road", progress=False)
    g = pyogrio.read_dataframe(tmp_path / "w.gpkg", layer="labels")
    assert len(g) > 0 and set(g["status"].fillna("")) == {""}
    assert set(g["category"]) == {"road"}


def test_exported_layer_imports_back_with_category(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Export -> QGIS (a reviewer deletes b's polygons, the rejected ones) -> import --category."""
    import geopandas as gpd
    from shapely.geometry import box

    run = _run(tmp_path)
    gp = tmp_path / "weak.gpkg"
    export_labels(run, gp, progress=False)
    g = gpd.read_file(gp, layer="labels")
    assert set(g.loc[g["status"] == "rejected", "label"]) == {"b.tif"}
    g = g[g["status"] != "rejected"]  # the reviewer's verdict on the rejected label: no oil
    with rasterio.open(tmp_path / "images" / "a.tif") as d:
        x0, y0 = d.transform * (1, 1)
        x1, y1 = d.transform * (3, 3)
    drawn = gpd.GeoDataFrame(  # a polygon drawn in QGIS, category not filled in
        {"source": ["a.tif"]}, geometry=[box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))],
        crs=g.crs,
    )  # fmt: skip
    edited = gpd.GeoDataFrame(gpd.pd.concat([g, drawn], ignore_index=True), crs=g.crs)
    edited.to_file(gp, layer="labels", driver="GPKG")
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--category", "oil spill", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "1 feature without a category" in err
    for i, name in enumerate("abc"):
        with rasterio.open(tmp_path / "m" / f"{name}.tif") as d:
            got = d.read(1) == 255
        want = label_mask(40, 48, i) if name != "b" else np.zeros((40, 48), bool)
        if name == "a":
            want = want.copy()
            want[1:3, 1:3] = True
        assert np.array_equal(got, want), name
    # a category no feature has (a typo) would give all-background masks: one error line
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m2", "--category", "oil-spill", "--no-progress")  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "'oil spill'" in err
    assert not (tmp_path / "m2").exists()
    res = import_vector(gp, tmp_path / "m3", images=tmp_path / "images", progress=False)
    assert len(res.written) == 3  # without --category: every feature


def test_a_scene_label_named_apart_from_its_image_imports_without_a_skip_note(
    tmp_path: Path,
) -> None:
    """Polygons of a scene label (``label`` scene_roads.tif, ``source`` scene.tif) import onto
    scene.tif with no note that features were skipped: before, the label's name, which is no
    image, was reported as 'features of 1 images not in ... skipped: scene_roads' although every
    feature was imported."""
    import geopandas as gpd
    from rasterio.transform import from_origin
    from shapely.geometry import box

    (tmp_path / "images").mkdir()
    tr = from_origin(500000, 4000000, 10, 10)
    with rasterio.open(tmp_path / "images" / "scene.tif", "w", driver="GTiff", height=40,
                       width=48, count=1, dtype="uint8", crs="EPSG:32633", transform=tr) as d:  # fmt: skip
        d.write(np.full((1, 40, 48), 90, np.uint8))
    names = {"source": ["scene.tif", "scene.tif", "other.tif"],
             "label": ["scene_roads.tif", "scene_roads.tif", "other_roads.tif"]}  # fmt: skip
    # other.tif's polygon lies on scene.tif too (columns 35..39, rows 30..34): a source names
    # its image, so with other.tif not in --images it is skipped, not burnt into scene.tif
    polys = [box(500010, 3999900, 500050, 3999950), box(500200, 3999700, 500300, 3999800),
             box(500350, 3999650, 500400, 3999700)]  # fmt: skip
    gp = tmp_path / "edited.gpkg"
    gpd.GeoDataFrame(names, geometry=polys, crs="EPSG:32633").to_file(gp, layer="labels")
    res = import_vector(gp, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert [p.name for p in res.written] == ["scene.tif"]
    want = np.zeros((40, 48), bool)
    want[5:10, 1:5] = want[20:30, 20:30] = True  # scene.tif's two polygons only
    with rasterio.open(res.written[0]) as d:
        assert np.array_equal(d.read(1) == 255, want)
    skip_notes = [n for n in res.notes if "no image in" in n]
    # the third feature names other.tif, which is not there: it alone is reported, skipped
    assert len(skip_notes) == 1 and "other" in skip_notes[0] and "scene_roads" not in skip_notes[0]
    assert skip_notes[0].startswith("1 feature names no image in ")
    assert skip_notes[0].endswith("): skipped")
