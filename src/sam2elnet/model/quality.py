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

This module only sees tensors and arrays; file IO belongs to the engine.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

STATE_VERSION = 2
COMPATIBLE_VERSIONS = (1, 2)

FEATURE_NAMES: tuple[str, ...] = (
    "mean_entropy",
    "uncertain_frac",
    "boundary_entropy",
    "fg_frac",
    "fg_confidence",
    "edge_density",
    "tta_agreement",
    "tta_soft_diff",
    "ds_agreement",
    "ds_soft_diff",
    "has_coarse",
    "coarse_agreement",
    "valid_frac",
)

Transform = Callable[[torch.Tensor], torch.Tensor]


def tta_views(count: int) -> list[tuple[Transform, Transform]]:
    """The first ``count`` test-time augmentations as (forward, inverse) pairs on (..., H, W) tensors.

    Flips come first (no shape change, so batches of non-square images stay valid); 90-degree
    rotations and transposes follow.
    """
    views: list[tuple[Transform, Transform]] = [
        (lambda x: x.flip(-1), lambda x: x.flip(-1)),
        (lambda x: x.flip(-2), lambda x: x.flip(-2)),
        (lambda x: x.flip(-1, -2), lambda x: x.flip(-1, -2)),
        (lambda x: x.rot90(1, (-2, -1)), lambda x: x.rot90(-1, (-2, -1))),
        (lambda x: x.rot90(-1, (-2, -1)), lambda x: x.rot90(1, (-2, -1))),
        (lambda x: x.transpose(-1, -2), lambda x: x.transpose(-1, -2)),
        (
            lambda x: x.flip(-1, -2).transpose(-1, -2),
            lambda x: x.transpose(-1, -2).flip(-1, -2),
        ),
    ]
    return views[: max(0, min(int(count), len(views)))]


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (x * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)


def _binary_iou(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of two {0,1} maps; 1 when both are empty (they agree)."""
    inter = (a * b * valid).flatten(1).sum(1)
    union = (((a + b) > 0).float() * valid).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def _boundary(mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    pad = width // 2
    m = F.pad(mask.unsqueeze(1), (pad, pad, pad, pad), mode="replicate")
    dil = F.max_pool2d(m, width, stride=1)
    ero = -F.max_pool2d(-m, width, stride=1)
    return (dil - ero).squeeze(1)


@torch.no_grad()
def uncertainty_features(
    probs: torch.Tensor,
    *,
    tta_probs: Sequence[torch.Tensor] = (),
    side_probs: Sequence[torch.Tensor] = (),
    valid: torch.Tensor | None = None,
    coarse: torch.Tensor | None = None,
    has_coarse: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image features (B, len(FEATURE_NAMES)) from predicted probabilities.

    Args:
        probs: (B,H,W) main-output probabilities.
        tta_probs: de-augmented (B,H,W) probabilities of each test-time view (may be empty: the
            agreement features are then 1 / 0, i.e. "perfect agreement").
        side_probs: deep-supervision probabilities at any lower resolution (B,h,w).
        valid: (B,H,W) 1 = pixel counts.
        coarse: (B,H,W) coarse label {0,1} for enhancement samples.
        has_coarse: (B,) 1 where ``coarse`` is meaningful.
    """
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    b = p.shape[0]
    v = torch.ones_like(p) if valid is None else valid.float()
    hard = (p > 0.5).float()
    ent = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    mean_entropy = _masked_mean(ent, v)
    uncertain = _masked_mean(((p - 0.5).abs() < 0.3).float(), v)
    edge = _boundary(hard) * v
    n_edge = edge.flatten(1).sum(1)
    boundary_entropy = torch.where(
        n_edge > 0, (ent * edge).flatten(1).sum(1) / n_edge.clamp_min(1.0), torch.zeros_like(n_edge)
    )
    fg_frac = _masked_mean(hard, v)
    n_fg = (hard * v).flatten(1).sum(1)
    fg_conf = torch.where(
        n_fg > 0, (p * hard * v).flatten(1).sum(1) / n_fg.clamp_min(1.0), torch.zeros_like(n_fg)
    )
    edge_density = _masked_mean(edge, v)

    if tta_probs:
        tta_iou = torch.stack([_binary_iou(hard, (t.float() > 0.5).float(), v) for t in tta_probs])
        tta_diff = torch.stack([_masked_mean((t.float() - p).abs(), v) for t in tta_probs])
        tta_agreement, tta_soft = tta_iou.mean(0), tta_diff.mean(0)
    else:
        tta_agreement, tta_soft = torch.ones(b), torch.zeros(b)

    if side_probs:
        ious, diffs = [], []
        for s in side_probs:
            size = tuple(s.shape[-2:])
            p_small = F.adaptive_avg_pool2d(p.unsqueeze(1), size).squeeze(1)
            v_small = (F.adaptive_avg_pool2d(v.unsqueeze(1), size).squeeze(1) > 0.5).float()
            ious.append(_binary_iou((p_small > 0.5).float(), (s.float() > 0.5).float(), v_small))
            diffs.append(_masked_mean((s.float() - p_small).abs(), v_small))
        ds_agreement, ds_soft = torch.stack(ious).mean(0), torch.stack(diffs).mean(0)
    else:
        ds_agreement, ds_soft = torch.ones(b), torch.zeros(b)

    if coarse is not None:
        hc = torch.ones(b) if has_coarse is None else has_coarse.float().reshape(b).cpu()
        c_iou = _binary_iou(hard, (coarse.float() > 0.5).float(), v).cpu() * hc
    else:
        hc, c_iou = torch.zeros(b), torch.zeros(b)
    valid_frac = v.flatten(1).mean(1)

    cols = [
        mean_entropy,
        uncertain,
        boundary_entropy,
        fg_frac,
        fg_conf,
        edge_density,
        tta_agreement,
        tta_soft,
        ds_agreement,
        ds_soft,
        hc,
        c_iou,
        valid_frac,
    ]
    return torch.stack([c.float().cpu().reshape(b) for c in cols], dim=1)


@dataclass
class QualityResult:
    """Quality scores of a batch of generated labels."""

    predicted_iou: np.ndarray  # (N,) in [0, 1]
    features: np.ndarray  # (N, F)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    flags: list[str] = field(default_factory=list)  # (N,) "" or why the score is 0 / damped

    def rejected(self, i: int) -> bool:
        """True when label ``i`` must not be kept whatever the threshold (REJECT_FLAGS)."""
        return bool(self.flags) and self.flags[i] in REJECT_FLAGS

    def rows(self) -> list[dict[str, Any]]:
        """One dict per label: predicted_iou, quality_flag and every feature (for CSV writers)."""
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
class ThresholdChoice:
    """A score threshold chosen for a target precision, with its held-out precision and recall."""

    threshold: float
    target_precision: float
    tau: float
    precision: float
    recall: float
    n_heldout: int
    achievable: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
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
#: Flags (``QualityResult.flags``) for which the label is never kept, whatever the threshold.
REJECT_FLAGS = ("no pixels", "all nodata", "constant image", "non-finite features")


def input_flags(x: torch.Tensor, valid: torch.Tensor | None = None) -> list[str]:
    """Per-image reasons why an input cannot carry a label: "" when it is usable.

    Args:
        x: (B, C, H, W) normalised image batch (non-finite values count as nodata).
        valid: (B, H, W) 1 where pixels hold data (None = all).

    Returns:
        One string per image: ``"no pixels"`` (H or W is 0), ``"all nodata"`` (no finite valid
        pixel), ``"constant image"`` (every valid pixel of every band has the same value, within
        1e-6: a blank, zero-filled or saturated tile), else ``""``.
    """
    b = x.shape[0]
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        return ["no pixels"] * b
    xf = x.detach().float()
    ok = torch.isfinite(xf).all(1)  # (B,H,W)
    if valid is not None:
        ok = ok & (valid.to(ok.device) > 0.5)
    flags = []
    for i in range(b):
        m = ok[i]
        if not bool(m.any()):
            flags.append("all nodata")
            continue
        vals = xf[i][:, m]  # (C, n)
        spread = float((vals.amax(1) - vals.amin(1)).max())
        flags.append("constant image" if spread <= 1e-6 else "")
    return flags


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
    * features far outside the fitted range are damped towards 0 (:data:`OOD_TOLERANCE`).
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

    # ---------------------------------------------------------------- design matrix
    def _design(self, features: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray:
        f = (np.asarray(features, np.float64) - np.asarray(self.feat_mean)) / np.asarray(
            self.feat_std
        )
        if self.pca_components:
            if embeddings is None:
                raise ValueError("this evaluator needs decoder embeddings")
            e = np.asarray(embeddings, np.float64) - np.asarray(self.emb_mean)
            z = e @ np.asarray(self.pca_components).T
            f = np.concatenate([f, z], axis=1)
        return f

    def _ood_columns(self, features: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray:
        """The columns checked for being out of distribution: raw features (minus the exempt
        ones) and the embedding's PCA scores."""
        keep = [i for i, n in enumerate(FEATURE_NAMES) if n not in OOD_EXEMPT]
        cols = np.asarray(features, np.float64)[:, keep]
        if self.pca_components and embeddings is not None:
            e = np.asarray(embeddings, np.float64) - np.asarray(self.emb_mean)
            cols = np.concatenate([cols, e @ np.asarray(self.pca_components).T], axis=1)
        return cols

    @staticmethod
    def _fit_parts(
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

    def _raw(
        self,
        features: np.ndarray,
        embeddings: np.ndarray | None,
        in_sample: np.ndarray | None = None,
    ) -> np.ndarray:
        raw = self._design(features, embeddings) @ np.asarray(self.coef) + self.intercept
        if in_sample is not None:
            raw = raw + self.in_sample_coef * np.asarray(in_sample, np.float64)
        return raw

    def _heuristic(self, features: np.ndarray) -> np.ndarray:
        idx = {n: i for i, n in enumerate(FEATURE_NAMES)}
        f = np.asarray(features, np.float64)
        s = (
            f[:, idx["tta_agreement"]]
            * f[:, idx["ds_agreement"]]
            * (1 - f[:, idx["uncertain_frac"]])
        )
        return np.clip(s, 0.0, 1.0)

    def ood_factor(self, features: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """(N,) in [0, 1]: 1 inside the fitted range (+ tolerance), falling linearly to 0 at
        :data:`OOD_TOLERANCE` + :data:`OOD_SPAN` scale units beyond it; 1 when no range is known
        (unfitted evaluators, model files from before this check)."""
        n = len(features)
        if not self.ood_lo:
            return np.ones(n)
        cols = self._ood_columns(features, embeddings if self.pca_components else None)
        lo, hi = np.asarray(self.ood_lo), np.asarray(self.ood_hi)
        if cols.shape[1] != len(lo):  # no embeddings given: check the features only
            cols, lo, hi = cols, lo[: cols.shape[1]], hi[: cols.shape[1]]
        scale = np.asarray(self.ood_scale)[: cols.shape[1]]
        excess = np.maximum(lo - cols, cols - hi).clip(min=0.0) / scale
        worst = excess.max(1) if excess.shape[1] else np.zeros(n)
        return np.clip(1.0 - (worst - OOD_TOLERANCE) / OOD_SPAN, 0.0, 1.0)

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

        Args:
            features: (N, F) uncertainty features; embeddings: (N, D) or None; iou: (N,) true IoU.
            folds: k of the k-fold cross-fitting that gives every sample an out-of-fold score.
            min_samples: fewer samples -> not fitted (conservative fallback, see class doc).
            in_sample: (N,) 1 where the prediction was made on an image the network was trained
                on (optimistic); a ridge indicator absorbs the offset and scores use 0.
            groups: (N,) ids; samples of one group (one image in both modes) share a fold.

        Out-of-fold ridge scores are calibrated (isotonic with >= :data:`ISOTONIC_MIN_SAMPLES`,
        else linear); the final ridge is refitted on all samples. ``heldout_scores`` /
        ``heldout_iou`` (used by :meth:`threshold_for_precision`) are the out-of-sample items'
        when there are at least ``min_samples`` of them, else all items (then ``metrics``
        has ``threshold_on_in_sample`` = 1: an optimistic threshold).
        """
        from sklearn.isotonic import IsotonicRegression

        feats = np.asarray(features, np.float64)
        y = np.clip(np.asarray(iou, np.float64), 0, 1)
        n = len(y)
        ins = np.zeros(n) if in_sample is None else np.asarray(in_sample, np.float64).reshape(n)
        out_mask = ins < 0.5
        self.ood_lo, self.ood_hi, self.ood_scale = [], [], []
        std = float(y.std()) if n else 0.0
        if n < min_samples or std < MIN_IOU_STD:
            return self._fallback(feats, y, out_mask, n, min_samples, std)
        emb = None if embeddings is None else np.asarray(embeddings, np.float64)
        rng = np.random.default_rng(seed)
        gid = (
            np.arange(n)
            if groups is None
            else np.unique(np.asarray(groups), return_inverse=True)[1]
        )
        n_groups = int(gid.max()) + 1
        fold_of_group = np.empty(n_groups, dtype=int)
        fold_of_group[rng.permutation(n_groups)] = np.arange(n_groups) % min(folds, n_groups)
        fold = fold_of_group[gid]
        oof = np.zeros(n)
        oof_ood = np.ones(n)
        for f in range(min(folds, n_groups)):
            test = np.flatnonzero(fold == f)
            train = np.flatnonzero(fold != f)
            parts = self._fit_parts(
                feats[train],
                None if emb is None else emb[train],
                y[train],
                self.pca_dim,
                self.ridge_alpha,
                ins[train],
            )
            tmp = QualityEvaluator(**{**self._hyper(), **parts})
            e_test = None if emb is None else emb[test]
            oof[test] = tmp._raw(feats[test], e_test, ins[test])
            oof_ood[test] = tmp.ood_factor(feats[test], e_test)
        parts = self._fit_parts(feats, emb, y, self.pca_dim, self.ridge_alpha, ins)
        for key, val in parts.items():
            setattr(self, key, val)
        self.iso_x, self.iso_y, self.linear = [], [], []
        if n >= ISOTONIC_MIN_SAMPLES:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(oof, y)
            self.iso_x = [float(v) for v in iso.X_thresholds_]
            self.iso_y = [float(v) for v in iso.y_thresholds_]
        else:
            # Isotonic regression on a handful of points pools them into one or two levels, so
            # every label gets the same score and the filter cannot rank them (measured in the
            # demo: 7 points -> one level). A non-negative linear map keeps the ranking.
            slope, icpt = np.polyfit(oof, y, 1) if np.ptp(oof) > 1e-9 else (0.0, float(y.mean()))
            self.linear = [float(slope), float(icpt)] if slope > 0 else [1.0, 0.0]
        self.fitted, self.status, self.warning = True, "fitted", ""
        rho = _spearman(oof, y)
        if not rho >= WEAK_SPEARMAN:  # also NaN
            self.warning = (
                f"out-of-fold Spearman {rho:.2f} < {WEAK_SPEARMAN}: the scores hardly rank labels; "
                "train longer or label more images before trusting a quality filter"
            )
            warnings.warn(f"quality evaluator: {self.warning}", stacklevel=2)
        calibrated = self._calibrate(oof) * oof_ood
        self.oof_scores = calibrated  # not part of the state: for the caller's per-mode summary
        n_out = int(out_mask.sum())
        thr_sel = out_mask if n_out >= min_samples else np.ones(n, bool)
        self.heldout_scores = calibrated[thr_sel].tolist()
        self.heldout_iou = y[thr_sel].tolist()
        self.prior = _lower_mean(y[out_mask] if n_out else y)
        self.metrics = {
            "n": float(n),
            "n_in_sample": float(n - n_out),
            "n_heldout": float(n_out),
            "spearman_oof": _spearman(oof, y),
            "spearman_oof_heldout": _spearman(oof[out_mask], y[out_mask]),
            "spearman_oof_in_sample": _spearman(oof[~out_mask], y[~out_mask]),
            "mean_iou_heldout": float(y[out_mask].mean()) if n_out else float("nan"),
            "mean_iou_in_sample": float(y[~out_mask].mean()) if n_out < n else float("nan"),
            "mae_oof": float(np.mean(np.abs(calibrated - y))),
            "good_rate": float(np.mean(y >= self.tau)),
            "ood_rate_oof": float(np.mean(oof_ood < 1.0)),
            "threshold_on_in_sample": float(not bool(thr_sel is out_mask)),
        }
        return self

    def _fallback(
        self,
        feats: np.ndarray,
        y: np.ndarray,
        out_mask: np.ndarray,
        n: int,
        min_samples: int,
        std: float,
    ) -> QualityEvaluator:
        """Not enough signal to fit: warn, record why, score conservatively (class doc)."""
        if n == 0:
            self.status = "no_samples"
            self.warning = "no labelled samples: quality scores are capped at 0.5"
        elif n < min_samples:
            self.status = "too_few_samples"
            self.warning = (
                f"only {n} labelled samples (need >= {min_samples}): quality scores are a "
                "conservative heuristic capped at the samples' mean IoU lower bound"
            )
        else:
            self.status = "uniform_labels"
            self.warning = (
                f"the {n} labelled samples have almost the same IoU (std {std:.3f} < "
                f"{MIN_IOU_STD}); nothing to learn a ranking from: quality scores are a "
                "conservative heuristic capped at their mean IoU lower bound"
            )
        warnings.warn(f"quality evaluator not fitted: {self.warning}", stacklevel=3)
        self.fitted = False
        sel = out_mask if out_mask.any() else np.ones(n, bool)
        self.prior = _lower_mean(y[sel]) if n else NO_SAMPLE_PRIOR
        self.coef, self.linear, self.iso_x, self.iso_y = [], [], [], []
        self.heldout_scores = np.minimum(self._heuristic(feats), self.prior).tolist() if n else []
        self.oof_scores = np.asarray(self.heldout_scores)
        self.heldout_iou = y.tolist()
        self.metrics = {
            "n": float(n),
            "spearman_oof": _spearman(np.array(self.heldout_scores), y) if n else float("nan"),
        }
        return self

    def _hyper(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "tta": self.tta,
            "pca_dim": self.pca_dim,
            "ridge_alpha": self.ridge_alpha,
        }

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.linear:
            return np.clip(self.linear[0] * np.asarray(raw, np.float64) + self.linear[1], 0, 1)
        if len(self.iso_x) == 0:
            return np.clip(raw, 0, 1)
        if len(self.iso_x) == 1:
            return np.full_like(raw, self.iso_y[0], dtype=np.float64)
        return np.interp(raw, self.iso_x, self.iso_y)

    def assess(
        self, features: np.ndarray, embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Predicted IoU in [0, 1] for each row of ``features`` and a flag per row ("" = none):
        ``"non-finite features"`` (score 0), ``"out of distribution"`` (score damped)."""
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
            scores = np.minimum(self._heuristic(feats), self.prior)
        else:
            scores = np.clip(self._calibrate(self._raw(feats, emb)), 0.0, 1.0)
            factor = self.ood_factor(feats, emb)
            scores = scores * factor
            flags = [
                f or ("out of distribution" if g < 1.0 else "")
                for f, g in zip(flags, factor, strict=True)
            ]
        scores = np.where(bad, 0.0, scores)
        return scores, flags

    def score(self, features: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Predicted IoU in [0, 1] for each row of ``features`` (see :meth:`assess`)."""
        return self.assess(features, embeddings)[0]

    def threshold_for_precision(self, target: float, tau: float | None = None) -> ThresholdChoice:
        """Lowest score threshold whose held-out precision of "IoU >= tau" is >= ``target``.

        Precision = share of kept labels (score >= threshold) that are good; the lowest such
        threshold keeps the most labels. When no threshold reaches ``target``, the threshold is set
        above every score (reject all) and ``achievable`` is False.
        """
        tau = self.tau if tau is None else float(tau)
        s = np.asarray(self.heldout_scores, np.float64)
        y = np.asarray(self.heldout_iou, np.float64)
        n = len(s)
        if n == 0:
            return ThresholdChoice(1.0 + 1e-9, target, tau, float("nan"), 0.0, 0, False)
        good = y >= tau
        n_good = int(good.sum())
        best: ThresholdChoice | None = None
        for t in np.unique(s):  # ascending: first hit is the lowest threshold
            kept = s >= t
            prec = float(good[kept].mean())
            rec = float(good[kept].sum() / n_good) if n_good else 0.0
            if prec >= target:
                best = ThresholdChoice(float(t), target, tau, prec, rec, n, True)
                break
        if best is None:
            best = ThresholdChoice(float(s.max()) + 1e-6, target, tau, float("nan"), 0.0, n, False)
        return best

    # ---------------------------------------------------------------- (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (str / numbers / lists / dicts), safe for ``weights_only`` loading."""
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
        """Rebuild from :meth:`state_dict`; ``None``/empty gives an unfitted evaluator.

        Version-1 states (before the garbage guards) load too: fitted ones without an OOD range,
        unfitted ones with the conservative :data:`NO_SAMPLE_PRIOR` cap.
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


def _lower_mean(y: np.ndarray) -> float:
    """Mean minus one standard error, in [0, 1]: a conservative estimate of the mean IoU."""
    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return NO_SAMPLE_PRIOR
    se = float(y.std(ddof=1)) / math.sqrt(len(y)) if len(y) > 1 else 0.0
    return float(np.clip(y.mean() - se, 0.0, 1.0))
