"""``sam2elnet.data.skeleton.thin``: the border-only Guo-Hall thinning gives the pixels of
``skimage.morphology.thin`` (every road measure and centre-line export depends on it), at any
iteration limit, on random masks, road-like strips, masks touching the image edge and 2x2 blocks.

Road measures thinned both masks with ``skimage.morphology.thin``, which correlates the whole
image in every sub-iteration: ~80 % of ``road_counts``. The replacement visits the border only
(``benchmarks/bench_road_measures.py``: 3.5x per image on roads-dev, counts identical)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.morphology import thin as skimage_thin

from sam2elnet.data.skeleton import _guo_hall_lut, centre_lines, thin


def test_tables_are_the_papers_and_skimages() -> None:
    from skimage.morphology._skeletonize import G123_LUT, G123P_LUT

    assert np.array_equal(_guo_hall_lut(True), G123_LUT.astype(bool))
    assert np.array_equal(_guo_hall_lut(False), G123P_LUT.astype(bool))
    assert not _guo_hall_lut(True)[255] and not _guo_hall_lut(False)[255]  # interior stays


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))),
    st.sampled_from([None, 1, 2, 5]),
)
def test_same_pixels_as_skimage(mask: np.ndarray, iters: int | None) -> None:
    assert np.array_equal(thin(mask, max_num_iter=iters), skimage_thin(mask, max_num_iter=iters))


@pytest.mark.parametrize("seed", range(6))
def test_roads_and_blobs_as_skimage(seed: int) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    m = np.zeros((120, 150), dtype=bool)
    for _ in range(4):
        r, w = rng.integers(0, 110), rng.integers(1, 20)
        m[r : r + w] = True
        m = m[:, ::-1].T.copy() if m.shape[0] == m.shape[1] else m
    m |= ndimage.binary_dilation(rng.random(m.shape) < 0.001, iterations=int(rng.integers(2, 12)))
    m[:, :3] = True  # touching the edge
    assert np.array_equal(thin(m), skimage_thin(m))
    assert np.array_equal(centre_lines(m), skimage_thin(m))
    assert np.array_equal(thin(m.astype(np.uint8) * 255), skimage_thin(m))


def test_empty_and_not_2d() -> None:
    assert not thin(np.zeros((5, 7), bool)).any() and thin(np.zeros((5, 7), bool)).shape == (5, 7)
    with pytest.raises(ValueError, match="2-D"):
        thin(np.zeros((2, 3, 3), bool))
