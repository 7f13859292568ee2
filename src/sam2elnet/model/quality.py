"""Label quality evaluator: predicts the IoU of a generated label against the (unknown) true label.

Design (why it looks like this):

* **Features that do not need the truth.** Per image we compute uncertainty features from the model's
  own outputs: mean binary entropy, share of uncertain pixels, entropy on the predicted boundary,
  agreement between test-time-augmented views (flips/rotations), agreement between the decoder's
  deep-supervision outputs and the main output, foreground share, edge density, and for enhancement
  the agreement with the coarse input. Labels that the model "is unsure about" in these senses are
  the ones that tend to be wrong.
* **A small learned head.** A ridge regression over the standardised features plus a PCA-reduced
  copy of ``out.embedding`` (pooled decoder features). The evaluator is fitted on a few dozen to a
  few hundred held-out images (the validation split of a training run), where a small MLP or boosted
  trees would overfit; ridge has a closed form, is deterministic and serialises as plain lists.
* **Honest calibration.** The ridge scores used for calibration are *out-of-fold* (k-fold
  cross-fitting over the held-out samples), then an isotonic regression (40+ samples) or a
  non-negative linear map (fewer: isotonic would pool them into one or two levels and erase the
  ranking) maps them to IoU in [0, 1]. Both are monotone, so precision/recall at a threshold on the calibrated scale equal those of the
  out-of-fold ranking: ``threshold_for_precision`` chooses on honest scores.
* **No pickle.** :meth:`QualityEvaluator.state_dict` returns only str / numbers / lists / dicts, so
  the state lives in the model file's ``extra`` and the file stays loadable with ``weights_only``.

This module holds the evaluator (its state, scoring with it, (de)serialisation); the features are
computed by :mod:`sam2elnet.model.quality_features`, the ridge fit, calibration and threshold choice
are :mod:`sam2elnet.model.quality_calibration`, the head is applied to features by
:mod:`sam2elnet.model.quality_head`, and :meth:`QualityEvaluator.fit` (cross-fitting, the unfitted
fallback) is :mod:`sam2elnet.model.quality_learning`. It only sees arrays; file IO belongs to the
engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2elnet.model.input_flags import is_unusable

# constants and names re-exported here stay importable from sam2elnet.model.quality
from sam2elnet.model.quality_calibration import (
    ISOTONIC_MIN_SAMPLES,
    MIN_FIT_SAMPLES,
    MIN_IOU_STD,
    NO_SAMPLE_PRIOR,
    OOD_EXEMPT,
    OOD_SPAN,
    OOD_TOLERANCE,
    WEAK_SPEARMAN,
    ThresholdChoice,
    apply_calibration,
    choose_threshold,
    fit_calibration,
    fit_head,
    lower_mean,
    spearman,
)
from sam2elnet.model.quality_empty import EMPTY_KINDS, empty_flag, empty_kinds, empty_scores
from sam2elnet.model.quality_features import FEATURE_NAMES
from sam2elnet.model.quality_head import HEAD_KEYS, heuristic, ood_factor, raw_scores
from sam2elnet.model.quality_learning import learn_state

__all__ = [
    "COMPATIBLE_VERSIONS",
    "EMPTY_KINDS",
    "FEATURE_NAMES",
    "ISOTONIC_MIN_SAMPLES",
    "MIN_FIT_SAMPLES",
    "MIN_IOU_STD",
    "NO_SAMPLE_PRIOR",
    "OOD_EXEMPT",
    "OOD_SPAN",
    "OOD_TOLERANCE",
    "STATE_VERSION",
    "UNFITTED_FLAG",
    "WEAK_SPEARMAN",
    "QualityEvaluator",
    "QualityResult",
    "ThresholdChoice",
    "apply_calibration",
    "choose_threshold",
    "fit_calibration",
    "fit_head",
    "lower_mean",
    "spearman",
]

STATE_VERSION = 3
UNFITTED_FLAG = "evaluator not fitted"
"""Start of the ``quality_flag`` of every label scored by an evaluator that is not fitted (too
few or too uniform labelled samples): the score is only a cap, not a ranking. Not a reject flag."""
COMPATIBLE_VERSIONS = (1, 2, 3)


@dataclass
class QualityResult:
    """Quality scores of a batch of generated labels."""

    predicted_iou: np.ndarray  # (N,) in [0, 1]
    features: np.ndarray  # (N, F)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    flags: list[str] = field(default_factory=list)  # (N,) "" or why the score is 0 / damped

    def rejected(self, i: int) -> bool:
        """Whether label ``i`` must not be kept whatever the threshold.

        Args:
            i: Index of the label in the batch.

        Returns:
            True when its flag makes it unusable
            (:func:`~sam2elnet.model.input_flags.is_unusable`: no pixels, all nodata, constant
            image, non-finite features).
        """
        return bool(self.flags) and is_unusable(self.flags[i])

    def rows(self) -> list[dict[str, Any]]:
        """One dict per label, for CSV writers.

        Returns:
            ``[{"predicted_iou": float in [0, 1], "quality_flag": str, <feature name>: float, ...}]``.
        """
        out: list[dict[str, Any]] = []
        for i in range(len(self.predicted_iou)):
            row: dict[str, Any] = {
                "predicted_iou": float(self.predicted_iou[i]),
                "quality_flag": self.flags[i] if self.flags else "",
            }
            row.update({n: float(self.features[i, j]) for j, n in enumerate(self.feature_names)})
            out.append(row)
        return out


@dataclass
class QualityEvaluator:
    """Ridge head over [uncertainty features + PCA(embedding)], calibrated to IoU: isotonic with
    >= 40 samples, a non-negative linear map below that (keeps the ranking).

    Guards against confident scores on garbage (each documented at its constant above):

    * an evaluator with fewer than :data:`MIN_FIT_SAMPLES` labelled samples or with near-constant
      true IoUs is not fitted: it warns, records ``status`` and ``warning`` (stored in the model
      file) and scores ``min(heuristic, prior)``, where ``prior`` is a one-standard-error lower
      bound of the samples' mean IoU (:data:`NO_SAMPLE_PRIOR` without samples). The heuristic is
      ``tta_agreement * ds_agreement * (1 - uncertain_frac)``;
    * non-finite features score 0;
    * features far outside the fitted range are damped towards 0 (:data:`OOD_TOLERANCE`);
    * an empty label (no object pixel) is scored by the held-out rate of right empty labels of its
      kind, not by the head (:mod:`sam2elnet.model.quality_empty`).
    """

    tau: float = 0.7
    tta: int = 0
    pca_dim: int = 8
    ridge_alpha: float = 1.0
    fitted: bool = False
    status: str = "no_samples"
    warning: str = ""
    prior: float = NO_SAMPLE_PRIOR
    feat_mean: list[float] = field(default_factory=list)
    feat_std: list[float] = field(default_factory=list)
    emb_mean: list[float] = field(default_factory=list)
    pca_components: list[list[float]] = field(default_factory=list)
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    in_sample_coef: float = 0.0  # ridge offset of in-sample (training-image) predictions
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)
    linear: list[float] = field(default_factory=list)  # [slope, intercept] for small sets
    ood_lo: list[float] = field(default_factory=list)  # fitted range of each checked column
    ood_hi: list[float] = field(default_factory=list)
    ood_scale: list[float] = field(default_factory=list)
    heldout_scores: list[float] = field(default_factory=list)  # calibrated out-of-fold scores
    heldout_iou: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    #: held-out empty labels per kind, ``{kind: [n, sum of true IoU]}``
    #: (:mod:`sam2elnet.model.quality_empty`); empty in states from before version 3, whose
    #: empty labels are scored by the ridge head like the others
    empty_counts: dict[str, list[float]] = field(default_factory=dict)

    # ---------------------------------------------------------------- the head
    def _head(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HEAD_KEYS}

    def _raw(
        self,
        features: np.ndarray,
        embeddings: np.ndarray | None,
        in_sample: np.ndarray | None = None,
    ) -> np.ndarray:
        return raw_scores(self._head(), features, embeddings, in_sample)

    def ood_factor(
        self,
        features: np.ndarray,
        embeddings: np.ndarray | None = None,
        empty: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N,) out-of-distribution damping factor in [0, 1] of this evaluator's head for (N, F)
        features, optional (N, D) embeddings and (N,) bool empty-label rows
        (:func:`sam2elnet.model.quality_head.ood_factor` documents the range rule)."""
        return ood_factor(self._head(), features, embeddings, empty)

    # ---------------------------------------------------------------- public API
    def fit(
        self,
        features: np.ndarray,
        embeddings: np.ndarray | None,
        iou: np.ndarray,
        folds: int = 5,
        seed: int = 0,
        min_samples: int = MIN_FIT_SAMPLES,
        in_sample: np.ndarray | None = None,
        groups: Sequence[Any] | None = None,
    ) -> QualityEvaluator:
        """Fit on labelled samples whose true label IoU is known.

        Out-of-fold ridge scores are calibrated (isotonic with >= :data:`ISOTONIC_MIN_SAMPLES`,
        else linear); the final ridge is refitted on all samples. ``heldout_scores`` /
        ``heldout_iou`` (used by :meth:`threshold_for_precision`) are the out-of-sample items'
        when there are at least ``min_samples`` of them, else all items (then ``metrics``
        has ``threshold_on_in_sample`` = 1: an optimistic threshold).

        Args:
            features: (N, F) float uncertainty features.
            embeddings: (N, D) float decoder embeddings, or None.
            iou: (N,) true IoU of each label, in [0, 1] (clipped).
            folds: k of the k-fold cross-fitting that gives every sample an out-of-fold score.
            seed: Seed of the fold assignment.
            min_samples: Fewer samples -> not fitted (conservative fallback, see the class doc).
            in_sample: (N,) 1 where the prediction was made on an image the network was trained
                on (optimistic); a ridge indicator absorbs the offset and scores use 0.
            groups: (N,) ids; samples of one group (one image in both modes) share a fold.

        Returns:
            ``self``, fitted (or, with too few / uniform samples, unfitted with ``status`` and
            ``warning`` set, ``heldout_*`` the out-of-sample items' if any; one warning issued).
        """
        fields, self.oof_scores = learn_state(  # oof_scores: not state, for per-mode summaries
            features,
            embeddings,
            iou,
            tau=self.tau,
            pca_dim=self.pca_dim,
            ridge_alpha=self.ridge_alpha,
            folds=folds,
            seed=seed,
            min_samples=min_samples,
            in_sample=in_sample,
            groups=groups,
        )
        for key, val in fields.items():
            setattr(self, key, val)
        return self

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        return apply_calibration(raw, self.iso_x, self.iso_y, self.linear)

    def assess(
        self, features: np.ndarray, embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Predicted IoU and a flag for each label.

        Args:
            features: (N, F) float uncertainty features.
            embeddings: (N, D) float decoder embeddings, or None.

        Returns:
            ``(scores, flags)``: (N,) float predicted IoU in [0, 1]; one flag per row, ``""`` or
            ``"non-finite features"`` (score 0) or ``"out of distribution"`` (score damped) or,
            for an empty label (no object pixel), ``"empty label: ..."`` saying which held-out
            rate scored it (:mod:`sam2elnet.model.quality_empty`) or, from an evaluator that is
            not fitted, ``"evaluator not fitted: <status>"`` (status ``too_few_samples`` /
            ``uniform_labels`` / ``no_samples``; score capped at :attr:`prior`).

        Raises:
            ValueError: ``features`` is not (N, F).
        """
        feats = np.asarray(features, np.float64)
        if feats.ndim != 2 or feats.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected (N, {len(FEATURE_NAMES)}) features, got {feats.shape}")
        emb = None if embeddings is None else np.asarray(embeddings, np.float64)
        bad = ~np.isfinite(feats).all(1)
        if emb is not None:
            bad |= ~np.isfinite(emb).all(1)
            emb = np.where(bad[:, None], 0.0, emb)
        feats = np.where(bad[:, None], 0.0, feats)
        flags = ["non-finite features" if b else "" for b in bad]
        if not self.fitted:
            scores = np.minimum(heuristic(feats), self.prior)
            # every row says that its score comes from an unfitted evaluator (quality.csv)
            flags = [f or f"{UNFITTED_FLAG}: {self.status}" for f in flags]
        else:
            scores = np.clip(self._calibrate(self._raw(feats, emb)), 0.0, 1.0)
            kinds = empty_kinds(feats) if self.empty_counts else np.full(len(feats), "", object)
            empty = kinds != ""
            factor = self.ood_factor(feats, emb, empty)
            scores = np.where(empty, empty_scores(kinds, self.empty_counts), scores) * factor
            flags = [
                f
                or ("out of distribution" if g < 1.0 else "")
                or (empty_flag(k, self.empty_counts) if k else "")
                for f, g, k in zip(flags, factor, kinds, strict=True)
            ]
        scores = np.where(bad, 0.0, scores)
        return scores, flags

    def score(self, features: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Predicted IoU for each label (see :meth:`assess`).

        Args:
            features: (N, F) float uncertainty features.
            embeddings: (N, D) float decoder embeddings, or None.

        Returns:
            (N,) float predicted IoU in [0, 1].
        """
        return self.assess(features, embeddings)[0]

    def threshold_for_precision(self, target: float, tau: float | None = None) -> ThresholdChoice:
        """Lowest score threshold whose held-out precision of "IoU >= tau" is >= ``target``.

        Precision = share of kept labels (score >= threshold) that are good; the lowest such
        threshold keeps the most labels. When no threshold reaches ``target``, the threshold is set
        just above every held-out score (a new label scoring higher is still kept) and
        ``achievable`` is False.

        Args:
            target: Wanted precision in (0, 1].
            tau: IoU from which a label counts as good; None = the evaluator's ``tau``.

        Returns:
            The :class:`ThresholdChoice` (threshold, held-out precision and recall, count).
        """
        tau = self.tau if tau is None else float(tau)
        what = "held-out labels"
        if self.metrics.get("threshold_on_in_sample"):
            n_out = int(self.metrics.get("n_heldout", 0))
            how = ("out-of-fold scores; " if self.fitted else "") + (
                f"only {n_out}" if n_out else "none"
            )
            what = f"labelled samples ({how} held out, too few to choose on)"
        return choose_threshold(self.heldout_scores, self.heldout_iou, target, tau, what)

    # ---------------------------------------------------------------- (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """The evaluator as plain data, safe for ``weights_only`` loading.

        Returns:
            A dict of str / numbers / lists / dicts (NaN metrics as None) with ``feature_names`` and
            ``version`` (:data:`STATE_VERSION`).
        """
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["metrics"] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.metrics.items()
        }
        d["feature_names"] = list(FEATURE_NAMES)
        d["version"] = STATE_VERSION
        return d

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> QualityEvaluator:
        """Rebuild an evaluator from :meth:`state_dict`.

        Version-1 states (before the garbage guards) load too: fitted ones without an OOD range,
        unfitted ones with the conservative :data:`NO_SAMPLE_PRIOR` cap.

        Args:
            state: A :meth:`state_dict`, or None / empty for an unfitted evaluator.

        Returns:
            The :class:`QualityEvaluator`.

        Raises:
            ValueError: a state of an incompatible version or feature list.
        """
        if not state:
            return cls()
        if state.get("version") not in COMPATIBLE_VERSIONS or list(
            state.get("feature_names", [])
        ) != list(FEATURE_NAMES):
            raise ValueError("quality evaluator state from an incompatible version")
        kwargs = {k: state[k] for k in cls.__dataclass_fields__ if k in state}
        kwargs["metrics"] = {
            k: (float("nan") if v is None else v) for k, v in kwargs.get("metrics", {}).items()
        }
        if state.get("version") == 1:
            kwargs["status"] = "fitted" if kwargs.get("fitted") else "too_few_samples"
        return cls(**kwargs)
