"""A road export's GeoPackage after the reviewer rewrote its ``labels`` layer (new-user pass, roads).

A road export holds two layers, ``labels`` (polygons) and ``centre_lines``. A reviewer who edits
the polygons with geopandas (``to_file(gpkg, layer="labels")``) or ``ogr2ogr -update
-overwrite`` gets the rewritten ``labels`` layer *after* ``centre_lines``. The import, which read
the first layer, then read the centre lines: every image came back as 1 px lines (a note per
image), ``--reviewed-only`` took every image for edited, and `elnet train` was given line masks,
exit code 0. ``elnet enhance --labels`` and ``elnet evaluate --truth`` read such a file the same
way. Now the ``labels`` layer is read whatever its place (``data.vector_layers.default_layer``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
from helpers_logs import run_main
from helpers_logs import run_main_err as _cli
from review_helpers import make_run
from shapely.geometry import LineString, box

from sam2elnet.data.vector import read_vector
from sam2elnet.export.api import export_labels


def _rewrite_labels_layer(gp: Path) -> None:
    """The reviewer's edit as geopandas makes it: a's polygons moved 1 px (10 m) east."""
    from shapely import affinity

    g = gpd.read_file(gp, layer="labels")
    a = g["source"] == "a.tif"
    g.loc[a, "geometry"] = g.loc[a, "geometry"].apply(lambda p: affinity.translate(p, 10.0, 0))
    g.to_file(gp, layer="labels", driver="GPKG")


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def test_rewritten_labels_layer_after_centre_lines_is_still_the_one_imported(
    tmp_path: Path, capsys
):
    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gp = tmp_path / "roads.gpkg"
    export_labels(run, gp, category="road", progress=False)
    _rewrite_labels_layer(gp)
    spatial = [str(n) for n, geom in pyogrio.list_layers(gp) if geom is not None]
    assert spatial[0] == "centre_lines", spatial  # the situation of the bug

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "burnt 1 px wide" not in err, err
    # b was not edited: left out; a is its moved polygons, not 1 px centre lines
    assert sorted(p.name for p in (tmp_path / "m").glob("*.tif")) == ["a.tif"], err
    lab = _fg(run / "labels" / "a.tif")
    moved = np.zeros_like(lab)
    moved[:, 1:] = lab[:, :-1]
    assert (_fg(tmp_path / "m" / "a.tif") == moved).all()


def test_several_layers_without_labels_read_the_first_and_say_so(tmp_path: Path, caplog):
    gp = tmp_path / "osm.gpkg"
    crs = "EPSG:32633"
    gpd.GeoDataFrame(geometry=[LineString([(0, 0), (10, 0)])], crs=crs).to_file(gp, layer="roads")
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=crs).to_file(gp, layer="buildings")
    with caplog.at_level(logging.WARNING):
        g = read_vector(gp)
    assert g.geometry.iloc[0].geom_type == "LineString"
    assert "2 layers (roads, buildings): reading the first, 'roads'" in caplog.text
    # a named layer is read without a word; a one-layer file too
    caplog.clear()
    assert read_vector(gp, layer="buildings").geometry.iloc[0].geom_type == "Polygon"
    one = tmp_path / "one.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=crs).to_file(one, layer="mine")
    assert len(read_vector(one)) == 1
    assert "layers" not in caplog.text


def test_a_point_layer_saved_first_is_not_read_as_the_labels(tmp_path: Path, caplog):
    """QGIS "Save As" of edited polygons into a file that already holds a point layer of the
    reviewer's notes (first in the file): the polygon layer is read, and the warning names it
    (before: the points were read, and the import said no feature belongs to any image)."""
    from shapely.geometry import MultiPolygon, Point

    gp = tmp_path / "qgis.gpkg"
    crs = "EPSG:3857"
    gpd.GeoDataFrame({"txt": ["look"]}, geometry=[Point(1, 1)], crs=crs).to_file(gp, layer="notes")
    edited = gpd.GeoDataFrame(
        {"source": ["a.tif"], "fid_note": [7]}, geometry=[MultiPolygon([box(0, 0, 5, 5)])], crs=crs
    )
    edited.to_file(gp, layer="edited")
    with caplog.at_level(logging.WARNING):
        g = read_vector(gp)
    assert list(g["source"]) == ["a.tif"] and g.geometry.iloc[0].geom_type == "MultiPolygon"
    assert "2 layers (notes, edited): reading the first polygon / line layer, 'edited'" in (
        caplog.text
    )


def test_import_of_road_lines_takes_a_line_width_and_notes_once_per_layer(tmp_path: Path, capsys):
    """A reviewer draws missing roads as lines in QGIS (new-user trial, roads): the note asked
    for --line-width, which `elnet import` did not have (``No such option``), once per image."""
    from helpers_data import write_tif

    images = tmp_path / "images"
    for i, name in enumerate(("a", "b", "c")):  # side by side, 40 x 40 px of 10 m
        write_tif(images / f"{name}.tif", np.full((3, 40, 40), 90, np.uint8), x0=500000 + i * 400)
    y = 4000000 - 200.0  # the edge of rows 19 and 20
    lines = [LineString([(500000 + i * 400, y), (500000 + i * 400 + 400, y)]) for i in range(3)]
    gp = tmp_path / "lines.gpkg"
    gpd.GeoDataFrame({"source": ["a.tif", "b.tif", "c.tif"]}, geometry=lines,
                     crs="EPSG:32633").to_file(gp, layer="roads")  # fmt: skip

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "thin", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert err.count("line features burnt 1 px wide") == 1, err
    assert "3 line features burnt 1 px wide" in err and "--line-width" in err, err
    assert _fg(tmp_path / "thin" / "a.tif").sum(axis=0).max() == 1

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "wide", "--line-width", "60", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "burnt 1 px wide" not in err, err
    for name in ("a", "b", "c"):  # 60 m = 6 px of 10 m, along the whole image
        fg = _fg(tmp_path / "wide" / f"{name}.tif")
        assert (fg.sum(axis=0) == 6).all(), fg.sum(axis=0)
    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images, "--out",
                   tmp_path / "px", "--line-width", "4", "--line-width-px", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert (_fg(tmp_path / "px" / "a.tif").sum(axis=0) == 4).all()
    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "bad", "--line-width", "-1")  # fmt: skip
    assert rc == 2 and "--line-width" in err and "Traceback" not in err, err
    assert not (tmp_path / "bad").exists()


def test_import_next_line_names_the_model_the_export_recorded(tmp_path: Path, capsys):
    """`elnet import`'s `next:` line said `--init-model MODEL.pt` although the export knew the
    run's model (new-user trial, roads); a model file gone since: MODEL.pt again."""
    import json

    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gp = tmp_path / "roads.gpkg"
    export_labels(run, gp, category="road", progress=False)
    record = json.loads((tmp_path / "roads_review.json").read_text())
    assert record["model"] == str((tmp_path / "model.pt").absolute())
    assert record["model_version"].startswith("model.pt@")
    data = tmp_path / "data"
    rc, out, err = run_main(capsys, "import", gp, "--from", "vector", "--images",
                            tmp_path / "images", "--out", data / "masks", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert f"--init-model {tmp_path / 'model.pt'}" in out, out
    assert "MODEL.pt" not in out, out
    (tmp_path / "model.pt").unlink()
    rc, out, err = run_main(capsys, "import", gp, "--from", "vector", "--images",
                            tmp_path / "images", "--out", data / "masks", "--no-progress")  # fmt: skip
    assert rc == 0 and "--init-model MODEL.pt" in out, out + err


def test_review_record_of_a_scene_label_names_its_model(tmp_path: Path, capsys):
    """An `elnet scene` label has no run folder, only its MODEL tag: the export's review record
    named no model and `elnet import`'s `next:` line said `--init-model MODEL.pt` (new-user
    trial, a UTM road scene)."""
    import json

    from helpers_data import write_tif

    model = tmp_path / "runs" / "model.pt"
    model.parent.mkdir()
    model.write_bytes(b"not read here")
    images = tmp_path / "images"
    images.mkdir()
    img = np.full((32, 40), 90, np.uint8)
    write_tif(images / "scene.tif", img[None])
    lab = np.zeros((32, 40), np.uint8)
    lab[8:20, 5:30] = 255
    label = tmp_path / "scene_roads.tif"
    write_tif(label, lab[None])
    with rasterio.open(label, "r+") as ds:
        ds.update_tags(MODEL=str(model), MODEL_VERSION="model.pt@12345678", SOURCE="scene.tif")
    gp = tmp_path / "roads.gpkg"
    export_labels(label, gp, progress=False)
    record = json.loads((tmp_path / "roads_review.json").read_text())
    assert record["model"] == str(model.absolute())
    rc, out, err = run_main(capsys, "import", gp, "--from", "vector", "--images", images,
                            "--out", tmp_path / "data" / "masks", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert f"--init-model {model}" in out and "MODEL.pt" not in out, out


def test_import_reads_the_layer_named_with_layer_and_refuses_a_missing_one(
    tmp_path: Path, capsys, caplog
):
    """New-user GIS trial: `elnet import` had no --layer (the library had), and the warning about
    several layers told users to rewrite the file; now --layer picks one, a name the file
    lacks is one error line listing the layers, and the warning mentions --layer."""
    from helpers_data import write_tif

    images = tmp_path / "images"
    write_tif(images / "a.tif", np.full((3, 40, 40), 90, np.uint8))  # 10 m px from 500000
    gp = tmp_path / "two.gpkg"
    crs = "EPSG:32633"
    left = box(500000, 4000000 - 400, 500000 + 100, 4000000)  # 10 px wide
    right = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000)  # 20 px wide
    gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[left], crs=crs).to_file(gp, layer="old")
    gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[right], crs=crs).to_file(gp, layer="new")

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "first", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "reading the first polygon / line layer" not in err and "'old'" in err, err
    assert "--layer NAME" in err, err
    assert _fg(tmp_path / "first" / "a.tif")[0].sum() == 10
    # the same warning for elnet enhance --labels / evaluate --truth: the hint names the
    # option of each command (it sent every command to `elnet import --layer NAME`)
    from sam2elnet.data.vector_layers import default_layer

    with caplog.at_level("WARNING"):
        assert default_layer(gp) == "old"
    said = [r.getMessage() for r in caplog.records if "2 layers" in r.getMessage()]
    assert said == [
        f"{gp}: 2 layers (old, new): reading the first, 'old'; to read another, rename it to "
        "'labels' or keep only that layer in the file (QGIS: Export > Save Features As), or "
        "name it: elnet import / enhance / scene --layer NAME, elnet evaluate --truth-layer NAME"
    ], said

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "new", "--layer", "new", "--no-progress")  # fmt: skip
    assert rc == 0, err
    fg = _fg(tmp_path / "new" / "a.tif")
    assert fg[0].sum() == 20 and not fg[:, :20].any()

    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "bad", "--layer", "newer", "--no-progress")  # fmt: skip
    assert rc == 2 and "Traceback" not in err, err
    assert err.startswith("error:") and str(gp) in err, err
    assert "no layer 'newer'; its layers: old, new" in err, err
    assert not (tmp_path / "bad").exists()

    rc, err = _cli(capsys, "import", tmp_path / "x.json", "--from", "coco", "--out",
                   tmp_path / "c", "--layer", "new")  # fmt: skip
    assert rc == 2 and "--layer applies to --from vector" in err, err


def test_a_layer_drawn_into_the_export_file_is_not_read_and_the_import_says_so(
    tmp_path: Path, capsys
):
    """A reviewer drew a missing road as a line in a layer of its own (docs/roads.md: 'in a
    layer (or file) of their own') inside the export's roads.gpkg: the import read the labels
    layer and left the new layer out without a word (its image even came back 'unchanged').
    Now one warning names the layers not read and how to read one; the labels layer is still
    the one imported, and the export's own two layers give no such warning."""
    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gp = tmp_path / "roads.gpkg"
    export_labels(run, gp, category="road", progress=False)
    args = ("import", gp, "--from", "vector", "--images", tmp_path / "images", "--no-progress")
    rc, err = _cli(capsys, *args, "--out", tmp_path / "m0")
    assert rc == 0 and "not read" not in err, err
    crs = gpd.read_file(gp, layer="labels").crs
    road = LineString([(0, -5), (100, -5)])
    gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[road], crs=crs).to_file(
        gp, layer="missing_roads"
    )
    rc, err = _cli(capsys, *args, "--out", tmp_path / "m1")
    assert rc == 0, err
    said = " ".join(err.split())
    assert (
        f"{gp}: reading layer 'labels'; 1 other layer not read: missing_roads; to read it, name "
        "it: elnet import / enhance / scene --layer NAME"
    ) in said, said
    for name in ("a.tif", "b.tif"):  # the labels layer, as before
        assert (_fg(tmp_path / "m1" / name) == _fg(tmp_path / "m0" / name)).all()


def test_a_line_layer_of_the_export_file_gives_masks_only_where_its_lines_are(
    tmp_path: Path, capsys
):
    """The reviewer's missing road, drawn as a line in a layer 'missing_roads' of the export's
    roads.gpkg, imported with --layer missing_roads --line-width: the export's record (of the
    labels layer) listed every image, so each image without a line got an all-background mask
    (7 of 8 in the trial, even with --reviewed-only): training on them teaches roads as
    background. The record describes the labels layer only: another layer now gives masks for
    the images its features name, as a file of lines without a record does, and a note says
    why; --review-set FILE still applies a record on purpose."""
    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gp = tmp_path / "roads.gpkg"
    export_labels(run, gp, category="road", progress=False)
    with rasterio.open(tmp_path / "images" / "a.tif") as d:
        x0, y0, px = d.transform.c, d.transform.f, d.transform.a
    road = LineString([(x0, y0 - 10.5 * px), (x0 + 48 * px, y0 - 10.5 * px)])  # along row 10
    gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[road], crs=d.crs).to_file(
        gp, layer="missing_roads"
    )
    args = ("import", gp, "--from", "vector", "--images", tmp_path / "images", "--no-progress",
            "--layer", "missing_roads", "--line-width", "3", "--line-width-px")  # fmt: skip
    for extra in ((), ("--reviewed-only",)):
        out = tmp_path / f"m{len(extra)}"
        rc, err = _cli(capsys, *args, "--out", out, *extra)
        assert rc == 0, err
        assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif"], err
        assert np.flatnonzero(_fg(out / "a.tif").any(axis=1)).tolist() == [9, 10, 11]
        said = " ".join(err.split())
        assert "roads_review.json is the record of the layer 'labels', not of 'missing_roads'" in (
            said
        ), said
    rc, err = _cli(capsys, *args, "--out", tmp_path / "rs", "--review-set",
                   tmp_path / "roads_review.json")  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "rs").glob("*.tif")) == ["a.tif", "b.tif"]


def test_a_width_attribute_of_road_lines_is_said_unread(tmp_path: Path, capsys, caplog) -> None:
    """Road centre lines from QGIS / OpenStreetMap often carry a width attribute; read without
    --line-width they burn 1 px wide, and the note asked for a width without saying that the
    layer's own 'width' was not used (a road user trial: 'width' = 10 m on every line, masks
    1 px wide). Now the note names the attribute; the same note comes from enhance's reader."""
    from helpers_data import write_tif

    from sam2elnet.data.vector_kinds import no_width_notes

    images = tmp_path / "images"
    write_tif(images / "a.tif", np.full((3, 40, 40), 90, np.uint8))
    line = LineString([(500000, 4000000 - 195.0), (500400, 4000000 - 195.0)])
    gp = tmp_path / "lines.gpkg"
    gpd.GeoDataFrame({"source": ["a.tif"], "Width": [10.0]}, geometry=[line],
                     crs="EPSG:32633").to_file(gp)  # fmt: skip
    rc, err = _cli(capsys, "import", gp, "--from", "vector", "--images", images,
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    said = " ".join(err.split())
    assert (
        "1 line feature burnt 1 px wide; give a line width (--line-width, map units or px) to "
        "buffer roads to their real width; the layer's attribute 'Width' is not read (one width "
        "for all lines)"
    ) in said, said
    kinds = np.array([1])
    assert "is not read" not in no_width_notes(gp, kinds, ["source", "lanes"])[0][0]
    assert "'road_width' is not read" in no_width_notes(gp, kinds, ["road_width"])[0][0]
