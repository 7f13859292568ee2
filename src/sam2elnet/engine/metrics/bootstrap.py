"""Bootstrap confidence intervals over images of the pixel-aggregated IoU (and of an IoU ratio)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "bootstrap_iou_ci", "bootstrap_ratio_ci"]


BOOTSTRAP_RESAMPLES = 2000
"""Default number of bootstrap resamples (Efron & Tibshirani 1993 suggest >= 1000 for percentile
intervals)."""


def _iou_of_sums(sums: np.ndarray) -> np.ndarray:
    """Foreground IoU of count sums (..., 4) = [tp, fp, fn, tn], the :func:`scores` zero rules."""
    sums = np.asarray(sums, dtype=np.float64)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, tp / np.where(den > 0, den, 1.0), 1.0)


def _check_counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 2 or c.shape[1] != 4:
        raise ValueError(f"per-image counts must have shape (N, 4) [tp, fp, fn, tn], got {c.shape}")
    if (c < 0).any():
        raise ValueError("per-image counts must be non-negative")
    return c


def bootstrap_iou_ci(
    counts: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the pixel-aggregated foreground IoU.

    ``counts`` is an (N, 4) int array of per-image confusion counts [tp, fp, fn, tn]. Images are
    resampled with replacement (the image is the independent unit; pixels of one image are not),
    the IoU of each resample is computed from its summed counts, and the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled IoUs
    (percentile method; Efron, B. & Tibshirani, R. J., *An Introduction to the Bootstrap*,
    Chapman & Hall, 1993, ch. 13). Resampling uses :func:`scipy.stats.bootstrap` with a fixed
    ``seed``, so the interval is reproducible.

    Returns ``(low, high)`` in [0, 1], or None for fewer than 2 images (no spread to resample).
    Raises ValueError for counts of another shape or negative counts.
    """
    c = _check_counts(counts)
    if len(c) < 2:
        return None
    lo, hi = _bootstrap(lambda s: _iou_of_sums(s), c, confidence, n_resamples, seed)
    return lo, hi


def bootstrap_ratio_ci(
    counts_a: Any,
    counts_b: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Paired percentile-bootstrap interval of IoU(``counts_a``) / IoU(``counts_b``).

    Both arrays are (N, 4) per-image counts of the *same* N test images in the same order (two
    models scored on one test set): each resample draws one set of images and scores both models
    on it, so the interval reflects the difference between the models, not the test-set luck they
    share (Efron & Tibshirani 1993, paired design). Returns ``(low, high)`` or None for < 2 images
    or when IoU(``counts_b``) is 0 on some resample (the ratio is undefined there: few test images,
    most of them missed by model b; no warning is printed). Raises ValueError for unequal shapes.
    """
    a, b = _check_counts(counts_a), _check_counts(counts_b)
    if a.shape != b.shape:
        raise ValueError(f"paired counts need equal shapes, got {a.shape} and {b.shape}")
    if len(a) < 2:
        return None
    both = np.concatenate([a, b], axis=1)

    def ratio(s: np.ndarray) -> np.ndarray:
        den = _iou_of_sums(s[..., 4:])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, _iou_of_sums(s[..., :4]) / np.where(den > 0, den, 1.0), np.nan)

    lo, hi = _bootstrap(ratio, both, confidence, n_resamples, seed)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return lo, hi


def _bootstrap(
    stat_of_sums: Any, counts: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of ``stat_of_sums(summed counts)`` over image resamples (scipy).

    A statistic that is NaN on some resample (a ratio whose denominator is 0 there) gives a NaN
    interval; scipy's DegenerateDataWarning about it ("The BCa confidence interval cannot be
    calculated", raised for the percentile method too) is not passed on: the callers return None
    and the reports say why (no raw warning line in the terminal)."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} must be inside (0, 1)")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        return stat_of_sums(counts[idx].sum(axis=-2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap(
            (np.arange(len(counts)),),
            statistic,
            vectorized=True,
            n_resamples=n_resamples,
            batch=200,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
