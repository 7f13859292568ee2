"""Normalisation: methods, SAR dB, nodata, statistics and the config round trip."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import grey_rgb, write_png, write_tif

from sam2elnet.data.norm_fit import compute_stats
from sam2elnet.data.normalize import NormalizationConfig, normalize, to_db
from sam2elnet.data.raster import RasterImage, read_image
from sam2elnet.errors import DataError


def test_fixed_uint8_keeps_absolute_brightness():
    x = np.array([[[0, 51, 255]]], np.uint8)
    out = normalize(x, NormalizationConfig(method="fixed"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [0.0, 0.2, 1.0], atol=1e-6)


def test_percentile_per_band_and_range():
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(100, 10, (32, 32)), rng.normal(5000, 800, (32, 32))]).astype(
        np.float32
    )
    out = normalize(x, NormalizationConfig(method="percentile", p_low=2, p_high=98))
    assert out.shape == (2, 32, 32) and out.min() >= 0 and out.max() <= 1
    for b in range(2):
        assert 0.4 < float(np.median(out[b])) < 0.6


def test_sar_db_conversion():
    lin = np.array([[[1e-3, 1e-2, 1e-1, 1.0]]], np.float32)
    np.testing.assert_allclose(to_db(lin)[0, 0], [-30, -20, -10, 0], atol=1e-4)
    cfg = NormalizationConfig(method="fixed", to_db=True, low=[-30.0], high=[0.0])
    np.testing.assert_allclose(normalize(lin, cfg)[0, 0], [0, 1 / 3, 2 / 3, 1], atol=1e-5)


def test_nodata_is_zero_and_excluded_from_percentiles():
    data = np.full((1, 8, 8), 10.0, np.float32)
    data[0, :4] = 20.0
    nodata = np.zeros((8, 8), bool)
    nodata[0, 0] = True
    data[0, 0, 0] = 1e9  # would wreck the percentiles if it were used
    out = normalize(
        RasterImage(data, nodata), NormalizationConfig(method="percentile", p_low=0, p_high=100)
    )
    assert out[0, 0, 0] == 0.0
    assert out[0, 1, 0] == pytest.approx(1.0) and out[0, 7, 7] == pytest.approx(0.0)


def test_config_round_trip_and_band_mismatch():
    cfg = NormalizationConfig(method="stats", low=[1.0, 2.0], high=[3.0, 4.0], bands=2, sar=False)
    again = NormalizationConfig.model_validate(cfg.model_dump())
    assert again == cfg
    assert NormalizationConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(DataError, match="bands"):
        normalize(np.zeros((3, 4, 4), np.uint8), cfg)
    with pytest.raises(DataError, match="elnet stats"):
        normalize(np.zeros((1, 4, 4), np.uint8), NormalizationConfig(method="stats"))


def test_compute_stats(tmp_path):
    paths = [write_png(tmp_path / f"{i}.png", grey_rgb(16, i)) for i in range(3)]
    cfg = compute_stats(paths, NormalizationConfig(sar=True, p_low=0, p_high=100), progress=False)
    assert cfg.method == "stats" and cfg.bands == 1
    assert cfg.low[0] >= 0 and cfg.high[0] <= 255 and 100 < cfg.mean[0] < 155
    x = normalize(read_image(paths[0], sar=True), cfg)
    assert x.shape == (1, 16, 16) and 0 <= x.min() and x.max() <= 1
    assert NormalizationConfig.model_validate(cfg.model_dump()) == cfg


def test_compute_stats_errors(tmp_path):
    with pytest.raises(DataError):
        compute_stats([], progress=False)
    a = write_tif(tmp_path / "a.tif", np.zeros((1, 4, 4), np.uint8))
    b = write_tif(tmp_path / "b.tif", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match="band"):
        compute_stats([a, b], progress=False)
