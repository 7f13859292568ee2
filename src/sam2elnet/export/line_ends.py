"""Free ends of road centre lines carried out to the road's end.

Thinning erodes a road end like its sides: a free end of the skeleton (a road end, a dead end,
a road leaving the label at its edge) stops about half the road's width short of where the road
polygon ends, so a 12 px wide road's line stops ~6 px early and the lines of two neighbouring
tiles do not meet at the tile edge. :func:`extend_free_ends` moves each free end (a line end no
other line shares) further along the line's last direction by the local half-width:

* half-width ``h``: the Euclidean distance transform of the road mask at the end pixel
  (``scipy.ndimage.distance_transform_edt``: distance from the pixel centre to the nearest
  non-road pixel centre) minus half a pixel, i.e. ``w / 2`` on the centre pixel of a road
  ``w`` pixels wide (odd ``w``); computed on the mask window of :data:`END_REACH_PX` pixels
  around the end (the label's outside counts as non-road), so wider roads are capped there;
* direction: from the line's vertex at least ``max(2, h)`` pixels back (along the line) to the
  end, which smooths the skeleton's one-pixel staircase;
* clipped to the road mask: steps of one pixel along that direction, at most ``ceil(h) + 1``,
  stop before the first non-road pixel (or the label's edge); the new end is the centre of the
  last road pixel reached, so every vertex stays on a road pixel centre.

Lines whose ends meet other lines (junctions) and closed lines are unchanged. The mask is read
by small windows (``read_box``), so this runs the same on a label thinned whole or in strips.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["END_REACH_PX", "extend_free_ends"]

END_REACH_PX = 64
"""Half-size of the mask window read around a free end, pixels: half-widths are measured up to
this (roads up to ~128 px wide); the extension never goes farther."""

BoxReader = Callable[[int, int, int, int], np.ndarray]
"""``read_box(row0, row1, col0, col1)`` -> bool mask of rows ``[row0, row1)``, columns
``[col0, col1)`` (clipped to the label by the caller's arguments)."""


def extend_free_ends(
    lines: list[Any], read_box: BoxReader, height: int, width: int, reach_px: int = END_REACH_PX
) -> list[Any]:
    """``lines`` (pixel coordinates, vertices on pixel centres) with each free end carried out
    to the road's end (module docstring). ``height`` x ``width``: the mask's size."""
    import shapely

    from sam2elnet.export.line_graph import degrees, line_ends

    deg = degrees(lines)
    ends = [line_ends(g) for g in lines]
    out = []
    for g, (a, b) in zip(lines, ends, strict=True):
        if a == b or (deg[a] > 1 and deg[b] > 1):
            out.append(g)
            continue
        xy = shapely.get_coordinates(g)
        if deg[b] == 1:
            xy = _extend(xy, read_box, height, width, reach_px)
        if deg[a] == 1:
            xy = _extend(xy[::-1], read_box, height, width, reach_px)[::-1]
        out.append(shapely.linestrings(xy))
    return out


def _extend(xy: np.ndarray, read_box: BoxReader, height: int, width: int, reach: int) -> np.ndarray:
    """``xy`` with its last vertex's road end appended (or as it is)."""
    from scipy import ndimage

    end = xy[-1]
    c, r = int(end[0]), int(end[1])  # pixel centres: (col + 0.5, row + 0.5)
    r0, r1 = max(0, r - reach), min(height, r + reach + 1)
    c0, c1 = max(0, c - reach), min(width, c + reach + 1)
    m = np.asarray(read_box(r0, r1, c0, c1), dtype=bool)
    if not m[r - r0, c - c0]:
        return xy
    edt = ndimage.distance_transform_edt(np.pad(m, 1))
    half = float(edt[r - r0 + 1, c - c0 + 1]) - 0.5
    # direction: from the vertex at least max(2, half) px back along the line
    steps = np.hypot(*np.diff(xy[::-1], axis=0).T)
    back = np.cumsum(steps)
    k = int(np.searchsorted(back, max(2.0, half)))
    start = xy[::-1][min(k + 1, len(xy) - 1)]
    u = end - start
    norm = math.hypot(*u)
    if norm == 0 or half <= 0:
        return xy
    u = u / norm
    last = None
    for t in range(1, math.ceil(half) + 2):
        px, py = end + t * u
        col, row = math.floor(px), math.floor(py)
        if not (r0 <= row < r1 and c0 <= col < c1) or not m[row - r0, col - c0]:
            break
        last = (col + 0.5, row + 0.5)
    if last is None or last == (float(end[0]), float(end[1])):
        return xy
    return np.concatenate([xy, np.array([last])])
