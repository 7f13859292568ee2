"""GeoJSON keeps the labels' CRS by default, as GDAL and QGIS write it (``crs`` member), custom WKT
CRSs without an EPSG code included; ``--geojson-crs wgs84`` reprojects to RFC 7946 lon/lat.

Also the case scripts ``c07_export_holes.py`` (holes, islands, corner-touching regions, 1-px
regions, CRS kept in GPKG / GeoJSON / SHP, PNG labels in pixel coordinates) and
``c09_crs_kept.py`` (EPSG:4326 and a custom LCC CRS through ``scene`` and ``export``) as tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from helpers_data import write_tif
from PIL import Image
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import box

import sam2elnet.export.vector as vector
from sam2elnet.cli import main
from sam2elnet.errors import DataError
from sam2elnet.export.api import export_labels

UTM = CRS.from_epsg(32633)
T_UTM = from_origin(500000, 4000000, 10, 10)  # 10 m pixels
# a Lambert Conformal Conic CRS without an authority code (the c09 case's WKT)
LCC = CRS.from_wkt(
    'PROJCS["custom LCC",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
    '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Lambert_Conformal_Conic_2SP"],PARAMETER["standard_parallel_1",43],'
    'PARAMETER["standard_parallel_2",62],PARAMETER["latitude_of_origin",30],'
    'PARAMETER["central_meridian",10],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)
T_LCC = from_origin(-120000, 2300000, 5, 5)
URN_UTM = "urn:ogc:def:crs:EPSG::32633"


def c07_array() -> np.ndarray:
    """100x120 0/255: a 40x40 px donut (20x20 hole) with a 4x4 island in the hole, two 6x6
    squares touching at one corner, one single pixel (case c07)."""
    a = np.zeros((100, 120), np.uint8)
    a[20:60, 20:60] = 255
    a[30:50, 30:50] = 0
    a[38:42, 38:42] = 255
    a[70:76, 70:76] = 255
    a[76:82, 76:82] = 255
    a[90, 110] = 255
    return a


def _read(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(path, layer="labels") if path.suffix == ".gpkg" else gpd.read_file(path)


def _same_geometries(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> bool:
    """Same polygons in the same order, coordinates equal to the last bit (normalised rings)."""
    na = shapely.normalize(np.asarray(a.geometry.values))
    nb = shapely.normalize(np.asarray(b.geometry.values))
    return len(na) == len(nb) and bool(shapely.equals_exact(na, nb, tolerance=0).all())


@pytest.fixture
def c07_tif(tmp_path: Path) -> Path:
    (tmp_path / "lab").mkdir()
    return write_tif(
        tmp_path / "lab" / "scene_lab.tif", c07_array()[None], crs=UTM, transform=T_UTM
    )


# ---------------------------------------------------------------- default: the labels' CRS
def test_default_geojson_keeps_epsg_crs_and_exact_coordinates(tmp_path: Path, c07_tif: Path):
    res = export_labels(c07_tif, tmp_path / "x.geojson", progress=False)
    doc = json.loads(res.out.read_text())
    assert doc["crs"] == {"type": "name", "properties": {"name": URN_UTM}}  # GDAL's own member
    assert any("--crs wgs84 reprojects" in n for n in res.notes)
    g = _read(res.out)
    gpkg = _read(export_labels(c07_tif, tmp_path / "x.gpkg", progress=False).out)
    assert g.crs == UTM and g.crs.to_epsg() == 32633
    assert _same_geometries(g, gpkg)  # map coordinates, not reprojected
    assert g["area_map"].tolist() == gpkg["area_map"].tolist()
    assert g.geometry.area.tolist() == gpkg.geometry.area.tolist()
    assert sorted(g["area_map"]) == [100.0, 1600.0, 3600.0, 3600.0, 120000.0]  # m2, 10 m px


@pytest.mark.parametrize(
    "crs",
    [
        LCC,
        CRS.from_proj4(
            "+proj=lcc +lat_1=45 +lat_2=55 +lat_0=50 +lon_0=10 +x_0=0 +y_0=0 +ellps=GRS80 +units=m"
        ),
    ],
    ids=["wkt1-lcc", "proj4-lcc"],
)
def test_custom_wkt_crs_round_trips(tmp_path: Path, crs: CRS):
    assert crs.to_epsg() is None
    f = write_tif(tmp_path / "lcc.tif", c07_array()[None], crs=crs, transform=T_LCC)
    res = export_labels(f, tmp_path / "lcc.geojson", progress=False)
    name = json.loads(res.out.read_text())["crs"]["properties"]["name"]
    assert ProjCRS.from_wkt(name) == ProjCRS.from_user_input(crs)  # the WKT names the CRS
    g = _read(res.out)
    assert g.crs == crs and g.crs == ProjCRS.from_user_input(crs)
    with rasterio.open(f) as ds:
        bounds = box(*ds.bounds)
    assert len(g) == 5 and g.within(bounds).all()
    gpkg = _read(export_labels(f, tmp_path / "lcc.gpkg", progress=False).out)
    assert _same_geometries(g, gpkg)
    donut = g.loc[g["area_px"].idxmax()].geometry
    assert donut.bounds == (-119900.0, 2299700.0, -119700.0, 2299900.0)  # 5 m px, col/row 20..60
    assert any("labels' CRS (the custom CRS '" in n for n in res.notes)


def test_custom_crs_batches_name_the_crs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    f = write_tif(tmp_path / "lcc.tif", c07_array()[None], crs=LCC, transform=T_LCC)
    one = export_labels(f, tmp_path / "a" / "l.geojson", progress=False)
    monkeypatch.setattr(vector, "WRITE_BATCH", 2)
    many = export_labels(f, tmp_path / "b" / "l.geojson", progress=False)
    text = many.out.read_text()
    assert one.out.read_text() == text and text.count('"crs":') == 1
    assert _read(many.out).crs == LCC


def test_crs_read_back_wrong_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import pyogrio

    f = write_tif(tmp_path / "lcc.tif", c07_array()[None], crs=LCC, transform=T_LCC)
    monkeypatch.setattr(pyogrio, "read_info", lambda path, **kw: {"crs": "EPSG:4326"})
    out = tmp_path / "out" / "l.geojson"
    with pytest.raises(DataError, match="back as EPSG:4326; nothing written"):
        export_labels(f, out, progress=False)
    assert list(out.parent.iterdir()) == []


def test_cli_export_default_keeps_the_crs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = write_tif(tmp_path / "lcc.tif", c07_array()[None], crs=LCC, transform=T_LCC)
    out = tmp_path / "lcc.geojson"
    assert main(["export", "--labels", str(f), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "labels' CRS (the custom CRS 'custom LCC') with a 'crs' member" in err
    assert "--crs wgs84 reprojects" in err
    g = _read(out)
    assert g.crs == LCC and len(g) == 5
    # unknown value: one error line, nothing written
    bad = tmp_path / "bad.geojson"
    assert main(["export", "--labels", str(f), "--out", str(bad), "--geojson-crs", "utm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--geojson-crs" in err and err.count("\n") == 1, err
    assert not bad.exists()


# ---------------------------------------------------------------- --geojson-crs wgs84
def test_wgs84_option_gives_rfc7946_lon_lat(tmp_path: Path, c07_tif: Path, capsys):
    out = tmp_path / "w.geojson"
    args = ["export", "--labels", str(c07_tif), "--out", str(out), "--geojson-crs", "wgs84"]
    assert main([*args, "--no-progress"]) == 0
    assert "RFC 7946" in capsys.readouterr().err
    assert "crs" not in json.loads(out.read_text())  # RFC 7946: no crs member
    g = _read(out)
    assert g.crs.to_epsg() == 4326
    x0, y0, x1, y1 = g.total_bounds
    assert 14.9 < x0 < x1 < 15.1 and 36.1 < y0 < y1 < 36.2  # lon/lat of UTM 33N x 500 km
    donut = g.to_crs(UTM).loc[g["area_px"].idxmax()].geometry
    assert donut.bounds == pytest.approx((500200, 3999400, 500600, 3999800), abs=0.05)
    assert g["area_map"].max() == 120000  # still in the labels' own CRS units (m2)
    lab = write_tif(tmp_path / "lcc.tif", c07_array()[None], crs=LCC, transform=T_LCC)
    lcc = export_labels(lab, tmp_path / "lcc.geojson", geojson_crs="wgs84", progress=False)
    assert _read(lcc.out).crs.to_epsg() == 4326


# ---------------------------------------------------------------- case c07
def test_c07_holes_islands_corners_crs_and_areas(tmp_path: Path, c07_tif: Path):
    for ext in ("gpkg", "geojson", "shp"):
        g = _read(export_labels(c07_tif.parent, tmp_path / f"out.{ext}", progress=False).out)
        assert sorted(round(v) for v in g["area_px"]) == [1, 16, 36, 36, 1200], ext
        assert g.is_valid.all() and set(g.geom_type) == {"Polygon"}, ext
        assert sorted(len(p.interiors) for p in g.geometry) == [0, 0, 0, 0, 1], ext
        assert g.crs.to_epsg() == 32633, ext
        donut = g.loc[g["area_px"].idxmax()].geometry
        assert donut.bounds == (500200, 3999400, 500600, 3999800), ext
        assert len(donut.interiors) == 1 and g["area_map"].max() == 120000, ext
    # the same array as a plain PNG: pixel coordinates in GPKG, GeoJSON refused
    (tmp_path / "png").mkdir()
    Image.fromarray(c07_array()).save(tmp_path / "png" / "scene_lab.png")
    res = export_labels(tmp_path / "png", tmp_path / "px.gpkg", progress=False)
    g = _read(res.out)
    assert g.crs is None and any("pixel coordinates" in n for n in res.notes)
    assert g.loc[g["area_px"].idxmax()].geometry.bounds == (20, 20, 60, 60)  # C07: y = row
    with pytest.raises(DataError, match="no georeference"):
        export_labels(tmp_path / "png", tmp_path / "px.geojson", progress=False)
    assert not (tmp_path / "px.geojson").exists()
    # --smooth 15 (m) keeps validity and the donut's hole
    g = _read(export_labels(c07_tif, tmp_path / "s.gpkg", smooth=15.0, progress=False).out)
    assert g.is_valid.all() and not g.geometry.is_empty.any() and len(g) == 5
    assert len(g.loc[g["area_px"].idxmax()].geometry.interiors) == 1


# ---------------------------------------------------------------- case c09
@pytest.mark.parametrize(
    ("crs", "transform"),
    [(CRS.from_epsg(4326), from_origin(12.0, 45.0, 0.0001, 0.0001)), (LCC, T_LCC)],
    ids=["epsg4326", "custom-lcc"],
)
def test_c09_crs_kept_through_scene_and_export(
    tmp_path: Path, crs: CRS, transform: rasterio.Affine, capsys
):
    img = np.full((64, 80), 40, np.uint8)
    img[20:44, 24:60] = 230  # a bright blob
    src = write_tif(tmp_path / "s.tif", img[None], crs=crs, transform=transform)
    lab = tmp_path / "s_label.tif"
    args = ["scene", "--model", "builtin:smoothing", "--image", str(src), "--out", str(lab),
            "--tile", "32", "--overlap", "8", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    with rasterio.open(lab) as ds:
        assert ds.crs == crs and ds.transform == transform
        bounds = box(*ds.bounds)
    tables = {}
    for ext in ("gpkg", "geojson"):
        out = tmp_path / f"s.{ext}"
        assert main(["export", "--labels", str(lab), "--out", str(out), "--no-progress"]) == 0
        g = tables[ext] = _read(out)
        assert g.crs == crs, ext
        assert len(g) >= 1 and g.within(bounds).all(), ext
    capsys.readouterr()
    assert _same_geometries(tables["gpkg"], tables["geojson"])
    assert tables["gpkg"]["area_map"].tolist() == tables["geojson"]["area_map"].tolist()
