"""Scoring empty labels: a label with no object pixel is right or wrong as a whole.

The quality evaluator's ridge head (:mod:`sam2elnet.model.quality_calibration`) ranks labels by
uncertainty features, several of which (foreground confidence, entropy on the boundary, edge
density, foreground share) describe the predicted objects. An *empty* label has none: those
features are 0 by convention, far from every non-empty label the head was fitted on, so the head
extrapolates and the range check calls the label "out of distribution". Yet an empty label's
true IoU is all or nothing: 1 when the image holds no object (an oil-free SAR scene; the IoU of
two empty masks is 1, docs/evaluation.md), 0 when the model missed every object. Scoring it by
extrapolation rejected correct empty labels (a coarse label drawn empty by a person and kept
empty by the model scored 0) while a model that learned to erase labels would not be told apart.

So an empty label gets the **held-out rate of empty labels of its kind that were right**, a
smoothed binomial estimate from the evaluator's held-out fit samples (validation images, or every
labelled image with ``--quality-folds``) with the same empty prediction:

* ``annotate``: an annotation (no coarse input) with no object;
* ``enhance_coarse_empty``: an enhancement whose coarse label was empty too (a person said "no
  object" and the model agrees);
* ``enhance_erased``: an enhancement that removed every object of a non-empty coarse label.

The estimate is the posterior mean of the right-rate under a uniform Beta(1, 1) prior (Laplace's
rule of succession) minus one posterior standard deviation, ``m - sqrt(m (1 - m) / (n + 3))``
with ``m = (s + 1) / (n + 2)`` for ``s`` right of ``n`` (the Beta(s + 1, n - s + 1) mean and
standard deviation): conservative like :func:`~sam2elnet.model.quality_calibration.lower_mean`,
about 0.21 when the fit saw no empty label of the kind, and near the observed rate when it saw
many. Arrays only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from sam2elnet.model.quality_features import FEATURE_NAMES
from sam2elnet.utils.advice import plural

#: The kinds of empty label, each scored by its own held-out rate (module doc).
EMPTY_KINDS: tuple[str, ...] = ("annotate", "enhance_coarse_empty", "enhance_erased")
#: Features that describe the predicted objects: 0 by convention for an empty label, so they are
#: not checked for being out of distribution on one (the other features and the embedding are).
OBJECT_FEATURES: tuple[str, ...] = ("boundary_entropy", "fg_frac", "fg_confidence", "edge_density")

_FG = FEATURE_NAMES.index("fg_frac")
_HAS_COARSE = FEATURE_NAMES.index("has_coarse")
_COARSE_AGREE = FEATURE_NAMES.index("coarse_agreement")


def empty_kinds(features: np.ndarray) -> np.ndarray:
    """The empty-label kind of each label, ``""`` for a label with object pixels.

    A label is empty when its foreground share (``fg_frac``, over valid pixels) is exactly 0.
    For an empty enhancement (``has_coarse`` 1) the coarse agreement is the IoU of two masks of
    which one is empty: 1 when the coarse label is empty too, else 0.

    Args:
        features: (N, F) uncertainty features in ``FEATURE_NAMES`` order.

    Returns:
        (N,) object array of str: one of :data:`EMPTY_KINDS` or ``""``.
    """
    f = np.asarray(features, np.float64)
    kinds = np.full(len(f), "", dtype=object)
    empty = f[:, _FG] <= 0.0
    enh = f[:, _HAS_COARSE] > 0.5
    kinds[empty & ~enh] = "annotate"
    kinds[empty & enh & (f[:, _COARSE_AGREE] >= 0.5)] = "enhance_coarse_empty"
    kinds[empty & enh & (f[:, _COARSE_AGREE] < 0.5)] = "enhance_erased"
    return kinds


def rate_estimate(n: float, right: float) -> float:
    """Conservative estimate of the share of right labels from ``right`` of ``n`` (module doc).

    Args:
        n: Number of held-out empty labels of a kind (>= 0).
        right: Sum of their true IoUs (each 0 or 1 for an empty label; 0 <= right <= n).

    Returns:
        ``m - sqrt(m (1 - m) / (n + 3))``, ``m = (right + 1) / (n + 2)``, clipped to [0, 1]
        (0.211 for n = 0).
    """
    m = (float(right) + 1.0) / (float(n) + 2.0)
    return float(np.clip(m - math.sqrt(m * (1.0 - m) / (float(n) + 3.0)), 0.0, 1.0))


def count_empty(features: np.ndarray, iou: np.ndarray) -> dict[str, list[float]]:
    """Per kind, the number of empty labels and the sum of their true IoUs.

    Args:
        features: (N, F) uncertainty features of held-out labels.
        iou: (N,) their true IoUs in [0, 1].

    Returns:
        ``{kind: [n, sum_iou]}`` for every kind of :data:`EMPTY_KINDS` (zeros when absent).
    """
    kinds = empty_kinds(features)
    y = np.asarray(iou, np.float64)
    return {k: [float((kinds == k).sum()), float(y[kinds == k].sum())] for k in EMPTY_KINDS}


def empty_scores(
    kinds: np.ndarray, counts: Mapping[str, Sequence[float]], leave_out: np.ndarray | None = None
) -> np.ndarray:
    """The score of each empty label from the held-out counts of its kind.

    Args:
        kinds: (N,) kinds from :func:`empty_kinds` (``""`` rows get NaN).
        counts: ``{kind: [n, sum_iou]}`` (:func:`count_empty`).
        leave_out: (N,) true IoU of each row to take out of its kind's counts first (the
            row's own sample, for honest scores of the fit samples themselves), or None.

    Returns:
        (N,) float: :func:`rate_estimate` of the row's kind, NaN for non-empty rows.
    """
    out = np.full(len(kinds), np.nan)
    for i, k in enumerate(kinds):
        if not k:
            continue
        n, s = counts.get(k, (0.0, 0.0))
        if leave_out is not None:
            n, s = n - 1.0, s - float(leave_out[i])
        out[i] = rate_estimate(max(n, 0.0), min(max(s, 0.0), max(n, 0.0)))
    return out


def empty_flag(kind: str, counts: Mapping[str, Sequence[float]]) -> str:
    """The ``quality_flag`` of an empty label: what its score rests on.

    Args:
        kind: One of :data:`EMPTY_KINDS`.
        counts: ``{kind: [n, sum_iou]}`` (:func:`count_empty`).

    Returns:
        e.g. ``"empty label: 14 of 15 held-out empty labels like it were right"`` or, without
        any, ``"empty label: no held-out empty label like it when fitted (prior)"``.
    """
    n, s = counts.get(kind, (0.0, 0.0))
    if n < 1:
        return "empty label: no held-out empty label like it when fitted (prior)"
    right = round(s)
    return (
        f"empty label: {right} of {plural(round(n), 'held-out empty label')} like it "
        f"{'was' if right == 1 else 'were'} right"
    )
