"""``area_map`` of labels in a geographic CRS is in m², measured on the CRS's ellipsoid.

Found in a user trial (an ALOS PALSAR scene in EPSG:4326, a Sentinel-1 GRD georeferenced by
GCPs in EPSG:4326): ``elnet export`` wrote ``area_map`` in degrees², rounded to 6 decimals, so a
91 px slick of ~100 m² pixels read ``1e-06`` and most slicks ``0.0``, although docs/geospatial.md
promises "m² of its UTM zone, never degrees²". A projected label keeps its planar map units.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_tif
from pyproj import Geod
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from sam2elnet.export.api import export_labels
from sam2elnet.export.vector import _geodesic, geodesic_areas

PX = 1e-4  # degrees


def _label() -> np.ndarray:
    m = np.zeros((1, 40, 50), np.uint8)
    m[0, 5:15, 10:30] = 255  # 10 rows x 20 columns
    return m


def _expected_m2(lon0: float, lat0: float) -> float:
    """Geodesic area of the block's footprint, from its corner coordinates (WGS 84)."""
    x0, x1 = lon0 + 10 * PX, lon0 + 30 * PX
    y0, y1 = lat0 - 5 * PX, lat0 - 15 * PX
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter([x0, x1, x1, x0], [y0, y0, y1, y1])
    return abs(area)


def test_area_map_of_an_epsg4326_label_is_geodesic_m2(tmp_path: Path) -> None:
    lon0, lat0 = -89.5, 28.9  # Gulf of Mexico
    lab = write_tif(
        tmp_path / "pa.tif",
        _label(),
        127,
        crs="EPSG:4326",
        transform=from_origin(lon0, lat0, PX, PX),
    )
    export_labels(lab, tmp_path / "pa.gpkg", progress=False)
    g = gpd.read_file(tmp_path / "pa.gpkg", layer="labels")
    assert len(g) == 1 and g["area_px"].iloc[0] == 200
    want = _expected_m2(lon0, lat0)  # about 200 x 9.77 m x 11.1 m
    assert 21_000 < want < 23_000
    assert g["area_map"].iloc[0] == pytest.approx(want, rel=1e-6)


def test_area_map_of_a_gcp_only_label_is_geodesic_m2(tmp_path: Path) -> None:
    lon0, lat0 = 50.9, 26.7  # Persian Gulf; GCPs of an axis-aligned 1e-4 deg grid
    gcps = [
        GroundControlPoint(row=r, col=c, x=lon0 + c * PX, y=lat0 - r * PX, id=f"{r}_{c}")
        for r in (0, 20, 40)
        for c in (0, 25, 50)
    ]
    lab = write_tif(tmp_path / "grd.tif", _label(), 127, georef=False, gcps=(gcps, "EPSG:4326"))
    export_labels(lab, tmp_path / "grd.gpkg", progress=False)
    g = gpd.read_file(tmp_path / "grd.gpkg", layer="labels")
    assert len(g) == 1 and str(g.crs) == "EPSG:4326"
    assert g["area_map"].iloc[0] == pytest.approx(_expected_m2(lon0, lat0), rel=1e-6)


def test_area_map_of_a_projected_label_stays_planar(tmp_path: Path) -> None:
    lab = write_tif(tmp_path / "utm.tif", _label(), 127)  # EPSG:32633, 10 m pixels
    export_labels(lab, tmp_path / "utm.gpkg", progress=False)
    g = gpd.read_file(tmp_path / "utm.gpkg", layer="labels")
    assert g["area_map"].tolist() == [20_000.0]


def test_the_ellipsoid_is_read_once_per_crs_not_once_per_label() -> None:
    """Every label of a CRS shares one Geod (pyproj parsed the CRS once, ~0.2 ms a label
    before); a projected CRS has none (area_map in its planar units)."""
    geod = _geodesic(CRS.from_epsg(4326))
    assert geod is _geodesic(CRS.from_epsg(4326))  # an equal CRS of another label
    assert geod.a == pytest.approx(6378137.0) and geod.f == pytest.approx(1 / 298.257223563)
    assert _geodesic(CRS.from_epsg(32633)) is None and _geodesic(None) is None


def test_a_hole_running_as_its_outer_ring_is_subtracted() -> None:
    """pyproj signs each ring's area by its direction and adds them: a hole drawn the same way
    as its outer ring (every export path writes them opposite; a hand-built or imported polygon
    need not) was added. The rings are oriented before measuring."""
    from shapely.geometry import Polygon

    geod = Geod(ellps="WGS84")
    outer = [(10.0, 40.0), (10.01, 40.0), (10.01, 40.01), (10.0, 40.01)]  # counter-clockwise
    hole = [(10.003, 40.003), (10.006, 40.003), (10.006, 40.006), (10.003, 40.006)]  # too
    want = abs(geod.polygon_area_perimeter(*zip(*outer, strict=True))[0]) - abs(
        geod.polygon_area_perimeter(*zip(*hole, strict=True))[0]
    )
    same = Polygon(outer, [hole])
    opposite = Polygon(outer, [hole[::-1]])
    clockwise = Polygon(outer[::-1], [hole])  # both reversed from the usual
    got = geodesic_areas(geod, [same, opposite, clockwise])
    assert got == pytest.approx([want] * 3, rel=1e-9)
    assert 8.6e5 < want < 8.7e5  # 0.948 km² less 0.085 km², not their sum (1.03 km²)
