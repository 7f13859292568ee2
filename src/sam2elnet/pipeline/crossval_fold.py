"""One fold of ``elnet cv``: train it, annotate its test images, score them (or reuse it when done).

A fold's folder ``OUT/folds/<name>/`` holds links of its training and test images (generic
layout), its training run ``run/`` (:func:`fold_config`: the run's options, seed and domain),
``trained.json`` once trained, one ``pred-<test set>/`` annotation per test set and
``result.json`` when finished (:func:`run_fold`). Which images a fold holds:
:mod:`sam2elnet.pipeline.crossval_plan`; the whole run: :mod:`sam2elnet.pipeline.crossval`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.config import TrainConfig
from sam2elnet.data.runfolder import QUALITY_CSV
from sam2elnet.model.quality_learning import NOT_FITTED
from sam2elnet.pipeline.crossval_config import CVConfig
from sam2elnet.pipeline.crossval_plan import Fold
from sam2elnet.pipeline.crossval_report import fmt
from sam2elnet.pipeline.crossval_reuse import (
    FoldModel,
    check_reuse,
    fold_label,
    fold_settings,
    fold_trained_with,
    refuse_other_settings,
)
from sam2elnet.pipeline.crossval_score import (
    buffer_of,
    buffer_words,
    num,
    rescore_changed,
    score,
    spearman_why,
    trained_buffer,
    trained_buffer_fields,
    unfitted_why,
)
from sam2elnet.utils.atomic import write_json_atomic
from sam2elnet.utils.paths import link_or_copy
from sam2elnet.utils.run_warnings import hidden

log = logging.getLogger(__name__)

__all__ = ["check_trained_folds", "fold_config", "fold_want", "run_fold"]


def _write_subset(root: Path, samples: dict[str, Any], ids: Sequence[str], meta: dict) -> Path:
    """images/ + masks/ links (generic layout) and a dataset.json the engine reads."""
    want = set(ids)
    for sub in ("images", "masks"):
        d = root / sub
        if d.is_dir():  # a re-run with the same settings: same ids; drop anything else
            for f in d.iterdir():
                if f.stem not in want:
                    f.unlink()
    for i in ids:
        s = samples[i]
        link_or_copy(s.image, root / "images" / f"{i}{s.image.suffix.lower()}")
        link_or_copy(s.mask, root / "masks" / f"{i}{s.mask.suffix.lower()}")
    write_json_atomic(root / "dataset.json", meta)
    return root


def _made_by(pred_dir: Path, model: Path) -> bool:
    """Whether ``pred_dir``'s labels may be resumed with ``model``: it recorded this model (same
    bytes), or no model (made before the record). A fold trained again predicts afresh instead
    of being refused (:func:`~sam2elnet.engine.folder_inputs.check_resume_model`)."""
    from sam2elnet.data.run_model import model_identity, read_model_identity

    rec = read_model_identity(pred_dir)
    return rec is None or rec["sha256"] == model_identity(model)["sha256"]


def _evaluate_model(
    cfg: CVConfig, model: Path, test_dir: Path, pred_dir: Path, roads: bool, warned: bool
) -> tuple[dict[str, Any], Any]:
    """Annotate ``test_dir``'s images with ``model`` and score them: the fold's scores and the
    :class:`~sam2elnet.engine.eval_result.EvaluationResult` they come from (drawn by ``--report``
    without scoring again). ``warned``: the fold's training has just warned that its quality
    evaluator is not fitted, or ``elnet cv`` says so once for all folds, so annotation does not
    say it again.

    A test set whose every label is unusable whatever the filter (all its images constant, or
    clipped flat by the model's scaling) is scored as it is, like any other: one warning names
    the fold and test set, and the scores' ``unusable`` says what happened (the cv report lists
    it); ``elnet annotate`` would stop with ``nothing usable produced`` instead."""
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import UNFITTED_EVALUATOR

    with hidden(UNFITTED_EVALUATOR) if warned else contextlib.nullcontext():
        res = annotate_folder(
            model,
            test_dir / "images",
            pred_dir,
            resume=pred_dir.is_dir() and _made_by(pred_dir, model),
            batch_size=cfg.batch_size,
            device=cfg.device,
            precision=cfg.precision,
            progress=cfg.progress,
            unusable_is_error=False,
        )
    scores, ev = score(model, test_dir, pred_dir, roads, cfg.road_buffer, cfg.road_buffer_m)
    if res.unusable:
        log.warning(
            "cv %s, %s images: nothing usable: %s; scored as they are (see %s)",
            test_dir.parent.name, test_dir.name.replace("_", "-"), res.unusable,
            pred_dir / QUALITY_CSV,
        )  # fmt: skip
        scores["unusable"] = res.unusable
    return scores, ev


def _with_quality_why(record: dict[str, Any], model: FoldModel) -> dict[str, Any]:
    """A fold's record (``trained.json`` or ``result.json``) with ``quality_unfitted``: why its
    quality evaluator was not fitted (None when it was), and, for a result, each test set's
    ``quality_spearman_why`` where its Spearman is empty; read from ``model`` where the record
    was written before they were kept."""
    tests = record.get("tests") or {}
    missing = [
        n for n, t in tests.items()
        if t.get("quality_spearman") is None and "quality_spearman_why" not in t
    ]  # fmt: skip
    if "quality_unfitted" in record and not missing:
        return record
    quality = model.extra.get("quality") or {}
    out = {"quality_unfitted": unfitted_why(quality), **record}
    for n in missing:
        why = spearman_why(quality, int(tests[n].get("n_images", 0)))
        out["tests"] = {**out["tests"], n: {**tests[n], "quality_spearman_why": why}}
    return out


def fold_config(cfg: CVConfig, root: Path, domain: str) -> Any:
    """The TrainConfig of the fold in ``root``: the run's training options, its seed, the
    domain decided once for every fold (so an auto trunk scale is resolved here)."""
    return TrainConfig.model_validate(
        {
            "seed": cfg.seed,
            **cfg.train,
            "data": root / "train-data",
            "out": root / "run",
            "domain": domain,
            "progress": cfg.progress,
            "road_buffer": cfg.road_buffer,
            "road_buffer_m": cfg.road_buffer_m,
        }
    )


def fold_want(fold: Fold, tcfg: Any) -> dict[str, Any]:
    """What ``fold.json`` records for ``fold`` in this run: its training and test ids and the
    options of its training configuration ``tcfg`` (:func:`fold_config`) that change its
    network (:func:`~sam2elnet.pipeline.crossval_reuse.fold_settings`), and its ``--weights``
    file's absolute path and SHA-256 (``weights_path``, ``weights_sha256``, where known;
    :func:`~sam2elnet.model.checkpoint_files.weights_record`): a fold folder copied from a node
    where that file lay at another path is still reused, a relative ``--weights`` given from
    another working folder is compared as the file it named."""
    from sam2elnet.model.checkpoint_files import weights_record

    want = {"train_ids": list(fold.train), "tests": fold.tests, "train": fold_settings(tcfg)}
    want.update({k: v for k, v in weights_record(tcfg.weights).items() if v is not None})
    return json.loads(json.dumps(want))


def check_trained_folds(cfg: CVConfig, folds: list[Fold], domain: str) -> None:
    """Before any fold trains: refuse when one of ``folds`` holds a trained network made with
    other training options (:func:`~sam2elnet.pipeline.crossval_reuse.refuse_other_settings`).

    Raises:
        UserError: the first such fold, its options named with their saved values.
    """
    for fold in folds:
        root = cfg.out / "folds" / fold.name
        refuse_other_settings(root, fold_want(fold, fold_config(cfg, root, domain)), fold.name)


def run_fold(
    cfg: CVConfig,
    fold: Fold,
    samples: dict[str, Any],
    meta: dict[str, Any],
    domain: str,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[Any] | None]:
    """Train, annotate and score one fold (or reuse it when it is done): its ``result.json``
    record and the evaluations of its test sets in ``fold.tests`` order (None for a fold
    reused as it was, which scored nothing this time)."""
    from sam2elnet.engine.train import train

    root = cfg.out / "folds" / fold.name
    run = root / "run"
    tcfg = fold_config(cfg, root, domain)
    check_reuse(root, fold_want(fold, tcfg), fold.name, say)
    label = fold_label(fold.name)
    done = root / "result.json"
    roads = domain == "roads"
    if done.is_file():
        old = json.loads(done.read_text(encoding="utf-8"))
        network = FoldModel(run / "model.pt")  # read once, where the records predate a field
        old = {**old, **fold_trained_with(old, network)}  # as trained
        old = _with_quality_why(old, network)  # folds finished before it was recorded
        if roads:
            old.setdefault("val_road_buffer", trained_buffer(run))
            rescored = rescore_changed(
                cfg, root, old, list(fold.tests), lambda: {
                    n: _write_subset(root / n, samples, i, meta) for n, i in fold.tests.items()
                }, label, say,
            )  # fmt: skip
            if rescored is not None:
                return rescored
        if done.is_file():
            say(f"{label}: done before, reusing {done}")
            return old, None
    t0 = time.perf_counter()
    fold_meta = {**meta, "cv": {**meta.get("cv", {}), "fold": fold.name}}
    _write_subset(root / "train-data", samples, fold.train, fold_meta)
    trained = root / "trained.json"
    tcfg = tcfg.model_copy(update={"resume": (run / "config.yaml").is_file()})
    started = trained_buffer(run) if tcfg.resume and not trained.is_file() else None
    if started is not None and started != buffer_of(tcfg.road_buffer, tcfg.road_buffer_m):
        # train --resume refuses another buffer: its validation rows so far used this one
        say(
            f"{label}: its training continues with the road buffer it started with "
            f"({buffer_words(started)}) for its validation measures; its test scores use "
            f"{buffer_words(buffer_of(cfg.road_buffer, cfg.road_buffer_m))}"
        )
        tcfg = tcfg.model_copy(update=trained_buffer_fields(run))
    network = FoldModel(run / "model.pt")  # read once, on first use: after training
    if trained.is_file():
        info = json.loads(trained.read_text(encoding="utf-8"))
    else:
        with hidden(NOT_FITTED):  # elnet cv says it once for all folds (crossval.unfitted_lines)
            res = train(tcfg, echo=say)
        info = {
            "best_epoch": res.best_epoch,
            "best_val_iou": num(res.best_val_iou),
            "selection": res.selection.get("rule", ""),
            # per mode: the annotation IoU is the one comparable with the test IoUs below
            **{f"best_val_iou_{k}": num(v) for k, v in res.best_val_modes.items()},
            "n_train": len(res.splits.get("train", [])),
            "n_val": len(res.splits.get("val", [])),
        }
        info.update(fold_trained_with({}, network))  # what ran (--resume may change it)
        # of the validation rows (metrics.csv): px, or "2 m"
        info["val_road_buffer"] = buffer_of(tcfg.road_buffer, tcfg.road_buffer_m)
        write_json_atomic(trained, info)
    info.update(fold_trained_with(info, network))
    info = _with_quality_why(info, network)
    if roads:
        info.setdefault("val_road_buffer", trained_buffer(run))
    tests: dict[str, Any] = {}
    evaluations = []
    for name, ids in fold.tests.items():
        tdir = _write_subset(root / name, samples, ids, meta)
        tests[name], ev = _evaluate_model(
            cfg,
            run / "model.pt",
            tdir,
            root / f"pred-{name}",
            roads,
            warned=info["quality_unfitted"] is not None,
        )
        tests[name]["ids"] = list(ids)
        evaluations.append(ev)
    result = {
        "fold": fold.name,
        "train_ids": list(fold.train),
        **info,
        "tests": tests,
        "seconds": time.perf_counter() - t0,
    }
    if roads:
        result["road_buffer"] = cfg.road_buffer  # of the test scores' road measures, px
        result["road_buffer_m"] = cfg.road_buffer_m  # or ground metres (px per test image)
    else:
        result.pop("val_road_buffer", None)
    write_json_atomic(done, result)
    # per test set: "in-domain IoU 0.135, road quality 0.058; cross-domain IoU 0.206, ..."
    say(
        f"{label}: "
        + "; ".join(
            f"{n.replace('_', '-')} IoU {fmt(t.get('iou'))}"
            + (f", road quality {fmt(t.get('road_quality'))}" if roads else "")
            for n, t in tests.items()
        )
        + f" ({result['seconds']:.0f} s)"
    )
    return result, evaluations
