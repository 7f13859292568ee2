"""Rasters without georeference (PNG / JPEG / plain TIFF): polygons drawn in QGIS over them
(x = column, y = -row, sam2elnet.data.georef.PIXEL_GRID) are read in place, and so are pixel
coordinates with y = row; exports and tile footprints stay in pixel coordinates x = column,
y = row (the case catalogue's C07 contract), and read back onto the same pixels.

QGIS's GDAL provider gives a raster without geotransform the transform (0, 1, 0, 0, 0, -1).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import box

from sam2elnet.cli import main
from sam2elnet.data.georef import PIXEL_GRID, plain_grid_transform
from sam2elnet.data.vector import VectorLabels, rasterize_vector
from sam2elnet.engine.scene_writer import windows_geo
from sam2elnet.export.api import export_labels

# QGIS's GDAL geotransform (0, 1, 0, 0, 0, -1) for a raster without one, in affine's order
QGIS = Affine(1, 0, 0, 0, -1, 0)
H, W = 40, 60


def _label() -> np.ndarray:
    """An asymmetric label: a 10x20 block near the top right, a 5x5 block bottom left."""
    m = np.zeros((H, W), np.uint8)
    m[2:12, 35:55] = 255
    m[30:35, 3:8] = 255
    return m


def test_pixel_grid_is_qgis_placement():
    assert tuple(QGIS)[:6] == PIXEL_GRID
    assert plain_grid_transform(Affine.identity()) == QGIS  # rasterio's "no geotransform"
    own = from_origin(100, 50, 2, 2)
    assert plain_grid_transform(own) == own  # a real geotransform without CRS is used


def test_png_label_exports_in_pixel_coordinates(tmp_path: Path):
    (tmp_path / "labels").mkdir()
    Image.fromarray(_label()).save(tmp_path / "labels" / "a.png")
    res = export_labels(tmp_path / "labels", tmp_path / "a.gpkg", progress=False)
    g = gpd.read_file(res.out, layer="labels")
    assert g.crs is None and any("y = row" in n and "y = -row" in n for n in res.notes)
    assert sorted(tuple(b) for b in g.geometry.bounds.to_numpy()) == [
        (3.0, 30.0, 8.0, 35.0),
        (35.0, 2.0, 55.0, 12.0),
    ]
    # rasterised in pixel coordinates, the polygons are the label, pixel for pixel
    burnt = features.rasterize(list(g.geometry), out_shape=(H, W), transform=Affine.identity())
    assert np.array_equal(burnt > 0, _label() > 0)
    assert sorted(g["area_px"]) == [25.0, 200.0]


def test_polygons_drawn_in_qgis_over_a_png_are_rasterised_in_place(tmp_path: Path):
    img = tmp_path / "img.png"
    Image.fromarray(np.full((H, W), 100, np.uint8)).save(img)
    # rows 2..12, columns 35..55 as QGIS shows the PNG: y from -12 to -2
    gpd.GeoDataFrame(geometry=[box(35, -12, 55, -2)]).to_file(tmp_path / "qgis.gpkg")
    m = rasterize_vector(tmp_path / "qgis.gpkg", img)
    want = np.zeros((H, W), bool)
    want[2:12, 35:55] = True
    assert np.array_equal(m, want)
    # the export of a PNG label reads back onto the same pixels (round trip)
    (tmp_path / "labels").mkdir()
    Image.fromarray(_label()).save(tmp_path / "labels" / "img.png")
    export_labels(tmp_path / "labels", tmp_path / "back.gpkg", progress=False)
    assert np.array_equal(rasterize_vector(tmp_path / "back.gpkg", img), _label() > 0)


def test_labels_with_y_down_are_still_read_with_a_note(tmp_path: Path):
    img = tmp_path / "img.png"
    Image.fromarray(np.full((H, W), 100, np.uint8)).save(img)
    gpd.GeoDataFrame(geometry=[box(35, 2, 55, 12)]).to_file(tmp_path / "rowdown.gpkg")
    with rasterio.open(img) as ds:
        v = VectorLabels.from_file(
            tmp_path / "rowdown.gpkg", crs=None, transform=ds.transform, height=H, width=W
        )
    want = np.zeros((H, W), np.uint8)
    want[2:12, 35:55] = 1
    assert np.array_equal(v.rasterize(), want)
    assert any("y is read as the row" in n for n in v.notes)


@pytest.mark.parametrize("rows_down", [True, False])
def test_one_polygon_past_the_top_edge_does_not_flip_the_convention(tmp_path: Path, rows_down):
    """A polygon snapped half a pixel past the top edge (y = -0.5 in a y = row layer, y = +0.5
    in a QGIS y = -row layer) leaves the other polygons where they are. Was: y-down with one
    vertex at y = -0.5 was read as y = -row, the 10x20 block landed above the image (10 of its
    200 pixels left)."""
    img = tmp_path / "img.png"
    Image.fromarray(np.full((H, W), 100, np.uint8)).save(img)
    sign = 1 if rows_down else -1
    block = box(35, 2, 55, 12) if rows_down else box(35, -12, 55, -2)
    edge = box(0, -0.5, 10, 5) if rows_down else box(0, -5, 10, 0.5)
    gpd.GeoDataFrame(geometry=[block, edge]).to_file(tmp_path / "l.gpkg")
    m = rasterize_vector(tmp_path / "l.gpkg", img)
    want = np.zeros((H, W), bool)
    want[2:12, 35:55] = True
    want[0:5, 0:10] = True
    assert np.array_equal(m, want), (sign, int(m.sum()))


def test_tile_footprints_of_a_scene_without_crs_use_the_same_grid(tmp_path: Path):
    p = tmp_path / "plain.tif"
    with rasterio.open(p, "w", driver="GTiff", height=H, width=W, count=1, dtype="uint8") as d:
        d.write(np.zeros((1, H, W), np.uint8))
    with rasterio.open(p) as src:
        fp = windows_geo(src)(2, 35, 10, 20)  # row 2, column 35, 10 rows x 20 columns
    assert fp.bounds == (35.0, 2.0, 55.0, 12.0)
    with rasterio.open(p) as src:  # --pixel-coords qgis: where QGIS shows the scene
        assert windows_geo(src, "qgis")(2, 35, 10, 20).bounds == (35.0, -12.0, 55.0, -2.0)


def test_scene_quality_gpkg_takes_pixel_coords_like_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`elnet scene --quality-gpkg` had no --pixel-coords: its windows of a scene without a CRS
    lay mirrored above the scene in QGIS, next to an `export --pixel-coords qgis` layer."""
    p = tmp_path / "plain.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(p, "w", driver="GTiff", height=64, width=96, count=1, dtype="uint8") as d:
        d.write(rng.integers(0, 255, (1, 64, 96), dtype=np.uint8))
    tiles = {}
    for pc in ("gdal", "qgis"):
        out = tmp_path / pc / "o.tif"
        rc = main(
            ["scene", "--model", "builtin:smoothing", "--image", str(p), "--out", str(out),
             "--tile", "32", "--overlap", "0", "--quality-gpkg", "--pixel-coords", pc,
             "--no-progress"]
        )  # fmt: skip
        said = capsys.readouterr()
        assert rc == 0, said.err
        tiles[pc] = gpd.read_file(tmp_path / pc / "o_tiles.gpkg", layer="tiles")
        # the run's note names the convention the footprints were written in
        axes = "y = -row, as QGIS shows the image)" if pc == "qgis" else "y = row)"
        assert f"tile footprints use pixel coordinates (x = column, {axes}" in said.err
    assert tiles["gdal"].total_bounds.tolist() == [0, 0, 96, 64]
    assert tiles["qgis"].total_bounds.tolist() == [0, -64, 96, 0]
    capsys.readouterr()
    rc = main(["scene", "--model", "builtin:smoothing", "--image", str(p), "--out",
               str(tmp_path / "x.tif"), "--pixel-coords", "up"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "--pixel-coords" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tiles_pc", ["gdal", "qgis"])
@pytest.mark.parametrize("export_pc", ["gdal", "qgis"])
def test_polygon_quality_joins_scene_windows_of_either_convention(
    tmp_path: Path, tiles_pc: str, export_pc: str
):
    """A scene label without a CRS: each polygon's quality is that of the window it lies in,
    whichever --pixel-coords the scene and the export used."""
    lab = np.zeros((H, W), np.uint8)
    lab[5:15, 5:20] = 255  # in the left window (columns 0..30)
    lab[25:35, 40:55] = 255  # in the right window
    with rasterio.open(
        tmp_path / "s.tif", "w", driver="GTiff", height=H, width=W, count=1, dtype="uint8"
    ) as d:
        d.write(lab[None])
    with rasterio.open(tmp_path / "s.tif") as src:
        fp = windows_geo(src, tiles_pc)
        geoms = [fp(0, 0, H, 30), fp(0, 30, H, 30)]
    gpd.GeoDataFrame({"predicted_iou": [0.25, 0.75]}, geometry=geoms).to_file(
        tmp_path / "s_tiles.gpkg", layer="tiles"
    )
    res = export_labels(
        tmp_path / "s.tif", tmp_path / "l.gpkg", progress=False, pixel_coords=export_pc
    )
    g = gpd.read_file(res.out, layer="labels").sort_values("area_px")
    assert g["quality"].tolist() == [0.25, 0.75]  # 150 px left, 150 px right: by position
    assert g.geometry.bounds["minx"].tolist() in ([5.0, 40.0], [40.0, 5.0])
