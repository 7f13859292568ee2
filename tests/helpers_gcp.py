"""A GCP-only scene (as a Sentinel-1 GRD: no CRS, ground control points in EPSG:4326) for the
tests of the scene's quality layer and the export of its labels.

The GCPs follow a known sheared map (:func:`lonlat`); a bright block fills exactly the window at
row 0, column 64 of the 32 px window grid, so its exported polygon must cover that window.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

H, W, TILE = 64, 96, 32
"""Scene height, width and window side, px."""
WGS84 = CRS.from_epsg(4326)


def lonlat(row: float, col: float) -> tuple[float, float]:
    """The map position (lon, lat, degrees) of pixel corner ``(row, col)``."""
    return 28.0 + 0.001 * col + 0.0002 * row, 43.0 - 0.0009 * row


def gcp_scene(path: Path) -> Path:
    """Write the uint8 GCP-only scene to ``path`` (12 GCPs on a 3 x 4 grid) and return it."""
    rng = np.random.default_rng(0)
    a = (20 + rng.integers(0, 5, (H, W))).astype(np.uint8)
    a[0:TILE, 2 * TILE : 3 * TILE] = 220  # the window at row 0, column 64
    gcps = [
        GroundControlPoint(row=r, col=c, x=lonlat(r, c)[0], y=lonlat(r, c)[1])
        for r in (0, H // 2, H)
        for c in (0, W // 3, 2 * W // 3, W)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=H, width=W, count=1, dtype="uint8"
        ) as d:
            d.write(a[None])
            d.gcps = (gcps, WGS84)
    return path
