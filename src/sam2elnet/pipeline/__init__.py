"""sam2elnet.pipeline: job front doors and whole workflows on top of the engine and export.

Rooms: ``jobs`` (annotate/enhance folder jobs with the report), ``scenes`` (``elnet scene``:
folders of scenes, model loading, Ray), ``experiment`` (the paper protocol), ``demo``,
``refine`` (classical refinement baselines), ``report`` / ``report_figures`` / ``glossary``
(the HTML report).

The public API is listed below and imported lazily on first use (module ``__getattr__``), so that
``import sam2elnet.pipeline`` and ``elnet --help`` stay fast; ``from sam2elnet.pipeline import X`` works for every name.
Each name lives in the submodule given in ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "annotate_folder": "jobs",
    "enhance_folder": "jobs",
    "folder_report": "jobs",
    "scene_job": "scenes",
    "predict_scenes": "scenes",
    "load_scene_predictor": "scenes",
    "SceneBatchResult": "scenes",
    "ExperimentConfig": "experiment",
    "run_experiment": "experiment",
    "DemoConfig": "demo",
    "run_demo": "demo",
    "refine": "refine",
    "REFINERS": "refine",
    "ReportItem": "report",
    "write_report": "report",
    "write_run_report": "report",
    "write_evaluation_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"sam2elnet.pipeline.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sam2elnet.pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
