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

STATE_VERSION = 1

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

    def rows(self) -> list[dict[str, float]]:
        """One dict per label: predicted_iou and every feature (for CSV writers)."""
        out = []
        for i in range(len(self.predicted_iou)):
            row = {"predicted_iou": float(self.predicted_iou[i])}
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


@dataclass
class QualityEvaluator:
    """Ridge head over [uncertainty features + PCA(embedding)], calibrated to IoU: isotonic with
    >= 40 held-out samples, a non-negative linear map below that (keeps the ranking).

    An unfitted evaluator (too few held-out samples) falls back to a transparent heuristic:
    ``tta_agreement * ds_agreement * (1 - uncertain_frac)``.
    """

    tau: float = 0.7
    tta: int = 0
    pca_dim: int = 8
    ridge_alpha: float = 1.0
    fitted: bool = False
    feat_mean: list[float] = field(default_factory=list)
    feat_std: list[float] = field(default_factory=list)
    emb_mean: list[float] = field(default_factory=list)
    pca_components: list[list[float]] = field(default_factory=list)
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)
    linear: list[float] = field(default_factory=list)  # [slope, intercept] for small held-out sets
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

    @staticmethod
    def _fit_parts(
        features: np.ndarray,
        embeddings: np.ndarray | None,
        target: np.ndarray,
        pca_dim: int,
        alpha: float,
    ) -> dict[str, Any]:
        """Standardise, PCA, ridge in closed form (deterministic, no sklearn state to pickle)."""
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
        y_mean = y.mean()
        a = x.T @ x + alpha * np.eye(x.shape[1])
        coef = np.linalg.solve(a, x.T @ (y - y_mean))
        parts.update(coef=coef.tolist(), intercept=float(y_mean))
        return parts

    def _raw(self, features: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray:
        return self._design(features, embeddings) @ np.asarray(self.coef) + self.intercept

    def _heuristic(self, features: np.ndarray) -> np.ndarray:
        idx = {n: i for i, n in enumerate(FEATURE_NAMES)}
        f = np.asarray(features, np.float64)
        s = (
            f[:, idx["tta_agreement"]]
            * f[:, idx["ds_agreement"]]
            * (1 - f[:, idx["uncertain_frac"]])
        )
        return np.clip(s, 0.0, 1.0)

    # ---------------------------------------------------------------- public API
    def fit(
        self,
        features: np.ndarray,
        embeddings: np.ndarray | None,
        iou: np.ndarray,
        folds: int = 5,
        seed: int = 0,
        min_samples: int = 8,
    ) -> QualityEvaluator:
        """Fit on held-out samples whose true label IoU is known.

        Out-of-fold ridge scores (``folds``-fold cross-fitting) are calibrated with isotonic
        regression; the final ridge is refitted on all samples.
        """
        from sklearn.isotonic import IsotonicRegression

        feats = np.asarray(features, np.float64)
        y = np.clip(np.asarray(iou, np.float64), 0, 1)
        n = len(y)
        if n < min_samples or np.ptp(y) < 1e-6:
            warnings.warn(
                f"quality evaluator: {n} held-out samples (need >= {min_samples} with varying IoU); "
                "using the unfitted heuristic score",
                stacklevel=2,
            )
            self.fitted = False
            self.heldout_scores = self._heuristic(feats).tolist()
            self.heldout_iou = y.tolist()
            self.metrics = {
                "n": float(n),
                "spearman_oof": _spearman(np.array(self.heldout_scores), y),
            }
            return self
        emb = None if embeddings is None else np.asarray(embeddings, np.float64)
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        k = min(folds, n)
        oof = np.zeros(n)
        for f in range(k):
            test = order[f::k]
            train = np.setdiff1d(order, test)
            parts = self._fit_parts(
                feats[train],
                None if emb is None else emb[train],
                y[train],
                self.pca_dim,
                self.ridge_alpha,
            )
            tmp = QualityEvaluator(**{**self._hyper(), **parts})
            oof[test] = tmp._raw(feats[test], None if emb is None else emb[test])
        parts = self._fit_parts(feats, emb, y, self.pca_dim, self.ridge_alpha)
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
        self.fitted = True
        calibrated = self._calibrate(oof)
        self.heldout_scores = calibrated.tolist()
        self.heldout_iou = y.tolist()
        mae = float(np.mean(np.abs(calibrated - y)))
        self.metrics = {
            "n": float(n),
            "spearman_oof": _spearman(oof, y),
            "mae_oof": mae,
            "good_rate": float(np.mean(y >= self.tau)),
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

    def score(self, features: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Predicted IoU in [0, 1] for each row of ``features``."""
        feats = np.asarray(features, np.float64)
        if feats.ndim != 2 or feats.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected (N, {len(FEATURE_NAMES)}) features, got {feats.shape}")
        if not self.fitted:
            return self._heuristic(feats)
        return np.clip(self._calibrate(self._raw(feats, embeddings)), 0.0, 1.0)

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
        """Rebuild from :meth:`state_dict`; ``None``/empty gives an unfitted evaluator."""
        if not state:
            return cls()
        if state.get("version") != STATE_VERSION or list(state.get("feature_names", [])) != list(
            FEATURE_NAMES
        ):
            raise ValueError("quality evaluator state from an incompatible version")
        kwargs = {k: state[k] for k in cls.__dataclass_fields__ if k in state}
        kwargs["metrics"] = {
            k: (float("nan") if v is None else v) for k, v in kwargs.get("metrics", {}).items()
        }
        return cls(**kwargs)
