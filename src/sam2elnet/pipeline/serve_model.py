"""The model side of ``elnet serve``: loading the served model, what it says about itself (label
name, training size) and one image's mask and score.

Part of :mod:`sam2elnet.pipeline.serve`; the engine's :class:`~sam2elnet.engine.predictor.Predictor`
does the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_predictor", "model_category", "predict_mask", "trained_size"]


def load_predictor(path: Path, base: Path, device: str) -> Any:
    """The :class:`~sam2elnet.engine.predictor.Predictor` of model file ``path`` on ``device``.

    When ``path`` is a fine-tuned model of the ``--model`` file ``base`` (a restart serving the
    latest fine-tuned model) and has no fitted quality evaluator while ``base`` has one, it gets
    ``base``'s, as it had before the restart (:func:`sam2elnet.pipeline.serve_training.fine_tune`
    keeps the scoring until enough reviews fit a new one).

    Raises:
        CheckpointError: a file that is not a model of this project.
    """
    from sam2elnet.engine.predictor import Predictor

    predictor = Predictor.from_file(path, device=device)
    if Path(path).resolve() != Path(base).resolve():
        first = Predictor.from_file(base, device=device)
        if first.evaluator.fitted and not predictor.evaluator.fitted:
            predictor.evaluator = first.evaluator
    return predictor


def model_category(predictor: Any) -> str:
    """The label name of the model's domain (``elnet export``'s default for its runs):
    ``"road"``, ``"oil spill"``, ..., ``"foreground"`` when the model has no domain record."""
    from sam2elnet.data.domain import category_name

    train = (getattr(predictor, "extra", None) or {}).get("train") or {}
    return category_name(train.get("domain"), train.get("modality")) or "foreground"


def trained_size(predictor: Any) -> int:
    """The crop size (px) the model was trained at (its training record; the fine-tuning runs'
    default, so a model trained on 64 px tiles is fine-tuned on 64 px crops), else
    ``elnet train``'s default ``--image-size`` (:data:`~sam2elnet.config.DEFAULT_IMAGE_SIZE`)
    for a model file without one (:func:`~sam2elnet.model.io.trained_crop_size`)."""
    from sam2elnet.config import DEFAULT_IMAGE_SIZE
    from sam2elnet.model.io import trained_crop_size

    size = trained_crop_size(getattr(predictor, "extra", None))
    return size if size is not None else DEFAULT_IMAGE_SIZE


def predict_mask(predictor: Any, path: Path, threshold: float) -> tuple[np.ndarray, float | None]:
    """The mask of the image file ``path``: bool (H, W), probability > ``threshold`` (0..1) on
    valid pixels; and the predicted IoU (0..1) of the quality evaluator, None without a fitted
    one.

    Raises:
        DataError, OSError: the image cannot be read.
    """
    _img, x, valid = predictor.read(path)
    probs, quality = predictor.predict([x], valid=[valid])
    score = None
    if predictor.evaluator.fitted:
        score = float(quality.predicted_iou[0])
    return (probs[0] > threshold) & valid, score
