"""sam2elnet.engine: models at work. Training, inference, large scenes, evaluation, metrics.

Rooms: ``runtime`` (device, autocast, threads, seeding, the forward pass), ``train`` and
``quality_fit`` (fine-tuning, the label quality evaluator), ``infer`` (the Predictor and the
annotate/enhance folder jobs), ``executors`` / ``scene_inputs`` / ``scene_writer`` / ``scene``
(whole-scene prediction), ``distributed`` (Ray backend), ``metrics`` (pure measures) and
``evaluate`` (folder evaluation), ``downstream`` (baseline U-Net), ``losses``.

The public API is listed below and imported lazily on first use (module ``__getattr__``), so that
``import sam2elnet.engine`` and ``elnet --help`` stay fast; ``from sam2elnet.engine import X`` works for every name.
Each name lives in the submodule given in ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "train",
    "TrainResult": "train",
    "train": "train",
    "fit_quality": "quality_fit",
    "resolve_device": "runtime",
    "autocast": "runtime",
    "set_threads": "runtime",
    "seed_everything": "runtime",
    "run_model": "runtime",
    "ModelRun": "runtime",
    "Predictor": "infer",
    "QualityScoringPredictor": "infer",
    "FolderResult": "infer",
    "annotate_folder": "infer",
    "enhance_folder": "infer",
    "list_images": "infer",
    "WindowPredictor": "executors",
    "BatchExecutor": "executors",
    "LocalExecutor": "executors",
    "SmoothingPredictor": "executors",
    "run_batch": "executors",
    "SceneResult": "scene",
    "predict_scene": "scene",
    "is_large_scene": "scene",
    "RayExecutor": "distributed",
    "Confusion": "metrics",
    "confusion": "metrics",
    "scores": "metrics",
    "boundary_f1": "metrics",
    "road_counts": "metrics",
    "road_scores": "metrics",
    "quality_stats": "metrics",
    "EvaluationResult": "evaluate",
    "evaluate_folders": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"sam2elnet.engine.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sam2elnet.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
