"""Centre lines of bool masks: the one skeleton of the project, whole or strip by strip.

The road measures (:mod:`sam2elnet.engine.metrics.roads`, strip by strip in
:mod:`sam2elnet.engine.strip_metrics`) and the road centre-line export
(:mod:`sam2elnet.export.centrelines`) thin masks with :func:`centre_lines`, so a length the
evaluation reports and a line the export writes come from the same pixels. It lives in ``data``
(below both ``engine`` and ``export``, which never import each other; docs/architecture.md).

**Strips with a halo** (:func:`strip_centre_lines`): a mask too large to thin at once (a
20,000^2 px scene label: the thinning holds 12-20 bytes per pixel, 5-8 GB) is thinned in row
strips, each read with ``H`` halo rows above and below, and the strips' core rows stitched give
*exactly* the skeleton of the whole mask. Why: Guo-Hall thinning (``skimage.morphology.thin``)
runs in iterations of two sub-iterations, and a sub-iteration decides each pixel from its
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

THIN_BYTES_PER_PX = 14
"""Bytes per pixel a window's centre lines hold at their peak, for planning strips, as measured:
the window's bool mask (1), the thinned window kept for the convergence check (1) and one
``skimage.morphology.thin`` (12, its output included: its uint8 copy, neighbour codes, deletion
map and their replacements). ``SAM2ELNET_THREADS=1 nice -n 10 .venv/bin/python
benchmarks/bench_thin_memory.py --sizes 2000 4000`` (tracemalloc, road networks of ~10 % road)
measured 12.00 B/px for one whole thinning and 14.00 B/px for a strip window's (the mask, the
thinning, the check) at both 4 and 16 Mpx; the thinning's peak resident memory over the resident
memory before it was 18.0 B/px at 4 Mpx and 11.0 B/px at 16 Mpx (a fixed ~24 MB, then less
than traced: pages allocated but never touched), docs/benchmarks.md. The whole-label export
path measured 13 B/px of peak resident memory at 25-100 Mpx (``benchmarks/bench_centrelines.py``,
the label's decoding included)."""


def centre_lines(mask: np.ndarray) -> np.ndarray:
    """One-pixel centre lines of a bool mask: Guo & Hall (1989) parallel thinning (:func:`thin`,
    the pixels of ``skimage.morphology.thin``), run to its fixed point.

    Args:
        mask: bool ``(H, W)``.

    Returns:
        bool ``(H, W)``, True on the centre lines (all False for an empty mask); 8-connected
        lines one pixel wide.
    """
    return thin(mask) if mask.any() else np.zeros(mask.shape, dtype=bool)


def _guo_hall_lut(first: bool) -> np.ndarray:
    """Deletion table of one Guo & Hall (1989) sub-iteration, bool ``(256,)`` indexed by the
    neighbour code: bit ``i - 1`` is neighbour ``x_i``, counter-clockwise from ``x1`` = east
    (``x2`` north-east, ``x3`` north, ... ``x8`` south-east). A pixel is deleted when
    ``C(p) == 1`` (one 8-connected background-bounded run), ``2 <= min(N1, N2) <= 3`` and, in the
    first sub-iteration, ``(x2 | x3 | ~x8) & x1 == 0`` (the second: ``(x6 | x7 | ~x4) & x5 ==
    0``): Guo & Hall, "Parallel thinning with two-subiteration algorithms", Comm. ACM 32(3),
    1989, algorithm A1. The tables equal those of ``skimage.morphology.thin`` (tested)."""
    lut = np.zeros(256, dtype=bool)
    for code in range(256):
        x = [(code >> (i % 8)) & 1 for i in range(9)]  # x[i - 1] is x_i; x[8] wraps to x1
        c = sum(1 for i in (0, 2, 4, 6) if not x[i] and (x[i + 1] or x[i + 2]))
        n1 = sum(1 for k in (0, 2, 4, 6) if x[k] or x[k + 1])
        n2 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[k + 1])
        if first:
            m = (x[1] or x[2] or not x[7]) and x[0]
        else:
            m = (x[5] or x[6] or not x[3]) and x[4]
        lut[code] = c == 1 and 2 <= min(n1, n2) <= 3 and not m
    return lut


_LUTS: tuple[np.ndarray, np.ndarray] | None = None


def thin(mask: np.ndarray, max_num_iter: int | None = None) -> np.ndarray:
    """Guo & Hall (1989) parallel thinning, the same pixels as ``skimage.morphology.thin(mask,
    max_num_iter)``, in time proportional to the mask's border rather than its area.

    ``skimage`` correlates the whole image with the 3x3 neighbour weights in every sub-iteration
    (about 2 x half the widest road's width of them); a pixel whose 8 neighbours are all
    foreground is never deleted (code 255 deletes in neither table), and pixels are only ever
    removed, so only the *border* (foreground pixels with a background neighbour) needs its
    neighbour code, and the border changes only next to deleted pixels. Each sub-iteration
    computes the codes of the border from the state before it (parallel, as the paper), deletes,
    and adds the foreground neighbours of the deleted pixels to the border. Measured 13x faster
    than ``skimage`` on 400 px road masks (``benchmarks/bench_road_measures.py``).

    Args:
        mask: ``(H, W)``, nonzero = foreground.
        max_num_iter: at most this many iterations (of two sub-iterations); None: until an
            iteration deletes nothing.

    Returns:
        bool ``(H, W)``.
    """
    global _LUTS
    if _LUTS is None:
        _LUTS = (_guo_hall_lut(True), _guo_hall_lut(False))
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"thinning needs a 2-D mask, got shape {m.shape}")
    h, w = m.shape
    pad = np.zeros((h + 2, w + 2), dtype=np.uint8)
    pad[1:-1, 1:-1] = m != 0
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
    n_iter, limit = 0, max_num_iter or np.inf
    while n_iter < limit:
        changed = False
        for lut in _LUTS:
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
