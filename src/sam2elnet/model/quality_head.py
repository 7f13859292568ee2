"""The quality evaluator's ridge head applied to features (arrays only).

A head is the plain data :func:`sam2elnet.model.quality_calibration.fit_head` returns, keyed by
:data:`HEAD_KEYS` (standardisation, PCA of the embedding, ridge coefficients, fitted range of the
out-of-distribution checked columns). These functions turn features into the head's raw scores,
its out-of-distribution damping factor, and the heuristic score an unfitted evaluator uses. Both
the fitted :class:`sam2elnet.model.quality.QualityEvaluator` and the fold heads of the
cross-fitting (:mod:`sam2elnet.model.quality_learning`) score through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sam2elnet.model.quality_calibration import OOD_EXEMPT, OOD_SPAN, OOD_TOLERANCE
from sam2elnet.model.quality_empty import OBJECT_FEATURES
from sam2elnet.model.quality_features import FEATURE_NAMES

HEAD_KEYS = (
    "feat_mean",
    "feat_std",
    "emb_mean",
    "pca_components",
    "coef",
    "intercept",
    "in_sample_coef",
    "ood_lo",
    "ood_hi",
    "ood_scale",
)
"""The keys of a head (the fields of :func:`~sam2elnet.model.quality_calibration.fit_head`'s
result, and of the evaluator that holds it)."""


def design(
    head: Mapping[str, Any], features: np.ndarray, embeddings: np.ndarray | None
) -> np.ndarray:
    """The ridge design matrix: standardised features, then the embedding's PCA scores.

    Args:
        head: A head (:data:`HEAD_KEYS`).
        features: (N, F) float uncertainty features (F = ``len(FEATURE_NAMES)``).
        embeddings: (N, D) float decoder embeddings, or None (allowed only without PCA part).

    Returns:
        (N, F + K) float64, K = number of PCA components (0 without embeddings part).

    Raises:
        ValueError: the head has a PCA part and ``embeddings`` is None.
    """
    f = (np.asarray(features, np.float64) - np.asarray(head["feat_mean"])) / np.asarray(
        head["feat_std"]
    )
    if head["pca_components"]:
        if embeddings is None:
            raise ValueError("this evaluator needs decoder embeddings")
        e = np.asarray(embeddings, np.float64) - np.asarray(head["emb_mean"])
        z = e @ np.asarray(head["pca_components"]).T
        f = np.concatenate([f, z], axis=1)
    return f


def raw_scores(
    head: Mapping[str, Any],
    features: np.ndarray,
    embeddings: np.ndarray | None,
    in_sample: np.ndarray | None = None,
) -> np.ndarray:
    """Uncalibrated ridge scores.

    Args:
        head: A head (:data:`HEAD_KEYS`).
        features: (N, F) float uncertainty features.
        embeddings: (N, D) float decoder embeddings, or None.
        in_sample: (N,) 0/1 in-sample indicator, or None (= 0: how new images are scored).

    Returns:
        (N,) float64 raw scores (IoU-like scale, not clipped).
    """
    raw = design(head, features, embeddings) @ np.asarray(head["coef"]) + head["intercept"]
    if in_sample is not None:
        raw = raw + head["in_sample_coef"] * np.asarray(in_sample, np.float64)
    return raw


def ood_columns(
    head: Mapping[str, Any], features: np.ndarray, embeddings: np.ndarray | None
) -> np.ndarray:
    """The columns checked for being out of distribution: raw features (minus
    :data:`~sam2elnet.model.quality_calibration.OOD_EXEMPT`) and the embedding's PCA scores
    (when the head has a PCA part and ``embeddings`` are given)."""
    keep = [i for i, n in enumerate(FEATURE_NAMES) if n not in OOD_EXEMPT]
    cols = np.asarray(features, np.float64)[:, keep]
    if head["pca_components"] and embeddings is not None:
        e = np.asarray(embeddings, np.float64) - np.asarray(head["emb_mean"])
        cols = np.concatenate([cols, e @ np.asarray(head["pca_components"]).T], axis=1)
    return cols


def ood_factor(
    head: Mapping[str, Any],
    features: np.ndarray,
    embeddings: np.ndarray | None = None,
    empty: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-distribution damping factor per sample.

    Args:
        head: A head (:data:`HEAD_KEYS`).
        features: (N, F) uncertainty features (F = ``len(FEATURE_NAMES)``).
        embeddings: (N, D) decoder embeddings, or None (then only the features are checked).
        empty: (N,) bool, True for empty labels: their object features
            (:data:`~sam2elnet.model.quality_empty.OBJECT_FEATURES`, 0 by convention) are not
            checked; None = check every column of every sample.

    Returns:
        (N,) float in [0, 1]: 1 inside the fitted range (+ :data:`OOD_TOLERANCE`), falling
        linearly to 0 at :data:`OOD_TOLERANCE` + :data:`OOD_SPAN` scale units beyond it; 1 when
        no range is known (unfitted evaluators, model files from before this check).
    """
    n = len(features)
    if not head["ood_lo"]:
        return np.ones(n)
    cols = ood_columns(head, features, embeddings if head["pca_components"] else None)
    lo, hi = np.asarray(head["ood_lo"]), np.asarray(head["ood_hi"])
    if cols.shape[1] != len(lo):  # no embeddings given: check the features only
        lo, hi = lo[: cols.shape[1]], hi[: cols.shape[1]]
    scale = np.asarray(head["ood_scale"])[: cols.shape[1]]
    excess = np.maximum(lo - cols, cols - hi).clip(min=0.0) / scale
    if empty is not None and np.any(empty):
        keep = [n for n in FEATURE_NAMES if n not in OOD_EXEMPT]
        obj = [keep.index(n) for n in OBJECT_FEATURES]
        excess[np.ix_(np.asarray(empty, bool), obj)] = 0.0
    worst = excess.max(1) if excess.shape[1] else np.zeros(n)
    return np.clip(1.0 - (worst - OOD_TOLERANCE) / OOD_SPAN, 0.0, 1.0)


def heuristic(features: np.ndarray) -> np.ndarray:
    """The score of an unfitted evaluator (before its cap):
    ``tta_agreement * ds_agreement * (1 - uncertain_frac)``.

    Args:
        features: (N, F) float uncertainty features.

    Returns:
        (N,) float64 in [0, 1].
    """
    idx = {n: i for i, n in enumerate(FEATURE_NAMES)}
    f = np.asarray(features, np.float64)
    s = f[:, idx["tta_agreement"]] * f[:, idx["ds_agreement"]] * (1 - f[:, idx["uncertain_frac"]])
    return np.clip(s, 0.0, 1.0)
