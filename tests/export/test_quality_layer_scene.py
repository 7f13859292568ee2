"""`elnet export`'s per-polygon quality join refuses a `<label>_tiles.gpkg` made for another
scene: the layer records its scene (`sam2elnet.data.scene_record`), and a layer recorded for
another image, or for a scene the label does not lie in, is one `error:` line naming the layer,
the label and the recorded scene, exit 2, nothing written. Before, only a layer that did not
overlap the label at all was caught; one that partly overlapped (another scene in the same CRS)
joined and gave the polygons another scene's window scores, silently.

The scenes: the GCP-only scene of helpers_gcp (64 x 96 px, EPSG:4326 GCPs), and the same scene
with its GCPs moved half its width east (a neighbouring scene overlapping it by half).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from helpers_gcp import TILE, H, W, gcp_scene, lonlat
from rasterio.control import GroundControlPoint

from sam2elnet.cli import main
from sam2elnet.data.scene_record import SceneRecord, read_scene_record
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene

os.environ.setdefault("SAM2ELNET_THREADS", "1")

SHIFT = 0.001 * W / 2
"""Degrees east the neighbouring scene lies: half the scene's width."""


def _scene(d: Path, shift: float = 0.0) -> Path:
    """Predict the GCP-only scene (its GCPs moved ``shift`` degrees east) into ``d``: ``d/lab.tif``
    and its ``d/lab_tiles.gpkg``; the scene file is ``grd.tif`` either way."""
    d.mkdir()
    src = gcp_scene(d / "grd.tif")
    if shift:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(src, "r+") as ds:
                gcps, crs = ds.gcps
                ds.gcps = ([GroundControlPoint(g.row, g.col, g.x + shift, g.y) for g in gcps], crs)
    predict_scene(
        src, d / "lab.tif", SmoothingPredictor(score=True), tile=TILE, overlap=0, progress=False,
        quality_gpkg=d / "lab_tiles.gpkg",
    )  # fmt: skip
    return d / "lab.tif"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("scenes")
    return _scene(d / "a"), _scene(d / "b", SHIFT)


def test_the_layer_records_its_scene(scenes):
    a, _ = scenes
    rec = read_scene_record(a.with_name("lab_tiles.gpkg"))
    assert (rec.scene, rec.label) == ("grd.tif", "lab.tif")
    corners = [lonlat(r, c) for r in (0, H) for c in (0, W)]  # the GCPs are affine: exact
    xs, ys = zip(*corners, strict=True)
    assert rec.footprint.bounds == pytest.approx((min(xs), min(ys), max(xs), max(ys)), abs=1e-12)


def _label_with_layer(tmp_path: Path, label: Path, layer: Path, scene: str | None = None) -> Path:
    """A copy of ``label`` with ``layer`` next to it (its record's scene renamed to ``scene``)."""
    d = tmp_path / "labels"
    d.mkdir()
    shutil.copyfile(label, d / "lab.tif")
    if scene is None:
        shutil.copyfile(layer, d / "lab_tiles.gpkg")
    else:
        rec = read_scene_record(layer)
        tiles = gpd.read_file(layer, layer="tiles")
        renamed = SceneRecord(scene, "other_lab.tif", rec.footprint)
        tiles.to_file(d / "lab_tiles.gpkg", layer="tiles", layer_metadata=renamed.metadata())
    return d / "lab.tif"


@pytest.mark.parametrize("warp_to", [None, "utm"])
@pytest.mark.parametrize("case", ["other image", "neighbouring scene"])
def test_a_layer_made_for_another_scene_is_refused(
    tmp_path: Path, scenes, capsys: pytest.CaptureFixture[str], case: str, warp_to: str | None
):
    a, b = scenes
    if case == "other image":  # same place, the record names another image
        lab = _label_with_layer(tmp_path, a, a.with_name("lab_tiles.gpkg"), scene="S1B_other.tif")
        why = (
            "this per-window quality layer was made for the scene S1B_other.tif (label "
            "other_lab.tif), but lab.tif is the label of grd.tif: its windows would give lab.tif's "
            "polygons another scene's quality; nothing written. Move the layer away or delete it, "
            "or re-run elnet scene --quality-gpkg for grd.tif"
        )
    else:  # same names, half of it over the label: joined silently before
        lab = _label_with_layer(tmp_path, a, b.with_name("lab_tiles.gpkg"))
        why = (
            "this per-window quality layer was made for the scene grd.tif (label lab.tif), but "
            "lab.tif reaches 51 px beyond that scene's footprint (another scene's layer, or a "
            "label of another extent): its windows would give lab.tif's polygons wrong quality; "
            "nothing written. Move the layer away or delete it, or re-run elnet scene "
            "--quality-gpkg for lab.tif's scene"
        )
    out = tmp_path / "out" / "poly.gpkg"
    out.parent.mkdir()
    args = ["export", "--labels", str(lab.parent), "--out", str(out), "--no-progress"]
    rc = main(args + (["--warp-to", warp_to] if warp_to else []))
    err = capsys.readouterr().err
    assert rc == 2, err
    # the layer as given, not a --warp-to copy
    assert err.strip().splitlines() == [f"error: {lab.with_name('lab_tiles.gpkg')}: {why}"]
    assert list(out.parent.iterdir()) == []  # no layer, no skipped list, no review set


def test_the_scenes_own_layer_and_a_crop_of_its_label_join(tmp_path: Path, scenes, caplog):
    """The check passes the label its layer was made for, and a crop of a scene label with a
    CRS (its windows are where its polygons are)."""
    import logging

    import numpy as np
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from sam2elnet.export.api import export_labels

    a, _ = scenes
    with caplog.at_level(logging.WARNING):
        res = export_labels(a, tmp_path / "a.gpkg", progress=False)
    assert gpd.read_file(res.out, layer="labels")["quality"].notna().all()
    # a scene with a CRS, its label cropped to its right half (SOURCE tag kept)
    d = tmp_path / "crs"
    d.mkdir()
    img = np.full((1, H, W), 20, np.uint8)
    img[:, 0:TILE, 2 * TILE : 3 * TILE] = 220
    prof = dict(driver="GTiff", height=H, width=W, count=1, dtype="uint8", crs="EPSG:32635",
                transform=from_origin(500_000, 4_700_000, 10, 10))  # fmt: skip
    with rasterio.open(d / "s.tif", "w", **prof) as ds:
        ds.write(img)
    predict_scene(d / "s.tif", d / "full.tif", SmoothingPredictor(score=True), tile=TILE,
                  overlap=0, progress=False, quality_gpkg=d / "crop_tiles.gpkg")  # fmt: skip
    with rasterio.open(d / "full.tif") as src:
        win = Window(W // 2, 0, W // 2, H)
        p = src.profile | {"width": W // 2, "transform": src.window_transform(win)}
        with rasterio.open(d / "crop.tif", "w", **p) as dst:
            dst.write(src.read(window=win))
            dst.update_tags(**src.tags())
    with caplog.at_level(logging.WARNING):
        res = export_labels(d / "crop.tif", tmp_path / "crop.gpkg", progress=False)
    [q] = gpd.read_file(res.out, layer="labels")["quality"]
    want = gpd.read_file(d / "crop_tiles.gpkg", layer="tiles")
    assert q == pytest.approx(
        want.predicted_iou[(want.row_off == 0) & (want.col_off == 2 * TILE)].iloc[0], abs=1e-9
    )
    assert not [r for r in caplog.records if r.name == "sam2elnet.export.tile_quality"]


def test_an_unreadable_layer_warns_once_and_is_not_joined(tmp_path: Path, scenes, caplog):
    import logging

    import numpy as np

    from sam2elnet.export.api import export_labels

    a, _ = scenes
    d = tmp_path / "labels"
    d.mkdir()
    shutil.copyfile(a, d / "lab.tif")
    (d / "lab_tiles.gpkg").write_bytes(b"not a geopackage")
    with caplog.at_level(logging.WARNING):
        res = export_labels(d / "lab.tif", tmp_path / "poly.gpkg", progress=False)
    assert np.isnan(gpd.read_file(res.out, layer="labels")["quality"]).all()
    got = [r.getMessage() for r in caplog.records if r.name == "sam2elnet.export.tile_quality"]
    assert got == [f"{d / 'lab_tiles.gpkg'}: unreadable per-tile quality layer; ignored"]


def test_write_polygons_called_directly_warns_about_a_layer_it_cannot_join(
    tmp_path: Path, scenes, caplog
):
    """``write_polygons`` is public: called without ``export_labels``' check it still warns about
    a layer it ignores (only ``layers_checked=True``, export_labels' own call, is quiet)."""
    import logging

    from sam2elnet.export.vector import write_polygons

    a, _ = scenes
    d = tmp_path / "labels"
    d.mkdir()
    shutil.copyfile(a, d / "lab.tif")
    (d / "lab_tiles.gpkg").write_bytes(b"not a geopackage")
    for checked, want in ((False, 1), (True, 0)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            write_polygons(
                [d / "lab.tif"], tmp_path / f"p{checked}.gpkg", "gpkg", quality={},
                progress=False, notes=[], layers_checked=checked,
            )  # fmt: skip
        got = [r for r in caplog.records if r.name == "sam2elnet.export.tile_quality"]
        assert len(got) == want, checked


def test_a_layer_in_a_crs_that_cannot_be_transformed_warns_instead_of_a_traceback(
    tmp_path: Path, scenes, caplog
):
    """A layer whose CRS pyproj cannot transform to the label's (an engineering CRS): the export
    warns that the layer cannot be placed and writes the polygons without its quality (was a
    pyproj traceback from the scene check)."""
    import logging

    import numpy as np

    from sam2elnet.export.api import export_labels

    a, _ = scenes
    d = tmp_path / "labels"
    d.mkdir()
    shutil.copyfile(a, d / "lab.tif")
    tiles = gpd.read_file(a.with_name("lab_tiles.gpkg"), layer="tiles")
    engineering = 'ENGCRS["site grid",EDATUM["site"],CS[Cartesian,2],AXIS["x",east,LENGTHUNIT["metre",1]],AXIS["y",north,LENGTHUNIT["metre",1]]]'
    tiles = tiles.set_crs(engineering, allow_override=True)
    tiles.to_file(d / "lab_tiles.gpkg", layer="tiles")
    with caplog.at_level(logging.WARNING):
        res = export_labels(d / "lab.tif", tmp_path / "poly.gpkg", progress=False)
    assert np.isnan(gpd.read_file(res.out, layer="labels")["quality"]).all()
    got = [r.getMessage() for r in caplog.records if r.name == "sam2elnet.export.tile_quality"]
    assert len(got) == 1 and "cannot be placed on lab.tif" in got[0], got


@pytest.mark.parametrize("warp_to", [None, "utm"])
@pytest.mark.parametrize("layer", ["another scene's", "unreadable"])
def test_a_label_scored_in_quality_csv_leaves_its_layer_alone(
    tmp_path: Path, scenes, capsys: pytest.CaptureFixture[str], caplog, layer: str, warp_to
):
    """A label with a quality.csv score takes its quality from the table, never from its
    per-window layer, so the layer is not read: before, the export read it anyway and refused
    the export for a layer made for another scene (exit 2) or warned that an unreadable one was
    ignored, although neither would have been joined."""
    import logging

    a, _ = scenes
    if layer == "unreadable":
        lab = _label_with_layer(tmp_path, a, a.with_name("lab_tiles.gpkg"))
        lab.with_name("lab_tiles.gpkg").write_bytes(b"not a geopackage")
    else:
        lab = _label_with_layer(tmp_path, a, a.with_name("lab_tiles.gpkg"), scene="S1B_other.tif")
    (lab.parent / "quality.csv").write_text("image,predicted_iou\nlab.tif,0.42\n")
    out = tmp_path / "out" / "poly.gpkg"
    out.parent.mkdir()
    args = ["export", "--labels", str(lab.parent), "--out", str(out), "--no-progress"]
    with caplog.at_level(logging.WARNING):
        rc = main(args + (["--warp-to", warp_to] if warp_to else []))
    assert rc == 0, capsys.readouterr().err
    q = gpd.read_file(out, layer="labels")["quality"]
    assert len(q) and q.tolist() == pytest.approx([0.42] * len(q))
    assert not [r for r in caplog.records if r.name == "sam2elnet.export.tile_quality"]
