"""The label quality evaluator's labelled items: whole images at native scale, decoded when indexed.

:func:`quality_items` makes the items of labelled samples the evaluator is fitted on, at the scale
inference predicts (the whole image up to :data:`QUALITY_MAX_SIDE`, else its centred window), each
with a simulated coarse label for the enhancement mode; :class:`QualityItems` decodes one when it
is indexed, :class:`ChainedItems` chains validation and training items, :func:`item_hw` tells an
item's size from its header. :func:`train_subset` picks the capped, seeded subset of training
images. Fitting on them is :mod:`sam2elnet.engine.quality_fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sam2elnet.options import AUTO_TILE_MAX

__all__ = [
    "QUALITY_MAX_SIDE",
    "ChainedItems",
    "QualityItems",
    "item_hw",
    "quality_items",
    "train_subset",
]


QUALITY_MAX_SIDE = AUTO_TILE_MAX
"""Longest side (px) of an evaluator item: ``elnet annotate`` / ``enhance`` predict an image of
up to one tile (the largest ``--tile`` chosen when it is not given, 1024) whole, so an item is the whole
image at native scale up to this side, else its centred window of this side (one such tile)."""


class QualityItems(Sequence[dict[str, Any]]):
    """The evaluator's items of labelled samples (:func:`quality_items`), decoded when indexed:
    at native size a fit over hundreds of 512-1,024 px images would otherwise hold gigabytes
    (:func:`collect_quality_samples` keeps one batch decoded at a time).

    :meth:`hw` gives an item's (height, width) from the image header, without decoding.
    """

    def __init__(self, ds: Any, max_side: int) -> None:
        self._ds = ds
        self._max_side = int(max_side)

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._ds[i % len(self)]

    def hw(self, i: int) -> tuple[int, int]:
        """(height, width) of item ``i`` in px: the image's, at most ``max_side`` each."""
        from sam2elnet.data.pair_sizes import image_size

        h, w = image_size(self._ds.samples[i].image)
        return min(h, self._max_side), min(w, self._max_side)


class ChainedItems(Sequence[dict[str, Any]]):
    """Item sequences one after the other, each keeping its own items (and seeds), lazily."""

    def __init__(self, *parts: Sequence[dict[str, Any]]) -> None:
        self._parts = [p for p in parts if len(p)]

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    def _locate(self, i: int) -> tuple[Sequence[dict[str, Any]], int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        for p in self._parts:
            if i < len(p):
                return p, i
            i -= len(p)
        raise IndexError(i)  # pragma: no cover - len() covers it

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        part, j = self._locate(i)
        return part[j]

    def hw(self, i: int) -> tuple[int, int]:
        """As :meth:`QualityItems.hw` (decoding the item for a part without it)."""
        part, j = self._locate(i)
        return item_hw(part, j)


def item_hw(items: Sequence[dict[str, Any]], i: int) -> tuple[int, int]:
    """(height, width) of ``items[i]`` in px: from headers when the sequence can tell
    (:meth:`QualityItems.hw`), else from the decoded ``image`` tensor (C, H, W)."""
    if hasattr(items, "hw"):
        return items.hw(i)
    h, w = items[i]["image"].shape[-2:]
    return int(h), int(w)


def quality_items(
    samples: Sequence[Any],
    norm: Any,
    bands: int,
    seed: int,
    positive_values: tuple[float, ...] | None = None,
    max_side: int = QUALITY_MAX_SIDE,
) -> QualityItems:
    """Evaluation items of labelled ``samples`` for the evaluator, at the scale inference
    predicts: the whole image at its native pixel size (its centred window of ``max_side`` px
    when a side is longer), normalised with ``norm``, each with a simulated coarse label (seeded
    by ``seed`` and the item's position) for the enhancement mode; decoded when indexed
    (:class:`QualityItems`).

    Not resized to the training crop size: an evaluator fitted on images shrunk to a 128 px crop
    and applied to the native 256 px images ``annotate`` sees ranked held-out SOS labels worse
    (Spearman 0.746 vs 0.785 annotation, 0.605 vs 0.662 enhancement, 219 images; docs/training.md,
    "Label quality evaluator"). ``positive_values``: class-index masks' object values, as training
    reads them."""
    from sam2elnet.data.datasets import SegmentationDataset

    ds = SegmentationDataset(
        list(samples),
        norm,
        size=max_side,
        train=False,
        seed=seed,
        coarse_prob=1.0,
        bands=bands,
        eval_mode="native",
        positive_values=positive_values,
    )
    return QualityItems(ds, max_side)


def train_subset(samples: Sequence[Any], cap: int, seed: int) -> list[Any]:
    """At most ``cap`` training samples, a seeded random subset (order kept)."""
    samples = list(samples)
    if cap <= 0:
        return []
    if len(samples) <= cap:
        return samples
    keep = np.sort(np.random.default_rng(seed + 7919).choice(len(samples), cap, replace=False))
    return [samples[i] for i in keep]
