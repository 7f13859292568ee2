"""Boundary F-score and road measures of a large mask pair, computed row strip by row strip.

The whole-mask functions :func:`sam2elnet.engine.metrics.boundary_counts` and
:func:`sam2elnet.engine.metrics.road_counts` need the whole prediction and ground truth (and a
float64 distance map, int32 label images) in memory: several GB for a 12,000^2 px label. The
functions here take a *row reader* instead and give the same counts, exactly, with the memory of
one strip plus a halo of rows on each side:

- boundary F-score (:func:`strip_boundary_counts`): a boundary pixel depends on its 4-neighbours
  (one row), and "within ``tolerance_px``" looks at most ``ceil(tolerance_px)`` rows away, so
  each strip is read with a halo of ``ceil(tolerance_px) + 1`` rows;
- HD95 (:func:`strip_boundary_measures`): its distances have no bound, so no halo gives them;
  the boundary pixels' coordinates are kept instead (a boundary is far smaller than its mask)
  and their nearest-neighbour distances (a k-d tree, exact Euclidean as the whole-mask
  distance transform) give the same value, up to :data:`HD95_MAX_POINTS` boundary pixels per
  mask;
- road measures (:func:`strip_road_counts`): the centre lines come from
  :func:`sam2elnet.data.skeleton.strip_centre_lines` (the one strip-and-halo thinning of the
  project, shared with the centre-line export): each strip is thinned with a halo of ``H`` rows
  (64 first, doubled for a strip whose roads are too wide to converge in it), and the stitched
  cores are the whole-image centre lines, bit for bit (the halo rule: that module's docstring).
  The centre lines and the buffered prediction are kept bit-packed in a temporary file (1 bit
  per pixel on disk, not in memory); buffer matching reads them back with a halo of
  ``ceil(buffer_px)`` rows and the connectivity measure joins the 8-connected components of
  consecutive strips with a graph of component labels
  (``scipy.sparse.csgraph.connected_components``), whose size is the number of components, not
  pixels.

A row reader is ``read(row0, row1) -> (pred, truth, valid)``: bool arrays of rows
``[row0, row1)`` and the full width (``valid`` may be None).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from sam2elnet.data.skeleton import (
    DEFAULT_HALO_ROWS,
    MIN_ROAD_PIECE_PX,
    halo_for_reach,
    row_strips,
    strip_centre_lines,
)
from sam2elnet.engine.metrics.boundary import BoundaryCounts, hd95, inner_boundary, within_tolerance
from sam2elnet.engine.metrics.roads import RoadCounts
from sam2elnet.option_values import BOUNDARY_TOLERANCE_PX, ROAD_BUFFER_PX

__all__ = ["HD95_MAX_POINTS", "RowReader", "strip_boundary_counts", "strip_boundary_measures",
           "strip_road_counts"]  # fmt: skip

#: boundary pixels per mask whose coordinates :func:`strip_boundary_measures` keeps for HD95
#: (about 40 bytes each with the k-d tree: 40 MB, the order of one strip's working set); a
#: boundary longer than that gets no HD95 (None)
HD95_MAX_POINTS = 1_000_000

RowReader = Callable[[int, int], tuple[np.ndarray, np.ndarray, "np.ndarray | None"]]


def _only_rows(mask: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``mask`` with every row outside ``[lo, hi)`` cleared (a copy)."""
    out = np.zeros_like(mask)
    out[lo:hi] = mask[lo:hi]
    return out


def strip_boundary_counts(
    read: RowReader,
    height: int,
    tolerance_px: float = BOUNDARY_TOLERANCE_PX,
    strip_rows: int = 256,
) -> BoundaryCounts:
    """:func:`~sam2elnet.engine.metrics.boundary_counts` of a ``height``-row mask pair read in
    strips of ``strip_rows`` rows (each with ``ceil(tolerance_px) + 1`` halo rows); identical
    counts. ``valid`` from the reader masks the boundary pixels as in the whole-mask function."""
    return strip_boundary_measures(read, height, tolerance_px, strip_rows, hd95_px=False)[0]


def strip_boundary_measures(
    read: RowReader,
    height: int,
    tolerance_px: float = BOUNDARY_TOLERANCE_PX,
    strip_rows: int = 256,
    *,
    hd95_px: bool = True,
) -> tuple[BoundaryCounts, float | None]:
    """:func:`~sam2elnet.engine.metrics.boundary_measures` of a ``height``-row mask pair read in
    strips of ``strip_rows`` rows: the same boundary counts (:func:`strip_boundary_counts`) and
    the same HD95, px (float64).

    HD95 is the partial Hausdorff distance of Huttenlocher, Klanderman and Rucklidge ("Comparing
    images using the Hausdorff distance", IEEE TPAMI 15(9), 850-863, 1993) at the 95th
    percentile, taken both ways between the inner boundaries
    (:func:`~sam2elnet.engine.metrics.boundary_hd95`). A boundary pixel's distance to the other
    boundary may reach any row, so it is not counted strip by strip: the (row, column) of every
    boundary pixel (int32, core rows of each strip) is kept and the distances are those to the
    nearest kept pixel of the other mask (``scipy.spatial.cKDTree``, exact Euclidean, as the
    whole-mask distance transform).

    Returns:
        ``(BoundaryCounts, hd95)``: ``hd95`` as :func:`~sam2elnet.engine.metrics.hd95` (0.0
        neither mask has a boundary, NaN only one has), None when not asked for
        (``hd95_px=False``) or when a mask has more than :data:`HD95_MAX_POINTS` boundary pixels
        (the caller says why it is absent).
    """
    reach = max(0, math.ceil(tolerance_px))
    halo = reach + 1
    total = BoundaryCounts()
    keep = hd95_px  # still keeping boundary coordinates (False: not asked, or too many)
    points: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for a, b in row_strips(height, strip_rows):
        w0, w1 = max(0, a - halo), min(height, b + halo)
        p, t, v = read(w0, w1)
        bp, bt = inner_boundary(np.asarray(p, bool)), inner_boundary(np.asarray(t, bool))
        if v is not None:
            bp, bt = bp & v, bt & v
        # rows of exact boundaries around the core: all but a cut first / last window row
        c0, c1 = a - w0, b - w0
        g0, g1 = max(0, c0 - reach), min(w1 - w0, c1 + reach)
        bp, bt = bp[g0:g1], bt[g0:g1]
        sp, st = _only_rows(bp, c0 - g0, c1 - g0), _only_rows(bt, c0 - g0, c1 - g0)
        total = total + BoundaryCounts(
            int(within_tolerance(sp, bt, tolerance_px).sum()),
            int(sp.sum()),
            int(within_tolerance(st, bp, tolerance_px).sum()),
            int(st.sum()),
        )
        if keep and max(total.pred_total, total.truth_total) > HD95_MAX_POINTS:
            keep = False  # too long to keep: no HD95, and what was kept is let go
            points[0].clear()
            points[1].clear()
        if keep:
            for kept, core in zip(points, (sp, st), strict=True):
                rows, cols = np.nonzero(core)
                kept.append(np.stack([rows + (w0 + g0), cols], axis=1).astype(np.int32))
    if not keep:
        return total, None
    return total, _hd95_of_points(*(np.concatenate(k) for k in points))


def _hd95_of_points(pred: np.ndarray, truth: np.ndarray) -> float:
    """:func:`~sam2elnet.engine.metrics.hd95` of two (n, 2) int32 sets of boundary pixels
    (row, column): each one's distance to the nearest pixel of the other set, px."""
    from scipy.spatial import cKDTree

    if len(pred) == 0 or len(truth) == 0:
        return hd95(np.zeros(len(pred)), np.zeros(len(truth)))
    dp = cKDTree(truth).query(pred)[0]
    dt = cKDTree(pred).query(truth)[0]
    return hd95(np.asarray(dp, float), np.asarray(dt, float))


class _PackedRows:
    """Bool rows kept bit-packed in an anonymous temporary file (written in row order)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.row_bytes = (width + 7) // 8
        self.file: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.rows = 0

    def append(self, rows: np.ndarray) -> None:
        self.file.seek(self.rows * self.row_bytes)
        self.file.write(np.packbits(rows, axis=1).tobytes())
        self.rows += rows.shape[0]

    def read(self, r0: int, r1: int) -> np.ndarray:
        self.file.seek(r0 * self.row_bytes)
        buf = self.file.read((r1 - r0) * self.row_bytes)
        packed = np.frombuffer(buf, dtype=np.uint8).reshape(r1 - r0, self.row_bytes)
        return np.unpackbits(packed, axis=1, count=self.width).astype(bool)

    def close(self) -> None:
        self.file.close()


def _dilated(p: np.ndarray, buffer_px: float) -> np.ndarray:
    """Pixels within Euclidean ``buffer_px`` of a True pixel of ``p`` (all False for none)."""
    from scipy import ndimage

    if not p.any():
        return np.zeros(p.shape, dtype=bool)
    return ndimage.distance_transform_edt(~p) <= buffer_px


def _centre_lines(
    read: RowReader, height: int, width: int, buffer_px: float, strip_rows: int, halo: int
) -> tuple[_PackedRows, _PackedRows, _PackedRows]:
    """Pass 1: predicted / true centre lines and the buffered prediction, core rows stored."""

    def masked(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        p, t, v = read(r0, r1)
        p, t = np.asarray(p, bool), np.asarray(t, bool)
        return (p & v, t & v) if v is not None else (p, t)

    stores = [_PackedRows(width) for _ in range(3)]
    try:
        for s in strip_centre_lines(masked, height, strip_rows, halo):
            stores[0].append(s.skeletons[0])
            stores[1].append(s.skeletons[1])
            c0, c1 = s.row0 - s.window_row0, s.row1 - s.window_row0
            stores[2].append(_dilated(s.masks[0], buffer_px)[c0:c1])
    except BaseException:
        for st in stores:
            st.close()
        raise
    return stores[0], stores[1], stores[2]


def _roots(n: int, edges: list[np.ndarray]) -> np.ndarray:
    """Component id of each of ``n`` labels joined by the (k, 2) label pairs in ``edges``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
    graph = coo_matrix((np.ones(len(e), dtype=np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _row_links(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """(k, 2) global label pairs 8-connected across two consecutive rows (labels >= 1, 0 none)."""
    out = []
    for dx in (-1, 0, 1):
        u = upper[max(0, -dx) : len(upper) - max(0, dx)]
        d = lower[max(0, dx) : len(lower) - max(0, -dx)]
        hit = (u > 0) & (d > 0)
        out.append(np.stack([u[hit], d[hit]], axis=1))
    return np.concatenate(out) - 1


def strip_road_counts(
    read: RowReader,
    height: int,
    width: int,
    buffer_px: float = ROAD_BUFFER_PX,
    min_component_px: int = MIN_ROAD_PIECE_PX,
    cover_fraction: float = 0.9,
    strip_rows: int = 256,
    halo_rows: int = DEFAULT_HALO_ROWS,
) -> RoadCounts:
    """:func:`~sam2elnet.engine.metrics.road_counts` of a ``height`` x ``width`` mask pair read
    in strips of ``strip_rows`` rows; identical counts (see the module docstring for why). The
    reader's ``valid`` masks both masks first (as ``evaluate`` does before ``road_counts``).
    ``halo_rows`` is the first thinning halo, doubled for a strip whose thinning does not
    converge in it (:func:`sam2elnet.data.skeleton.strip_centre_lines`)."""
    from scipy import ndimage

    halo = halo_for_reach(buffer_px, halo_rows)  # the buffered prediction needs its rows too
    sp, st, dil = _centre_lines(read, height, width, buffer_px, strip_rows, halo)
    try:
        reach = math.ceil(buffer_px)
        eight = np.ones((3, 3), dtype=bool)
        pred_len = pred_hit = true_len = true_hit = 0
        t_sizes: list[np.ndarray] = []
        t_cover: list[np.ndarray] = []
        t_links: list[np.ndarray] = []
        p_links: list[np.ndarray] = []
        pairs: list[np.ndarray] = []
        n_t = n_p = 0
        t_last = p_last = None
        for a, b in row_strips(height, strip_rows):
            w0, w1 = max(0, a - reach), min(height, b + reach)
            sp_w, st_w = sp.read(w0, w1), st.read(w0, w1)
            c0, c1 = a - w0, b - w0
            sp_c, st_c = _only_rows(sp_w, c0, c1), _only_rows(st_w, c0, c1)
            pred_len += int(sp_c.sum())
            true_len += int(st_c.sum())
            pred_hit += int(within_tolerance(sp_c, st_w, buffer_px).sum())
            true_hit += int(within_tolerance(st_c, sp_w, buffer_px).sum())

            # connectivity: strip labels made global (offset), joined across the strip edge
            t_lab, k_t = ndimage.label(st_w[c0:c1], structure=eight)
            p_lab, k_p = ndimage.label(dil.read(a, b), structure=eight)
            t_lab = np.where(t_lab > 0, t_lab + n_t, 0).astype(np.int64)
            p_lab = np.where(p_lab > 0, p_lab + n_p, 0).astype(np.int64)
            if t_last is not None:
                t_links.append(_row_links(t_last, t_lab[0]))
                p_links.append(_row_links(p_last, p_lab[0]))
            t_last, p_last = t_lab[-1], p_lab[-1]
            t_sizes.append(np.bincount(t_lab.ravel(), minlength=n_t + k_t + 1)[n_t + 1 :])
            both = (t_lab > 0) & (p_lab > 0)
            t_cover.append(np.bincount(t_lab[both], minlength=n_t + k_t + 1)[n_t + 1 :])
            key = np.unique((t_lab[both] - 1) * (1 << 31) + (p_lab[both] - 1))
            pairs.append(np.stack([key >> 31, key & ((1 << 31) - 1)], axis=1))
            n_t += k_t
            n_p += k_p
    finally:
        for s in (sp, st, dil):
            s.close()

    comp_total = comp_ok = 0
    if n_t:
        t_root = _roots(n_t, t_links)
        p_root = _roots(max(n_p, 1), p_links)
        n_roots = int(t_root.max()) + 1
        size = np.bincount(t_root, weights=np.concatenate(t_sizes), minlength=n_roots)
        cover = np.bincount(t_root, weights=np.concatenate(t_cover), minlength=n_roots)
        pr = np.concatenate(pairs)
        distinct = np.unique(np.stack([t_root[pr[:, 0]], p_root[pr[:, 1]]], axis=1), axis=0)
        n_distinct = np.bincount(distinct[:, 0], minlength=n_roots)
        counted = size >= min_component_px
        comp_total = int(counted.sum())
        comp_ok = int((counted & (cover >= cover_fraction * size) & (n_distinct == 1)).sum())
    return RoadCounts(pred_len, pred_hit, true_len, true_hit, comp_total, comp_ok)
