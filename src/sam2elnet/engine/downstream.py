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

The parts: :mod:`~sam2elnet.engine.downstream_config` (the config and result records),
:mod:`~sam2elnet.engine.downstream_data` (pairs and the training dataset),
:mod:`~sam2elnet.engine.downstream_train` (the training loop) and
:mod:`~sam2elnet.engine.downstream_score` (test scoring, learning-curve points); this module
trains and scores one setting and re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sam2elnet.data.load_cache import LoadCache
from sam2elnet.engine.downstream_config import DownstreamConfig, DownstreamResult
from sam2elnet.engine.downstream_data import Pair, load_pair, make_train_dataset
from sam2elnet.engine.downstream_score import (
    confusion_per_image,
    curve_point,
    evaluate_downstream,
    predict_probabilities,
    scores_from_counts,
)
from sam2elnet.engine.downstream_train import (
    build_downstream_model,
    curve_steps,
    train_downstream,
)
from sam2elnet.errors import DataError
from sam2elnet.option_values import ROAD_BUFFER_PX


def train_and_evaluate(
    train_pairs: Sequence[Pair],
    test_pairs: Sequence[Pair],
    cfg: DownstreamConfig,
    norm_cfg: Any | None = None,
    model_path: str | Path | None = None,
    cache: LoadCache | None = None,
    roads: bool = False,
    road_buffer: float | Sequence[float] | None = ROAD_BUFFER_PX,
) -> DownstreamResult:
    """Train on ``train_pairs``, score on ``test_pairs``; optionally save the weights (atomically).

    ``roads`` adds the road measures (``road_correctness`` ... ``road_connectivity``, centre-line
    lengths summed over the test images, matched within ``road_buffer`` px: one for all, or each
    test pair's own in order, e.g. from ``--road-buffer-m``; None only without ``roads``) to
    the metrics, and
    each image's road counts (``per_image_roads``)."""
    from sam2elnet.engine.metrics import RoadCounts

    model, facts = train_downstream(
        train_pairs,
        cfg,
        norm_cfg=norm_cfg,
        cache=cache,
        curve_pairs=test_pairs if cfg.curve_points > 1 else None,
    )
    road_rows: list[Any] | None = [] if roads else None
    counts = confusion_per_image(
        model,
        test_pairs,
        cfg,
        norm_cfg=norm_cfg,
        road_counts=road_rows,
        road_buffer=road_buffer,
        in_bands=facts["in_bands"],
    )
    metrics: dict[str, float] = scores_from_counts(counts.sum(axis=0))
    if road_rows is not None:
        metrics.update(sum(road_rows, RoadCounts()).scores())
    metrics["n_test"] = len(test_pairs)
    curve = list(facts["curve"])
    if cfg.curve_points > 1:
        curve.append(curve_point(facts["steps"], metrics, facts["loss_since_curve"]))
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
        per_image_roads=[list(r.as_tuple()) for r in road_rows or ()],
    )


__all__ = [
    "DataError",
    "DownstreamConfig",
    "DownstreamResult",
    "make_train_dataset",
    "build_downstream_model",
    "confusion_per_image",
    "curve_point",
    "curve_steps",
    "evaluate_downstream",
    "load_pair",
    "predict_probabilities",
    "scores_from_counts",
    "train_and_evaluate",
    "train_downstream",
]
