"""Fitting the label quality evaluator on held-out predictions of a trained model.

The evaluator (:class:`sam2elnet.model.quality.QualityEvaluator`) predicts each label's IoU from
uncertainty features. It must be fitted on images the model was not trained on, with the same
features inference computes: :func:`collect_quality_samples` runs
:func:`sam2elnet.engine.runtime.run_model` on held-out items in both modes, :func:`fit_evaluator`
fits and summarises, and :func:`fit_quality` (re)fits the evaluator stored in a model file (called
at the end of :func:`sam2elnet.engine.train.train`, or on its own for an existing model).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2elnet.config import QualityConfig
from sam2elnet.engine.metrics import iou_per_sample
from sam2elnet.engine.runtime import resolve_device, run_model
from sam2elnet.errors import UserError
from sam2elnet.model.quality import QualityEvaluator, _spearman

log = logging.getLogger(__name__)

__all__ = ["collect_quality_samples", "fit_evaluator", "fit_quality"]


@torch.no_grad()
def collect_quality_samples(
    model: torch.nn.Module,
    items: Sequence[dict[str, Any]],
    device: torch.device,
    precision: str,
    tta: int,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predict held-out items in both modes (annotate, and enhance where a coarse label exists).

    Uses the same feature code as inference (:func:`sam2elnet.engine.runtime.run_model`), so the
    evaluator sees at fit time exactly what it will see in use.

    Args:
        model: the trained SAM2-ELNet.
        items: dataset items (dicts of ``image`` (C,H,W), ``mask``/``valid``/``coarse`` (1,H,W)
            float tensors and ``has_coarse`` (scalar)), as :class:`SegmentationDataset` yields.
        device: where to run.
        precision: ``"bf16"`` or ``"32"``.
        tta: test-time-augmentation views.
        batch_size: items per forward pass.

    Returns:
        ``(features (N, F), embeddings (N, D), true IoU (N,), has_coarse (N,) in {0, 1})`` as
        float64 arrays, one row per (item, mode).
    """
    feats, embs, ious, modes = [], [], [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
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
    if not feats:
        return np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0), np.zeros(0)
    return np.concatenate(feats), np.concatenate(embs), np.concatenate(ious), np.concatenate(modes)


def fit_evaluator(
    model: torch.nn.Module,
    val_items: Sequence[dict[str, Any]],
    qcfg: QualityConfig,
    device: torch.device,
    precision: str,
    batch_size: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the quality evaluator on held-out predictions.

    Args:
        model: the trained SAM2-ELNet.
        val_items: held-out dataset items (see :func:`collect_quality_samples`).
        qcfg: evaluator settings (TTA views, tau, PCA size, ridge alpha, folds, default precision).
        device: where to run.
        precision: ``"bf16"`` or ``"32"``.
        batch_size: items per forward pass.
        seed: seed of the cross-validation folds.

    Returns:
        ``(state, summary)``: the evaluator's state dict (stored in the model file) and a summary
        (held-out Spearman per mode, MAE, mean IoU per mode, default threshold), NaN as None.
    """

    ev = QualityEvaluator(
        tau=qcfg.tau, tta=qcfg.tta, pca_dim=qcfg.pca_dim, ridge_alpha=qcfg.ridge_alpha
    )
    if not val_items:
        log.warning("no validation images: the quality evaluator stays unfitted (heuristic scores)")
        return ev.state_dict(), {"fitted": False, "n": 0}
    feats, embs, ious, modes = collect_quality_samples(
        model, val_items, device, precision, qcfg.tta, batch_size
    )
    ev.fit(feats, embs, ious, folds=qcfg.folds, seed=seed)
    choice = ev.threshold_for_precision(qcfg.default_target_precision)
    scores = np.asarray(ev.heldout_scores)
    summary = {
        "fitted": ev.fitted,
        "n": int(len(ious)),
        "spearman_oof": ev.metrics.get("spearman_oof"),
        "spearman_annotate": _spearman(scores[modes == 0], ious[modes == 0]) if len(ious) else None,
        "spearman_enhance": _spearman(scores[modes == 1], ious[modes == 1]) if len(ious) else None,
        "mae_oof": ev.metrics.get("mae_oof"),
        "mean_iou_annotate": float(ious[modes == 0].mean()) if (modes == 0).any() else None,
        "mean_iou_enhance": float(ious[modes == 1].mean()) if (modes == 1).any() else None,
        "default_threshold": choice.as_dict(),
    }
    summary = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()
    }
    return ev.state_dict(), summary


def fit_quality(
    model_path: str | Path,
    data: str | Path | None = None,
    *,
    val_items: Sequence[dict[str, Any]] | None = None,
    ids: Sequence[str] | None = None,
    qcfg: QualityConfig | None = None,
    device: str = "cpu",
    precision: str = "bf16",
    batch_size: int = 8,
    seed: int = 0,
    layout: str = "auto",
) -> dict[str, Any]:
    """(Re)fit the label quality evaluator stored in ``model_path`` and rewrite the file.

    The evaluator must be fitted on images the model was **not** trained on. By default that is the
    run's validation split (``splits.json`` next to the model, images found under ``data`` or the
    training data folder recorded in the model); ``ids`` chooses other held-out ids and
    ``val_items`` passes prepared dataset items directly (used at the end of :func:`train`).

    Args:
        model_path: model file written by ``elnet train`` (rewritten atomically).
        data: labelled data folder (default: the training data folder recorded in the model).
        val_items: prepared dataset items (skips reading ``data``).
        ids: held-out sample ids (default: ``val`` of ``splits.json`` next to the model).
        qcfg: evaluator settings (default :class:`~sam2elnet.config.QualityConfig`).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"bf16"`` or ``"32"``.
        batch_size: items per forward pass.
        seed: seed of the dataset and of the cross-validation folds.
        layout: dataset layout for :func:`~sam2elnet.data.datasets.discover`.

    Returns:
        The evaluator summary (held-out Spearman, default threshold...), also stored in the
        model file's ``extra["quality_summary"]``.

    Raises:
        UserError: no data folder, no ``splits.json``, or none of the held-out ids found.
    """
    import json

    from sam2elnet.data.datasets import SegmentationDataset, discover
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import load_model, save_model

    path = Path(model_path)
    model, extra = load_model(path)
    dev = resolve_device(device)
    model.to(dev)
    qcfg = qcfg or QualityConfig()
    if val_items is None:
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
        ds = SegmentationDataset(
            samples,
            norm,
            size=int(extra.get("image_size", 256)),
            train=False,
            seed=seed,
            coarse_prob=1.0,
            bands=int(extra.get("in_bands", model.config.in_bands)),
        )
        val_items = [ds[i] for i in range(len(ds))]
    state, summary = fit_evaluator(model, list(val_items), qcfg, dev, precision, batch_size, seed)
    extra = dict(extra)
    extra["quality"] = state
    extra["quality_summary"] = summary
    save_model(model.cpu(), path, extra=extra)
    return summary
