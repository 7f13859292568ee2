"""Vector labels in: reading, repair, reprojection, buffering and clear errors for bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point, Polygon, box

from sam2elnet.data.tiling import Window
from sam2elnet.data.vector import VectorLabels, is_vector_path, rasterize_vector, read_vector
from sam2elnet.errors import DataError

CRS = "EPSG:32633"
T = from_origin(500000, 4000000, 10, 10)  # 10 m pixels
H, W = 300, 400


def grid(**kw):
    return dict(crs=CRS, transform=T, height=H, width=W) | kw


def px_box(c0, r0, c1, r1):
    """Map-coordinate box of a pixel rectangle."""
    x0, y0 = T @ (c0, r0)
    x1, y1 = T @ (c1, r1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    p = tmp_path / "img.tif"
    prof = dict(driver="GTiff", height=H, width=W, count=1, dtype="uint8", crs=CRS, transform=T)
    with rasterio.open(p, "w", **prof) as d:
        d.write(np.zeros((H, W), np.uint8), 1)
    return p


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_polygons_from_every_format_rasterise_in_place(tmp_path: Path, suffix: str):
    path = tmp_path / f"labels{suffix}"
    gpd.GeoDataFrame({"k": [1]}, geometry=[px_box(100, 50, 200, 150)], crs=CRS).to_file(path)
    assert is_vector_path(path)
    m = VectorLabels.from_file(path, **grid()).rasterize()
    assert m.dtype == np.uint8 and m.sum() == 100 * 100
    assert m[50:150, 100:200].all()


def test_reprojection_from_wgs84(tmp_path: Path):
    path = tmp_path / "wgs.geojson"
    gpd.GeoDataFrame(geometry=[px_box(100, 50, 200, 150)], crs=CRS).to_crs("EPSG:4326").to_file(
        path
    )
    m = VectorLabels.from_file(path, **grid()).rasterize()
    ref = np.zeros((H, W), np.uint8)
    ref[50:150, 100:200] = 1
    assert np.mean(m == ref) > 0.995


def test_window_rasterisation_matches_the_full_grid(tmp_path: Path):
    path = tmp_path / "l.gpkg"
    polys = [
        px_box(10, 10, 90, 70),
        Polygon([(500500, 3998000), (502500, 3997500), (501000, 3999500)]),
    ]
    gpd.GeoDataFrame(geometry=polys, crs=CRS).to_file(path)
    vl = VectorLabels.from_file(path, **grid())
    full = vl.rasterize()
    for win in (Window(0, 0, 128, 128), Window(100, 150, 128, 128), Window(172, 272, 128, 128)):
        np.testing.assert_array_equal(vl.rasterize(win), full[win.slices])


@pytest.mark.parametrize("unit,width,expect_px", [("map", 50.0, 5), ("px", 7, 7)])
def test_lines_are_buffered_to_their_width(tmp_path: Path, unit, width, expect_px):
    path = tmp_path / "roads.gpkg"
    x0, y = T @ (0, 150.5)
    x1, _ = T @ (400, 150.5)
    gpd.GeoDataFrame(geometry=[LineString([(x0, y), (x1, y)])], crs=CRS).to_file(path)
    m = VectorLabels.from_file(path, **grid(), line_width=width, line_width_unit=unit).rasterize()
    col = m[:, 200]
    assert abs(int(col.sum()) - expect_px) <= 1


def test_lines_without_width_burn_one_pixel_and_say_so(tmp_path: Path, caplog):
    path = tmp_path / "roads.geojson"
    gpd.GeoDataFrame(geometry=[LineString([T @ (0, 150.5), T @ (400, 150.5)])], crs=CRS).to_file(
        path
    )
    with caplog.at_level(logging.WARNING):
        vl = VectorLabels.from_file(path, **grid())
    assert any("1 px wide" in n for n in vl.notes)
    assert vl.rasterize()[:, 200].sum() == 1


def test_points_need_a_width(tmp_path: Path):
    path = tmp_path / "pts.gpkg"
    gpd.GeoDataFrame(geometry=[Point(T @ (50, 50)), px_box(100, 100, 120, 120)], crs=CRS).to_file(
        path
    )
    vl = VectorLabels.from_file(path, **grid())
    assert any("1 point feature skipped" in n for n in vl.notes)
    disc = VectorLabels.from_file(path, **grid(), line_width=5, line_width_unit="px").rasterize()
    assert disc[50, 50] == 1


def test_invalid_geometries_are_repaired_and_reported(tmp_path: Path):
    path = tmp_path / "bowtie.geojson"
    a, b, c, d = T @ (100, 100), T @ (200, 200), T @ (200, 100), T @ (100, 200)
    bowtie = Polygon([a, b, c, d, a])  # self-intersecting
    assert not bowtie.is_valid
    gpd.GeoDataFrame(geometry=[bowtie], crs=CRS).to_file(path)
    vl = VectorLabels.from_file(path, **grid())
    assert any("repaired 1 invalid" in n for n in vl.notes)
    m = vl.rasterize()
    assert 4000 < m.sum() < 6000  # two triangles of 100x100 / 2 each


def test_features_outside_the_image_are_skipped_with_a_reason(tmp_path: Path):
    path = tmp_path / "l.gpkg"
    far = box(600000, 3000000, 600100, 3000100)
    gpd.GeoDataFrame(geometry=[px_box(10, 10, 20, 20), far], crs=CRS).to_file(path)
    vl = VectorLabels.from_file(path, **grid())
    assert any("1 of 2 label features lies outside" in n for n in vl.notes)
    gpd.GeoDataFrame(geometry=[far], crs=CRS).to_file(tmp_path / "far.gpkg")
    with pytest.raises(DataError, match="the only label feature does not overlap"):
        VectorLabels.from_file(tmp_path / "far.gpkg", **grid())


def test_empty_and_unreadable_files(tmp_path: Path):
    (tmp_path / "zero.geojson").write_bytes(b"")
    with pytest.raises(DataError, match=r"zero\.geojson.*empty"):
        read_vector(tmp_path / "zero.geojson")
    (tmp_path / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(DataError, match="no features"):
        read_vector(tmp_path / "none.geojson")
    hint = (
        "save or export it again as GeoPackage, GeoJSON or Shapefile polygons/lines (QGIS: "
        "right-click the layer, Export > Save Features As...)"
    )
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"this is no geopackage" * 20)
    with pytest.raises(DataError) as err:
        read_vector(junk)
    # GDAL's reason once, without its own quoting of the file and its advice to name a driver
    assert str(err.value) == (
        f"{junk}: not a readable vector file (GDAL: not recognized as being in a supported "
        f"file format); {hint}"
    )
    # a GeoPackage cut short (a copy interrupted): SQLite's reason once (pyogrio gives it twice,
    # after the SQL statement that failed), what happened and what to do
    good = tmp_path / "good.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=CRS).to_file(good, engine="pyogrio")
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(DataError) as err:
        read_vector(cut)
    assert str(err.value) == (
        f"{cut}: not a readable vector file: the GeoPackage is damaged (database disk image is "
        "malformed: cut short or overwritten, e.g. by an interrupted copy or download); copy it "
        f"again from where it came from, or {hint}"
    )
    with pytest.raises(DataError, match="does not exist"):
        read_vector(tmp_path / "missing.shp")


def test_labels_with_crs_on_an_image_without_crs(tmp_path: Path):
    path = tmp_path / "l.gpkg"
    gpd.GeoDataFrame(geometry=[px_box(10, 10, 20, 20)], crs=CRS).to_file(path)
    with pytest.raises(DataError, match="image has no CRS.*pixel coordinates") as err:
        VectorLabels.from_file(path, crs=None, transform=T, height=H, width=W)
    # the option exists in `elnet scene` only: enhance users were told to "pass" it
    assert "`elnet scene --labels-pixel-coords`" in str(err.value)
    # forcing pixel coordinates reads (x, y) as (column, row)
    gpd.GeoDataFrame(geometry=[box(10, 20, 30, 60)], crs=CRS).to_file(tmp_path / "px.gpkg")
    m = VectorLabels.from_file(
        tmp_path / "px.gpkg", crs=None, transform=T, height=H, width=W, pixel_coords=True
    ).rasterize()
    assert m[20:60, 10:30].all() and m.sum() == 20 * 40


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_geojson_of_pixel_coordinates_says_to_save_it_as_gpkg(tmp_path: Path):
    """Road centre lines drawn over a PNG and saved as GeoJSON have no `crs` member; GDAL reads
    such a file as WGS 84 (RFC 7946), so the error said 'the labels are in EPSG:4326' and to give
    labels 'with no CRS', which a GeoJSON cannot be: it now says what to save instead."""
    import json

    path = tmp_path / "satimage_0.geojson"
    line = {"type": "LineString", "coordinates": [[5.0, -20.0], [90.0, -25.0]]}  # x = col, y = -row
    feature = {"type": "Feature", "properties": {}, "geometry": line}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(DataError, match="image has no CRS but the labels are in EPSG:4326") as err:
        VectorLabels.from_file(path, crs=None, transform=None, height=H, width=W, line_width=4)
    msg = str(err.value)
    assert "RFC 7946" in msg and "GeoPackage (.gpkg) or Shapefile without a CRS" in msg
    # the same lines in a GeoPackage without a CRS are read as pixel coordinates
    gpkg = tmp_path / "satimage_0.gpkg"
    gpd.read_file(path).set_crs(None, allow_override=True).to_file(gpkg)
    m = VectorLabels.from_file(
        gpkg, crs=None, transform=None, height=H, width=W, line_width=4
    ).rasterize()
    assert m[19:22, 10:80].any() and m[:, 5:90].any(axis=0).sum() >= 80 and not m[:15].any()
    # a GeoPackage in WGS 84 on such an image: the error, without the GeoJSON reason
    wgs = tmp_path / "wgs.gpkg"
    gpd.read_file(path).to_file(wgs)
    with pytest.raises(DataError, match="image has no CRS") as err:
        VectorLabels.from_file(wgs, crs=None, transform=None, height=H, width=W, line_width=4)
    assert "RFC 7946" not in str(err.value)


def test_labels_in_a_crs_that_cannot_be_transformed(tmp_path: Path):
    local = pyproj.CRS(
        'LOCAL_CS["site grid",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    )
    path = tmp_path / "local.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=local).to_file(path)
    with pytest.raises(DataError, match=r"local\.gpkg.*cannot transform the labels") as e:
        VectorLabels.from_file(path, **grid())
    # both CRSs by their short names (sam2elnet.data.georef.crs_name), never a whole WKT
    assert "from the custom CRS 'site grid' to the image CRS EPSG:32633 (" in str(e.value)
    assert "LOCAL_CS" not in str(e.value)


def test_crs_name_is_short_for_every_kind_of_crs():
    """One CRS name in every message: EPSG code, else the WKT name; never the WKT itself."""
    from rasterio.crs import CRS as RioCRS

    from sam2elnet.data.georef import crs_name

    laea = "+proj=laea +lat_0=47 +lon_0=11 +x_0=0 +y_0=3210000 +ellps=GRS80 +units=m"
    assert crs_name(RioCRS.from_epsg(32633)) == "EPSG:32633"
    assert crs_name(pyproj.CRS.from_epsg(4326)) == "EPSG:4326"
    assert crs_name("EPSG:3857") == "EPSG:3857"  # a user string: read, not called "custom"
    assert crs_name(RioCRS.from_proj4(laea)) == "the custom CRS 'unknown'"
    etrs = "+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m"
    assert crs_name(RioCRS.from_proj4(etrs)) == "EPSG:3035"  # a PROJ string PROJ identifies
    assert crs_name(pyproj.CRS(laea).to_wkt()) == "the custom CRS 'unknown'"
    local = (
        'LOCAL_CS["site grid",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    )
    assert crs_name(pyproj.CRS(local)) == "the custom CRS 'site grid'"
    assert crs_name(None) == "no CRS"
    assert crs_name("not a crs at all") == "not a crs at all"  # PROJ cannot read it: as given


def test_labels_without_crs_are_assumed_in_the_image_crs(tmp_path: Path):
    path = tmp_path / "nocrs.gpkg"
    gpd.GeoDataFrame(geometry=[px_box(100, 50, 200, 150)]).to_file(path)
    vl = VectorLabels.from_file(path, **grid())
    assert any("no CRS; assuming" in n for n in vl.notes)
    assert vl.rasterize().sum() == 100 * 100


def test_bad_line_width(tmp_path: Path):
    path = tmp_path / "l.gpkg"
    gpd.GeoDataFrame(geometry=[px_box(1, 1, 5, 5)], crs=CRS).to_file(path)
    with pytest.raises(DataError, match="line width must be positive"):
        VectorLabels.from_file(path, **grid(), line_width=-1)
    with pytest.raises(DataError, match="unit"):
        VectorLabels.from_file(path, **grid(), line_width=1, line_width_unit="feet")


def test_rasterize_vector_on_an_image_file(tmp_path: Path, image: Path):
    path = tmp_path / "l.geojson"
    gpd.GeoDataFrame(geometry=[px_box(100, 50, 200, 150)], crs=CRS).to_crs(4326).to_file(path)
    m = rasterize_vector(path, image)
    assert m.dtype == bool and m.shape == (H, W)
    assert 9800 < m.sum() < 10200


def _gcp_image(path: Path, h: int = 80, w: int = 100) -> Path:
    """A uint16 GeoTIFF georeferenced by 9 GCPs only (EPSG:4326, no CRS, no transform), whose
    GCPs follow the sheared map lon = 14 + 0.0009 col + 0.0001 row, lat = 43 - 0.0008 row."""
    from rasterio.control import GroundControlPoint

    gcps = [
        GroundControlPoint(row=r, col=c, x=14 + 0.0009 * c + 0.0001 * r, y=43 - 0.0008 * r)
        for r in (0, h // 2, h) for c in (0, w // 2, w)
    ]  # fmt: skip
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype="uint16") as d:
        d.write(np.full((1, h, w), 300, np.uint16))
        d.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    return path


def _lonlat(c, r):
    return 14 + 0.0009 * c + 0.0001 * r, 43 - 0.0008 * r


def test_labels_with_a_crs_on_a_gcp_only_image_are_placed_through_the_gcps(tmp_path: Path):
    """A slick drawn in QGIS over a Sentinel-1 GRD (shown through its GCPs) in EPSG:4326, or in
    another CRS, lands on its pixels; labels without CRS stay pixel coordinates."""
    img = _gcp_image(tmp_path / "grd.tif")
    # pixel rectangle rows 20..40, columns 30..70 as a polygon in lon/lat (the sheared map)
    ring = [_lonlat(c, r) for c, r in ((30, 20), (70, 20), (70, 40), (30, 40))]
    gpd.GeoDataFrame(geometry=[Polygon(ring)], crs=4326).to_file(tmp_path / "slick.gpkg")
    want = np.zeros((80, 100), bool)
    want[20:40, 30:70] = True
    assert np.array_equal(rasterize_vector(tmp_path / "slick.gpkg", img), want)
    # in UTM 33N (reprojected to the GCPs' CRS first): the same pixels up to the edges
    gpd.read_file(tmp_path / "slick.gpkg").to_crs(32633).to_file(tmp_path / "utm.gpkg")
    m = rasterize_vector(tmp_path / "utm.gpkg", img)
    assert (m & want).sum() / (m | want).sum() > 0.97
    # a line width in map units (degrees here) converts with the GCPs' mean pixel size
    # ((0.0009 + 0.0008) / 2 degrees): 0.0034 degrees = 4 px, rows 58..61 around row 60
    line = LineString([_lonlat(10, 60), _lonlat(90, 60)])
    gpd.GeoDataFrame(geometry=[line], crs=4326).to_file(tmp_path / "road.gpkg")
    with rasterio.open(img) as ds:
        from sam2elnet.data.vector_grid import image_grid

        crs, tr, gcps = image_grid(ds)
    v = VectorLabels.from_file(
        tmp_path / "road.gpkg", crs=crs, transform=tr, gcps=gcps, height=80, width=100,
        line_width=0.0034,
    )  # fmt: skip
    rows = np.flatnonzero(v.rasterize().any(axis=1))
    assert rows.tolist() == [58, 59, 60, 61]
    # no CRS on a GCP image: pixel coordinates (QGIS's x = column, y = -row)
    gpd.GeoDataFrame(geometry=[box(30, -40, 70, -20)]).to_file(tmp_path / "px.gpkg")
    assert np.array_equal(rasterize_vector(tmp_path / "px.gpkg", img), want)


def test_empty_and_missing_geometries_are_dropped_without_library_warnings(tmp_path: Path):
    """QGIS layers keep features whose geometry was deleted (NULL) or is empty; geopandas'
    notna() warned about the empty ones in front of the user."""
    import warnings

    path = tmp_path / "g.gpkg"
    geoms = [px_box(10, 10, 20, 20), Polygon(), None]
    gpd.GeoDataFrame({"k": [1, 2, 3]}, geometry=geoms, crs=CRS).to_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gdf = read_vector(path)
    assert gdf["k"].tolist() == [1]


def test_clean_placed_drops_unplaceable_and_repairs_invalid_features() -> None:
    """``clean_placed``: the one clean-up of placed labels (the reader's and the shared
    evaluation truth's, which copied it): non-finite features dropped, a bow-tie repaired, each
    said once; nothing to do returns the very array."""
    import shapely

    from sam2elnet.data.vector import clean_placed

    square = shapely.box(0, 0, 2, 2)
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    lost = shapely.box(0, 0, np.inf, 1)  # a reprojection outside the CRS's area of use
    said: list[tuple[str, str]] = []
    geoms, kept = clean_placed(
        np.array([square, lost, bowtie], dtype=object),
        Path("l.gpkg"),
        lambda m, k: said.append((m, k)),
    )
    assert kept.tolist() == [True, False, True]
    assert geoms[0] is square and geoms[1].is_valid and geoms[1].area == pytest.approx(2.0)
    assert [m for m, _ in said] == [
        "l.gpkg: 1 of 3 features could not be placed in the image CRS (non-finite coordinates "
        "after reprojection); skipped",
        "l.gpkg: repaired 1 invalid geometry with make_valid",
    ]
    clean = np.array([square], dtype=object)
    assert clean_placed(clean, Path("l.gpkg"), lambda m, k: said.append((m, k)))[0] is clean
    assert len(said) == 2


def test_a_layer_without_labels_says_what_to_do(tmp_path: Path):
    """An empty layer, or one whose features have no geometry (attribute rows QGIS keeps after
    their shapes were deleted), was `vector label file has no features (empty layer)` / `... has
    features but all geometries are empty`: the file, but not what to do (the project's rule for
    an error line). Now the line says it."""
    import re
    import warnings

    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame(geometry=[], crs="EPSG:32633").to_file(empty)
    remedy = re.escape(
        "give a file with labels drawn in it (or, in a file of several layers, the layer that "
        "holds them)"
    )
    with pytest.raises(DataError, match=rf"no features \(empty layer\); {remedy}"):
        read_vector(empty)
    shapeless = tmp_path / "shapeless.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[None, Polygon()], crs=32633).to_file(
            shapeless
        )
    with pytest.raises(
        DataError,
        match=rf"no geometry to label with \(2 features, each with an empty or no geometry\); {remedy}",
    ):
        read_vector(shapeless)
