"""Bootstrap confidence intervals over images of the pixel-aggregated IoU (and of an IoU ratio).

Undefined resamples
    A resample whose images all have empty truth *and* an empty label (or prediction) has a union
    of 0 pixels: its IoU is 0/0, undefined. The point estimate keeps the convention of
    :func:`sam2elnet.engine.metrics.scores` (1.0 when both masks agree there is nothing to find),
    but a resample is not an observation: counting such resamples as IoU 1 (as this module did
    before) put a lump of mass at exactly 1.0 that reflects only how many empty images a small
    set holds, and pulled the upper end of the interval to 1.000 (5 images, 3 of them empty, IoU
    0.6 and 0.7 on the others: [0.600, 1.000]; now no interval, 158 of 2000 resamples undefined).
    The percentile interval is read off the bootstrap distribution of the statistic (Efron, B. &
    Tibshirani, R. J., *An Introduction to the Bootstrap*, Chapman & Hall, 1993, ch. 13); a
    resample on which the statistic has no value contributes no replicate, so such resamples are
    left out and their number is reported (:attr:`BootstrapInterval.left_out`), i.e. the interval
    is that of the IoU given that the resampled images hold some foreground, as the observed set
    does. When more than ``(1 - confidence) / 2`` of the resamples are undefined, no interval is
    given: whether they were counted as 1 or as 0, one end of the interval would then be set by
    that convention instead of by the data (:attr:`BootstrapInterval.defined` is False). The
    paired ratio treats a resample with an undefined or zero denominator IoU alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BootstrapInterval",
    "bootstrap_iou_ci",
    "bootstrap_iou_interval",
    "bootstrap_ratio_ci",
    "bootstrap_ratio_interval",
]


BOOTSTRAP_RESAMPLES = 2000
"""Default number of bootstrap resamples (Efron & Tibshirani 1993 suggest >= 1000 for percentile
intervals)."""


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile-bootstrap interval and how many resamples it left out.

    ``low`` / ``high``: the interval ends (same unit as the statistic), None when it is undefined;
    ``resamples``: resamples drawn; ``left_out``: resamples on which the statistic is undefined
    (union 0, or a zero denominator IoU for a ratio), not part of the percentiles;
    ``confidence``: the confidence level in (0, 1).
    """

    low: float | None
    high: float | None
    resamples: int
    left_out: int
    confidence: float

    @property
    def defined(self) -> bool:
        """False when more than ``(1 - confidence) / 2`` of the resamples were undefined."""
        return self.low is not None and self.high is not None

    def as_tuple(self) -> tuple[float, float] | None:
        """``(low, high)``, or None when undefined."""
        return (self.low, self.high) if self.defined else None  # type: ignore[return-value]


def _iou_of_sums(sums: np.ndarray) -> np.ndarray:
    """Foreground IoU of count sums (..., 4) = [tp, fp, fn, tn]; NaN where the union is 0
    (undefined: see the module docstring; the point estimate uses 1.0 there)."""
    sums = np.asarray(sums, dtype=np.float64)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, tp / np.where(den > 0, den, 1.0), np.nan)


def _check_counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 2 or c.shape[1] != 4:
        raise ValueError(f"per-image counts must have shape (N, 4) [tp, fp, fn, tn], got {c.shape}")
    if (c < 0).any():
        raise ValueError("per-image counts must be non-negative")
    return c


def bootstrap_iou_interval(
    counts: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> BootstrapInterval | None:
    """Percentile-bootstrap confidence interval of the pixel-aggregated foreground IoU.

    ``counts`` is an (N, 4) int array of per-image confusion counts [tp, fp, fn, tn]. Images are
    resampled with replacement (the image is the independent unit; pixels of one image are not),
    the IoU of each resample is computed from its summed counts, and the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled IoUs
    (percentile method; Efron, B. & Tibshirani, R. J., *An Introduction to the Bootstrap*,
    Chapman & Hall, 1993, ch. 13). Resamples with a union of 0 pixels are left out and counted
    (module docstring). Resampling uses :func:`scipy.stats.bootstrap` with a fixed ``seed``, so the
    interval is reproducible.

    Returns a :class:`BootstrapInterval` (ends in [0, 1], or None when undefined), or None for
    fewer than 2 images (no spread to resample). Raises ValueError for counts of another shape or
    negative counts.
    """
    c = _check_counts(counts)
    if len(c) < 2:
        return None
    return _bootstrap(_iou_of_sums, c, confidence, n_resamples, seed)


def bootstrap_iou_ci(
    counts: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """:func:`bootstrap_iou_interval` as ``(low, high)``; None for fewer than 2 images or an
    undefined interval."""
    iv = bootstrap_iou_interval(counts, confidence, n_resamples, seed)
    return None if iv is None else iv.as_tuple()


def bootstrap_ratio_interval(
    counts_a: Any,
    counts_b: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> BootstrapInterval | None:
    """Paired percentile-bootstrap interval of IoU(``counts_a``) / IoU(``counts_b``).

    Both arrays are (N, 4) per-image counts of the *same* N test images in the same order (two
    models scored on one test set): each resample draws one set of images and scores both models
    on it, so the interval reflects the difference between the models, not the test-set luck they
    share (Efron & Tibshirani 1993, paired design). Resamples on which either IoU is undefined
    (union 0) or IoU(``counts_b``) is 0 are left out and counted (module docstring). Returns a
    :class:`BootstrapInterval`, or None for < 2 images. Raises ValueError for unequal shapes.
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

    return _bootstrap(ratio, both, confidence, n_resamples, seed)


def bootstrap_ratio_ci(
    counts_a: Any,
    counts_b: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """:func:`bootstrap_ratio_interval` as ``(low, high)``; None for < 2 images or an undefined
    interval."""
    iv = bootstrap_ratio_interval(counts_a, counts_b, confidence, n_resamples, seed)
    return None if iv is None else iv.as_tuple()


def _bootstrap(
    stat_of_sums: Any, counts: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> BootstrapInterval:
    """Percentile interval of ``stat_of_sums(summed counts)`` over image resamples (scipy draws
    them); NaN replicates (undefined statistic) are left out, or make the interval undefined when
    they exceed ``(1 - confidence) / 2`` of the resamples. Without NaN the ends are scipy's own."""
    from scipy.stats import DegenerateDataWarning, bootstrap, quantile

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} must be inside (0, 1)")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        return stat_of_sums(counts[idx].sum(axis=-2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # NaN replicates: handled below
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
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    ok = np.isfinite(dist)
    left_out = int((~ok).sum())
    alpha = (1.0 - confidence) / 2.0
    if left_out == 0:
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    elif left_out > alpha * len(dist):
        lo = hi = None
    else:  # the same quantile rule scipy applies, on the defined replicates
        q = quantile(dist[ok], np.array([alpha, 1.0 - alpha]))
        lo, hi = float(q[0]), float(q[1])
    return BootstrapInterval(lo, hi, len(dist), left_out, confidence)
