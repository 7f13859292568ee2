"""Boundary measures of binary masks: the boundary F-score (BF score, boundary pixels matched
within a tolerance) and the 95th-percentile Hausdorff distance (HD95, px) between the boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.engine.metrics.pixel import as_bool_mask, safe_ratio
from sam2elnet.option_values import BOUNDARY_TOLERANCE_PX

__all__ = [
    "BoundaryCounts",
    "boundary_counts",
    "boundary_f1",
    "boundary_hd95",
    "boundary_measures",
    "distance_to_nearest",
    "hd95",
    "inner_boundary",
    "within_tolerance",
]


def inner_boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary: foreground pixels with a background 4-neighbour.

    The image frame does not count as background (``border_value=1``), so a mask cut by the image
    edge, or covering the whole image, has no boundary along the frame.

    Args:
        mask: bool ``(H, W)``.

    Returns:
        bool ``(H, W)``, True on the boundary pixels (a subset of ``mask``).
    """
    from scipy import ndimage

    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    eroded = ndimage.binary_erosion(
        mask, structure=ndimage.generate_binary_structure(2, 1), border_value=1
    )
    return mask & ~eroded


def distance_to_nearest(src: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distance from each True pixel of ``src`` to the nearest True pixel of ``target``.

    Args:
        src: bool ``(H, W)``.
        target: bool ``(H, W)``, the same shape.

    Returns:
        float64 ``(src.sum(),)`` in pixels (``scipy.ndimage.distance_transform_edt``), one entry
        per True pixel of ``src`` in row-major order; ``inf`` for all of them when ``target`` is
        empty (no distance is defined).
    """
    from scipy import ndimage

    if not target.any():
        return np.full(int(src.sum()), np.inf)
    return ndimage.distance_transform_edt(~target)[src]


def within_tolerance(src: np.ndarray, target: np.ndarray, tol: float) -> np.ndarray:
    """Which True pixels of ``src`` lie within Euclidean distance ``tol`` of a True pixel of target.

    Args:
        src: bool ``(H, W)``.
        target: bool ``(H, W)``, the same shape.
        tol: finite distance in pixels (``<=``; :func:`distance_to_nearest`).

    Returns:
        bool ``(src.sum(),)``, one entry per True pixel of ``src`` in row-major order (all False
        when ``target`` is empty).
    """
    return distance_to_nearest(src, target) <= tol


@dataclass(frozen=True)
class BoundaryCounts:
    """Matched / total boundary pixels, both ways; addable, so the aggregate is pixel-summed."""

    pred_matched: int = 0
    pred_total: int = 0
    truth_matched: int = 0
    truth_total: int = 0

    def __add__(self, other: BoundaryCounts) -> BoundaryCounts:
        if not isinstance(other, BoundaryCounts):
            return NotImplemented
        return BoundaryCounts(
            self.pred_matched + other.pred_matched,
            self.pred_total + other.pred_total,
            self.truth_matched + other.truth_matched,
            self.truth_total + other.truth_total,
        )

    def __radd__(self, other: Any) -> BoundaryCounts:
        return self if other == 0 else self.__add__(other)

    def scores(self) -> dict[str, float]:
        """``boundary_precision``, ``boundary_recall``, ``boundary_f1`` (empty vs empty -> 1.0)."""
        if self.pred_total == 0 and self.truth_total == 0:
            return {"boundary_precision": 1.0, "boundary_recall": 1.0, "boundary_f1": 1.0}
        p = safe_ratio(self.pred_matched, self.pred_total, 0.0)
        r = safe_ratio(self.truth_matched, self.truth_total, 0.0)
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
        return {"boundary_precision": p, "boundary_recall": r, "boundary_f1": f}


def hd95(pred_to_truth: np.ndarray, truth_to_pred: np.ndarray) -> float:
    """HD95 from the two directed sets of boundary distances (px): the larger of their 95th
    percentiles (``numpy.percentile``, linear interpolation). 0.0 when neither mask has a boundary,
    NaN when only one has (no distance is defined)."""
    if pred_to_truth.size == 0 and truth_to_pred.size == 0:
        return 0.0
    if pred_to_truth.size == 0 or truth_to_pred.size == 0:
        return float("nan")
    return float(max(np.percentile(pred_to_truth, 95), np.percentile(truth_to_pred, 95)))


def boundary_measures(
    pred: Any, truth: Any, tolerance_px: float = BOUNDARY_TOLERANCE_PX, valid: Any | None = None
) -> tuple[BoundaryCounts, float]:
    """Boundary counts (:func:`boundary_counts`) and HD95 (:func:`boundary_hd95`) of one pair from
    one pair of distance maps.

    Args:
        pred, truth: bool ``(H, W)`` masks of one shape.
        tolerance_px: match distance of the counts, px.
        valid: bool ``(H, W)``; boundary pixels outside it are ignored (None: all count).

    Returns:
        ``(BoundaryCounts, hd95_px)``.

    Raises:
        ValueError: masks that are not 2-D or not of one shape.
    """
    p = as_bool_mask(pred, "pred")
    t = as_bool_mask(truth, "truth")
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(
            f"boundary metrics need two 2-D masks of one shape, got {p.shape}, {t.shape}"
        )
    bp, bt = inner_boundary(p), inner_boundary(t)
    if valid is not None:
        v = as_bool_mask(valid, "valid")
        bp, bt = bp & v, bt & v
    dp, dt = distance_to_nearest(bp, bt), distance_to_nearest(bt, bp)
    mp, mt = dp <= tolerance_px, dt <= tolerance_px
    counts = BoundaryCounts(int(mp.sum()), int(bp.sum()), int(mt.sum()), int(bt.sum()))
    return counts, hd95(dp, dt)


def boundary_counts(
    pred: Any, truth: Any, tolerance_px: float = BOUNDARY_TOLERANCE_PX, valid: Any | None = None
) -> BoundaryCounts:
    """Boundary pixels of each mask that lie within ``tolerance_px`` of the other mask's boundary.

    Boundaries are the inner 4-connected contours (see :func:`inner_boundary`); distances are Euclidean
    (``scipy.ndimage.distance_transform_edt``). Boundary pixels outside ``valid`` are ignored.
    """
    return boundary_measures(pred, truth, tolerance_px, valid)[0]


def boundary_hd95(pred: Any, truth: Any, valid: Any | None = None) -> float:
    """95th-percentile Hausdorff distance (HD95, px) between the boundaries of two masks.

    The partial Hausdorff distance of Huttenlocher, Klanderman and Rucklidge ("Comparing images
    using the Hausdorff distance", IEEE TPAMI 15(9), 1993) at the 95th percentile, taken both ways:
    ``max(P95(d(b_pred -> b_truth)), P95(d(b_truth -> b_pred)))`` over the inner boundary pixels
    (:func:`inner_boundary`), Euclidean distances in pixels; unlike the plain Hausdorff distance it
    ignores the worst 5 % (a stray speck far away). Boundary pixels outside ``valid`` are ignored.

    Returns:
        float >= 0 in pixels; 0.0 when neither mask has a boundary (both empty or both full), NaN
        when only one has (the distance is undefined).
    """
    return boundary_measures(pred, truth, 0.0, valid)[1]


def boundary_f1(
    pred: Any, truth: Any, tolerance_px: float = BOUNDARY_TOLERANCE_PX, valid: Any | None = None
) -> float:
    """Boundary F-score (BF score, Csurka et al. 2013 style) of one image.

    Precision = share of predicted boundary pixels within ``tolerance_px`` of the true boundary;
    recall = share of true boundary pixels within ``tolerance_px`` of the predicted boundary;
    F = 2PR/(P+R). Neither mask has a boundary -> 1.0; only one has -> 0.0.
    """
    return boundary_counts(pred, truth, tolerance_px, valid).scores()["boundary_f1"]


# --------------------------------------------------------------------------------------------
