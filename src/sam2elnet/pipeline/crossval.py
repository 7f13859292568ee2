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
:mod:`sam2elnet.pipeline.crossval_report`; the folds are planned in
:mod:`sam2elnet.pipeline.crossval_plan` and each is run in :mod:`sam2elnet.pipeline.crossval_fold`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.engine.road_buffer import image_buffers_px
from sam2elnet.errors import DataError
from sam2elnet.model.checkpoint_files import weights_record
from sam2elnet.model.quality_learning import NOT_FITTED
from sam2elnet.pipeline.crossval_config import CV_PARTS, CVConfig, check_rerun
from sam2elnet.pipeline.crossval_fold import check_trained_folds, fold_config, run_fold
from sam2elnet.pipeline.crossval_plan import plan_folds, select_folds
from sam2elnet.pipeline.crossval_report import groups_montage, render_markdown, summarise
from sam2elnet.pipeline.crossval_reuse import fold_label, made_in, summarise_folds
from sam2elnet.pipeline.crossval_score import NO_QUALITY, SCORE_KEYS, px_range
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["CVConfig", "run_cv", "render_markdown", "unfitted_lines", "SCORE_KEYS", "ROAD_KEYS"]


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
    from sam2elnet.data.modality import with_modality
    from sam2elnet.data.splits import select_split
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
    folds, groups = plan_folds(cfg, ids, samples, say)
    todo = select_folds(cfg, folds)  # an unknown --fold: one error line, nothing written
    check_trained_folds(
        cfg, todo, guess.domain
    )  # trained folds of other options: before any trains
    # auto options as the folds resolve them (None: the --init-model's trunk scale)
    planned = fold_config(cfg, cfg.out / "folds", guess.domain).trunk_scale
    write_json_atomic(
        ident_path,
        {
            **ident,
            # epochs_auto: --epochs left out means auto here (crossval_config.keep_recorded_epochs)
            # weights_path, weights_sha256: the --weights file (a relative one resumed from another
            # working folder; the same bytes at another path, on another node)
            "resolved": {
                "domain": guess.domain,
                "trunk_scale": planned,
                "epochs_auto": True,
                **weights_record(cfg.train.get("weights")),
            },
        },
    )
    if groups is not None:
        write_json_atomic(cfg.out / "groups.json", groups)
        groups_montage(
            {i: samples[i].image for i in ids}, (groups["A"], groups["B"]), cfg.out / "groups.png"
        )
    results = []
    reused: list[str] = []
    evaluations: dict[str, list[Any]] = {}  # fold -> its test sets' evaluations (--report)
    for k, fold in enumerate(todo):
        pool = plural(len(fold.train), "image")
        say(f"{fold_label(fold.name)} ({k + 1}/{len(todo)}): {pool} in the fold's training pool")
        result, scored = run_fold(cfg, fold, samples, meta, guess.domain, say)
        results.append(result)
        if scored is None:  # reused as it was: trained and scored by an earlier run (or copied in)
            reused.append(fold.name)
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
    for text in unfitted_lines(results):
        log.warning(text)
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
        # each fold's epochs as trained (--epochs auto resolved from the fold's training images)
        "epochs": summarise_folds(results, "epochs"),
        "keys": list(keys),
        "folds_total": len(folds),
        "folds_done": len(results),
        "folds_chosen_by": "--fold" if cfg.only_folds else "--max-folds" if cfg.max_folds else None,
        "folds": results,
        "summary": summarise(results, keys),
        "groups": groups,
        "seconds_this_run": time.perf_counter() - t_start,
        "folds_reused": reused,  # trained and scored before this run (the wall time is not theirs)
        # fold -> the folder it was trained in, where another (copied in from a --fold run):
        # the paths inside its files name that folder
        "folds_made_in": {
            f.name: where
            for f in todo
            if (where := made_in(cfg.out / "folds" / f.name)) is not None
        },
    }
    report = json.loads(json.dumps(report, default=str))
    write_json_atomic(cfg.out / "cv.json", report)
    write_text_atomic(cfg.out / "cv.md", render_markdown(report))
    if cfg.report:
        from sam2elnet.pipeline.report_cv import write_cv_report

        say(f"report: {write_cv_report(cfg.out, report, evaluations)}")
    return report


def unfitted_lines(folds: list[dict[str, Any]]) -> list[str]:
    """The warnings of ``elnet cv`` on quality evaluators not fitted: one per reason for all the
    folds it applies to (each fold's training says nothing itself), e.g. ``quality evaluator not
    fitted in 2 of 2 folds (fold-1, fold-2): only 12 labelled samples (need >= 16); ...``.
    ``folds``: the folds' ``result.json`` records (``quality_unfitted``); folds trained with
    ``--no-quality`` are left out (asked for, and cv.md says why their Spearman is empty)."""
    by_why: dict[str, list[str]] = {}
    for f in folds:
        why = f.get("quality_unfitted")
        if why and why != NO_QUALITY:
            by_why.setdefault(why, []).append(f["fold"])
    return [
        f"{NOT_FITTED} in {len(names)} of {plural(len(folds), 'fold')} ({', '.join(names)}): "
        f"{why}; their predicted IoUs are a capped heuristic, so cv.md has no quality Spearman "
        "for them"
        for why, names in by_why.items()
    ]
