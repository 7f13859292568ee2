"""Scoring of an ``elnet cv`` fold's test predictions, and scoring them again when only the
road buffer changed (part of :mod:`sam2elnet.pipeline.crossval`).

``--road-buffer`` changes how predictions are scored, not the networks
(:data:`~sam2elnet.pipeline.crossval_config.RESCORE_ONLY`): a finished road fold whose test
scores were measured with another buffer is scored again from its stored predictions
(:func:`rescore_fold`; nothing trained or predicted), and its ``result.json`` records both the
test scores' buffer (``road_buffer``, px; ``road_buffer_m`` for ``--road-buffer-m``, each
test image's px from its ground pixel size: ``road_buffer_px_range``) and the one its training
logged its validation rows with (``val_road_buffer``, from ``run/config.yaml``: px, or
``"2 m"`` for a buffer in metres).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from sam2elnet.data.runfolder import REPORT_HTML, remove_stale_report
from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.engine.road_buffer import buffer_said
from sam2elnet.errors import UserError
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.pipeline.crossval_reuse import model_extra
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic

__all__ = [
    "NO_QUALITY",
    "SCORE_KEYS",
    "buffer_of",
    "buffer_words",
    "num",
    "px_range",
    "rescore_changed",
    "rescore_fold",
    "score",
    "scored_buffer",
    "spearman_why",
    "trained_buffer",
    "trained_buffer_fields",
    "unfitted_why",
]

NO_QUALITY = "trained with --no-quality"
""":func:`unfitted_why` of a fold whose model holds no quality evaluator."""

SCORE_KEYS = ("iou", "f1", "precision", "recall", "mean_image_iou")
"""The pixel scores of each test set in ``cv.json`` (road data adds ``ROAD_KEYS``)."""


def score(
    model: Path,
    test_dir: Path,
    pred_dir: Path,
    roads: bool,
    road_buffer: float,
    road_buffer_m: float | None = None,
) -> tuple[dict[str, Any], Any]:
    """Score the labels in ``pred_dir`` against ``test_dir/masks`` (road measures within
    ``road_buffer`` px for roads, or ``road_buffer_m`` ground metres, each prediction's px from
    its own pixel size, as ``elnet evaluate``) and write ``pred_dir/evaluation.json``: the test
    set's scores (with ``road_buffer_px_range`` for roads) and the
    :class:`~sam2elnet.engine.eval_result.EvaluationResult` (nothing is predicted; ``model`` is
    read only for whether its quality evaluator was fitted)."""
    from sam2elnet.engine.evaluate import evaluate_folders

    ev = evaluate_folders(
        pred_dir, test_dir / "masks", roads=roads, progress=False, road_buffer_px=road_buffer,
        road_buffer_m=road_buffer_m,
    )  # fmt: skip
    ev.write_json(pred_dir / "evaluation.json")
    agg = ev.aggregate
    keys = SCORE_KEYS + (ROAD_KEYS if roads else ())
    res: dict[str, Any] = {k: num(agg.get(k)) for k in keys}
    res["n_images"] = int(agg.get("n_images", 0))
    if roads:
        res["road_buffer_px_range"] = ev.options.get("road_buffer_px_range")
    quality = model_extra(model).get("quality") or {}
    res["quality_spearman"] = (
        num(ev.quality.spearman) if ev.quality is not None and quality.get("fitted") else None
    )
    if res["quality_spearman"] is None:
        res["quality_spearman_why"] = spearman_why(quality, res["n_images"])
    return res, ev


def unfitted_why(quality: Mapping[str, Any]) -> str | None:
    """Why a fold's quality evaluator (its model's ``extra["quality"]``) was not fitted, e.g.
    ``"only 12 labelled samples (need >= 16)"`` (the first clause of its warning); None when
    it was fitted."""
    if quality.get("fitted"):
        return None
    if not quality:
        return NO_QUALITY
    return str(quality.get("warning") or quality.get("status") or "not recorded").split(": ")[0]


def spearman_why(quality: Mapping[str, Any], n_images: int) -> str:
    """Why a test set's quality Spearman is empty: its fold's evaluator (``extra["quality"]``)
    was not fitted, fewer than 3 test images, or nothing to rank (constant predicted quality or
    IoU)."""
    why = unfitted_why(quality)
    if why == NO_QUALITY:
        return f"no quality evaluator ({why})"
    if why is not None:
        return f"the quality evaluator was not fitted: {why}"
    if n_images < 3:
        return f"only {plural(n_images, 'test image')} (a rank correlation needs 3)"
    return "constant predicted quality or IoU: nothing to rank"


def num(v: Any) -> float | None:
    """``v`` as a float; None for None, NaN and infinities (JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def buffer_of(road_buffer: float, road_buffer_m: float | None) -> float | str:
    """How a fold records a road buffer: px (float), or ``"2 m"`` for ground metres."""
    return float(road_buffer) if road_buffer_m is None else buffer_said(None, road_buffer_m)


def buffer_words(buffer: float | str) -> str:
    """:func:`buffer_of`'s record in words: ``"3 px"``, ``"2 m"``
    (:func:`sam2elnet.engine.road_buffer.buffer_said`)."""
    return buffer_said(buffer) if isinstance(buffer, Real) else str(buffer)


def trained_buffer_fields(run: Path) -> dict[str, Any] | None:
    """``road_buffer`` and ``road_buffer_m`` of a fold's training (its ``run/config.yaml``);
    None when there is none (or it cannot be read)."""
    from sam2elnet.config import TrainConfig

    if not (run / "config.yaml").is_file():
        return None
    try:
        saved = TrainConfig.load(run / "config.yaml")
    except UserError:
        return None
    return {"road_buffer": saved.road_buffer, "road_buffer_m": saved.road_buffer_m}


def trained_buffer(run: Path) -> float | str | None:
    """The road buffer a fold's training measured its validation rows with
    (:func:`buffer_of` of its ``run/config.yaml``); None when there is none (or it cannot be
    read)."""
    got = trained_buffer_fields(run)
    return None if got is None else buffer_of(got["road_buffer"], got["road_buffer_m"])


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
    root: Path,
    tests: Mapping[str, Path],
    result: dict[str, Any],
    road_buffer: float,
    road_buffer_m: float | None = None,
) -> tuple[dict[str, Any], list[Any]] | None:
    """Score a finished road fold's stored test predictions again with ``road_buffer`` px (or
    ``road_buffer_m`` ground metres; :func:`score`) (nothing trained or predicted): its updated ``result.json`` record (written) and the
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
        scores[name], ev = score(
            root / "run" / "model.pt", tdir, preds[name], True, road_buffer, road_buffer_m
        )
        was = (result.get("tests") or {}).get(name, {})
        scores[name]["ids"] = list(was.get("ids") or [])
        if was.get("unusable"):  # the labels are the same: still nothing usable
            scores[name]["unusable"] = was["unusable"]
        (preds[name] / REPORT_HTML).unlink(missing_ok=True)
        evaluations.append(ev)
    result = {**result, "tests": scores, "road_buffer": road_buffer, "road_buffer_m": road_buffer_m}
    write_json_atomic(root / "result.json", result)
    return result, evaluations


def rescore_changed(
    cfg: Any,
    root: Path,
    old: dict[str, Any],
    tests: Sequence[str],
    write_tests: Callable[[], Mapping[str, Path]],
    label: str,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[Any]] | None:
    """A finished road fold (``old``: its ``result.json`` record) scored with another buffer
    than ``cfg``'s (a ``CVConfig``: ``road_buffer`` / ``road_buffer_m``): its stored test
    predictions scored again (:func:`rescore_fold`; ``write_tests`` makes the test folders),
    one line said. None when the buffer is the same, or when a prediction folder is missing
    (then its ``result.json`` is removed: the fold is predicted again)."""
    was = buffer_of(scored_buffer(old, root, tests), old.get("road_buffer_m"))
    now = buffer_of(cfg.road_buffer, cfg.road_buffer_m)
    if was == now:
        return None
    rescored = rescore_fold(root, write_tests(), old, cfg.road_buffer, cfg.road_buffer_m)
    if rescored is None:
        say(f"{label}: its test predictions are missing; predicting them again")
        (root / "result.json").unlink()
        return None
    say(
        f"{label}: done before; its test predictions scored again with road buffer "
        f"{buffer_words(now)} (were {buffer_words(was)}), its network and predictions reused"
    )
    if not cfg.report:
        stale = remove_stale_report(cfg.out, "the test predictions were scored again")
        if stale:
            say(stale)
    return rescored


def px_range(folds: Sequence[Mapping[str, Any]]) -> list[float] | None:
    """[smallest, largest] road buffer in px over the folds' test scores (each test set's
    ``road_buffer_px_range``, from each image's own pixel size with ``--road-buffer-m``); None
    where no fold recorded one (folds scored before it was recorded)."""
    spans = [
        t["road_buffer_px_range"]
        for f in folds
        for t in (f.get("tests") or {}).values()
        if isinstance(t, Mapping) and t.get("road_buffer_px_range")
    ]
    if not spans:
        return None
    return [min(float(s[0]) for s in spans), max(float(s[1]) for s in spans)]
