"""`elnet export` of a GCP-only label (Sentinel-1 GRD): `--pixel-coords qgis` says why it does
not apply, and the per-polygon quality join with the scene's `<label>_tiles.gpkg` is right or
says what to re-run (an older `elnet scene` wrote a GCP-only scene's windows in pixel coordinates
without a CRS: they were read as map coordinates and gave a polygon another window's quality,
silently; `export --warp-to` never found the layer).

The scene: 64 x 96 px, GCPs on a known sheared map in EPSG:4326; a bright block fills exactly
the 32 x 32 window at row 0, column 64, so its one polygon lies in that window (as
tests/export/test_quality_gcps.py).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_gcp import TILE, WGS84, H, W, gcp_scene
from shapely.affinity import translate
from shapely.geometry import box

from sam2elnet.export.api import export_labels

os.environ.setdefault("SAM2ELNET_THREADS", "1")

LOG = "sam2elnet.export.tile_quality"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, gpd.GeoDataFrame]:
    """A GCP-only scene's label and its quality layer (EPSG:4326 windows)."""
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene

    d = tmp_path_factory.mktemp("grd")
    lab = d / "lab.tif"
    predict_scene(
        gcp_scene(d / "grd.tif"), lab, SmoothingPredictor(score=True), tile=TILE, overlap=0,
        progress=False, quality_gpkg=d / "lab_tiles.gpkg",
    )  # fmt: skip
    tiles = gpd.read_file(d / "lab_tiles.gpkg", layer="tiles")
    assert tiles.crs == WGS84 and len(tiles) == 6
    return lab, tiles


def _copy_label(lab: Path, to: Path) -> Path:
    to.mkdir()
    out = to / lab.name
    out.write_bytes(lab.read_bytes())
    return out


def _block_iou(tiles: gpd.GeoDataFrame) -> float:
    return float(tiles.predicted_iou[(tiles.row_off == 0) & (tiles.col_off == 2 * TILE)].iloc[0])


def _write_layer(path: Path, tiles: gpd.GeoDataFrame, geoms: list, crs) -> None:
    layer = gpd.GeoDataFrame(tiles.drop(columns="geometry"), geometry=geoms, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided"
        layer.to_file(path, layer="tiles", driver="GPKG")


def _pixel_boxes(tiles: gpd.GeoDataFrame, y_sign: int = 1) -> list:
    """The windows as an older elnet scene wrote them for a GCP-only scene: pixel boxes without
    a CRS (x = column, y = row; y = -row with --pixel-coords qgis)."""
    return [
        box(c, y_sign * r, c + TILE, y_sign * (r + TILE))
        for r, c in zip(tiles.row_off, tiles.col_off, strict=True)
    ]


def _quality(res) -> list[float]:
    return gpd.read_file(res.out, layer="labels")["quality"].tolist()


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG]


def test_pixel_coords_qgis_on_a_gcp_only_label_says_why_it_is_ignored(
    tmp_path: Path, run, capsys: pytest.CaptureFixture[str]
):
    from sam2elnet.cli import main

    lab, _ = run
    outs = {}
    for opt in ("gdal", "qgis"):
        out = tmp_path / f"{opt}.gpkg"
        rc = main(["export", "--labels", str(lab), "--out", str(out), "--pixel-coords", opt,
                   "--no-progress"])  # fmt: skip
        assert rc == 0
        outs[opt] = gpd.read_file(out, layer="labels")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "--pixel-coords qgis" in ln]
    assert lines == [
        "note: --pixel-coords qgis ignored: lab.tif has no CRS but is georeferenced by ground "
        "control points, so its polygons are in map coordinates (EPSG:4326), where QGIS shows "
        "the label; the option applies to labels without any georeference only"
    ], err
    # the polygons are the same map-coordinate polygons either way
    assert outs["qgis"].crs == WGS84
    assert outs["qgis"].geometry.iloc[0].equals_exact(outs["gdal"].geometry.iloc[0], 1e-12)


@pytest.mark.parametrize("y_sign", [1, -1], ids=["gdal", "qgis"])
def test_an_older_pixel_layer_joins_a_gcp_only_export(tmp_path: Path, run, caplog, y_sign):
    """The windows of an older layer (pixel boxes, no CRS) are placed through the label's GCPs
    as the windows are placed now: the block's polygon gets its own window's quality (before:
    the pixel box (0..32, 32..64) contains (28.0x, 42.9x), so it took window (32, 0)'s)."""
    lab, tiles = run
    f = _copy_label(lab, tmp_path / "old")
    _write_layer(f.with_name("lab_tiles.gpkg"), tiles, _pixel_boxes(tiles, y_sign), None)
    with caplog.at_level(logging.WARNING):
        res = export_labels(f, tmp_path / "poly.gpkg", progress=False)
    [q] = _quality(res)
    assert q == pytest.approx(_block_iou(tiles), abs=1e-9)
    assert _block_iou(tiles) != pytest.approx(tiles.predicted_iou.iloc[3], abs=1e-9)
    assert _warnings(caplog) == [_no_record(f.with_name("lab_tiles.gpkg"))]


def _no_record(layer: Path) -> str:
    return (
        f"{layer}: the per-tile quality layer records no scene (an older elnet scene wrote it), "
        "so nothing checks that it was made for lab.tif's scene; joined where it overlaps. "
        "Re-run elnet scene --quality-gpkg for that scene to record it"
    )


def test_export_warp_to_joins_the_scene_layer(tmp_path: Path, run, caplog):
    """export --warp-to polygonises a warped copy of the label: the layer goes with it and is
    reprojected to the warp CRS (before: not found, quality empty)."""
    lab, tiles = run
    with caplog.at_level(logging.WARNING):
        res = export_labels(lab, tmp_path / "poly.gpkg", progress=False, warp_to="utm")
    [q] = _quality(res)
    assert q == pytest.approx(_block_iou(tiles), abs=0.002)  # mostly its own window
    assert any("from <label>_tiles.gpkg" in n for n in res.notes)
    assert not _warnings(caplog)  # the layer records its scene: checked, nothing to say


@pytest.mark.parametrize("y_sign", [1, -1], ids=["gdal", "qgis"])
def test_export_warp_to_places_an_older_pixel_layer_on_the_warped_grid(
    tmp_path: Path, run, caplog, y_sign
):
    """An older layer's pixel boxes go through the GCP transformer the label is warped with, as
    scene --warp-to places windows now: the block's polygon gets its window's quality as with
    the scene's own layer (before: a warning, and no quality)."""
    lab, tiles = run
    f = _copy_label(lab, tmp_path / "old")
    layer = f.with_name("lab_tiles.gpkg")
    _write_layer(layer, tiles, _pixel_boxes(tiles, y_sign), None)
    with caplog.at_level(logging.WARNING):
        res = export_labels(f, tmp_path / "poly.gpkg", progress=False, warp_to="utm")
    [q] = _quality(res)
    assert q == pytest.approx(_block_iou(tiles), abs=0.002)
    assert _warnings(caplog) == [_no_record(layer)]  # named as given, not the warped copy


def test_a_layer_off_the_label_warns_and_is_not_joined(tmp_path: Path, run, caplog):
    """Another scene's layer (here: the windows moved 1 degree east) is not used."""
    lab, tiles = run
    f = _copy_label(lab, tmp_path / "other")
    layer = f.with_name("lab_tiles.gpkg")
    _write_layer(layer, tiles, [translate(g, 1.0) for g in tiles.geometry], WGS84)
    with caplog.at_level(logging.WARNING):
        res = export_labels(f, tmp_path / "poly.gpkg", progress=False)
    assert np.isnan(_quality(res)[0])
    assert _warnings(caplog) == [
        f"{layer}: the per-tile quality layer does not overlap lab.tif (another scene's, or "
        "written in another frame): quality not joined; re-run elnet scene --quality-gpkg for "
        "lab.tif's scene to rebuild it"
    ]


def test_a_layer_with_a_crs_next_to_a_label_without_one_warns(tmp_path: Path, caplog):
    (tmp_path / "l").mkdir()
    f = tmp_path / "l" / "lab.png"
    a = np.zeros((H, W), np.uint8)
    a[0:TILE, 0:TILE] = 255
    import cv2

    cv2.imwrite(str(f), a)
    layer = f.with_name("lab_tiles.gpkg")
    tiles = gpd.GeoDataFrame(
        {"row_off": [0], "col_off": [0], "predicted_iou": [0.9]},
        geometry=[box(28.0, 42.97, 28.03, 43.0)],
        crs=WGS84,
    )
    tiles.to_file(layer, layer="tiles", driver="GPKG")
    with caplog.at_level(logging.WARNING):
        res = export_labels(f, tmp_path / "poly.gpkg", progress=False)
    assert np.isnan(_quality(res)[0])
    assert _warnings(caplog) == [
        f"{layer}: the per-tile quality layer is in EPSG:4326 but lab.png has no CRS: quality "
        "not joined; re-run elnet scene --quality-gpkg for lab.png's scene to rebuild it"
    ]
