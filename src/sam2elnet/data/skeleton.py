"""Centre lines of bool masks: the one skeleton of the project, whole or strip by strip.

The road measures (:mod:`sam2elnet.engine.metrics.roads`, strip by strip in
:mod:`sam2elnet.engine.strip_metrics`) and the road centre-line export
(:mod:`sam2elnet.export.centrelines`) thin masks with :func:`centre_lines`, so a length the
evaluation reports and a line the export writes come from the same pixels. It lives in ``data``
(below both ``engine`` and ``export``, which never import each other; docs/architecture.md).

**Strips with a halo** (:func:`strip_centre_lines`): a mask too large to thin at once (a
20,000^2 px scene label: a window's thinning holds :data:`THIN_BYTES_PER_PX` bytes per pixel,
2.8 GB) is thinned in row
strips, each read with ``H`` halo rows above and below, and the strips' core rows stitched give
*exactly* the skeleton of the whole mask. Why: Guo-Hall thinning (:func:`thin`) runs in
iterations of two sub-iterations, and a sub-iteration decides each pixel from its
8-neighbours only. In a window cut out of the mask, the rows at a cut (not an image edge) miss
their outer neighbours, so after ``s`` sub-iterations only rows at least ``s`` rows from a cut
are guaranteed to hold the whole mask's state. The window is thinned for ``K = (H - 2) // 2``
iterations (``2K + 2 <= H`` sub-iterations, counting one more iteration) and checked: when one
more iteration changes nothing in the window, it changes nothing in the whole mask's state over
the core rows either (they are more than ``2K + 2`` rows from a cut). Every strip passing that
check means the whole mask's thinning is at its fixed point after ``K`` iterations, i.e. the
stitched cores are the whole-mask skeleton, bit for bit. A strip that does not converge (roads or
blobs wider than about ``H`` pixels: thinning removes about one pixel per side per iteration) is
read again with the halo doubled, and later strips keep the larger halo. So the halo rule is:
``H >= 2K + 2`` with ``K`` at least the thinning iterations of the widest road of a strip, about
half its width; the default :data:`DEFAULT_HALO_ROWS` (64) covers roads up to some 60 px wide at
once and anything wider by doubling.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_HALO_ROWS",
    "MIN_ROAD_PIECE_PX",
    "THIN_BYTES_PER_PX",
    "StripSkeleton",
    "centre_lines",
    "halo_for_reach",
    "row_strips",
    "strip_centre_lines",
    "strip_rows_for",
    "thin",
]

MIN_ROAD_PIECE_PX = 10
"""Shortest centre-line piece treated as road, in pixels: the road connectivity measure ignores
true-skeleton components under this many pixels (``min_component_px`` of
:func:`sam2elnet.engine.metrics.roads.road_counts`), and the centre-line export drops spurs and
isolated pieces shorter than this (:data:`sam2elnet.export.centrelines.MIN_LENGTH_PX`)."""

DEFAULT_HALO_ROWS = 64
"""First halo of a strip's thinning (rows each side): exact at once for roads up to ~60 px wide
(30 iterations), doubled per strip for wider ones (module docstring)."""

THIN_BYTES_PER_PX = 7
"""Bytes per pixel a window's centre lines hold at their peak, for planning strips
(:func:`strip_rows_for`), as measured by ``SAM2ELNET_THREADS=1 nice -n 10 .venv/bin/python
benchmarks/bench_thin_memory.py --sizes 2000 4000`` (tracemalloc, road networks of ~10 % road,
2026-12-03): 7.00 B/px for a strip window (its bool mask, the border-only :func:`thin`, the
thinned window kept for the convergence check and the check's thinning) at both 4 and 16 Mpx;
one whole thinning traced 5.00 B/px (its padded uint8 copy, the border flags, the bool output),
its peak resident memory over the resident memory before it 4.1 B/px at 4 Mpx and 4.0 B/px at
16 Mpx (docs/benchmarks.md)."""


def centre_lines(mask: np.ndarray) -> np.ndarray:
    """One-pixel centre lines of a bool mask: Guo & Hall (1989) parallel thinning (:func:`thin`),
    run to its fixed point.

    Args:
        mask: bool ``(H, W)``.

    Returns:
        bool ``(H, W)``, True on the centre lines (all False for an empty mask); 8-connected
        lines one pixel wide.
    """
    return thin(mask) if mask.any() else np.zeros(mask.shape, dtype=bool)


@functools.cache
def _guo_hall_tables() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of Guo & Hall's algorithm A1 (Z. Guo and R. W. Hall, "Parallel thinning
    with two-subiteration algorithms", Comm. ACM 32(3), 1989), one per sub-iteration.

    The paper names the 8 neighbours of a pixel ``P`` x1..x8, counter-clockwise from the east::

        x4 x3 x2
        x5 P  x1
        x6 x7 x8

    and a table here is indexed by the *neighbour code* ``sum(x_i << (i - 1))`` (x1 is bit 0,
    x8 bit 7). With x9 = x1, the paper's quantities are

    * ``C(P)``, the number of 8-connected foreground components around P:
      ``sum over i = 1..4 of (not x_{2i-1}) and (x_{2i} or x_{2i+1})``;
    * ``N1(P) = sum over k = 1..4 of (x_{2k-1} or x_{2k})``,
      ``N2(P) = sum over k = 1..4 of (x_{2k} or x_{2k+1})``, ``N(P) = min(N1, N2)``;

    and P is deleted in a sub-iteration when ``C(P) = 1`` (deleting it keeps connectivity),
    ``2 <= N(P) <= 3`` (it is neither a line end nor interior) and, in the first sub-iteration,
    ``(x2 or x3 or not x8) and x1 = 0`` (x1 is background, or x2 and x3 are while x8 is not: P
    lies on an east or north border), in the second ``(x6 or x7 or not x4) and x5 = 0`` (a west
    or south border).

    Returns:
        ``(first, second)``: bool ``(256,)`` each, True where a pixel with that neighbour code is
        deleted; code 255 (interior) is False in both. They equal the tables of
        ``skimage.morphology.thin`` (tests/data/test_thin.py).
    """
    codes = np.arange(256)
    on = [(codes >> (i - 1)) & 1 == 1 for i in range(1, 9)]  # on[i - 1]: x_i, bool (256,)

    def x(i: int) -> np.ndarray:
        return on[(i - 1) % 8]  # x9 is x1

    crossings = sum((~x(2 * i - 1) & (x(2 * i) | x(2 * i + 1))).astype(int) for i in range(1, 5))
    n1 = sum((x(2 * k - 1) | x(2 * k)).astype(int) for k in range(1, 5))
    n2 = sum((x(2 * k) | x(2 * k + 1)).astype(int) for k in range(1, 5))
    n = np.minimum(n1, n2)
    deletable = (crossings == 1) & (n >= 2) & (n <= 3)
    kept_first = (x(2) | x(3) | ~x(8)) & x(1)
    kept_second = (x(6) | x(7) | ~x(4)) & x(5)
    return deletable & ~kept_first, deletable & ~kept_second


def thin(mask: np.ndarray, max_num_iter: int | None = None) -> np.ndarray:
    """Guo & Hall (1989) parallel thinning (algorithm A1, tables: :func:`_guo_hall_tables`), the
    same pixels as ``skimage.morphology.thin(mask, max_num_iter)``, in time proportional to the
    mask's border rather than its area.

    A pixel whose 8 neighbours are all foreground is never deleted (code 255 deletes in neither
    table), and pixels are only ever removed, so only the *border* (foreground pixels with a
    background neighbour) needs its neighbour code, and the border changes only next to deleted
    pixels. Each sub-iteration computes the codes of the border from the state before it
    (parallel, as the paper), deletes, and adds the foreground neighbours of the deleted pixels
    to the border. Measured 11x faster than ``skimage.morphology.thin``, which codes every pixel
    in every sub-iteration, on 400 px road masks (``benchmarks/bench_road_measures.py``,
    docs/benchmarks.md).

    Args:
        mask: ``(H, W)``, any dtype, nonzero = foreground.
        max_num_iter: at most this many iterations (of two sub-iterations each); None: until an
            iteration deletes nothing; 0 means the same as None, a negative number no iteration
            (both as ``skimage.morphology.thin``).

    Returns:
        bool ``(H, W)``, a new array.

    Raises:
        ValueError: ``mask`` is not 2-D.
    """
    tables = _guo_hall_tables()
    img = np.asarray(mask)
    if img.ndim != 2:
        raise ValueError(f"thinning needs a 2-D mask, got shape {img.shape}")
    h, w = img.shape
    pad = np.zeros((h + 2, w + 2), dtype=np.uint8)
    pad[1:-1, 1:-1] = img != 0
    flat = pad.ravel()
    row = w + 2
    # neighbour offsets in the padded flat array, x1 (east) .. x8 (south-east), weight 2**(i-1)
    offsets = np.array([1, 1 - row, -row, -row - 1, -1, row - 1, row, row + 1], dtype=np.intp)
    # the border: foreground with a background neighbour (image ops: ~1 B/px, no index arrays)
    inner = pad[1:-1, 1:-1] == 1
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inner &= pad[dy : dy + h, dx : dx + w] == 1
    edge_img = np.zeros_like(pad, dtype=bool)
    edge_img[1:-1, 1:-1] = (pad[1:-1, 1:-1] == 1) & ~inner
    del inner
    border = np.flatnonzero(edge_img)
    edge = edge_img.ravel()  # membership of ``border``
    n_iter, limit = 0, (max_num_iter or np.inf)  # 0 as None, like skimage
    while n_iter < limit:
        changed = False
        for lut in tables:
            code = np.zeros(border.size, dtype=np.uint8)
            for bit, off in enumerate(offsets):
                code |= flat[border + off] << np.uint8(bit)
            gone = lut[code]
            if not gone.any():
                continue
            changed = True
            dead = border[gone]
            flat[dead] = 0
            edge[dead] = False
            parts = []  # new border pixels: foreground neighbours of the deleted ones
            for off in offsets:
                c = dead + off
                parts.append(c[(flat[c] == 1) & ~edge[c]])
            near = np.unique(np.concatenate(parts))
            edge[near] = True
            border = np.concatenate([border[~gone], near])
        n_iter += 1
        if not changed:
            break
    return pad[1:-1, 1:-1].astype(bool)


def row_strips(height: int, strip_rows: int) -> Iterator[tuple[int, int]]:
    """``(first row, end row)`` of consecutive strips of ``strip_rows`` rows (the last one
    shorter) covering ``height`` rows; ``strip_rows`` < 1 counts as 1."""
    step = max(1, int(strip_rows))
    for a in range(0, height, step):
        yield a, min(height, a + step)


def strip_rows_for(width: int, budget_bytes: int, halo_rows: int = DEFAULT_HALO_ROWS) -> int:
    """Core rows per strip so that a window (the strip plus ``halo_rows`` rows each side) of a
    ``width`` px wide mask thins within ``budget_bytes`` (:data:`THIN_BYTES_PER_PX` per pixel);
    at least ``halo_rows`` rows (a narrower strip would read mostly halo)."""
    rows = int(budget_bytes) // (THIN_BYTES_PER_PX * max(1, int(width))) - 2 * int(halo_rows)
    return max(int(halo_rows), rows)


class _NotConverged(Exception):
    pass


def _thin_window(m: np.ndarray, iterations: int, whole: bool) -> np.ndarray:
    """Thinning of a window; raises _NotConverged when ``iterations`` do not reach a fixed point
    (a window covering the whole mask is thinned without limit, as :func:`centre_lines`)."""
    if whole or not m.any():
        return centre_lines(m)
    s = thin(m, max_num_iter=iterations)
    if not np.array_equal(thin(s, max_num_iter=1), s):
        raise _NotConverged
    return s


@dataclass
class StripSkeleton:
    """One strip of :func:`strip_centre_lines`.

    Attributes:
        row0, row1: the core rows ``[row0, row1)`` (strips tile the mask without overlap).
        window_row0: first row of the window that was read (``masks`` start there).
        masks: the reader's bool masks of the window rows, full width, as read.
        skeletons: per mask, the whole-mask :func:`centre_lines` of rows
            ``[row0, min(height, row1 + extra_rows))``.
        halo: the halo rows this strip needed (>= the one asked for).
    """

    row0: int
    row1: int
    window_row0: int
    masks: list[np.ndarray]
    skeletons: list[np.ndarray]
    halo: int


def strip_centre_lines(
    read: Callable[[int, int], Sequence[np.ndarray]],
    height: int,
    strip_rows: int,
    halo_rows: int = DEFAULT_HALO_ROWS,
    extra_rows: int = 0,
) -> Iterator[StripSkeleton]:
    """The :func:`centre_lines` of one or more masks, strip by strip, equal to thinning each
    whole mask (the halo rule: module docstring).

    Args:
        read: ``read(row0, row1)`` -> the bool masks' rows ``[row0, row1)``, full width (one or
            more masks of one shape, e.g. prediction and truth; each is thinned).
        height: rows of the masks.
        strip_rows: core rows per strip (:func:`strip_rows_for` picks it from a memory budget).
        halo_rows: first halo (rows each side, at least 4); doubled for a strip whose thinning
            does not converge within it, and kept for the strips after it.
        extra_rows: also give the skeleton of this many rows after each core (e.g. 1, to find
            the skeleton steps that cross into the next strip).

    Yields:
        :class:`StripSkeleton` per strip, top to bottom. A window that covers all rows is
        thinned without an iteration limit.
    """
    halo = max(4, int(halo_rows))
    for a, b in row_strips(height, strip_rows):
        hi = min(height, b + max(0, int(extra_rows)))
        while True:
            w0, w1 = max(0, a - halo), min(height, hi + halo)
            masks = [np.asarray(m, dtype=bool) for m in read(w0, w1)]
            whole = w0 == 0 and w1 == height
            try:
                skels = [_thin_window(m, (halo - 2) // 2, whole)[a - w0 : hi - w0] for m in masks]
                break
            except _NotConverged:
                halo *= 2
        yield StripSkeleton(a, b, w0, masks, skels, halo)


def halo_for_reach(reach_px: float, halo_rows: int = DEFAULT_HALO_ROWS) -> int:
    """A first halo of at least ``halo_rows`` rows that also holds ``ceil(reach_px) + 1`` rows
    (a caller measuring distances up to ``reach_px`` around the core of the same window)."""
    return max(int(halo_rows), math.ceil(reach_px) + 1, 4)
