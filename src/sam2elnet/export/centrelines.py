"""Road centre lines: a binary road mask -> LineStrings (the export's ``centre_lines`` layer,
:mod:`sam2elnet.export.centreline_layer`, is made with these).

Why: a road mapper (OpenStreetMap editing, network analysis, QGIS) works with road axes and road
length, not with road area polygons. :func:`mask_lines` vectorises the centre lines of a mask:

1. the skeleton: :func:`sam2elnet.data.skeleton.centre_lines` (Guo-Hall thinning; the skeleton
   the road measures of ``elnet evaluate`` count, so the two agree on what a road's length is);
2. every pair of 8-neighbour skeleton pixels becomes a two-point segment between the pixel
   centres; a diagonal step is left out where the two pixels also meet through a 4-neighbour
   (the corner pixel is on the skeleton), so an L-shaped corner gives no small triangle;
3. the segments are merged into polylines (``shapely.line_merge``): one line per stretch between
   ends and junctions (skeleton pixels with three or more neighbours);
4. spurs, end branches shorter than ``min_length_px`` that hang off a junction (thinning leaves
   them at road ends and corners of the mask), are dropped once and the rest merged again; then
   isolated pieces shorter than ``min_length_px`` (specks) are dropped
   (:data:`MIN_LENGTH_PX`);
5. free ends (line ends no other line shares), which thinning leaves about half a road width
   short of the road's end, are carried out along the line's last direction by the local
   half-width from the distance transform, clipped to the road mask
   (:func:`sam2elnet.export.line_ends.extend_free_ends`);
6. each line is simplified (Douglas-Peucker, ``simplify_px`` pixels, :data:`SIMPLIFY_PX`; ends
   kept, so lines still meet at junctions).

Coordinates: pixel centres, ``(col + 0.5, row + 0.5)`` through the label's affine transform,
the convention of the polygon export (GDAL's: pixel corners at integers, so a polygon edge lies
half a pixel from the centre line of a one-pixel road). Without a CRS that is pixel coordinates
(x = column, y = row; ``--pixel-coords qgis`` y = -row), as the polygons.

Large labels are thinned in row strips (:func:`skeleton_lines` with ``strip_rows``; the export
layer decides when: :class:`sam2elnet.export.centreline_layer.CentreLineLayer`), whose halo rule
(:func:`sam2elnet.data.skeleton.strip_centre_lines`) makes the stitched skeleton that of the
whole label, bit for bit. Each strip's skeleton is read with one row more than its
core, so the skeleton steps from a strip's last row into the next strip are found too (step 2
keeps a segment in the strip of its upper pixel); the strips' segments are merged per strip and
then all together (step 3), so a road crossing strip borders is one line, as on the whole label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sam2elnet.data.skeleton import (
    DEFAULT_HALO_ROWS,
    MIN_ROAD_PIECE_PX,
    strip_centre_lines,
)
from sam2elnet.export.line_ends import extend_free_ends
from sam2elnet.export.line_graph import (
    canonical,
    degrees,
    isolated,
    line_ends,
    merge,
    split_at_rows,
)

__all__ = [
    "MIN_LENGTH_PX",
    "SIMPLIFY_PX",
    "finish_lines",
    "mask_lines",
    "skeleton_lines",
    "skeleton_segments",
]


SIMPLIFY_PX = 1.0
"""Default Douglas-Peucker tolerance of the centre lines, in pixels. The skeleton of a digitised
band zigzags by one pixel (its pixels sit on the grid, a line at an angle becomes a staircase);
a one-pixel tolerance straightens the staircase and keeps every line within one pixel of the
skeleton, i.e. inside any road at least two pixels wide."""

MIN_LENGTH_PX = float(MIN_ROAD_PIECE_PX)
"""Default shortest spur / isolated piece kept, in pixels (:data:`sam2elnet.data.skeleton.
MIN_ROAD_PIECE_PX`: the road connectivity measure ignores skeleton components under this size
too). Thinning a road end or a mask corner leaves spurs about half the road width long; a side
road shorter than this that ends in the open is dropped as well."""


def skeleton_segments(skel: np.ndarray) -> np.ndarray:
    """Two-point segments between 8-neighbour pixels of a one-pixel-wide skeleton.

    Args:
        skel: bool ``(H, W)``.

    Returns:
        float64 ``(N, 2, 2)``: segment, end, ``(x, y)`` = ``(col + 0.5, row + 0.5)`` (pixel
        centres). Each neighbour pair once; a diagonal pair is left out when a pixel on the
        skeleton joins the two through 4-neighbours (no triangles at corners).
    """
    s = np.pad(np.asarray(skel, dtype=bool), 1)
    r, k = np.nonzero(s)  # skeleton pixels (row-major), padded coordinates: no dense temporaries
    right, down = s[r, k + 1], s[r + 1, k]
    down_right, down_left, left = s[r + 1, k + 1], s[r + 1, k - 1], s[r, k - 1]
    pairs = (
        (right, (0, 1)),
        (down, (1, 0)),
        (down_right & ~right & ~down, (1, 1)),
        (down_left & ~left & ~down, (1, -1)),
    )
    out = []
    for hit, (dr, dc) in pairs:
        rr, kk = r[hit] - 1, k[hit] - 1
        a = np.stack([kk + 0.5, rr + 0.5], axis=1)
        b = np.stack([kk + dc + 0.5, rr + dr + 0.5], axis=1)
        out.append(np.stack([a, b], axis=1))
    return np.concatenate(out)


def _core_segments(skel: np.ndarray, row0: int, core_rows: int) -> np.ndarray:
    """:func:`skeleton_segments` of a strip's skeleton rows (its core plus the first row of the
    next strip) whose upper pixel is in the core, in the label's pixel coordinates."""
    segs = skeleton_segments(skel)
    segs = segs[segs[:, 0, 1] < core_rows]
    segs[:, :, 1] += row0
    return segs


def skeleton_lines(
    read: Callable[[int, int], np.ndarray],
    height: int,
    strip_rows: int | None = None,
    halo_rows: int = DEFAULT_HALO_ROWS,
    bar: Any = None,
) -> list[Any]:
    """Steps 1-3 of the module docstring: the merged, unsimplified skeleton lines of a mask read
    by rows, strip by strip.

    Args:
        read: ``read(row0, row1)`` -> bool rows ``[row0, row1)`` of the mask, full width.
        height: rows of the mask.
        strip_rows: core rows per strip (None: all rows, one whole thinning).
        halo_rows: first thinning halo (:func:`~sam2elnet.data.skeleton.strip_centre_lines`).
        bar: a progress bar (``update(1)`` per strip) or None.

    Returns:
        LineStrings in pixel coordinates (pixel centres), one per stretch between ends and
        junctions; the same lines as one whole thinning (the skeleton is the same, bit for bit;
        a ring may start at another vertex, a line may run the other way).
    """
    import shapely

    rows = height if strip_rows is None else max(1, int(strip_rows))
    lines: list[Any] = []
    for s in strip_centre_lines(lambda r0, r1: (read(r0, r1),), height, rows, halo_rows, 1):
        segs = _core_segments(s.skeletons[0], s.row0, s.row1 - s.row0)
        if len(segs):
            cut = [r + 0.5 for r in (s.row0, s.row1) if 0 < r < height]
            lines.extend(split_at_rows(merge(list(shapely.linestrings(segs))), cut))
        if bar is not None:
            bar.update(1)
    return merge(lines) if rows < height else lines


def mask_lines(
    mask: np.ndarray,
    *,
    simplify_px: float = SIMPLIFY_PX,
    min_length_px: float = MIN_LENGTH_PX,
    strip_rows: int | None = None,
    halo_rows: int = DEFAULT_HALO_ROWS,
    extend_ends: bool = True,
) -> list[Any]:
    """Centre lines of a bool road mask as shapely LineStrings in pixel coordinates.

    Steps and conventions: the module docstring (skeleton, 8-neighbour segments, merge, spur
    and speck removal, simplification).

    Args:
        mask: bool ``(H, W)`` (True = road).
        simplify_px: Douglas-Peucker tolerance in pixels (0: none); default :data:`SIMPLIFY_PX`.
        min_length_px: spurs and isolated pieces shorter than this many pixels are dropped
            (0: none); default :data:`MIN_LENGTH_PX`.
        strip_rows: thin in row strips of this many rows (with ``halo_rows`` halo rows first;
            :func:`skeleton_lines`); None: the whole mask at once. Same lines either way.
        halo_rows: first halo of the strips.
        extend_ends: carry free line ends out to the road's end (step 5; False: where the
            thinning left them, about half a road width short).

    Returns:
        LineStrings, ``x = col + 0.5``, ``y = row + 0.5``, lengths in pixels; ``[]`` for a mask
        without road (or only specks).

    Raises:
        ValueError: ``mask`` not 2-D, or a negative tolerance / length.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask_lines needs a 2-D mask, got shape {m.shape}")
    if simplify_px < 0 or min_length_px < 0:
        raise ValueError("simplify_px and min_length_px must be >= 0")
    lines = skeleton_lines(lambda r0, r1: m[r0:r1], m.shape[0], strip_rows, halo_rows)
    ends = None
    if extend_ends:

        def ends(found: list[Any]) -> list[Any]:
            return extend_free_ends(found, lambda r0, r1, c0, c1: m[r0:r1, c0:c1], *m.shape)

    return finish_lines(lines, simplify_px=simplify_px, min_length_px=min_length_px, ends=ends)


def finish_lines(
    lines: list[Any],
    *,
    simplify_px: float,
    min_length_px: float,
    ends: Callable[[list[Any]], list[Any]] | None = None,
) -> list[Any]:
    """Steps 4-6 of the module docstring on merged skeleton lines (:func:`skeleton_lines`):
    spurs and specks under ``min_length_px`` dropped, free ends extended by ``ends``
    (:func:`~sam2elnet.export.line_ends.extend_free_ends` on the mask; None: as thinned),
    Douglas-Peucker at ``simplify_px``."""
    import shapely

    if not lines:
        return []
    if min_length_px > 0:
        deg = degrees(lines)
        keep = []
        for g in lines:
            a, b = (deg[e] for e in line_ends(g))
            spur = min(a, b) == 1 and max(a, b) >= 3 and g.length < min_length_px
            if not spur:
                keep.append(g)
        lines = merge(keep) if len(keep) < len(lines) else lines
        deg = degrees(lines)
        lines = [g for g in lines if g.length >= min_length_px or not isolated(g, deg)]
    if ends is not None:
        lines = ends(lines)
    lines = canonical(lines)
    if simplify_px > 0:
        lines = list(
            shapely.simplify(np.asarray(lines, dtype=object), simplify_px, preserve_topology=True)
        )
    return [g for g in lines if not g.is_empty and g.length > 0]
