"""Road measures on thinned centre lines: correctness, completeness, quality (Wiedemann et al.
1998) and skeleton connectivity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.data.skeleton import MIN_ROAD_PIECE_PX, centre_lines
from sam2elnet.engine.metrics.boundary import within_tolerance
from sam2elnet.engine.metrics.pixel import as_bool_mask, safe_ratio
from sam2elnet.option_values import ROAD_BUFFER_PX

__all__ = [
    "ROAD_COUNT_KEYS",
    "ROAD_KEYS",
    "RoadCounts",
    "centre_lines",
    "road_counts",
    "road_scores",
]


ROAD_KEYS = ("road_correctness", "road_completeness", "road_quality", "road_connectivity")
"""Names of the road measures (:func:`road_scores`), in table order."""

ROAD_COUNT_KEYS = (
    "road_pred_length",
    "road_pred_matched",
    "road_truth_length",
    "road_truth_matched",
    "road_components",
    "road_components_preserved",
)
"""Names of the :class:`RoadCounts` fields in per-image rows (:meth:`RoadCounts.as_dict`), in
field order: summed over rows and passed to :func:`road_scores` they give the aggregate."""


@dataclass(frozen=True)
class RoadCounts:
    """Centre-line lengths (skeleton pixels) for the Wiedemann et al. (1998) road measures.

    ``*_matched`` = skeleton pixels of one mask within the buffer of the other mask's skeleton.
    ``components_*`` count connected components of the true skeleton that the prediction keeps in
    one piece (see :func:`road_counts`). Addable; the aggregate is length-summed.
    """

    pred_length: int = 0
    pred_matched: int = 0
    truth_length: int = 0
    truth_matched: int = 0
    components_total: int = 0
    components_preserved: int = 0

    def __add__(self, other: RoadCounts) -> RoadCounts:
        if not isinstance(other, RoadCounts):
            return NotImplemented
        return RoadCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def __radd__(self, other: Any) -> RoadCounts:
        return self if other == 0 else self.__add__(other)

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.pred_length,
            self.pred_matched,
            self.truth_length,
            self.truth_matched,
            self.components_total,
            self.components_preserved,
        )

    def scores(self) -> dict[str, float]:
        """``road_correctness``, ``road_completeness``, ``road_quality``, ``road_connectivity``."""
        return road_scores(self)

    def as_dict(self) -> dict[str, int]:
        """The counts under :data:`ROAD_COUNT_KEYS` (skeleton pixels; components >= the minimum
        size), for per-image rows next to :meth:`scores`."""
        return dict(zip(ROAD_COUNT_KEYS, self.as_tuple(), strict=True))


def road_scores(c: RoadCounts) -> dict[str, float]:
    """Wiedemann measures from :class:`RoadCounts`.

    correctness = matched predicted length / predicted length (NaN without predicted length);
    completeness = matched true length / true length (NaN without true length);
    quality = matched predicted length / (predicted length + unmatched true length) (NaN when both
    are 0); connectivity = preserved true-skeleton components / true-skeleton components (NaN if
    none). Wiedemann et al. (1998) leave a measure undefined when its denominator is 0: a tile
    without reference roads has no completeness (not 0.0), an empty prediction no correctness.
    Aggregates sum the counts first, so such an image adds 0 to both sums and changes nothing.
    """
    nan = float("nan")
    corr = safe_ratio(c.pred_matched, c.pred_length, nan)
    comp = safe_ratio(c.truth_matched, c.truth_length, nan)
    qual = safe_ratio(c.pred_matched, c.pred_length + (c.truth_length - c.truth_matched), nan)
    conn = safe_ratio(c.components_preserved, c.components_total, nan)
    return {
        "road_correctness": corr,
        "road_completeness": comp,
        "road_quality": qual,
        "road_connectivity": conn,
    }


def road_counts(
    pred: Any,
    truth: Any,
    buffer_px: float = ROAD_BUFFER_PX,
    min_component_px: int = MIN_ROAD_PIECE_PX,
    cover_fraction: float = 0.9,
) -> RoadCounts:
    """Skeleton-based road measures for one image.

    Both masks are thinned to one-pixel centre lines (Guo-Hall parallel thinning,
    :func:`sam2elnet.data.skeleton.centre_lines`: local, so
    :func:`sam2elnet.engine.strip_metrics.strip_road_counts` computes the same counts strip by
    strip); lengths are skeleton pixel counts and matching uses a Euclidean buffer of
    ``buffer_px`` (Wiedemann et al., 1998, "Empirical evaluation of automatically extracted road
    axes").

    Connectivity ("skeleton components preserved"): each 8-connected component of the true
    skeleton with at least ``min_component_px`` pixels counts as preserved when at least
    ``cover_fraction`` of its pixels lie inside the prediction dilated by ``buffer_px`` *and* all of
    those pixels fall in one connected piece of that dilated prediction, i.e. the predicted road is
    not broken along it. This is a simple, honest proxy; it does not check junction topology.
    """
    from scipy import ndimage

    p = as_bool_mask(pred, "pred")
    t = as_bool_mask(truth, "truth")
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"road metrics need two 2-D masks of one shape, got {p.shape}, {t.shape}")
    sp, st = centre_lines(p), centre_lines(t)
    mp = within_tolerance(sp, st, buffer_px)
    mt = within_tolerance(st, sp, buffer_px)

    comp_total = comp_ok = 0
    if st.any():
        eight = np.ones((3, 3), dtype=bool)
        t_lab, n_t = ndimage.label(st, structure=eight)
        if p.any():
            dil = ndimage.distance_transform_edt(~p) <= buffer_px
            p_lab, _ = ndimage.label(dil, structure=eight)
        else:
            p_lab = np.zeros(p.shape, dtype=np.int32)
        sizes = np.bincount(t_lab.ravel(), minlength=n_t + 1)
        for k in range(1, n_t + 1):
            if sizes[k] < min_component_px:
                continue
            comp_total += 1
            under = p_lab[t_lab == k]
            covered = under[under > 0]
            if covered.size >= cover_fraction * sizes[k] and np.unique(covered).size == 1:
                comp_ok += 1
    return RoadCounts(
        int(sp.sum()), int(mp.sum()), int(st.sum()), int(mt.sum()), comp_total, comp_ok
    )
