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

from sam2elnet.data.skeleton import _guo_hall_tables, centre_lines, thin


def test_tables_are_the_papers_and_skimages() -> None:
    # skimage's tables are private: a refactor there skips this; the pixel tests below compare
    # the public outputs anyway
    skel = pytest.importorskip("skimage.morphology._skeletonize")
    if not hasattr(skel, "G123_LUT") or not hasattr(skel, "G123P_LUT"):
        pytest.skip("skimage no longer exposes G123_LUT / G123P_LUT")
    first, second = _guo_hall_tables()
    assert np.array_equal(first, skel.G123_LUT.astype(bool))
    assert np.array_equal(second, skel.G123P_LUT.astype(bool))


def test_tables_by_hand() -> None:
    """Codes worked out from the paper's conditions: bit i - 1 is neighbour x_i, x1 east,
    counter-clockwise."""
    first, second = _guo_hall_tables()
    assert not first[255] and not second[255]  # interior stays
    assert not first[0] and not second[0]  # an isolated pixel stays (N(P) = 0)
    assert not first[1] and not second[1]  # a line end stays (N(P) = 1)
    west_half = 0b0111_1000  # x4..x7 foreground: P on an east border
    assert first[west_half] and not second[west_half]
    east_half = 0b1000_0111  # x8, x1, x2, x3: P on a west border
    assert second[east_half] and not first[east_half]
    assert not first[0b0001_0001] and not second[0b0001_0001]  # x1 and x5: C(P) = 2


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
    for _ in range(4):  # horizontal and vertical roads, 1-19 px wide
        r, w = rng.integers(0, 110), rng.integers(1, 20)
        m[r : r + w] = True
        m = np.rot90(m)
    assert m.shape == (120, 150)
    m |= ndimage.binary_dilation(rng.random(m.shape) < 0.001, iterations=int(rng.integers(2, 12)))
    m[:, :3] = True  # touching the edge
    assert np.array_equal(thin(m), skimage_thin(m))
    assert np.array_equal(centre_lines(m), skimage_thin(m))
    assert np.array_equal(thin(m.astype(np.uint8) * 255), skimage_thin(m))


def test_empty_and_not_2d() -> None:
    assert not thin(np.zeros((5, 7), bool)).any() and thin(np.zeros((5, 7), bool)).shape == (5, 7)
    with pytest.raises(ValueError, match="2-D"):
        thin(np.zeros((2, 3, 3), bool))
