"""The validation split of a training run: its items, at the pixel scale inference predicts, and
the loader that batches them by shape (used by :func:`sam2elnet.engine.train.train`; the pass
itself is :func:`sam2elnet.engine.train_metrics.validate`).

Every validation image is scored at its native pixel scale, as ``elnet annotate`` / ``enhance``
predict it: its centred window of ``--image-size`` px per side, or the whole image when a side is
shorter (``SegmentationDataset(eval_mode="native")``); the network pads such an image to a
multiple of 32 px itself and crops its output back, as at inference, so no padding reaches the
metrics. Resizing every image to the crop size (before 2026-12-03) scored 400 px roads-dev images
at 0.64x for 256 px crops: roads thinner than drawn, the road measures' buffer no longer in native
pixels, and the best epoch chosen on a different task than the user's. Items are decoded once
(:class:`~sam2elnet.engine.train_data.CachedDataset`) and batched by shape
(:func:`sam2elnet.utils.shape_batches.batches_by_key`): images of different sizes cannot be
stacked into one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from sam2elnet.engine.train_data import CachedDataset
from sam2elnet.utils.shape_batches import batches_by_key

__all__ = ["VAL_EVAL_MODE", "ValRoadBuffer", "val_road_buffer", "validation_dataset",
           "validation_loader"]  # fmt: skip

VAL_EVAL_MODE = "native"
"""How validation items are made (:class:`~sam2elnet.data.datasets.SegmentationDataset`'s
``eval_mode``): at native scale, the centred window of the crop size."""


def validation_dataset(
    samples: Sequence[Any],
    norm: Any,
    size: int,
    bands: int,
    seed: int,
    positive_values: tuple[float, ...] | None = None,
) -> Any:
    """The validation :class:`~sam2elnet.data.datasets.SegmentationDataset` of ``samples``.

    Each item is the image's centred ``size`` x ``size`` px window at native scale (the whole
    image along a shorter side), normalised with ``norm`` (a ``NormalizationConfig``) to
    ``bands`` bands, with a simulated coarse label (seeded by ``seed`` and the item's position)
    for the enhancement mode; no augmentation. ``positive_values``: class-index masks' object
    values, as training reads them.
    """
    from sam2elnet.data.datasets import SegmentationDataset

    return SegmentationDataset(
        list(samples),
        norm,
        size=size,
        train=False,
        seed=seed,
        coarse_prob=1.0,
        bands=bands,
        eval_mode=VAL_EVAL_MODE,
        positive_values=positive_values,
    )


def validation_loader(
    samples: Sequence[Any],
    norm: Any,
    size: int,
    bands: int,
    seed: int,
    batch_size: int,
    positive_values: tuple[float, ...] | None = None,
    road_buffers: Sequence[float] | None = None,
) -> DataLoader | None:
    """A loader over the decoded validation items of :func:`validation_dataset` (None without
    ``samples``): batches of at most ``batch_size`` items of one (height, width), in a fixed
    order (groups in order of first appearance), the same every epoch. ``road_buffers``: each
    sample's road buffer in px (:attr:`ValRoadBuffer.px`), carried as the items'
    ``"road_buffer"`` (float64 scalar; :func:`~sam2elnet.engine.train_metrics.validate` matches
    each image's centre lines within its own)."""
    if not samples:
        return None
    items = CachedDataset(
        validation_dataset(samples, norm, size, bands, seed, positive_values)
    ).items
    if road_buffers is not None:
        for it, px in zip(items, road_buffers, strict=True):
            it["road_buffer"] = torch.tensor(float(px), dtype=torch.float64)
    shapes = [tuple(it["image"].shape[-2:]) for it in items]
    return DataLoader(items, batch_sampler=batches_by_key(shapes, batch_size))  # type: ignore[arg-type]


@dataclass
class ValRoadBuffer:
    """The road buffer of a run's validation road measures.

    Attributes:
        px: each validation sample's buffer in px, in sample order (``--road-buffer`` for
            every one, or ``--road-buffer-m`` over its ground pixel size); None without road
            measures.
        said: the buffer in words for the epoch lines (``"3 px"``, ``"2 m = 4-8 px"``).
        record: what the run records (model.pt's ``train`` metadata, ``val_road_buffer``):
            ``road_buffer_px`` (the one px buffer, None when per image),
            ``road_buffer_px_range``, ``road_buffer_m``, ``road_buffer_unit``.
    """

    px: list[float] | None
    said: str
    record: dict[str, Any] | None


def val_road_buffer(cfg: Any, samples: Sequence[Any], roads: bool) -> ValRoadBuffer:
    """The road buffer of ``samples`` (the validation split) for a run ``cfg`` (a
    ``TrainConfig``: ``road_buffer`` px, or ``road_buffer_m`` ground metres made px per image
    by :func:`sam2elnet.engine.road_buffer.image_buffers_px` from the image's CRS and
    transform; validation is at native scale, so the image's pixel is the one measured).
    Without ``roads`` nothing is measured (``px`` None). Raises DataError for a validation
    image without a projected CRS with ``road_buffer_m`` (the message names the file and says
    to give --road-buffer), before anything is trained."""
    from sam2elnet.engine.road_buffer import buffer_range, buffer_said, image_buffers_px

    m = cfg.road_buffer_m
    if not roads:
        return ValRoadBuffer(None, buffer_said(cfg.road_buffer, m, None), None)
    by_path = image_buffers_px(cfg.road_buffer, m, [s.image for s in samples])
    px = [by_path[Path(s.image)] for s in samples]
    span = buffer_range(px)
    record = {
        "road_buffer_px": float(cfg.road_buffer) if m is None else None,
        "road_buffer_px_range": None if span is None else list(span),
        "road_buffer_m": m,
        "road_buffer_unit": "px" if m is None else "m",
    }
    return ValRoadBuffer(px, buffer_said(cfg.road_buffer, m, span), record)
