"""Fitting and calibrating the quality head: closed-form ridge, isotonic / linear calibration,
precision thresholds, and the guards' constants (arrays only).

The ridge head is standardised features + PCA scores of the decoder embedding, solved in closed
form (deterministic; the state is plain lists). Calibration maps out-of-fold ridge scores to IoU in
[0, 1] with an isotonic regression (:data:`ISOTONIC_MIN_SAMPLES` or more samples) or a
non-negative linear map; both are monotone, so precision / recall at a threshold on the calibrated
scale equal those of the out-of-fold ranking. :class:`sam2elnet.model.quality.QualityEvaluator`
holds the fitted state and uses these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.model.quality_features import FEATURE_NAMES

#: Precision tolerance the threshold rule aims at (issue 14: held-out precision within 0.03 of the
#: target). A threshold kept on fewer held-out samples than make the binomial standard error of
#: its precision, sqrt(p (1 - p) / k) at p = target, at most this is flagged ``reliable=False``.
PRECISION_TOLERANCE = 0.03


@dataclass
class ThresholdChoice:
    """A score threshold chosen for a target precision, with its held-out precision and recall.

    ``precision`` / ``recall`` are counted on the held-out samples at ``threshold``;
    ``n_held_out_above`` held-out samples lie at or above the threshold (not the labels an
    ``annotate`` run kept: its summary's top-level ``n_kept``), and ``reliable`` is False when they
    are too few to promise a precision within :data:`PRECISION_TOLERANCE` (``note`` says so).
    """

    threshold: float
    target_precision: float
    tau: float
    precision: float
    recall: float
    n_heldout: int
    achievable: bool
    n_held_out_above: int = 0
    reliable: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON summaries and the model file).

        Returns:
            ``{"threshold", "target_precision", "tau", "precision", "recall", "n_heldout",
            "achievable", "n_held_out_above", "reliable", "note"}`` (``n_held_out_above`` was
            ``n_kept`` before; nothing reads it back).
        """
        return dict(self.__dict__)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (``scipy.stats.spearmanr``).

    Args:
        a, b: (N,) arrays.

    Returns:
        The correlation in [-1, 1]; NaN when N < 3 or either side is constant (no ranking).
    """
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


#: Held-out samples needed before isotonic calibration is used instead of a linear one.
ISOTONIC_MIN_SAMPLES = 40
#: Fewer labelled samples than this and the evaluator is not fitted (status "too_few_samples"):
#: 16 = 8 images in both modes. Below it, 5-fold cross-fitting leaves at most 3 samples per fold
#: and the standard error of the out-of-fold Spearman (~1/sqrt(n-3) = 0.28 at n = 16) exceeds the
#: differences it must detect; an evaluator "fitted" on 8 labels scored garbage 0.96 (issue 10).
MIN_FIT_SAMPLES = 16
#: Labels whose true IoUs vary less than this (standard deviation) cannot teach a ranking
#: (status "uniform_labels"), e.g. a model that predicts nothing on images that all hold objects.
MIN_IOU_STD = 0.02
#: A fitted evaluator whose out-of-fold Spearman is below this gets a warning (status stays
#: "fitted": its calibrated scores are then close to the mean IoU, not "keep everything").
WEAK_SPEARMAN = 0.3
#: Out-of-distribution damping: a feature more than OOD_TOLERANCE scale units outside the range
#: seen at fit time scales the score down linearly, to 0 at OOD_TOLERANCE + OOD_SPAN units.
#: Scale = the feature's standard deviation at fit time, at least OOD_MIN_SCALE (the uncertainty
#: features are fractions, entropies in bits or agreements, all in [0, 1]); PCA components of the
#: embedding have unit variance by construction.
OOD_TOLERANCE = 1.0
OOD_SPAN = 2.0
OOD_MIN_SCALE = 0.05
#: Context features that are not checked for being out of distribution (a partly-nodata tile or an
#: enhancement input on an annotation-only fit is no reason to distrust a score).
OOD_EXEMPT = ("has_coarse", "coarse_agreement", "valid_frac")
#: Score ceiling of an evaluator that saw no labelled samples at all.
NO_SAMPLE_PRIOR = 0.5


def lower_mean(y: np.ndarray) -> float:
    """A conservative estimate of the mean IoU: mean minus one standard error.

    Args:
        y: (N,) IoUs.

    Returns:
        ``mean - std(ddof=1) / sqrt(N)`` clipped to [0, 1]; :data:`NO_SAMPLE_PRIOR` for N = 0.
    """
    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return NO_SAMPLE_PRIOR
    se = float(y.std(ddof=1)) / math.sqrt(len(y)) if len(y) > 1 else 0.0
    return float(np.clip(y.mean() - se, 0.0, 1.0))


def fit_head(
    features: np.ndarray,
    embeddings: np.ndarray | None,
    target: np.ndarray,
    pca_dim: int,
    alpha: float,
    in_sample: np.ndarray | None = None,
) -> dict[str, Any]:
    """Standardise, PCA, ridge in closed form (deterministic, no sklearn state to pickle).

    ``in_sample`` (0/1 per sample) adds one unpenalised-by-scale indicator column whose
    coefficient absorbs the optimism of predictions on training images; scoring new images
    uses indicator 0, so only the out-of-sample relation is applied.

    Args:
        features: (N, F) float uncertainty features (F = ``len(FEATURE_NAMES)``).
        embeddings: (N, D) float decoder embeddings, or None (no PCA part).
        target: (N,) true IoU in [0, 1].
        pca_dim: most PCA components kept (also at most N // 4 and D).
        alpha: ridge penalty (on standardised columns).
        in_sample: (N,) 0/1, or None.

    Returns:
        The fitted state as plain lists / floats, keyed like the fields of
        :class:`~sam2elnet.model.quality.QualityEvaluator`: ``feat_mean``, ``feat_std``,
        ``emb_mean``, ``pca_components``, ``coef``, ``intercept``, ``in_sample_coef``,
        ``ood_lo``, ``ood_hi``, ``ood_scale`` (fitted range of the out-of-distribution checked
        columns, see :data:`OOD_TOLERANCE`).
    """
    feats = np.asarray(features, np.float64)
    mean = feats.mean(0)
    std = feats.std(0)
    std = np.where(std < 1e-8, 1.0, std)
    x = (feats - mean) / std
    parts: dict[str, Any] = {"feat_mean": mean.tolist(), "feat_std": std.tolist()}
    k = 0 if embeddings is None else min(pca_dim, max(0, len(feats) // 4), embeddings.shape[1])
    if k > 0:
        emb = np.asarray(embeddings, np.float64)
        emb_mean = emb.mean(0)
        _, s, vt = np.linalg.svd(emb - emb_mean, full_matrices=False)
        comps = vt[:k]
        # scale components so PCA scores have unit variance, like the standardised features
        scale = s[:k] / math.sqrt(max(1, len(emb) - 1))
        comps = comps / np.where(scale < 1e-8, 1.0, scale)[:, None]
        z = (emb - emb_mean) @ comps.T
        x = np.concatenate([x, z], axis=1)
        parts.update(emb_mean=emb_mean.tolist(), pca_components=comps.tolist())
    else:
        parts.update(emb_mean=[], pca_components=[])
    y = np.asarray(target, np.float64)
    use_ins = in_sample is not None and 0 < float(np.sum(in_sample)) < len(y)
    if use_ins:
        x = np.concatenate([x, np.asarray(in_sample, np.float64)[:, None]], axis=1)
    x_mean = x.mean(0)
    y_mean = y.mean()
    a = (x - x_mean).T @ (x - x_mean) + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(a, (x - x_mean).T @ (y - y_mean))
    icpt = float(y_mean - x_mean @ coef)
    ins = 0.0
    if use_ins:
        coef, ins = coef[:-1], float(coef[-1])
    parts.update(coef=coef.tolist(), intercept=icpt, in_sample_coef=ins)
    # fitted range of the OOD-checked columns
    keep = [i for i, n in enumerate(FEATURE_NAMES) if n not in OOD_EXEMPT]
    cols = [feats[:, keep]]
    scales = [np.maximum(feats[:, keep].std(0), OOD_MIN_SCALE)]
    if k > 0:
        cols.append(z)
        scales.append(np.ones(k))
    c = np.concatenate(cols, axis=1)
    parts.update(
        ood_lo=c.min(0).tolist(),
        ood_hi=c.max(0).tolist(),
        ood_scale=np.concatenate(scales).tolist(),
    )
    return parts


def fit_calibration(
    oof: np.ndarray, iou: np.ndarray
) -> tuple[list[float], list[float], list[float]]:
    """Fit the monotone map from out-of-fold ridge scores to IoU.

    Isotonic regression (clipped to [0, 1]) with at least :data:`ISOTONIC_MIN_SAMPLES` samples;
    below that a non-negative linear map: isotonic regression on a handful of points pools them
    into one or two levels, so every label gets the same score and the filter cannot rank them
    (measured in the demo: 7 points -> one level), while a linear map keeps the ranking.

    Args:
        oof: (N,) float out-of-fold ridge scores.
        iou: (N,) true IoU in [0, 1].

    Returns:
        ``(iso_x, iso_y, linear)``: the isotonic knots (both empty for the linear map) and
        ``[slope, intercept]`` (empty for the isotonic map); see :func:`apply_calibration`.
    """
    from sklearn.isotonic import IsotonicRegression

    oof = np.asarray(oof, np.float64)
    y = np.asarray(iou, np.float64)
    if len(y) >= ISOTONIC_MIN_SAMPLES:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(oof, y)
        return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_], []
    slope, icpt = np.polyfit(oof, y, 1) if np.ptp(oof) > 1e-9 else (0.0, float(y.mean()))
    return [], [], ([float(slope), float(icpt)] if slope > 0 else [1.0, 0.0])


def apply_calibration(
    raw: np.ndarray, iso_x: list[float], iso_y: list[float], linear: list[float]
) -> np.ndarray:
    """Map raw ridge scores to calibrated IoU with a map from :func:`fit_calibration`.

    Args:
        raw: (N,) float raw ridge scores.
        iso_x, iso_y: isotonic knots (piecewise-linear interpolation, clipped at the ends).
        linear: ``[slope, intercept]``; takes precedence when given. With neither, ``raw`` is
            only clipped to [0, 1].

    Returns:
        (N,) float64 scores in [0, 1].
    """
    if linear:
        return np.clip(linear[0] * np.asarray(raw, np.float64) + linear[1], 0, 1)
    if len(iso_x) == 0:
        return np.clip(raw, 0, 1)
    if len(iso_x) == 1:
        return np.full_like(raw, iso_y[0], dtype=np.float64)
    return np.interp(raw, iso_x, iso_y)


def _counted(n: int, what: str) -> str:
    """``what`` (a plural noun phrase, maybe followed by `` (...)``) for ``n`` items: its noun
    in the singular when ``n`` is 1 (``"held-out labels"`` -> ``"held-out label"``)."""
    if n != 1:
        return what
    head, sep, tail = what.partition(" (")
    return head.removesuffix("s") + sep + tail


def choose_threshold(
    scores: Sequence[float],
    iou: Sequence[float],
    target: float,
    tau: float,
    what: str = "held-out labels",
) -> ThresholdChoice:
    """Lowest score threshold whose held-out precision of "IoU >= tau" is >= ``target``.

    Precision = share of kept labels (score >= threshold) that are good; the lowest such
    threshold keeps the most labels (a higher ``target`` never gives a lower threshold). When no
    threshold reaches ``target``, the threshold is set just above every held-out score (it rejects
    every held-out label; a new label scoring higher is still kept) and ``achievable`` is False. The choice also says how far it can be trusted: a precision counted
    on ``n_held_out_above`` samples has a binomial standard error of ``sqrt(p (1 - p) / n_held_out_above)``, so fewer
    than :func:`min_kept_for` kept samples cannot promise a precision within
    :data:`PRECISION_TOLERANCE` of ``target`` (``reliable`` False, ``note`` says so). Smoothed
    variants of this rule (isotonic / logistic P(good | score), per-mode samples) were measured
    and did not transfer better to new images (docs/results.md, 100-image section).

    Args:
        scores: (N,) calibrated held-out scores in [0, 1].
        iou: (N,) their true IoU.
        target: wanted precision in [0, 1].
        tau: IoU from which a label counts as good.
        what: what the N samples are, for the ``note``, plural (e.g. ``"held-out labels"``, or
            ``"labelled samples (out-of-fold scores; ...)"`` when too few were held out); said
            in the singular of one sample (``"1 held-out label"``, :func:`_counted`).

    Returns:
        The :class:`ThresholdChoice` (``n_heldout`` = N; an empty set gives threshold 1 + 1e-9).
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(iou, np.float64)
    n = len(s)
    if n == 0:
        return ThresholdChoice(
            1.0 + 1e-9, target, tau, float("nan"), 0.0, 0, False, note="no held-out samples"
        )
    good = y >= tau
    n_good = int(good.sum())
    need = min_kept_for(target)
    for t in np.unique(s):  # ascending: first hit is the lowest threshold
        kept = s >= t
        prec = float(good[kept].mean())
        if prec >= target:
            k = int(kept.sum())
            rec = float(good[kept].sum() / n_good) if n_good else 0.0
            note = (
                ""
                if k >= need
                else f"the threshold rests on {k} {_counted(k, what)} above it; about {need} are "
                f"needed to promise a precision within {PRECISION_TOLERANCE:g} of {target:g} on "
                "new images (label more images; --quality-folds fits on every labelled image)"
            )
            return ThresholdChoice(float(t), target, tau, prec, rec, n, True, k, k >= need, note)
    return ThresholdChoice(
        float(s.max()) + 1e-6,
        target,
        tau,
        float("nan"),
        0.0,
        n,
        False,
        0,
        False,
        f"no threshold reaches precision {target:g} on the {n} {_counted(n, what)}"
        + _no_good_label(n_good, tau),
    )


def _no_good_label(n_good: int, tau: float) -> str:
    """Why no threshold can reach any precision when no sample is a good label (true IoU >=
    ``tau``): the cause is ``--tau``, not the scores (thin roads rarely reach IoU 0.7)."""
    if n_good:
        return ""
    return (
        f": none has a true IoU >= {tau:g} (--tau, what makes a label good; lower it to an IoU "
        "good labels of these data reach, as for thin roads)"
    )


def min_kept_for(target: float, tolerance: float = PRECISION_TOLERANCE) -> int:
    """Held-out samples above a threshold needed before its precision is known to ``tolerance``.

    The binomial standard error of a precision ``p`` measured on ``k`` samples is
    ``sqrt(p (1 - p) / k)``; this returns the smallest ``k`` for which it is at most
    ``tolerance`` at ``p = target`` (at least 10: a handful of samples promises nothing even at
    ``target`` 1).

    Args:
        target: wanted precision in (0, 1].
        tolerance: wanted standard error, > 0.

    Returns:
        The count, an int >= 10 (100 for target 0.9 and tolerance 0.03).
    """
    return max(10, math.ceil(target * (1.0 - target) / tolerance**2 - 1e-9))
