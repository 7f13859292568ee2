"""Scoring of an ``elnet cv`` fold's test predictions, and scoring them again when only the
road buffer changed (part of :mod:`sam2elnet.pipeline.crossval`).

``--road-buffer`` changes how predictions are scored, not the networks
(:data:`~sam2elnet.pipeline.crossval_config.RESCORE_ONLY`): a finished road fold whose test
scores were measured with another buffer is scored again from its stored predictions
(:func:`rescore_fold`; nothing trained or predicted), and its ``result.json`` records both the
test scores' buffer (``road_buffer``) and the one its training logged its validation rows with
(``val_road_buffer``, from ``run/config.yaml``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.errors import UserError
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.pipeline.crossval_reuse import model_extra
from sam2elnet.utils.atomic import write_json_atomic

__all__ = ["SCORE_KEYS", "num", "rescore_fold", "score", "scored_buffer", "trained_buffer"]

SCORE_KEYS = ("iou", "f1", "precision", "recall", "mean_image_iou")
"""The pixel scores of each test set in ``cv.json`` (road data adds ``ROAD_KEYS``)."""


def score(
    model: Path, test_dir: Path, pred_dir: Path, roads: bool, road_buffer: float
) -> tuple[dict[str, Any], Any]:
    """Score the labels in ``pred_dir`` against ``test_dir/masks`` (road measures within
    ``road_buffer`` px for roads) and write ``pred_dir/evaluation.json``: the test set's scores
    and the :class:`~sam2elnet.engine.eval_result.EvaluationResult` (nothing is predicted;
    ``model`` is read only for whether its quality evaluator was fitted)."""
    from sam2elnet.engine.evaluate import evaluate_folders

    ev = evaluate_folders(
        pred_dir, test_dir / "masks", roads=roads, progress=False, road_buffer_px=road_buffer
    )
    ev.write_json(pred_dir / "evaluation.json")
    agg = ev.aggregate
    keys = SCORE_KEYS + (ROAD_KEYS if roads else ())
    res: dict[str, Any] = {k: num(agg.get(k)) for k in keys}
    res["n_images"] = int(agg.get("n_images", 0))
    fitted = bool((model_extra(model).get("quality") or {}).get("fitted"))
    res["quality_spearman"] = (
        num(ev.quality.spearman) if ev.quality is not None and fitted else None
    )
    return res, ev


def num(v: Any) -> float | None:
    """``v`` as a float; None for None, NaN and infinities (JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def trained_buffer(run: Path) -> float | None:
    """The road buffer (px) a fold's training measured its validation rows with, from its
    ``run/config.yaml``; None when there is none (or it cannot be read)."""
    from sam2elnet.config import TrainConfig

    if not (run / "config.yaml").is_file():
        return None
    try:
        return float(TrainConfig.load(run / "config.yaml").road_buffer)
    except UserError:
        return None


def scored_buffer(result: dict[str, Any], root: Path, tests: Sequence[str]) -> float:
    """The road buffer (px) a finished fold's test scores were measured with: its
    ``result.json`` record, else (folds made before it was recorded) what its first test set's
    ``evaluation.json`` says, else the default."""
    if result.get("road_buffer") is not None:
        return float(result["road_buffer"])
    for name in tests[:1]:
        try:
            ev = json.loads((root / f"pred-{name}" / "evaluation.json").read_text("utf-8"))
            return float(ev["options"]["road_buffer_px"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return ROAD_BUFFER_PX


def rescore_fold(
    root: Path, tests: Mapping[str, Path], result: dict[str, Any], road_buffer: float
) -> tuple[dict[str, Any], list[Any]] | None:
    """Score a finished road fold's stored test predictions again with ``road_buffer`` px
    (nothing trained or predicted): its updated ``result.json`` record (written) and the
    evaluations of its test sets in ``tests`` order; None when a prediction folder is missing.

    ``tests``: test set name -> its folder (``images/``, ``masks/``), as the fold was planned;
    the predictions are ``root/pred-<name>``. Their ``evaluation.json`` are rewritten and their
    ``report.html`` removed (drawn again by ``--report``); the fold's validation rows keep the
    buffer they were logged with (``val_road_buffer``)."""
    preds = {name: root / f"pred-{name}" for name in tests}
    if not all(p.is_dir() for p in preds.values()):
        return None
    scores: dict[str, Any] = {}
    evaluations = []
    for name, tdir in tests.items():
        scores[name], ev = score(root / "run" / "model.pt", tdir, preds[name], True, road_buffer)
        scores[name]["ids"] = list((result.get("tests") or {}).get(name, {}).get("ids") or [])
        (preds[name] / "report.html").unlink(missing_ok=True)
        evaluations.append(ev)
    result = {**result, "tests": scores, "road_buffer": road_buffer}
    write_json_atomic(root / "result.json", result)
    return result, evaluations
