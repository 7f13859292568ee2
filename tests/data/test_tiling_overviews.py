"""``decimated_read`` of a file with overviews gives GDAL's nearest ``out_shape`` read, faster.

It was ``src.read(bands, out_shape=...)`` through the overviews: GDAL's resampled read costs
~1 us per output pixel and band (1.9 s for 3 bands of a 4,096^2 scene, 20x more than reading the
overview it picks). Now the overview level GDAL picks is opened on its own and its pixels are
chosen here by GDAL's nearest rule: the values and the valid mask must be the same, for every
kind of validity (nodata tag, internal mask, alpha band, NaN) and for level choices that skip
overviews, oversample or fall back to full resolution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from sam2elnet.data import tiling
from sam2elnet.data.tiling import decimated_read
from sam2elnet.data.validity import dataset_valid


def _write(path: Path, kind: str, h: int, w: int, factors: list[int]) -> Path:
    rng = np.random.default_rng(3)
    count, dtype, kw = 2, "uint16", {}
    data = rng.integers(1, 60000, (2, h, w)).astype(np.uint16)
    hole = (slice(h // 3, h // 2), slice(w // 4, w // 2))
    if kind == "nodata":
        kw = {"nodata": 0}
        data[(slice(None), *hole)] = 0
    elif kind == "float NaN":
        dtype, data = "float32", data.astype(np.float32)
        data[(0, *hole)] = np.nan
    elif kind == "alpha":
        count, dtype = 4, "uint8"
        data = rng.integers(0, 255, (4, h, w)).astype(np.uint8)
        data[3] = 255
        data[(3, *hole)] = 0
        kw = {"photometric": "RGB", "alpha": "YES"}  # GDAL tags band 4 alpha
    with warnings.catch_warnings(), rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=h, width=w, count=count, dtype=dtype,
            tiled=True, blockxsize=32, blockysize=32, **kw,
        ) as d:  # fmt: skip
            d.write(data)
            if kind == "internal mask":
                m = np.full((h, w), 255, np.uint8)
                m[hole] = 0
                d.write_mask(m)
            d.build_overviews(factors, Resampling.nearest)
    return path


@pytest.mark.parametrize("kind", ["nodata", "internal mask", "alpha", "float NaN"])
@pytest.mark.parametrize(
    ("h", "w", "factors", "f"),
    [
        (128, 128, [2, 4], 3),  # level 2: 64 px read into 42
        (120, 100, [2, 4, 8], 5),  # level 4 (non-square, 30 x 25 into 24 x 20)
        (128, 96, [2, 4, 8], 7),  # level 8, 1.14x coarser than asked: GDAL oversamples
        (128, 128, [16], 3),  # no overview fits: full resolution, GDAL's nearest choice
    ],
)
def test_the_values_are_gdals_nearest_out_shape_read(
    tmp_path: Path, kind: str, h: int, w: int, factors: list[int], f: int
) -> None:
    path = _write(tmp_path / "s.tif", kind, h, w, factors)
    max_pixels = h * w // (f * f - 1)  # decimation factor f
    with warnings.catch_warnings(), rasterio.open(path) as src:
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        alpha = kind == "alpha"
        bands = list(range(1, src.count + 1))
        oh, ow = h // f, w // f
        want = src.read(bands, out_shape=(len(bands), oh, ow), resampling=Resampling.nearest)
        want_valid = dataset_valid(src, alpha, out_shape=(oh, ow))
        if kind == "float NaN":
            want_valid &= np.all(np.isfinite(want), axis=0)
        data, valid = decimated_read(src, bands, max_pixels, alpha=alpha)
    assert data.shape == (len(bands), oh, ow)
    np.testing.assert_array_equal(data, want)
    np.testing.assert_array_equal(valid, want_valid)
    assert 0 < valid.mean() < 1  # the hole is seen


def test_the_level_is_opened_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No resampled GDAL read of the dataset is made (the slow path), only window reads."""
    path = _write(tmp_path / "s.tif", "nodata", 128, 128, [2, 4])
    calls: list[dict] = []
    real = rasterio.io.DatasetReader.read

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(k)
        return real(self, *a, **k)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    with rasterio.open(path) as src:
        data, _ = decimated_read(src, [1, 2], 128 * 128 // 8)
        assert tiling._overview_level(src, 1, 42, 42) == 0  # the 2x overview
    assert data.shape == (2, 42, 42) and calls
    assert all("out_shape" not in k for k in calls)
