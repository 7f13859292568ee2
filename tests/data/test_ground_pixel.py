"""Ground pixel size (data.georef.pixel_size): the CRS step divided by the projection's point
scale factor at the image centre, so a Web Mercator (EPSG:3857) metre at 60 deg N counts as
half a ground metre (Snyder 1987: Mercator's scale is sec(latitude)), UTM's 0.9996 applies, and
a tile over which the scale varies by more than 1 % gets one warning."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import write_tif
from rasterio.crs import CRS

from sam2elnet.data.georef import pixel_size

Y60 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(60) / 2))
"""EPSG:3857 northing of latitude 60 deg N (spherical Mercator, radius 6378137 m)."""


def _tile_3857(pixel: float, size: int) -> dict:
    """A ``size`` x ``size`` EPSG:3857 grid of ``pixel`` CRS metres centred on 60 deg N."""
    half = pixel * size / 2
    return {"crs": CRS.from_epsg(3857), "transform": Affine(pixel, 0, 1000, 0, -pixel, Y60 + half)}


def test_web_mercator_pixels_at_60n_are_half_their_crs_size_on_the_ground() -> None:
    """0.5 m EPSG:3857 pixels at 60 deg N are about 0.25 m on the ground (scale sec 60 = 2;
    on the WGS 84 ellipsoid 1.995 along x, 1.998 along y), and --road-buffer-m 2 is 8 px."""
    from sam2elnet.engine.road_buffer import road_buffers_px

    ps = pixel_size(_tile_3857(0.5, 512), (512, 512))
    assert ps.map_metres == 0.5 and ps.why == "" and ps.crs == "EPSG:3857"
    assert ps.metres == pytest.approx(0.25, rel=5e-3)
    assert ps.scale == pytest.approx(2.0, rel=5e-3)
    assert ps.spread < 1e-3  # a 256 m tile: one scale
    assert road_buffers_px(2.0, {Path("a.tif"): ps})[Path("a.tif")] == pytest.approx(8.0, rel=5e-3)
    # the ellipsoidal Mercator scale along a parallel, Snyder (1987) eq. 7-8, bounds the mean
    e2 = 0.00669437999014  # WGS 84 first eccentricity squared
    k_parallel = math.sqrt(1 - e2 * math.sin(math.radians(60)) ** 2) / math.cos(math.radians(60))
    assert k_parallel <= ps.scale <= 2.0


def test_utm_pixels_are_within_a_thousandth_of_their_crs_size() -> None:
    """UTM on the central meridian: the CRS step / 0.9996 (PROJ's get_factors there), i.e.
    the old CRS-unit answer within 0.1 %."""
    from pyproj import Proj

    geo = {"crs": CRS.from_epsg(32633), "transform": Affine(0.5, 0, 499_872, 0, -0.5, 4_000_128)}
    ps = pixel_size(geo, (512, 512))
    proj = Proj("EPSG:32633")
    k = proj.get_factors(*proj(500_000, 4_000_000, inverse=True)).parallel_scale
    assert ps.scale == pytest.approx(k, rel=1e-6) and k == pytest.approx(0.9996, rel=1e-7)
    assert ps.metres == pytest.approx(0.5 / 0.9996, rel=1e-6)
    assert ps.metres == pytest.approx(0.5, rel=1e-3)
    assert ps.spread_note() == ""


def test_a_grid_without_ground_metres_says_why() -> None:
    t = Affine(1e-5, 0, 10, 0, -1e-5, 50)
    assert pixel_size({"crs": CRS.from_epsg(4326), "transform": t}).why == (
        "a geographic CRS (EPSG:4326, degrees)"
    )
    assert pixel_size({}).metres is None and pixel_size({}).why == "no CRS"


def _geotiff(path: Path, geo: dict, size: int) -> Path:
    return write_tif(path, np.zeros((1, size, size), np.uint8), **geo)


def test_a_tile_over_which_the_scale_varies_gets_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two 100 km (CRS) Web Mercator tiles at 60 deg N: the ground pixel varies by about
    1.4 % from top to bottom; one warning names the first tile, says how many more and which
    value is used. A 256 m tile: no warning."""
    from sam2elnet.engine.road_buffer import pixel_sizes_m

    big = [_geotiff(tmp_path / f"big{i}.tif", _tile_3857(1000.0, 100), 100) for i in range(2)]
    small = _geotiff(tmp_path / "small.tif", _tile_3857(0.5, 512), 512)
    with caplog.at_level(logging.WARNING):
        sizes = pixel_sizes_m([small])
    assert sizes[small].spread < 0.01 and not caplog.records
    with caplog.at_level(logging.WARNING):
        sizes = pixel_sizes_m([small, *big])
    (rec,) = caplog.records
    said = rec.getMessage()
    ps = sizes[big[0]]
    assert 0.01 < ps.spread < 0.02
    assert said.startswith("big0.tif (and 1 more raster like it): the ground pixel size ")
    assert f"varies by {100 * ps.spread:.1f} % across the image" in said
    assert f"the size at the image centre, {ps.metres:.4g} m (projection scale factor 1.99" in said
