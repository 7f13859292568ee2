"""Window plans cover the scene exactly once or more, stay in bounds, and blend without seams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sam2elnet.data.tiling import (
    blend_weights,
    group_rows,
    plan_offsets,
    plan_windows,
    ramp,
    weight_sums,
)


@st.composite
def plans(draw):
    tile = draw(st.integers(16, 300))
    overlap = draw(st.integers(0, tile - 1))
    h = draw(st.integers(1, 1500))
    w = draw(st.integers(1, 1500))
    return h, w, tile, overlap


@settings(max_examples=150, deadline=None)
@given(plans())
def test_windows_cover_every_pixel_and_stay_in_bounds(p):
    h, w, tile, overlap = p
    wins = plan_windows(h, w, tile, overlap)
    cover = np.zeros((h, w), np.int32)
    shapes = set()
    for win in wins:
        assert win.row_off >= 0 and win.col_off >= 0
        assert win.row_off + win.height <= h and win.col_off + win.width <= w
        assert win.height == min(tile, h) and win.width == min(tile, w)
        cover[win.slices] += 1
        shapes.add((win.height, win.width))
    assert cover.min() >= 1
    assert len(shapes) == 1  # one shape: windows can always be batched


@settings(max_examples=150, deadline=None)
@given(plans())
def test_window_count_matches_area_over_stride_squared(p):
    h, w, tile, overlap = p
    stride = tile - overlap
    n = len(plan_windows(h, w, tile, overlap))
    ny = 1 if h <= tile else math.ceil((h - tile) / stride) + 1
    nx = 1 if w <= tile else math.ceil((w - tile) / stride) + 1
    assert n == ny * nx
    # and about area / stride^2 for scenes much larger than a tile
    if h > 4 * tile and w > 4 * tile:
        approx = (h * w) / stride**2
        assert 0.5 * approx <= n <= 2.0 * approx + 4


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5000), st.integers(16, 512), st.data())
def test_offsets_step_by_stride_and_end_at_border(size, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    offs = plan_offsets(size, tile, overlap)
    assert offs[0] == 0
    assert offs == sorted(set(offs))
    if size > tile:
        assert offs[-1] == size - tile  # the edge window is shifted inward, not padded
        steps = np.diff(offs)
        assert steps.max() <= tile - overlap  # consecutive windows overlap by >= overlap
    else:
        assert offs == [0]


def test_rows_group_in_streaming_order():
    wins = plan_windows(500, 300, 128, 32)
    rows = [r for r, _ in group_rows(wins)]
    assert rows == sorted(rows)
    assert sum(len(ws) for _, ws in group_rows(wins)) == len(wins)
    # plan is row-major already
    assert [w.row_off for w in wins] == sorted(w.row_off for w in wins)


@pytest.mark.parametrize(
    "shape,overlap", [((128, 128), 32), ((64, 200), 100), ((7, 5), 3), ((256, 256), 0)]
)
def test_blend_weights_positive_smooth_and_symmetric(shape, overlap):
    wgt = blend_weights(*shape, overlap)
    assert wgt.shape == shape and wgt.dtype == np.float32
    assert wgt.min() > 0
    assert wgt.max() <= 1.0
    np.testing.assert_allclose(wgt, wgt[::-1, ::-1], rtol=1e-6)
    if overlap and min(shape) > 2 * overlap:
        # smooth: no jump bigger than one ramp step
        assert np.abs(np.diff(wgt, axis=1)).max() <= np.pi / overlap


def test_ramp_rises_monotonically_and_is_one_in_the_middle():
    r = ramp(100, 20)
    assert np.all(np.diff(r[:20]) > 0)
    assert np.all(r[20:80] == 1.0)
    assert r[0] > 0


def test_blending_constant_probabilities_gives_the_constant():
    """A weighted average of identical values is that value: blending itself adds no seams."""
    h, w, tile, overlap = 300, 410, 96, 24
    acc = np.zeros((h, w))
    wsum = np.zeros((h, w))
    wgt = blend_weights(min(tile, h), min(tile, w), overlap)
    for win in plan_windows(h, w, tile, overlap):
        acc[win.slices] += 0.37 * wgt
        wsum[win.slices] += wgt
    np.testing.assert_allclose(acc / wsum, 0.37, rtol=1e-6)


@pytest.mark.parametrize("args", [(0, 10, 0), (10, 0, 0), (10, 8, 8), (10, 8, -1)])
def test_bad_plan_arguments_raise(args):
    with pytest.raises(ValueError):
        plan_offsets(*args)


@settings(max_examples=60, deadline=None)
@given(plans())
def test_weight_sums_factorise_the_total_blend_weight(p):
    h, w, tile, overlap = p
    if h * w > 400_000:
        h, w = min(h, 600), min(w, 600)
    wsum = np.zeros((h, w), np.float64)
    wgt = blend_weights(min(tile, h), min(tile, w), overlap)
    for win in plan_windows(h, w, tile, overlap):
        wsum[win.slices] += wgt
    wy, wx = weight_sums(h, w, tile, overlap)
    np.testing.assert_allclose(np.outer(wy, wx), wsum, rtol=1e-5)
    assert wy.min() > 0 and wx.min() > 0


def test_decimated_read_is_strided_and_keeps_memory_small(tmp_path):
    import tracemalloc

    import rasterio

    from sam2elnet.data.tiling import decimated_read

    h, w = 3000, 400
    data = (np.arange(h * w) % 251).astype(np.uint8).reshape(h, w)
    data[:100, :100] = 0
    prof = dict(driver="GTiff", height=h, width=w, count=1, dtype="uint8", nodata=0, tiled=True)
    with rasterio.open(tmp_path / "s.tif", "w", **prof) as d:
        d.write(data, 1)
    with rasterio.open(tmp_path / "s.tif") as src:
        tracemalloc.start()
        ov, valid = decimated_read(src, [1], max_pixels=10_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    f = 11  # ceil(sqrt(3000 * 400 / 10_000))
    np.testing.assert_array_equal(ov[0], data[::f, ::f])
    np.testing.assert_array_equal(valid, data[::f, ::f] != 0)
    assert peak < 0.8 * h * w  # one strip at a time, never the whole raster (1.2 MB here)
