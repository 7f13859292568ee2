"""Boundary F-score and road measures computed strip by strip equal the whole-mask counts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from sam2elnet.engine.metrics import boundary_counts, boundary_measures, road_counts
from sam2elnet.engine.strip_metrics import (
    strip_boundary_counts,
    strip_boundary_measures,
    strip_road_counts,
)


def _reader(pred, truth, valid):
    def read(r0, r1):
        return pred[r0:r1], truth[r0:r1], None if valid is None else valid[r0:r1]

    return read


@st.composite
def pairs(draw, blobs: bool = False):
    h = draw(st.integers(8, 48))
    w = draw(st.integers(8, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([0.05, 0.3, 0.5, 0.8]))

    def mask():
        m = rng.random((h, w)) < density
        if blobs:  # thick shapes: many thinning iterations, so halos must grow
            m = ndimage.binary_dilation(m, iterations=int(rng.integers(1, 6)))
        return m

    valid = rng.random((h, w)) < 0.9 if draw(st.booleans()) else None
    return mask(), mask(), valid, draw(st.integers(1, 12))


@settings(max_examples=60, deadline=None)
@given(pairs(), st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0]))
def test_strip_boundary_counts_equal_whole(pair, tol):
    pred, truth, valid, rows = pair
    whole = boundary_counts(pred, truth, tol, valid)
    assert strip_boundary_counts(_reader(pred, truth, valid), pred.shape[0], tol, rows) == whole


@settings(max_examples=60, deadline=None)
@given(pairs(), st.sampled_from([0.0, 2.0]))
def test_strip_hd95_equals_whole(pair, tol):
    """HD95 read strip by strip is the whole read's (NaN where only one mask has a boundary);
    before, strips gave none."""
    pred, truth, valid, rows = pair
    counts, hd = boundary_measures(pred, truth, tol, valid)
    got = strip_boundary_measures(_reader(pred, truth, valid), pred.shape[0], tol, rows)
    assert got[0] == counts
    assert got[1] == hd or (np.isnan(hd) and np.isnan(got[1]))


@settings(max_examples=60, deadline=None)
@given(pairs(blobs=True), st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([4, 6, 64]))
def test_strip_road_counts_equal_whole(pair, buffer_px, halo):
    pred, truth, valid, rows = pair
    p, t = (pred & valid, truth & valid) if valid is not None else (pred, truth)
    whole = road_counts(p, t, buffer_px=buffer_px, min_component_px=3)
    got = strip_road_counts(
        _reader(pred, truth, valid), *pred.shape, buffer_px=buffer_px, min_component_px=3,
        strip_rows=rows, halo_rows=halo,
    )  # fmt: skip
    assert got == whole


def test_strip_road_counts_long_road_across_many_strips():
    """A 5 px wide road crossing 16 strips diagonally, broken once in the prediction: one true
    component (joined across strips), not preserved; the unbroken copy is preserved."""
    truth = np.zeros((96, 64), dtype=bool)
    for r in range(96):
        c = 4 + r // 2
        truth[r, c : c + 5] = True
    broken = truth.copy()
    broken[50:58] = False
    for pred, ok in ((truth, 1), (broken, 0)):
        got = strip_road_counts(_reader(pred, truth, None), 96, 64, strip_rows=6, halo_rows=4)
        assert got == road_counts(pred, truth)
        assert (got.components_total, got.components_preserved) == (1, ok)
