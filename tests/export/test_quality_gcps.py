"""`elnet scene --quality-gpkg` on a GCP-only scene (Sentinel-1 GRD): the window layer is in the
coordinates and CRS of the label's polygon export (`elnet export`), so the two line up in a GIS
and the export's per-polygon quality join finds the windows. It was in pixel coordinates without
a CRS while the export wrote map coordinates.

The scene's GCPs follow a known sheared map in EPSG:4326 (as tests/engine/test_warp.py); a
bright block fills exactly one 32 x 32 window, so its exported polygon must cover that window's
footprint.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from helpers_gcp import TILE, WGS84, gcp_scene, lonlat
from rasterio.crs import CRS

from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene
from sam2elnet.engine.scene_writer import windows_geo
from sam2elnet.export.api import export_labels

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


@pytest.mark.parametrize("warp_to", [None, "utm"])
def test_quality_layer_lines_up_with_the_polygon_export(tmp_path: Path, warp_to: str | None):
    src = gcp_scene(tmp_path / "grd.tif")
    lab = tmp_path / "lab.tif"
    predict_scene(
        src, lab, SmoothingPredictor(score=True), tile=TILE, overlap=0, progress=False,
        quality_gpkg=tmp_path / "lab_tiles.gpkg", warp_to=warp_to,
    )  # fmt: skip
    tiles = gpd.read_file(tmp_path / "lab_tiles.gpkg", layer="tiles")
    res = export_labels(lab, tmp_path / "poly.gpkg", progress=False)
    poly = gpd.read_file(res.out, layer="labels")
    want = WGS84 if warp_to is None else CRS.from_epsg(32635)
    assert tiles.crs == want and poly.crs == want
    assert len(tiles) == 6 and len(poly) == 1
    window = tiles[(tiles.row_off == 0) & (tiles.col_off == 2 * TILE)].geometry.iloc[0]
    [g] = poly.geometry
    assert _iou(g, window) > 0.9, _iou(g, window)  # the block's polygon is its window
    # the layers tile the label's footprint: the windows' union is the polygons' frame
    scene = tiles.geometry.union_all()
    assert g.difference(scene).area < 0.02 * g.area
    # the export's per-polygon quality join finds the window under the polygon
    assert poly["quality"].iloc[0] == pytest.approx(
        tiles.predicted_iou[(tiles.row_off == 0) & (tiles.col_off == 2 * TILE)].iloc[0], abs=0.05
    )


def test_gcp_only_footprints_use_the_affine_fit_of_the_export(tmp_path: Path):
    """One pixel -> map mapping for a GCP-only scene's geometries (data.grids.GcpGrid.affine): the
    window corners land on the GCPs' map positions (the GCPs here are affine, so exactly)."""
    src = gcp_scene(tmp_path / "grd.tif")
    with rasterio.open(src) as ds:
        fp = windows_geo(ds)
        assert fp.crs == WGS84
        poly = fp(0, 32, 32, 64)  # rows 0..32, columns 32..96
    corners = {(round(x, 9), round(y, 9)) for x, y in poly.exterior.coords}
    want = {tuple(round(v, 9) for v in lonlat(r, c)) for r in (0, 32) for c in (32, 96)}
    assert corners == want
