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
from typing import Any

from torch.utils.data import DataLoader

from sam2elnet.engine.train_data import CachedDataset
from sam2elnet.utils.shape_batches import batches_by_key

__all__ = ["VAL_EVAL_MODE", "validation_dataset", "validation_loader"]

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
) -> DataLoader | None:
    """A loader over the decoded validation items of :func:`validation_dataset` (None without
    ``samples``): batches of at most ``batch_size`` items of one (height, width), in a fixed
    order (groups in order of first appearance), the same every epoch."""
    if not samples:
        return None
    items = CachedDataset(
        validation_dataset(samples, norm, size, bands, seed, positive_values)
    ).items
    shapes = [tuple(it["image"].shape[-2:]) for it in items]
    return DataLoader(items, batch_sampler=batches_by_key(shapes, batch_size))  # type: ignore[arg-type]
