"""Train and evaluate the *downstream* segmentation model of the paper's protocol.

The protocol compares label sets (all original labels, a labelled fraction, filtered auto-labels,
enhanced labels, classical refinements, ...) by the test score of an ordinary segmentation model
trained on each. That comparison is only meaningful when everything except the labels is identical,
so one :class:`DownstreamConfig` (model, seed, epochs, image size, batch size, optimiser, lr schedule,
bf16 autocast, augmentation) is used for every setting, and the initial weights and the order of
batches depend on the seed only.

A training sample is an (image path, label path) pair: the label path may point at an original label,
an automatic annotation or an enhanced/refined label (label override). Test scores are
pixel-aggregated over the whole test set (one confusion matrix), at the test images' native
resolution. Training uses the data layer's random crops (side ``image_size`` x a scale in
[0.75, 1.33], at native resolution), so the model sees the same pixel scale in training and test.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn
from tqdm import tqdm

from sam2elnet.engine.runtime import autocast
from sam2elnet.errors import DataError, UserError
from sam2elnet.options import Precision, check_device, norm_precision_value

log = logging.getLogger(__name__)

Pair = tuple[Path, Path]


class DownstreamConfig(BaseModel):
    """Everything that must be identical across the settings of one experiment.

    A pydantic model (ranges declared here, once); :meth:`to_dict` is part of every cached
    downstream training's fingerprint, so the field order and values are those of the results
    files.
    """

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, protected_namespaces=()
    )

    model: str = "unet"
    model_options: dict[str, Any] = Field(
        default_factory=lambda: {"width": 16, "depth": 4, "norm": "batch"}
    )
    epochs: int = Field(10, ge=1)
    steps: int | None = Field(None, ge=1)
    """Fixed number of optimiser steps for every setting (overrides ``epochs`` when set)."""
    image_size: int = Field(256, ge=32)
    batch_size: int = Field(8, ge=1, le=1024)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    precision: Precision = "auto"  # auto | bf16 | 32 (older results spelled 32 "fp32")
    device: str = "cpu"
    seed: int = 0
    augment: bool = True
    threshold: float = Field(0.5, ge=0, le=1)
    eval_batch_size: int = Field(16, ge=1)
    curve_points: int = Field(0, ge=0, le=50)
    """Test-split evaluations during training (evenly spaced in optimiser steps, the last one at
    the end) for a learning curve; 0 or 1 (default) = the final evaluation only. Inference only:
    the trained weights are identical whatever this is."""
    progress: bool = True

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _prec = field_validator("precision", mode="before")(staticmethod(norm_precision_value))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for results files and fingerprints.

        Returns:
            Every field in declaration order.
        """
        return self.model_dump()


@dataclass
class DownstreamResult:
    """Test scores and training facts of one downstream run."""

    metrics: dict[str, float]
    n_train: int
    n_test: int
    train_seconds: float
    images_per_second: float
    parameters: int
    history: list[dict[str, float]] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    """Learning curve on the test split: ``{"step", "iou", "miou", "f1", "loss"}`` per point
    (``loss`` = mean training loss since the previous point), the last at the final step."""
    per_image: list[list[int]] = field(default_factory=list)
    """Confusion counts [tp, fp, fn, tn] of each test image, in the order of the test pairs (they
    sum to the aggregate counts in ``metrics``; bootstrap intervals resample them)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for results files."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------- data
def _normalization(norm_cfg: Any | None, modality: str = "sar") -> Any:
    from sam2elnet.data.normalize import NormalizationConfig

    return norm_cfg if norm_cfg is not None else NormalizationConfig.for_modality(modality)


def load_pair(
    image_path: Path, label_path: Path | None, norm_cfg: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read one pair: normalised image (C,H,W) f32, label bool (H,W) or None, valid bool (H,W)."""
    from sam2elnet.data.normalize import normalize
    from sam2elnet.data.raster import read_image, read_mask_valid

    img = read_image(image_path, sar=norm_cfg.sar, bands=norm_cfg.band_select)
    x = normalize(img, norm_cfg)
    mask = None
    valid = img.valid
    if label_path is not None:
        mask, mask_valid = read_mask_valid(label_path, shape=img.shape, image_path=image_path)
        if mask_valid is not None:  # the label's ignore / nodata pixels: out of the loss
            valid = valid & mask_valid
    return x, mask, valid


def make_train_dataset(
    pairs: Sequence[Pair],
    norm_cfg: Any,
    size: int,
    augment: bool = True,
    seed: int = 0,
    cache: dict | None = None,
) -> torch.utils.data.Dataset:
    """The data layer's :class:`SegmentationDataset` over ``pairs`` (label override: the label path
    becomes the sample's mask), with no coarse inputs and an in-memory cache of decoded images.

    The cache (a dict, shareable across calls) holds full-size normalised arrays, so the several
    settings of one experiment decode each image once (400 SOS images of 256 px are ~100 MB).
    """
    from sam2elnet.data.datasets import Sample, SegmentationDataset

    class _Cached(SegmentationDataset):
        def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
            s = self.samples[index]
            key = (str(s.image), str(s.mask))
            if self._cache is None:
                return super().load(index)
            if key not in self._cache:
                self._cache[key] = super().load(index)
            return self._cache[key]

    samples = [
        Sample(id=f"{i:06d}_{Path(ip).stem}", image=Path(ip), mask=Path(lp))
        for i, (ip, lp) in enumerate(pairs)
    ]
    ds = _Cached(samples, norm_cfg, size=size, train=augment, seed=seed, coarse_prob=0.0)
    ds._cache = cache
    return ds


def _check_pairs(pairs: Sequence[Pair], what: str) -> list[Pair]:
    out = [(Path(a), Path(b)) for a, b in pairs]
    if not out:
        raise UserError(f"no {what} pairs; check the data folder and the selected split")
    return out


# ---------------------------------------------------------------------------------------- training
def _autocast(cfg: DownstreamConfig) -> Any:
    return autocast(torch.device(str(cfg.device).split(":")[0]), cfg.precision)


def _loss(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE + soft IoU over valid pixels (the engine's loss without the ELNet-only terms)."""
    try:
        from sam2elnet.engine.losses import LossWeights, segmentation_loss

        total, _ = segmentation_loss(
            logits, mask, valid, weights=LossWeights(boundary=0.0, deep_supervision=0.0, edge=0.0)
        )
        return total
    except ImportError:  # pragma: no cover - losses module missing
        logits = logits.float()
        bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
        bce = (bce * valid).sum() / valid.sum().clamp_min(1.0)
        p = torch.sigmoid(logits) * valid
        inter = (p * mask).flatten(1).sum(1)
        union = (p + mask * valid - p * mask).flatten(1).sum(1)
        return bce + (1 - (inter + 1) / (union + 1)).mean()


def build_downstream_model(cfg: DownstreamConfig, in_bands: int) -> nn.Module:
    """The downstream model with seed-determined initial weights (same for every setting)."""
    from sam2elnet.model.unet import build_downstream

    torch.manual_seed(cfg.seed)
    return build_downstream(cfg.model, in_bands=in_bands, **cfg.model_options)


def curve_steps(total_steps: int, points: int) -> list[int]:
    """Optimiser steps after which the learning curve is measured: ``points`` evenly spaced steps
    ending at ``total_steps`` (fewer when there are fewer steps; [total_steps] for points <= 1)."""
    if points <= 1 or total_steps <= 1:
        return [total_steps]
    return sorted({max(1, round(total_steps * k / points)) for k in range(1, points + 1)})


def train_downstream(
    pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
    cache: dict | None = None,
    curve_pairs: Sequence[Pair] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the downstream model on ``pairs``; return (model in eval mode, training facts).

    ``cache`` (a dict shared across calls) keeps decoded, resized arrays so that the several settings
    of one experiment decode each image once. With ``curve_pairs`` (the test pairs) the model is
    scored on them after each of :func:`curve_steps` except the last (``facts["curve"]``; the caller
    scores the final model); the evaluation does not change the training.
    """
    pairs = _check_pairs(pairs, "training")
    norm_cfg = _normalization(norm_cfg)
    ds = make_train_dataset(
        pairs,
        norm_cfg,
        cfg.image_size,
        augment=cfg.augment,
        seed=cfg.seed,
        cache={} if cache is None else cache,
    )
    in_bands = int(ds[0]["image"].shape[0])
    model = build_downstream_model(cfg, in_bands).to(cfg.device)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bs = max(1, min(cfg.batch_size, len(ds)))
    # BatchNorm cannot train on a batch of one: drop a last batch of size 1.
    steps_per_epoch = (
        len(ds) // bs if len(ds) % bs == 1 and len(ds) > bs else math.ceil(len(ds) / bs)
    )
    total_steps = cfg.steps if cfg.steps else max(1, cfg.epochs * steps_per_epoch)
    epochs = math.ceil(total_steps / steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup_fraction * total_steps))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    curve: list[dict[str, float]] = []
    at = set(curve_steps(total_steps, cfg.curve_points)[:-1]) if curve_pairs else set()
    since: list[float] = []
    step = 0
    seen = 0
    t0 = time.perf_counter()
    bar = tqdm(
        total=total_steps,
        desc=f"downstream ({len(ds)} imgs)",
        disable=not cfg.progress,
        leave=False,
    )
    model.train()
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=bs,
            shuffle=True,
            generator=gen,
            num_workers=0,
            drop_last=len(ds) % bs == 1 and len(ds) > bs,
        )
        losses = []
        for batch in loader:
            if step >= total_steps:
                break
            x = batch["image"].to(cfg.device)
            m = batch["mask"].to(cfg.device)
            v = batch["valid"].to(cfg.device)
            with _autocast(cfg):
                logits = model(x)
            loss = _loss(logits.float(), m, v)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            since.append(losses[-1])
            step += 1
            seen += x.shape[0]
            bar.update(1)
            if step in at:
                assert curve_pairs is not None
                counts = confusion_per_image(model, curve_pairs, cfg, norm_cfg).sum(axis=0)
                model.train()
                sc = scores_from_counts(counts)
                curve.append(
                    {"step": step, **{k: sc[k] for k in ("iou", "miou", "f1")}}
                    | {"loss": float(np.mean(since))}
                )
                since = []
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else math.nan})
        if step >= total_steps:
            break
    bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    facts = {
        "n_train": len(ds),
        "steps": step,
        "epochs": len(history),
        "train_seconds": seconds,
        "images_per_second": seen / max(seconds, 1e-9),
        "parameters": params,
        "in_bands": in_bands,
        "history": history,
        "curve": curve,
        "loss_since_curve": float(np.mean(since)) if since else math.nan,
    }
    return model, facts


# -------------------------------------------------------------------------------------- evaluation
def scores_from_counts(counts: Sequence[int]) -> dict[str, float]:
    """Pixel-aggregated scores (``engine.metrics.scores``) plus the raw counts, from [tp, fp, fn, tn]."""
    from sam2elnet.engine.metrics import Confusion, scores

    tp, fp, fn, tn = (int(c) for c in counts)
    out: dict[str, float] = dict(scores(Confusion(tp, fp, fn, tn)))
    out.update(tp=tp, fp=fp, fn=fn, tn=tn)
    return out


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: Sequence[np.ndarray],
    cfg: DownstreamConfig,
) -> list[np.ndarray]:
    """Probabilities (H,W) for normalised images (C,H,W), at their native size.

    Training crops windows at (about) native scale (``image_size`` is the crop side), so inference
    runs on the whole image at native scale too; images of one shape are batched together.
    """
    model.eval()
    out: list[np.ndarray | None] = [None] * len(images)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(tuple(a.shape), []).append(i)
    bs = max(1, cfg.eval_batch_size)
    for idx in groups.values():
        for s in range(0, len(idx), bs):
            sel = idx[s : s + bs]
            x = torch.from_numpy(np.stack([images[i] for i in sel]).astype(np.float32))
            with _autocast(cfg):
                logits = model(x.to(cfg.device))
            probs = torch.sigmoid(logits.float()).cpu().numpy()
            for j, i in enumerate(sel):
                out[i] = probs[j, 0]
    return [p for p in out if p is not None]


def confusion_per_image(
    model: nn.Module,
    pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
    road_counts: list[Any] | None = None,
) -> np.ndarray:
    """Per-image confusion counts of ``model`` on test ``pairs`` at native resolution.

    Returns an (N, 4) int64 array [tp, fp, fn, tn] in the order of ``pairs``; pixels that are nodata
    in the image or ignore in the label are not counted. Threshold: ``cfg.threshold`` on the
    probability. With a ``road_counts`` list (road data), each image's
    :class:`~sam2elnet.engine.metrics.RoadCounts` (valid pixels only) is appended to it, in order.
    """
    from sam2elnet.engine.metrics import confusion
    from sam2elnet.engine.metrics import road_counts as _road_counts

    pairs = _check_pairs(pairs, "test")
    norm_cfg = _normalization(norm_cfg)
    rows = np.zeros((len(pairs), 4), dtype=np.int64)
    bs = max(1, cfg.eval_batch_size)
    for s in tqdm(range(0, len(pairs), bs), desc="evaluate", disable=not cfg.progress, leave=False):
        loaded = [load_pair(ip, lp, norm_cfg) for ip, lp in pairs[s : s + bs]]
        probs = predict_probabilities(model, [x for x, _, _ in loaded], cfg)
        for j, ((_, m, v), p) in enumerate(zip(loaded, probs, strict=True)):
            assert m is not None
            c = confusion(p > cfg.threshold, m, valid=v)
            rows[s + j] = (c.tp, c.fp, c.fn, c.tn)
            if road_counts is not None:
                vv = np.ones_like(m, dtype=bool) if v is None else v
                road_counts.append(_road_counts((p > cfg.threshold) & vv, m & vv))
    return rows


def evaluate_downstream(
    model: nn.Module,
    pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
) -> dict[str, float]:
    """Pixel-aggregated scores of ``model`` on test ``pairs`` at native resolution."""
    counts = confusion_per_image(model, pairs, cfg, norm_cfg)
    result = scores_from_counts(counts.sum(axis=0))
    result["n_test"] = len(pairs)
    return result


def train_and_evaluate(
    train_pairs: Sequence[Pair],
    test_pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
    model_path: str | Path | None = None,
    cache: dict | None = None,
    roads: bool = False,
) -> DownstreamResult:
    """Train on ``train_pairs``, score on ``test_pairs``; optionally save the weights (atomically).

    ``roads`` adds the road measures (``road_correctness`` ... ``road_connectivity``, centre-line
    lengths summed over the test images) to the metrics."""
    from sam2elnet.engine.metrics import RoadCounts

    model, facts = train_downstream(
        train_pairs,
        cfg,
        norm_cfg=norm_cfg,
        cache=cache,
        curve_pairs=test_pairs if cfg.curve_points > 1 else None,
    )
    road_rows: list[Any] | None = [] if roads else None
    counts = confusion_per_image(model, test_pairs, cfg, norm_cfg=norm_cfg, road_counts=road_rows)
    metrics: dict[str, float] = scores_from_counts(counts.sum(axis=0))
    if road_rows is not None:
        metrics.update(sum(road_rows, RoadCounts()).scores())
    metrics["n_test"] = len(test_pairs)
    curve = list(facts["curve"])
    if cfg.curve_points > 1:
        curve.append(
            {"step": facts["steps"], **{k: metrics[k] for k in ("iou", "miou", "f1")}}
            | {"loss": facts["loss_since_curve"]}
        )
    if model_path is not None:
        from sam2elnet.utils.atomic import atomic_path

        with atomic_path(model_path) as tmp:
            torch.save(
                {
                    "state_dict": model.state_dict(),
                    "config": cfg.to_dict(),
                    "in_bands": facts["in_bands"],
                },
                tmp,
            )
    return DownstreamResult(
        metrics=metrics,
        n_train=facts["n_train"],
        n_test=len(test_pairs),
        train_seconds=facts["train_seconds"],
        images_per_second=facts["images_per_second"],
        parameters=facts["parameters"],
        history=facts["history"],
        curve=curve,
        per_image=counts.tolist(),
    )


__all__ = [
    "DataError",
    "DownstreamConfig",
    "DownstreamResult",
    "make_train_dataset",
    "build_downstream_model",
    "confusion_per_image",
    "curve_steps",
    "evaluate_downstream",
    "load_pair",
    "predict_probabilities",
    "scores_from_counts",
    "train_and_evaluate",
    "train_downstream",
]
