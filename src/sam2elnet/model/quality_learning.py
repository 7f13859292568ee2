"""Learning the quality evaluator's state from labelled samples (arrays only).

:func:`learn_state` is the body of :meth:`sam2elnet.model.quality.QualityEvaluator.fit`:

* **Honest scores by cross-fitting.** Samples are split into k folds (samples of one group, one
  image in both modes, share a fold); each fold is scored by a ridge head fitted on the other
  folds, so every sample gets an *out-of-fold* score. The calibration and the data the precision
  threshold is later chosen on (``heldout_scores`` / ``heldout_iou``) come from these scores;
  the final head is refitted on all samples.
* **No fit without signal.** With fewer than ``min_samples`` samples or near-constant true IoUs
  the evaluator is not fitted (:func:`_fallback`): it warns, records why and scores a capped
  heuristic (:func:`sam2elnet.model.quality_head.heuristic`).

Warnings are log records of this module's logger (``sam2elnet.model.quality_learning``); the
one of an evaluator not fitted is of kind :data:`NOT_FITTED`
(:func:`sam2elnet.utils.run_warnings.warn_once`), which a caller that says it otherwise hides
(``elnet cv``: one line for all folds).

The functions return the evaluator's new field values as plain data; the evaluator applies them.
The fitting primitives (ridge head, calibration, constants) are
:mod:`sam2elnet.model.quality_calibration`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from sam2elnet.model.quality_calibration import (
    MIN_IOU_STD,
    NO_SAMPLE_PRIOR,
    WEAK_SPEARMAN,
    apply_calibration,
    fit_calibration,
    fit_head,
    lower_mean,
    spearman,
)
from sam2elnet.model.quality_empty import count_empty, empty_kinds, empty_scores
from sam2elnet.model.quality_head import heuristic, ood_factor, raw_scores
from sam2elnet.utils.advice import plural
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

NOT_FITTED = "quality evaluator not fitted"
"""The warning kind (and the start of the text) of an evaluator not fitted."""


def learn_state(
    features: np.ndarray,
    embeddings: np.ndarray | None,
    iou: np.ndarray,
    *,
    tau: float,
    pca_dim: int,
    ridge_alpha: float,
    folds: int,
    seed: int,
    min_samples: int,
    in_sample: np.ndarray | None,
    groups: Sequence[Any] | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit an evaluator's state on labelled samples whose true label IoU is known.

    Arguments and behaviour as :meth:`sam2elnet.model.quality.QualityEvaluator.fit` (``tau``,
    ``pca_dim``, ``ridge_alpha``: the evaluator's hyper-parameters). Warns (once, pointing at the
    caller of ``fit``) when the evaluator is not fitted or its out-of-fold ranking is weak.

    Returns:
        ``(fields, oof_scores)``: the new values of the evaluator's fields (a fitted head,
        calibration, ``status``, ``warning``, ``prior``, ``heldout_*``, ``metrics``; the head's
        standardisation is left out when not fitted) and the (N,) calibrated out-of-fold scores
        in [0, 1] (the heuristic's when not fitted), for the caller's per-mode summary.
    """
    feats = np.asarray(features, np.float64)
    y = np.clip(np.asarray(iou, np.float64), 0, 1)
    n = len(y)
    ins = np.zeros(n) if in_sample is None else np.asarray(in_sample, np.float64).reshape(n)
    out_mask = ins < 0.5
    std = float(y.std()) if n else 0.0
    if n < min_samples or std < MIN_IOU_STD:
        return _fallback(feats, y, out_mask, n, min_samples, std)
    emb = None if embeddings is None else np.asarray(embeddings, np.float64)
    rng = np.random.default_rng(seed)
    gid = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(gid.max()) + 1
    fold_of_group = np.empty(n_groups, dtype=int)
    fold_of_group[rng.permutation(n_groups)] = np.arange(n_groups) % min(folds, n_groups)
    fold = fold_of_group[gid]
    oof = np.zeros(n)
    oof_ood = np.ones(n)
    kinds = empty_kinds(feats)
    is_empty = kinds != ""
    for f in range(min(folds, n_groups)):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        head = fit_head(
            feats[train],
            None if emb is None else emb[train],
            y[train],
            pca_dim,
            ridge_alpha,
            ins[train],
        )
        e_test = None if emb is None else emb[test]
        oof[test] = raw_scores(head, feats[test], e_test, ins[test])
        oof_ood[test] = ood_factor(head, feats[test], e_test, is_empty[test])
    fields: dict[str, Any] = fit_head(feats, emb, y, pca_dim, ridge_alpha, ins)
    iso_x, iso_y, linear = fit_calibration(oof, y)
    fields.update(iso_x=iso_x, iso_y=iso_y, linear=linear, fitted=True, status="fitted")
    fields["warning"] = ""
    rho = spearman(oof, y)
    if not rho >= WEAK_SPEARMAN:  # also NaN
        shown = np.floor(rho * 100) / 100  # rounded down: 0.297 is no "0.30 < 0.3" (NaN stays)
        fields["warning"] = (
            f"out-of-fold Spearman {shown:.2f} < {WEAK_SPEARMAN}: the scores hardly rank labels; "
            "train longer or label more images before trusting a quality filter"
        )
        log.warning("quality evaluator: %s", fields["warning"])
    calibrated = apply_calibration(oof, iso_x, iso_y, linear) * oof_ood
    n_out = int(out_mask.sum())
    # empty labels: the held-out rate of right ones of their kind (quality_empty), each held-out
    # sample scored without itself; the ridge's extrapolation is not used for them
    fields["empty_counts"] = count_empty(feats[out_mask], y[out_mask])
    if is_empty.any():
        own = np.where(out_mask, y, 0.0)  # in-sample rows are not in the counts
        loo = empty_scores(kinds, fields["empty_counts"], own)
        est = np.where(out_mask, loo, empty_scores(kinds, fields["empty_counts"]))
        calibrated = np.where(is_empty, est * oof_ood, calibrated)
    thr_sel = out_mask if n_out >= min_samples else np.ones(n, bool)
    fields["heldout_scores"] = calibrated[thr_sel].tolist()
    fields["heldout_iou"] = y[thr_sel].tolist()
    fields["prior"] = lower_mean(y[out_mask] if n_out else y)
    fields["metrics"] = {
        "n": float(n),
        "n_in_sample": float(n - n_out),
        "n_heldout": float(n_out),
        "spearman_oof": spearman(oof, y),
        "spearman_oof_heldout": spearman(oof[out_mask], y[out_mask]),
        "spearman_oof_in_sample": spearman(oof[~out_mask], y[~out_mask]),
        "mean_iou_heldout": float(y[out_mask].mean()) if n_out else float("nan"),
        "mean_iou_in_sample": float(y[~out_mask].mean()) if n_out < n else float("nan"),
        "mae_oof": float(np.mean(np.abs(calibrated - y))),
        "good_rate": float(np.mean(y >= tau)),
        "ood_rate_oof": float(np.mean(oof_ood < 1.0)),
        "threshold_on_in_sample": float(not bool(thr_sel is out_mask)),
    }
    return fields, calibrated


def _fallback(
    feats: np.ndarray,
    y: np.ndarray,
    out_mask: np.ndarray,
    n: int,
    min_samples: int,
    std: float,
) -> tuple[dict[str, Any], np.ndarray]:
    """Not enough signal to fit: warn, record why, score conservatively (see
    :class:`sam2elnet.model.quality.QualityEvaluator`)."""
    if n == 0:
        status = "no_samples"
        warning = "no labelled samples: quality scores are capped at 0.5"
    elif n < min_samples:
        status = "too_few_samples"
        warning = (
            f"only {plural(n, 'labelled sample')} (need >= {min_samples}): quality scores are a "
            "conservative heuristic capped at the samples' mean IoU lower bound"
        )
    else:
        status = "uniform_labels"
        warning = (
            f"the {n} labelled samples have almost the same IoU (std {std:.3f} < "
            f"{MIN_IOU_STD}); nothing to learn a ranking from: quality scores are a "
            "conservative heuristic capped at their mean IoU lower bound"
        )
    warn_once(log, NOT_FITTED, f"{NOT_FITTED}: {warning}")
    sel = out_mask if out_mask.any() else np.ones(n, bool)
    prior = lower_mean(y[sel]) if n else NO_SAMPLE_PRIOR
    scores = np.minimum(heuristic(feats), prior) if n else np.zeros(0)
    # the threshold: on held-out labels if any (training's flatter)
    fields: dict[str, Any] = {
        "status": status,
        "warning": warning,
        "fitted": False,
        "prior": prior,
        "coef": [],
        "linear": [],
        "iso_x": [],
        "iso_y": [],
        "ood_lo": [],
        "ood_hi": [],
        "ood_scale": [],
        "heldout_scores": scores[sel].tolist(),
        "heldout_iou": y[sel].tolist(),
        "metrics": {
            "n": float(n),
            "n_heldout": float(out_mask.sum()),
            "spearman_oof": spearman(scores, y) if n else float("nan"),
            "threshold_on_in_sample": float(n > 0 and not out_mask.any()),
        },
    }
    return fields, scores
