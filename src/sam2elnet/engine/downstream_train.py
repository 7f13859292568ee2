"""The downstream model's training loop (part of :mod:`sam2elnet.engine.downstream`): seed-determined
initial weights and batch order, AdamW with warm-up + cosine schedule, a fixed number of steps,
optional learning-curve scoring on the test pairs (inference only: it does not change training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sam2elnet.data.load_cache import LoadCache
from sam2elnet.engine.downstream_config import DownstreamConfig, downstream_autocast
from sam2elnet.engine.downstream_data import (
    Pair,
    make_train_dataset,
    normalization,
    require_pairs,
)
from sam2elnet.engine.downstream_score import confusion_per_image, curve_point, scores_from_counts
from sam2elnet.engine.runtime import channels_last_default, resolve_device
from sam2elnet.utils.progress import progress_bar


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


def downstream_optimizer(model: nn.Module, cfg: DownstreamConfig) -> torch.optim.AdamW:
    """AdamW over every parameter of ``model`` (``cfg.lr``, ``cfg.weight_decay``) in its
    multi-tensor (``foreach``) form, also on a CPU, where torch's default updates one tensor at
    a time: the same update bit for bit, with its Python overhead paid once per step
    (:func:`sam2elnet.engine.train_schedule.adamw` likewise)."""
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
    )


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
    cache: LoadCache | None = None,
    curve_pairs: Sequence[Pair] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the downstream model on ``pairs``; return (model in eval mode, training facts).

    ``cache`` (:class:`~sam2elnet.data.load_cache.LoadCache`, shared across calls; None: one of
    this training's own) keeps decoded arrays so that the several settings of one experiment
    decode each image once. With ``curve_pairs`` (the test pairs) the model is
    scored on them after each of :func:`curve_steps` except the last (``facts["curve"]``; the caller
    scores the final model); the evaluation does not change the training.

    Progress (:mod:`sam2elnet.utils.progress`): a bar counting optimiser steps when
    ``cfg.progress``, else a line every 30 s and one at the end (``downstream training (40 img):
    50/50 step in 12.3 s (4.07 step/s), loss 0.412``; the last epoch's mean loss, and the test IoU
    of the latest learning-curve point when there is one).

    Raises:
        UserError: ``cfg.device`` is CUDA on a machine without it, or not a device name
            (:func:`~sam2elnet.engine.runtime.resolve_device`; was torch's raw AssertionError).
    """
    pairs = require_pairs(pairs, "training")
    norm_cfg = normalization(norm_cfg)
    ds = make_train_dataset(
        pairs,
        norm_cfg,
        cfg.image_size,
        augment=cfg.augment,
        seed=cfg.seed,
        cache=LoadCache() if cache is None else cache,
    )
    in_bands = int(ds[0]["image"].shape[0])
    ds.bands = in_bands  # the other images: the band rule of elnet train (data.band_match)
    model = build_downstream_model(cfg, in_bands).to(resolve_device(cfg.device))
    # oneDNN's preferred layout: 1.3-1.5x per step for this U-Net on CPU (benchmarks/
    # bench_downstream.py); same training up to float rounding
    channels_last = channels_last_default()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bs = max(1, min(cfg.batch_size, len(ds)))
    # BatchNorm cannot train on a batch of one: drop a last batch of size 1.
    steps_per_epoch = (
        len(ds) // bs if len(ds) % bs == 1 and len(ds) > bs else math.ceil(len(ds) / bs)
    )
    total_steps = cfg.steps if cfg.steps else max(1, cfg.epochs * steps_per_epoch)
    epochs = math.ceil(total_steps / steps_per_epoch)
    opt = downstream_optimizer(model, cfg)
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
    post: dict[str, str] = {}  # the bar's postfix: last epoch's loss, latest curve IoU
    step = 0
    seen = 0
    t0 = time.perf_counter()
    bar = progress_bar(
        total_steps,
        f"downstream training ({len(ds)} img)",
        "step",
        enabled=cfg.progress,
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
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            m = batch["mask"].to(cfg.device)
            v = batch["valid"].to(cfg.device)
            with downstream_autocast(cfg):
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
                counts = confusion_per_image(
                    model, curve_pairs, cfg, norm_cfg, show=False, in_bands=in_bands
                )
                model.train()
                curve.append(
                    curve_point(step, scores_from_counts(counts.sum(axis=0)), float(np.mean(since)))
                )
                # with its step: the last curve point comes before the final step, so a bare
                # "20/20 step ..., test_IoU 0.245" read as the final model's (then IoU 0.354)
                post["test_IoU"] = f"{curve[-1]['iou']:.3f} at step {step}"
                since = []
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else math.nan})
        post["loss"] = f"{history[-1]['loss']:.3f}"
        bar.set_postfix(**dict(sorted(post.items())))
        if step >= total_steps:
            break
    seconds = time.perf_counter() - t0
    bar.close()
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
