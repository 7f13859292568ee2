"""GDAL's block cache as the readers set it: megabytes, not bytes.

``rasterio.Env(GDAL_CACHEMAX=n)`` calls ``GDALSetCacheMax64(n)``, whose unit is bytes; the readers
meant MB and gave GDAL a 64 / 128 *byte* cache (no block ever kept: a resampled read of a COG's
overviews for the scene statistics took 92 s instead of 0.1 s on a 3,000 x 2,500 px scene).
The cache size is read back from the GDAL library rasterio runs on (``GDALGetCacheMax64``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.data.windowed import GDAL_ENV, gdal_env
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene

MB = 2**20


def _gdal() -> ctypes.CDLL:
    """The libgdal rasterio has loaded (its wheel's bundled copy, else the system one)."""
    here = os.path.dirname(rasterio.__file__)
    found = glob.glob(os.path.join(here + ".libs", "libgdal*")) or glob.glob(
        os.path.join(here, ".dylibs", "libgdal*")
    )
    path = found[0] if found else ctypes.util.find_library("gdal")
    if not path:
        pytest.skip("cannot locate the GDAL library rasterio uses")
    lib = ctypes.CDLL(path)  # already loaded by rasterio: the same instance
    lib.GDALGetCacheMax64.restype = ctypes.c_int64
    return lib


def test_window_readers_cap_the_cache_at_64_mb():
    lib = _gdal()
    with rasterio.Env(**GDAL_ENV):
        assert lib.GDALGetCacheMax64() == 64 * MB
    with rasterio.Env(**gdal_env(128)):
        assert lib.GDALGetCacheMax64() == 128 * MB


class _CacheProbe(SmoothingPredictor):
    """Records GDAL's cache size while the scene is being predicted."""

    seen: list[int]

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        self.seen.append(int(_gdal().GDALGetCacheMax64()))
        return super().predict_arrays(batch, coarse)


def test_scene_prediction_runs_with_a_128_mb_cache(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    _gdal()
    src = tmp_path / "s.tif"
    img = (np.arange(64 * 80) % 251).astype(np.uint8).reshape(64, 80)
    with rasterio.open(src, "w", driver="GTiff", height=64, width=80, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write(img, 1)
    pred = _CacheProbe()
    pred.seen = []
    predict_scene(src, tmp_path / "o.tif", pred, tile=64, overlap=16, progress=False)
    assert pred.seen and set(pred.seen) == {128 * MB}
