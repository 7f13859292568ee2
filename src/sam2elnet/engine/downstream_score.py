"""Scoring the downstream model (part of :mod:`sam2elnet.engine.downstream`): probabilities at
native resolution, per-image confusion counts on the test pairs, pixel-aggregated scores, and the
points of the learning curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from sam2elnet.engine.downstream_config import DownstreamConfig, downstream_autocast
from sam2elnet.engine.downstream_data import Pair, load_pair, normalization, require_pairs
from sam2elnet.engine.road_buffer import per_item
from sam2elnet.engine.runtime import channels_last_default
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.utils.progress import progress_bar
from sam2elnet.utils.shape_batches import batches_by_key


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
    channels_last = channels_last_default()  # as trained (downstream_train); in place, idempotent
    if channels_last:
        model.to(memory_format=torch.channels_last)
    out: list[np.ndarray | None] = [None] * len(images)
    shapes = [tuple(a.shape) for a in images]
    for sel in batches_by_key(shapes, max(1, cfg.eval_batch_size)):
        x = torch.from_numpy(np.stack([images[i] for i in sel]).astype(np.float32))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with downstream_autocast(cfg):
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
    show: bool = True,
    road_buffer: float | Sequence[float] | None = ROAD_BUFFER_PX,
    in_bands: int | None = None,
) -> np.ndarray:
    """Per-image confusion counts of ``model`` on test ``pairs`` at native resolution.

    Returns an (N, 4) int64 array [tp, fp, fn, tn] in the order of ``pairs``; pixels that are nodata
    in the image or ignore in the label are not counted. Threshold: ``cfg.threshold`` on the
    probability. A test image's band count is matched to the model's (``in_bands``; None: the
    model's ``in_bands`` attribute, a ValueError when it has none) by the
    band rule of ``elnet annotate`` (:func:`~sam2elnet.engine.downstream_data.load_pair`): a
    grey image into an RGB model is repeated, one band into a VV+VH model is a BandCountError
    naming the image. With a ``road_counts`` list (road data), each image's
    :class:`~sam2elnet.engine.metrics.RoadCounts` (valid pixels only, centre lines matched within
    ``road_buffer`` px: one for all, or each pair's own in ``pairs`` order, e.g. from
    ``--road-buffer-m``; None only without ``road_counts``) is appended to it, in order.

    Progress (:mod:`sam2elnet.utils.progress`): a bar counting test images when ``cfg.progress``,
    else one line at the end (``downstream test: 40/40 img in 2.1 s (19.05 img/s), IoU 0.612``);
    ``show=False`` (the learning-curve points during training) shows neither.
    """
    from sam2elnet.engine.metrics import confusion
    from sam2elnet.engine.metrics import road_counts as _road_counts

    pairs = require_pairs(pairs, "test")
    buffers = per_item(road_buffer, len(pairs)) if road_counts is not None else []
    norm_cfg = normalization(norm_cfg)
    rows = np.zeros((len(pairs), 4), dtype=np.int64)
    in_bands = model_bands(model, in_bands)  # the band rule of every prediction path
    bs = max(1, cfg.eval_batch_size)
    bar = (
        progress_bar(len(pairs), "downstream test", "img", enabled=cfg.progress, leave=False)
        if show
        else None
    )
    for s in range(0, len(pairs), bs):
        loaded = [load_pair(ip, lp, norm_cfg, in_bands) for ip, lp in pairs[s : s + bs]]
        probs = predict_probabilities(model, [x for x, _, _ in loaded], cfg)
        for j, ((_, m, v), p) in enumerate(zip(loaded, probs, strict=True)):
            assert m is not None
            c = confusion(p > cfg.threshold, m, valid=v)
            rows[s + j] = (c.tp, c.fp, c.fn, c.tn)
            if road_counts is not None:
                vv = np.ones_like(m, dtype=bool) if v is None else v
                road_counts.append(
                    _road_counts((p > cfg.threshold) & vv, m & vv, buffer_px=buffers[s + j])
                )
        if bar is not None:
            bar.update(len(loaded))
    if bar is not None:
        tp, fp, fn, _ = rows.sum(axis=0)
        bar.set_postfix(IoU=f"{tp / max(1, tp + fp + fn):.3f}")
        bar.close()
    return rows


def model_bands(model: nn.Module, in_bands: int | None = None) -> int:
    """The band count ``model`` takes: ``in_bands`` when given, else ``model.in_bands``.

    Raises:
        ValueError: neither is there (a registered downstream model without an ``in_bands``
            attribute): without it the test images' bands could not be matched to the model's.
    """
    bands = in_bands if in_bands is not None else getattr(model, "in_bands", None)
    if bands is None:
        raise ValueError(
            f"{type(model).__name__} has no in_bands attribute: pass in_bands (the band count it "
            "was built for) so the test images' bands are matched to it"
        )
    return int(bands)


def evaluate_downstream(
    model: nn.Module,
    pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
    in_bands: int | None = None,
) -> dict[str, float]:
    """Pixel-aggregated scores of ``model`` on test ``pairs`` at native resolution
    (``in_bands``: as :func:`confusion_per_image`)."""
    counts = confusion_per_image(model, pairs, cfg, norm_cfg, in_bands=in_bands)
    result = scores_from_counts(counts.sum(axis=0))
    result["n_test"] = len(pairs)
    return result


def curve_point(step: int, scores: dict[str, float], loss: float) -> dict[str, float]:
    """One learning-curve point: ``{"step", "iou", "miou", "f1", "loss"}`` (``loss``: the mean
    training loss since the previous point)."""
    return {"step": step, **{k: scores[k] for k in ("iou", "miou", "f1")}} | {"loss": loss}
