"""``elnet serve``'s fine-tuning runs: the reviewed masks -> a fine-tuned model to serve.

Part of :mod:`sam2elnet.pipeline.serve`, which starts a run in a background thread once enough
reviews are in and serves the new model when the run ends. A run is an ordinary ``elnet train``
run (:func:`sam2elnet.engine.train.train`) from the served model (``init_model``) on the
training folder ``WORKDIR/data``, written to ``WORKDIR/runs/<job>-<unix time>``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sam2elnet.pipeline.serve_config import BackendConfig

__all__ = ["fine_tune", "fine_tune_config"]


def fine_tune_config(cfg: BackendConfig, job: dict[str, Any], model: Path, image_size: int) -> Any:
    """The :class:`~sam2elnet.config.TrainConfig` of fine-tuning ``job`` from ``model``.

    ``job["samples"]`` reviewed masks (n): batches of ``min(cfg.batch_size, n)``, crops of
    ``image_size`` px; from 4 reviews on, a quarter is held out for validation and the quality
    evaluator is fitted (with fewer, all train and the served evaluator is kept). ``cfg.epochs``,
    ``cfg.device`` and ``cfg.extra_train`` as given; no progress bar.
    """
    from sam2elnet.config import TrainConfig

    n = job["samples"]
    return TrainConfig(
        data=cfg.workdir / "data",
        out=cfg.workdir / "runs" / f"{job['job']}-{int(time.time())}",
        init_model=model,
        epochs=cfg.epochs,
        batch_size=min(cfg.batch_size, n),
        image_size=image_size,
        val_fraction=0.0 if n < 4 else 0.25,
        fit_quality=n >= 4,
        device=cfg.device,
        progress=False,
        **cfg.extra_train,
    )


def fine_tune(
    cfg: BackendConfig, job: dict[str, Any], model: Path, image_size: int, current: Any
) -> tuple[Any, Path]:
    """Run fine-tuning ``job`` (:func:`fine_tune_config`) and load its best model.

    Args:
        cfg: The backend's settings.
        job: ``{"job": name, "samples": n, ...}``.
        model: The model file to start from (the one served).
        image_size: Crop size (px).
        current: The :class:`~sam2elnet.engine.predictor.Predictor` served now; a new model without
            a fitted quality evaluator keeps its evaluator (scores go on until enough reviews fit
            a new one).

    Returns:
        The new model's Predictor (on ``cfg.device``) and its file (resolved).

    Raises:
        Whatever the training run raises (the backend reports it on ``/health``).
    """
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.engine.train import train

    res = train(fine_tune_config(cfg, job, model, image_size))
    new = Predictor.from_file(res.best_path, device=cfg.device)
    if not new.evaluator.fitted and current.evaluator.fitted:
        new.evaluator = current.evaluator
    return new, Path(res.best_path).resolve()
