"""Fitting the label quality evaluator on predictions of a trained model (docs/training.md).

The evaluator (:class:`sam2elnet.model.quality.QualityEvaluator`) predicts each label's IoU from
uncertainty features, with the same features inference computes: :func:`collect_quality_samples`
runs :func:`sam2elnet.engine.runtime.run_model` on labelled items in both modes: the validation
images (out of sample) and a capped subset of training images
(:func:`~sam2elnet.engine.quality_items.train_subset`; in sample, marked so the evaluator can
absorb their optimism); the items themselves are :mod:`sam2elnet.engine.quality_items`. :func:`fit_evaluator` cross-fits and
summarises, and :func:`fit_quality` (re)fits the evaluator stored in a model file (called
at the end of :func:`sam2elnet.engine.train.train`, or on its own for an existing model).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2elnet.config import QualityConfig
from sam2elnet.engine.metrics import iou_per_sample
from sam2elnet.engine.quality_items import ChainedItems, item_hw, quality_items, train_subset
from sam2elnet.engine.runtime import resolve_device, run_model
from sam2elnet.errors import UserError
from sam2elnet.model.quality import QualityEvaluator
from sam2elnet.model.quality_calibration import spearman
from sam2elnet.model.quality_features import FEATURE_NAMES
from sam2elnet.option_checks import option_default
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.progress import abandon, progress_bar
from sam2elnet.utils.shape_batches import batches_by_key

log = logging.getLogger(__name__)

__all__ = [
    "QualitySamples",
    "collect_quality_samples",
    "describe_summary",
    "fit_evaluator",
    "fit_quality",
]


@torch.no_grad()
def collect_quality_samples(
    model: torch.nn.Module,
    items: Sequence[dict[str, Any]],
    device: torch.device,
    precision: str,
    tta: int,
    batch_size: int = option_default(FolderJobOptions, "batch_size"),
    bar: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predict labelled items in both modes.

    ``bar``: a :func:`~sam2elnet.utils.progress.progress_bar` advanced by the images of each
    batch once both modes are predicted (None: no progress).

    Returns (features (N,F), embeddings (N,D), true IoU (N,), mode (N,) 0 = annotate /
    1 = enhance, item index (N,) into ``items``: the two samples of one image share it).
    Uses the same feature code as inference (:func:`sam2elnet.engine.runtime.run_model`), so the
    evaluator sees at fit time exactly what it will see in use.
    """
    feats, embs, ious, modes, idx = [], [], [], [], []
    # items keep their native sizes: a batch holds items of one shape (in order of first use)
    hw = [item_hw(items, i) for i in range(len(items))]
    batches = [np.asarray(b) for b in batches_by_key(hw, batch_size)]
    for where in batches:
        chunk = [items[i] for i in where]
        x = torch.stack([it["image"] for it in chunk]).to(device)
        m = torch.stack([it["mask"] for it in chunk]).to(device)
        v = torch.stack([it["valid"] for it in chunk]).to(device)
        c = torch.stack([it["coarse"] for it in chunk]).to(device)
        has = torch.stack([it["has_coarse"] for it in chunk]).to(device)
        for mode in ("annotate", "enhance"):
            if mode == "enhance" and not bool((has > 0).any()):
                continue
            sel = (
                torch.arange(len(chunk))
                if mode == "annotate"
                else torch.nonzero(has.cpu() > 0).flatten()
            )
            xs, ms, vs, cs = x[sel], m[sel], v[sel], c[sel]
            res = run_model(
                model,
                xs,
                cs if mode == "enhance" else None,
                device=device,
                precision=precision,
                tta=tta,
                valid=vs[:, 0],
            )
            feats.append(res.features)
            embs.append(res.embedding)
            ious.append(
                iou_per_sample(res.probs.unsqueeze(1) > 0.5, ms.cpu() > 0.5, vs.cpu() > 0.5).numpy()
            )
            modes.append(np.full(len(sel), 1.0 if mode == "enhance" else 0.0))
            idx.append(where[sel.numpy()])
        if bar is not None:
            bar.update(len(chunk))
    if not feats:
        z = np.zeros(0)
        return np.zeros((0, 0)), np.zeros((0, 0)), z, z, z
    return (
        np.concatenate(feats),
        np.concatenate(embs),
        np.concatenate(ious),
        np.concatenate(modes),
        np.concatenate(idx),
    )


@dataclass
class QualitySamples:
    """Out-of-sample evaluator samples made elsewhere (k-fold cross-fitting of the network,
    :mod:`sam2elnet.engine.quality_crossfit`), added to the validation samples.

    Attributes:
        features: (N, F) float64 uncertainty features (``FEATURE_NAMES``).
        embeddings: (N, D) float64 decoder embeddings.
        ious: (N,) true IoU in [0, 1].
        modes: (N,) 0 = annotate, 1 = enhance.
        groups: (N,) image index; the two samples of one image share it.
        info: how the samples were made (recorded in the summary under ``fitted_on``).
    """

    features: np.ndarray
    embeddings: np.ndarray
    ious: np.ndarray
    modes: np.ndarray
    groups: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ious)


def fit_evaluator(
    model: torch.nn.Module,
    val_items: Sequence[dict[str, Any]],
    qcfg: QualityConfig,
    device: torch.device,
    precision: str,
    batch_size: int,
    seed: int,
    train_items: Sequence[dict[str, Any]] = (),
    extra: QualitySamples | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the quality evaluator; return (state, summary).

    Samples: every validation item (out of sample) plus ``train_items`` (images the network was
    trained on: in-sample, optimistic; an indicator in the ridge absorbs the offset), each in
    annotate and enhance mode, plus ``extra`` (out-of-sample samples from cross-fitted
    networks); k-fold cross-fitting of the ridge grouped by image (docs/training.md).

    ``progress``: a bar over the predicted images, or with False one line every 30 s and one at
    the end (``quality evaluator: 8/8 img in 1.2 s (6.67 img/s), samples 16``; samples: both
    modes of each image, ``extra`` not counted).
    """
    ev = QualityEvaluator(
        tau=qcfg.tau, tta=qcfg.tta, pca_dim=qcfg.pca_dim, ridge_alpha=qcfg.ridge_alpha
    )
    items = ChainedItems(val_items, train_items)  # decoded a batch at a time
    # full-size predictions of every image: minutes on a real dataset (a trial saw 105 s silent)
    bar = progress_bar(len(items), "quality evaluator", "img", progress, leave=False)
    try:
        feats, embs, ious, modes, idx = collect_quality_samples(
            model, items, device, precision, qcfg.tta, batch_size, bar=bar
        )
    except BaseException:
        abandon(bar)
        raise
    bar.set_postfix(samples=len(ious), refresh=False)
    bar.close()
    in_sample = (idx >= len(val_items)).astype(np.float64)
    n_items = len(items)
    if extra is not None and len(extra):
        feats = np.concatenate([feats.reshape(-1, extra.features.shape[1]), extra.features])
        embs = np.concatenate([embs.reshape(-1, extra.embeddings.shape[1]), extra.embeddings])
        ious = np.concatenate([ious, extra.ious])
        modes = np.concatenate([modes, extra.modes])
        idx = np.concatenate([idx, n_items + np.asarray(extra.groups)])
        in_sample = np.concatenate([in_sample, np.zeros(len(extra))])
    if not len(ious):
        log.warning("no labelled images for the quality evaluator: it stays unfitted")
    ev.fit(
        feats if len(ious) else np.zeros((0, len(FEATURE_NAMES))),
        embs if len(ious) else None,
        ious,
        folds=qcfg.folds,
        seed=seed,
        in_sample=in_sample,
        groups=idx,
    )
    choice = ev.threshold_for_precision(qcfg.default_target_precision)
    oof = getattr(ev, "oof_scores", np.zeros(len(ious)))
    out = in_sample < 0.5
    mode_sp, mode_n = {}, {}
    for name, val in (("annotate", 0), ("enhance", 1)):
        sel = (modes == val) & out if out.sum() >= 3 else modes == val
        mode_sp[name] = spearman(oof[sel], ious[sel]) if len(oof) == len(ious) else None
        mode_n[name] = int(sel.sum())
    summary = {
        "fitted": ev.fitted,
        "status": ev.status,
        "warning": ev.warning or None,
        "n": int(len(ious)),
        "n_heldout": int(out.sum()),
        "n_in_sample": int((~out).sum()),
        "spearman_oof": ev.metrics.get("spearman_oof"),
        "spearman_oof_heldout": ev.metrics.get("spearman_oof_heldout"),
        "spearman_oof_in_sample": ev.metrics.get("spearman_oof_in_sample"),
        "spearman_annotate": mode_sp["annotate"],
        "spearman_enhance": mode_sp["enhance"],
        **{f"n_spearman_{k}": n for k, n in mode_n.items()},  # the samples each was counted on
        "mae_oof": ev.metrics.get("mae_oof"),
        "mean_iou_annotate": float(ious[(modes == 0) & out].mean())
        if ((modes == 0) & out).any()
        else None,
        "mean_iou_enhance": float(ious[(modes == 1) & out].mean())
        if ((modes == 1) & out).any()
        else None,
        "mean_iou_in_sample": ev.metrics.get("mean_iou_in_sample"),
        "in_sample_offset": ev.in_sample_coef,
        "empty_counts": ev.empty_counts,  # held-out empty labels per kind: [n, right]
        "default_threshold": choice.as_dict(),
        "fitted_on": {
            "method": "crossfit" if extra is not None else "validation+training",
            "n_validation": int((idx < len(val_items)).sum()),
            "n_training_in_sample": int((~out).sum()),
            "n_crossfit": int(len(extra)) if extra is not None else 0,
            **(extra.info if extra is not None else {}),
        },
    }
    summary = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()
    }
    return ev.state_dict(), summary


def describe_summary(summary: dict[str, Any]) -> str:
    """One line for ``elnet train``: status, sample counts, out-of-fold Spearman (pooled, and per
    mode: annotation and enhancement samples of the same images), for a cross-fitted evaluator
    how many samples came from the fold networks, and the default threshold's note when its
    held-out labels are too few to promise the target precision (for an evaluator not fitted:
    that ``--target-precision`` is refused, instead of a note on a threshold nobody can use)."""

    def rho(v: Any, n: Any) -> str:  # None / NaN: fewer than 3 samples, or no ranking
        if isinstance(v, float) and math.isfinite(v):
            return f"{v:.3f}"
        if isinstance(n, int) and n < 3:
            return f"n/a: {n} samples, 3 needed"
        return "n/a: constant scores or IoU"

    q = summary
    n_out = q.get("n_heldout", q.get("n"))
    line = (
        f"quality evaluator: {q.get('status', 'fitted' if q.get('fitted') else 'not fitted')}"
        f" on {plural(q.get('n'), 'labelled sample')} ({n_out} held out, "
        f"{q.get('n_in_sample', 0)} from training images), out-of-fold Spearman "
        f"{rho(q.get('spearman_oof'), q.get('n'))} (held out "
        f"{rho(q.get('spearman_oof_heldout'), n_out)})"
    )
    by_mode = []  # pooled, a mode that does not rank can hide (roads-dev: 0.774, annotation -0.258)
    for name, k in (("annotation (elnet annotate)", "annotate"), ("enhancement", "enhance")):
        v, n = q.get(f"spearman_{k}"), q.get(f"n_spearman_{k}")
        if v is not None:
            by_mode.append(f"{name} {rho(v, n)}" + (f" (n={n})" if isinstance(n, int) else ""))
    if by_mode:
        line += "; Spearman by mode: " + ", ".join(by_mode)
    how = q.get("fitted_on") or {}
    if how.get("method") == "crossfit":
        line += (
            f"; {how.get('n_crossfit')} out-of-fold samples of {how.get('crossfit_folds')} "
            f"cross-fitted networks + {how.get('n_validation')} validation samples"
        )
    thr = q.get("default_threshold") or {}
    if q.get("fitted") is False:  # annotate / enhance refuse --target-precision with this model
        line += (
            "; --target-precision is refused with this model (no fitted evaluator): give "
            "--min-quality to elnet annotate / enhance"
        )
    elif thr.get("note"):  # too few held-out labels to promise the default target precision
        line += f"; --target-precision {thr.get('target_precision')}: {thr['note']}"
    return line


def fit_quality(
    model_path: str | Path,
    data: str | Path | None = None,
    *,
    val_items: Sequence[dict[str, Any]] | None = None,
    train_items: Sequence[dict[str, Any]] | None = None,
    ids: Sequence[str] | None = None,
    train_ids: Sequence[str] | None = None,
    qcfg: QualityConfig | None = None,
    device: str = option_default(FolderJobOptions, "device"),
    precision: str = option_default(FolderJobOptions, "precision"),
    batch_size: int = option_default(FolderJobOptions, "batch_size"),
    seed: int = 0,
    layout: str = "auto",
    crossfit: QualitySamples | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """(Re)fit the label quality evaluator stored in ``model_path`` and rewrite the file.

    Samples: the run's validation split (out of sample; ``splits.json`` next to the model, images
    found under ``data`` or the training data folder recorded in the model) plus at most
    ``qcfg.train_samples`` of its training images (in sample, marked so; docs/training.md says why
    and what that costs). ``ids`` / ``train_ids`` choose other ids; ``val_items`` /
    ``train_items`` pass prepared dataset items directly (used at the end of :func:`train`).

    Args:
        model_path: model file written by ``elnet train`` (rewritten atomically).
        data: labelled data folder (default: the training data folder recorded in the model).
        val_items: prepared held-out dataset items (skips reading ``data``).
        train_items: prepared training-image items (in sample); None = read ``train_ids``.
        ids: held-out sample ids (default: ``val`` of ``splits.json`` next to the model).
        train_ids: training sample ids (default: ``train`` of ``splits.json``), of which at most
            ``qcfg.train_samples`` (seeded subset) are used.
        qcfg: evaluator settings (default :class:`~sam2elnet.config.QualityConfig`).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"auto"``, ``"bf16"`` or ``"32"`` (:func:`~sam2elnet.engine.runtime.resolve_precision`).
        batch_size: items per forward pass.
        seed: seed of the dataset, the training subset and the cross-fitting folds.
        layout: dataset layout for :func:`~sam2elnet.data.layouts.discover`.
        crossfit: out-of-sample samples of cross-fitted networks
            (:func:`sam2elnet.engine.quality_crossfit.crossfit_samples`); pass
            ``train_items=[]`` with them, the training images are covered already.
        progress: a bar while the images are predicted, or with False plain lines
            (:func:`fit_evaluator`).

    Returns:
        The evaluator summary (out-of-fold Spearman overall / held out / in sample, status,
        warning, default threshold...), also stored in ``extra["quality_summary"]``.

    Raises:
        UserError: no data folder, no ``splits.json``, or none of the held-out ids found.
    """
    from sam2elnet.data.layouts import discover
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import load_model, save_model  # per call: tests replace save_model

    path = Path(model_path)
    model, extra = load_model(path)
    dev = resolve_device(device)
    model.to(dev)
    qcfg = qcfg or QualityConfig()
    if val_items is None:
        saved: dict[str, Any] = {}
        root = Path(data) if data is not None else Path(str(extra.get("train", {}).get("data", "")))
        if not str(root) or not root.exists():
            raise UserError(
                "pass the labelled data folder (--data) to fit the quality evaluator", path
            )
        if ids is None:
            splits_file = path.parent / "splits.json"
            if not splits_file.is_file():
                raise UserError(
                    "no splits.json next to the model; pass held-out ids explicitly", path
                )
            saved = json.loads(splits_file.read_text(encoding="utf-8"))
            ids = saved.get("val", [])
            dataset_splits = saved.get("dataset_splits")
        else:
            dataset_splits = extra.get("train", {}).get("dataset_splits")
        # the split folders training used: sample ids are only unique within that choice
        index = discover(root, layout=layout, split=dataset_splits or None)
        want = set(ids)
        samples = [s for s in index.samples if s.id in want and s.mask is not None]
        if not samples:
            raise UserError("none of the held-out ids were found in the data folder", root)
        norm = NormalizationConfig.model_validate(extra["normalization"])

        def _items(chosen: Sequence[Any]) -> list[dict[str, Any]]:
            bands = int(extra.get("in_bands", model.config.in_bands))
            pv = extra.get("train", {}).get("positive_values")
            return quality_items(chosen, norm, bands, seed, tuple(pv) if pv else None)

        val_items = _items(samples)
        if train_items is None:
            tids = set(train_ids if train_ids is not None else saved.get("train", []))
            tr = [s for s in index.samples if s.id in tids and s.mask is not None]
            train_items = _items(train_subset(tr, qcfg.train_samples, seed))
    state, summary = fit_evaluator(
        model,
        val_items,
        qcfg,
        dev,
        precision,
        batch_size,
        seed,
        train_items or (),
        extra=crossfit,
        progress=progress,
    )
    extra = dict(extra)
    extra["quality"] = state
    extra["quality_summary"] = summary
    save_model(model.cpu(), path, extra=extra)
    return summary
