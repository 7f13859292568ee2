"""Free centre-line ends carried out to the road's end (export.line_ends, step 5 of
export.centrelines)."""

from __future__ import annotations

import numpy as np
import shapely

from sam2elnet.export.centrelines import mask_lines


def _ends(g) -> set[tuple[float, float]]:
    xy = shapely.get_coordinates(g)
    return {tuple(xy[0]), tuple(xy[-1])}


def test_a_wide_road_line_reaches_both_ends_of_the_road():
    # 7 px wide (rows 20..26), columns 10..89: thinning stops ~3 px short of each end; the
    # extension by the half-width (3.5 px) reaches the end pixels' centres
    m = np.zeros((48, 100), bool)
    m[20:27, 10:90] = True
    (short,) = mask_lines(m, extend_ends=False)
    assert short.length <= 79 - 4
    (g,) = mask_lines(m)
    assert _ends(g) == {(10.5, 23.5), (89.5, 23.5)}
    assert g.length == 79


def test_a_road_leaving_the_label_reaches_its_edge():
    m = np.zeros((40, 120), bool)
    m[14:25, :] = True  # 11 px wide, across the whole label
    (g,) = mask_lines(m)
    assert _ends(g) == {(0.5, 19.5), (119.5, 19.5)}


def test_only_free_ends_move_junctions_stay():
    # a T: the three lines still meet at one junction; the free ends reach the road ends
    m = np.zeros((100, 80), bool)
    m[60:65, 4:76] = True
    m[4:65, 38:43] = True
    lines = mask_lines(m)
    assert len(lines) == 3
    ends = [e for g in lines for e in _ends(g)]
    shared = {e for e in ends if ends.count(e) == 3}
    assert len(shared) == 1
    free = sorted(e for e in ends if e not in shared)
    assert free == [(4.5, 62.5), (40.5, 4.5), (75.5, 62.5)]
