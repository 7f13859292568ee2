"""Labels out as polygons: CRS, attributes and area, strip polygonisation, simplify /
smooth / min area, Shapefile sidecars, PNG labels in pixel coordinates, 0/1 labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import pytest
from helpers_export import label_array, write_label_tif, write_labels_folder

from sam2elnet.errors import DataError
from sam2elnet.export.api import export_labels
from sam2elnet.export.labels import find_labels
from sam2elnet.export.polygonize import polygonize_label


@pytest.fixture
def label_tif(tmp_path: Path) -> Path:
    return write_labels_folder(tmp_path)


def test_polygons_keep_crs_attributes_and_area(tmp_path: Path, label_tif: Path):
    (tmp_path / "labels" / "quality.csv").write_text("image,predicted_iou\na.tif,0.83\n")
    out = tmp_path / "out.gpkg"
    res = export_labels(tmp_path / "labels", out, model_id="elnet-tiny-v1", progress=False)
    gdf = gpd.read_file(out, layer="labels")
    assert gdf.crs.to_epsg() == 32633
    assert res.n_features == len(gdf) == 4  # rectangle(with hole), block, speck, disc
    assert set(gdf.columns) >= {
        "source",
        "label",
        "quality",
        "area_px",
        "area_map",
        "model_id",
        "poly_id",
    }
    assert (gdf["quality"] == 0.83).all() and (gdf["model_id"] == "elnet-tiny-v1").all()
    lab = label_array()
    lab[:3, :3] = 127
    assert gdf["area_px"].sum() == pytest.approx(int((lab == 255).sum()))
    assert np.allclose(gdf["area_map"], gdf["area_px"] * 100)  # 10 m pixels
    holes = [len(g.interiors) for g in gdf.geometry]
    assert max(holes) == 1


def test_strip_polygonisation_equals_whole_raster(label_tif: Path):
    whole, _ = polygonize_label(label_tif, strip_rows=10_000)
    strips, _ = polygonize_label(label_tif, strip_rows=16)
    assert len(whole) == len(strips)
    from shapely import union_all

    a, b = union_all(whole), union_all(strips)
    assert a.symmetric_difference(b).area == pytest.approx(0.0, abs=1e-6)


def test_simplify_smooth_and_min_area(tmp_path: Path, label_tif: Path):
    base = gpd.read_file(export_labels(label_tif, tmp_path / "a.geojson", progress=False).out)
    simp = gpd.read_file(
        export_labels(label_tif, tmp_path / "b.geojson", simplify=15.0, progress=False).out
    )
    big = gpd.read_file(
        export_labels(label_tif, tmp_path / "c.geojson", min_area_px=10, progress=False).out
    )
    smooth = gpd.read_file(
        export_labels(label_tif, tmp_path / "d.geojson", smooth=10.0, progress=False).out
    )
    nverts = lambda g: sum(len(p.exterior.coords) for p in g.geometry)  # noqa: E731
    assert nverts(simp) < nverts(base)
    assert len(big) == len(base) - 1  # the 4-pixel speck is gone
    assert nverts(smooth) > 0 and len(smooth) == len(base)


def test_shapefile_output_has_all_sidecars(tmp_path: Path, label_tif: Path):
    out = tmp_path / "shp" / "labels.shp"
    export_labels(label_tif, out, "shp", model_id="m", progress=False)
    for suf in (".shp", ".shx", ".dbf", ".prj"):
        assert out.with_suffix(suf).exists()
    gdf = gpd.read_file(out)
    assert len(gdf) == 4 and gdf.crs.to_epsg() == 32633
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_png_labels_export_in_pixel_coordinates(tmp_path: Path):
    d = tmp_path / "png"
    d.mkdir()
    lab = np.zeros((50, 60), np.uint8)
    lab[10:20, 5:25] = 255
    cv2.imwrite(str(d / "x.png"), lab)
    cv2.imwrite(str(d / "x_prob.png"), lab)  # probability files are not labels
    assert find_labels(d) == [d / "x.png"]
    with pytest.raises(DataError, match="no georeference"):  # readers would take px for lon/lat
        export_labels(d, tmp_path / "x.geojson", progress=False)
    assert not (tmp_path / "x.geojson").exists()
    res = export_labels(d, tmp_path / "x.gpkg", progress=False)
    assert any("pixel coordinates" in n for n in res.notes)
    gdf = gpd.read_file(tmp_path / "x.gpkg", layer="labels")
    assert len(gdf) == 1
    assert gdf.total_bounds.tolist() == [5, 10, 25, 20]  # pixel coordinates, y = row
    assert gdf["area_px"].iloc[0] == 200


def test_01_labels_are_read_as_binary(tmp_path: Path):
    lab = (label_array() > 0).astype(np.uint8)
    path = write_label_tif(tmp_path / "b.tif", lab, nodata=None)
    polys, _ = polygonize_label(path)
    assert len(polys) == 4
