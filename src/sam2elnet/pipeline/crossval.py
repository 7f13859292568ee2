"""Cross-validation of SAM2-ELNet training: ``elnet cv`` (k-fold and cross-domain).

Why: one validation split of a small dataset (roads-dev has 60 images, 9 of them in a 15 %
validation split) says little; k-fold cross-validation trains k models, each tested on the images it
never saw, and reports mean +- standard deviation. A random split also hides domain shift (every
test image looks like some training image), so the **cross-domain** mode splits the images into two
visibly different appearance groups (:func:`sam2elnet.data.domain.appearance_split`: brightness,
contrast, colour), trains on one group and tests both on held-out images of the *same* group
(in-domain) and on the *other* group (cross-domain), in both directions; the gap between the two
IoUs is what augmentation and losses against domain shift should shrink.

Each fold: links of its training and test images in ``OUT/folds/<name>/`` (generic layout), one
:func:`sam2elnet.engine.train.train` run (options as for ``elnet train``; the domain is decided
once for the whole dataset), ``elnet annotate`` of the test images with the trained model (full
images at native size, as a user would run it), ``elnet evaluate`` against the true masks (pixel
scores, road measures for roads, quality Spearman). Scores are pixel-aggregated over each test set.

Resumable per fold: a finished fold leaves ``OUT/folds/<name>/result.json`` and is skipped when the
command runs again; an interrupted fold continues its training from ``last.pt`` and its annotation
from the labels already written. Settings are fixed per ``OUT`` (``OUT/cv_config.json``): running
with settings that change a fold's result into the same folder is refused, naming each with its
saved value (:func:`~sam2elnet.pipeline.crossval_config.changed_options`: runtime options such as
``--no-progress``, ``--report`` or ``--max-folds`` may change, a default given explicitly is the
default), except ``--road-buffer`` / ``--road-buffer-m``
(:data:`~sam2elnet.pipeline.crossval_config.RESCORE_ONLY`), which only changes how the test
predictions are scored: a finished road fold's stored predictions are scored again with the new
buffer (one line per fold; nothing trained or predicted again), an unfinished fold's training
keeps the buffer its validation rows started with. Each fold records its image ids and training
options (``fold.json``); a fold whose record differs from the run's plan (the data folder changed,
a fold folder copied from another run) is trained again, with one line saying why
(:mod:`sam2elnet.pipeline.crossval_reuse`). A reused fold keeps the precision and trunk scale it
was trained with; ``cv.json`` records each fold's and, for the run, the one value or ``mixed:
...``; ``cv.md`` says them in words, ``cv_config.json`` the trunk scale an auto option resolves to.

Outputs: ``OUT/cv.json`` (every fold, mean and std), ``OUT/cv.md`` (the tables), for the
cross-domain mode ``OUT/groups.json`` and ``OUT/groups.png`` (sample images of both groups).
The summary, the tables and the group thumbnails are made in
:mod:`sam2elnet.pipeline.crossval_report`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.engine.road_buffer import image_buffers_px
from sam2elnet.errors import DataError
from sam2elnet.pipeline.crossval_config import CV_PARTS, CVConfig, check_rerun
from sam2elnet.pipeline.crossval_report import fmt, groups_montage, render_markdown, summarise
from sam2elnet.pipeline.crossval_reuse import (
    check_reuse,
    fold_label,
    fold_settings,
    fold_trained_with,
    summarise_folds,
)
from sam2elnet.pipeline.crossval_score import (
    SCORE_KEYS,
    buffer_of,
    buffer_words,
    num,
    px_range,
    rescore_changed,
    score,
    trained_buffer,
    trained_buffer_fields,
)
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic
from sam2elnet.utils.paths import link_or_copy

log = logging.getLogger(__name__)

__all__ = ["CVConfig", "run_cv", "kfold_ids", "render_markdown", "SCORE_KEYS", "ROAD_KEYS"]


# ----------------------------------------------------------------------------- folds
def kfold_ids(ids: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """Split ``ids`` into ``k`` disjoint test folds of near-equal size (seeded permutation).

    Raises:
        DataError: fewer ids than folds... times two (each fold needs >= 2 training images).
    """
    ids = sorted(ids)
    if len(ids) < 2 * k:
        raise DataError(
            f"{k}-fold cross-validation needs at least {2 * k} labelled images, got {len(ids)}"
        )
    order = np.random.default_rng(
        np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 4711])
    ).permutation(len(ids))
    return [sorted(ids[j] for j in part) for part in np.array_split(order, k)]


@dataclass
class _Fold:
    name: str
    train: list[str]
    tests: dict[str, list[str]]  # test set name (test / in_domain / cross_domain) -> ids


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


# ----------------------------------------------------------------------------- one fold
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
    evaluator is not fitted, so annotation does not say it a second time.

    A test set whose every label is unusable whatever the filter (all its images constant, or
    clipped flat by the model's scaling) is scored as it is, like any other: one warning names
    the fold and test set, and the scores' ``unusable`` says what happened (the cv report lists
    it); ``elnet annotate`` would stop with ``nothing usable produced`` instead."""
    import contextlib

    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import UNFITTED_EVALUATOR
    from sam2elnet.utils.run_warnings import hidden

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
            pred_dir / "quality.csv",
        )  # fmt: skip
        scores["unusable"] = res.unusable
    return scores, ev


def _fold_config(cfg: CVConfig, root: Path, domain: str) -> Any:
    """The TrainConfig of the fold in ``root``: the run's training options, its seed, the
    domain decided once for every fold (so an auto trunk scale is resolved here)."""
    from sam2elnet.config import TrainConfig

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


def _run_fold(
    cfg: CVConfig,
    fold: _Fold,
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
    tcfg = _fold_config(cfg, root, domain)
    want = {"train_ids": list(fold.train), "tests": fold.tests, "train": fold_settings(tcfg)}
    check_reuse(root, json.loads(json.dumps(want)), fold.name, say)
    label = fold_label(fold.name)
    done = root / "result.json"
    roads = domain == "roads"
    if done.is_file():
        old = json.loads(done.read_text(encoding="utf-8"))
        old = {**old, **fold_trained_with(old, run / "model.pt")}  # as trained
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
    warned = False  # this run's training warned that the quality evaluator is not fitted
    if trained.is_file():
        info = json.loads(trained.read_text(encoding="utf-8"))
    else:
        res = train(tcfg, echo=say)
        warned = bool(res.quality) and not res.quality.get("fitted")
        info = {
            "best_epoch": res.best_epoch,
            "best_val_iou": num(res.best_val_iou),
            "selection": res.selection.get("rule", ""),
            # per mode: the annotation IoU is the one comparable with the test IoUs below
            **{f"best_val_iou_{k}": num(v) for k, v in res.best_val_modes.items()},
            "n_train": len(res.splits.get("train", [])),
            "n_val": len(res.splits.get("val", [])),
        }
        info.update(fold_trained_with({}, run / "model.pt"))  # what ran (--resume may change it)
        # of the validation rows (metrics.csv): px, or "2 m"
        info["val_road_buffer"] = buffer_of(tcfg.road_buffer, tcfg.road_buffer_m)
        write_json_atomic(trained, info)
    info.update(fold_trained_with(info, run / "model.pt"))
    if roads:
        info.setdefault("val_road_buffer", trained_buffer(run))
    tests: dict[str, Any] = {}
    evaluations = []
    for name, ids in fold.tests.items():
        tdir = _write_subset(root / name, samples, ids, meta)
        tests[name], ev = _evaluate_model(
            cfg, run / "model.pt", tdir, root / f"pred-{name}", roads, warned
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
    main = tests.get("test") or tests.get("cross_domain") or {}
    say(
        f"{label}: "
        + ", ".join(f"{n} IoU {fmt(t.get('iou'))}" for n, t in tests.items())
        + (f", road quality {fmt(main.get('road_quality'))}" if roads else "")
        + f" ({result['seconds']:.0f} s)"
    )
    return result, evaluations


# ----------------------------------------------------------------------------- the run
def _plan(
    cfg: CVConfig, ids: list[str], samples: dict[str, Any], say: Callable[[str], None]
) -> tuple[list[_Fold], dict[str, Any] | None]:
    if cfg.mode == "kfold":
        parts = kfold_ids(ids, cfg.folds, cfg.seed)
        folds = [
            _Fold(
                name=f"fold-{k + 1}",
                train=sorted(set(ids) - set(part)),
                tests={"test": part},
            )
            for k, part in enumerate(parts)
        ]
        return folds, None
    from sam2elnet.data.domain import appearance_split
    from sam2elnet.data.splits import split_fraction

    split = appearance_split({i: samples[i].image for i in ids}, progress=cfg.progress)
    say(f"cross-domain split: {split.describe()}")
    folds = []
    for name, own, other in (("A-to-B", 0, 1), ("B-to-A", 1, 0)):
        group = split.groups[own]
        test_in, train_ids = split_fraction(group, cfg.in_domain_fraction, seed=cfg.seed)
        if len(train_ids) < 2 or not test_in:
            raise DataError(
                f"appearance group {'AB'[own]} has {len(group)} images: too few to train on and "
                "test in-domain; use more images or --mode kfold",
                cfg.data,
            )
        folds.append(
            _Fold(
                name=name,
                train=sorted(train_ids),
                tests={"in_domain": sorted(test_in), "cross_domain": list(split.groups[other])},
            )
        )
    groups = {
        "A": split.groups[0],
        "B": split.groups[1],
        "axis": split.axis,
        "means": {"A": split.means[0], "B": split.means[1]},
        "separation_sd": split.separation,
        "describe": split.describe(),
    }
    return folds, groups


def run_cv(cfg: CVConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the cross-validation described by ``cfg`` (see the module docstring); return cv.json.

    Raises:
        UserError / DataError: bad options, a dataset too small for the folds, an ``OUT`` holding
            a run with other settings (named), or anything ``elnet train`` refuses.
    """
    from sam2elnet.engine.folder_inputs import check_run_out
    from sam2elnet.utils.lock import output_lock

    cfg.out = Path(cfg.out)
    cfg.data = Path(cfg.data)
    from sam2elnet.engine.train_setup import check_weights_file

    template = cfg.validate()
    check_run_out(cfg.out, "cv", cfg.data, CV_PARTS, cfg.train.get("weights"))  # nothing written
    check_weights_file(template)  # a few bytes read: before the data folder is scanned
    with output_lock(cfg.out):
        return _run_cv(cfg, echo)


def _run_cv(cfg: CVConfig, echo: Callable[[str], None] | None) -> dict[str, Any]:
    from sam2elnet.data.domain import detect_domain, resolve_domain
    from sam2elnet.data.layouts import select_split
    from sam2elnet.data.modality import with_modality
    from sam2elnet.utils.progress import line

    def say(msg: str) -> None:
        (echo or line)(msg)

    t_start = time.perf_counter()
    ident_path = cfg.out / "cv_config.json"
    ident = cfg.identity()
    if ident_path.is_file():  # only what changes a fold's result (crossval_config.check_rerun)
        cfg, note = check_rerun(cfg, json.loads(ident_path.read_text(encoding="utf-8")))
        ident = cfg.identity()
        if note:
            say(note)
    train_opts = cfg.train
    choice = select_split(
        cfg.data,
        train_opts.get("split"),
        layout=train_opts.get("layout", "auto"),
        sensors=train_opts.get("sensor"),
        modality=None if train_opts.get("modality", "auto") == "auto" else train_opts["modality"],
        purpose="cross-validation",
    )
    index, modality = with_modality(choice.index, train_opts.get("bands"))
    say(choice.describe("cross-validation"))
    if modality.undecided:
        log.warning(modality.line())
    else:
        say(modality.line())
    samples = {s.id: s for s in index.samples if s.mask is not None}
    ids = sorted(samples)
    if not ids:
        raise DataError("no labelled images (image + mask pairs) found; check --data", cfg.data)
    pv = train_opts.get("positive_values")
    if cfg.domain == "auto":
        guess = detect_domain(
            [samples[i].mask for i in ids],
            layout=index.layout,
            modality=index.modality,
            meta=index.meta,
            positive_values=tuple(pv) if pv else None,
        )
    else:
        guess = resolve_domain(cfg.domain, None)
    say(f"domain: {guess.domain} ({guess.reason})")
    if guess.roads:  # a buffer in metres needs every image's pixel size: checked before training
        image_buffers_px(cfg.road_buffer, cfg.road_buffer_m, [samples[i].image for i in ids])
    meta = {
        "modality": index.modality,
        "layout": "generic",
        "source": f"sam2elnet cv subset of {Path(cfg.data).resolve()}",
        # read by each fold's training for its log lines (train_data.cv_fold_meta)
        "cv": {
            "data": str(cfg.data),
            "domain": guess.domain,
            "domain_reason": guess.reason,
            "domain_given": cfg.domain != "auto",
        },
    }
    folds, groups = _plan(cfg, ids, samples, say)
    # auto options as the folds resolve them (None: the --init-model's trunk scale)
    planned = _fold_config(cfg, cfg.out / "folds", guess.domain).trunk_scale
    write_json_atomic(
        ident_path, {**ident, "resolved": {"domain": guess.domain, "trunk_scale": planned}}
    )
    if groups is not None:
        write_json_atomic(cfg.out / "groups.json", groups)
        groups_montage(
            {i: samples[i].image for i in ids}, (groups["A"], groups["B"]), cfg.out / "groups.png"
        )
    todo = folds[: cfg.max_folds] if cfg.max_folds else folds
    results = []
    evaluations: dict[str, list[Any]] = {}  # fold -> its test sets' evaluations (--report)
    for k, fold in enumerate(todo):
        pool = f"{len(fold.train)} image{'s' if len(fold.train) != 1 else ''}"
        say(f"{fold_label(fold.name)} ({k + 1}/{len(todo)}): {pool} in the fold's training pool")
        result, scored = _run_fold(cfg, fold, samples, meta, guess.domain, say)
        results.append(result)
        if cfg.report:  # the fold's evaluations as scored above (a reused fold: scored here)
            from sam2elnet.pipeline.report_cv import write_fold_reports

            evaluations[fold.name] = write_fold_reports(
                cfg.out / "folds" / fold.name,
                list(fold.tests),
                guess.roads,
                cfg.device,
                evaluations=scored,
                road_buffer=cfg.road_buffer,
                road_buffer_m=cfg.road_buffer_m,
            )
    keys = SCORE_KEYS + (ROAD_KEYS if guess.roads else ())
    report: dict[str, Any] = {
        "data": str(cfg.data),
        "mode": cfg.mode,
        "n_images": len(ids),
        "domain": guess.domain,
        "domain_reason": guess.reason,
        "seed": cfg.seed,
        "in_domain_fraction": cfg.in_domain_fraction,
        "road_buffer": cfg.road_buffer,  # of the test scores' road measures, px
        "road_buffer_m": cfg.road_buffer_m,  # or ground metres: px per image, the range below
        "road_buffer_px_range": px_range(results) if guess.roads else None,
        # of the validation rows logged by each fold's training (a reused fold keeps its own)
        "val_road_buffer": summarise_folds(results, "val_road_buffer") if guess.roads else None,
        # the option under its own name: "precision" is a metric in the folds and summary
        "train": {k: v for k, v in cfg.train.items() if k != "precision"},
        # what each fold's training ran with (a reused fold keeps its own): one value, or
        # "mixed: fold-1 32, fold-2 bf16"
        "precision_option": summarise_folds(results, "precision_option"),
        "precision_resolved": summarise_folds(results, "precision_resolved"),
        # the scale each fold's trunk was built with (auto resolved; a reused fold keeps its own)
        "trunk_scale": summarise_folds(results, "trunk_scale"),
        "keys": list(keys),
        "folds_total": len(folds),
        "folds_done": len(results),
        "folds": results,
        "summary": summarise(results, keys),
        "groups": groups,
        "seconds_this_run": time.perf_counter() - t_start,
    }
    report = json.loads(json.dumps(report, default=str))
    write_json_atomic(cfg.out / "cv.json", report)
    write_text_atomic(cfg.out / "cv.md", render_markdown(report))
    if cfg.report:
        from sam2elnet.pipeline.report_cv import write_cv_report

        say(f"report: {write_cv_report(cfg.out, report, evaluations)}")
    return report
