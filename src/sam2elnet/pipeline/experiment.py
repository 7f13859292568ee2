"""The paper's protocol as one command: ``elnet experiment --data DIR --out DIR``.

What it measures (and why each piece is there):

1. **Split.** A reproducible ``fraction`` (default 30 %) of the training pool keeps its labels; the
   rest is treated as unlabelled (its true labels are kept aside for scoring only). The test split is
   the dataset's own (``test/`` for SOS) when it has one, else a fixed, stratified 20 % hold-out.
2. **Fine-tune SAM2-ELNet** on the labelled fraction (the engine's ``train``; one model learns both
   annotation and enhancement).
3. **Auto-annotate** the unlabelled part, score every label with the quality evaluator, filter.
4. **Downstream models** (one plain U-Net, identical settings everywhere, see
   :mod:`sam2elnet.engine.downstream`) trained on (a) 100 % original labels, (b) the labelled fraction
   only, (c) filtered auto-labels only, (d) fraction + filtered auto-labels, (e) fraction + all
   auto-labels, and scored on the test split. Labelling cost = number of hand labels each needs.
5. **Auto-label quality**: IoU against the held-aside true labels (all and kept), how many were kept,
   the evaluator's Spearman correlation.
6. **Label enhancement table**: the training labels degraded by the coarse-label simulator ("sim"),
   and separately the dataset's own labels ("own": its ``coarse/`` labels when it ships them, else its
   labels as they are), each as is / refined by classical baselines (morphological, guided filter,
   GrabCut) / enhanced by SAM2-ELNet; downstream test scores for each (none with
   ``enhancement_downstream=False``), plus the label IoU against the true labels where those exist
   (overall and per sensor). Classical baselines are in the same table so the gain is measured.
   Own labels that are the true labels themselves have nothing to be scored by, so with
   ``enhancement_downstream=False`` they are not refined or enhanced and the table says why their
   rows are absent.

Every stage writes its outputs under ``OUT`` and a done-marker ``OUT/stages/<stage>.json``; a stage
with a marker is skipped on re-run (same settings required, but for the downstream options and the
quality filter's, ``--min-quality`` / ``--target-precision``: another filter filters the stored
auto-labels again from their stored predicted quality, one line says so, nothing is predicted
again, and the downstream models of (c) and (d) train again when the kept labels changed; another
``--road-buffer`` / ``--road-buffer-m`` is refused on road data, since the downstream models keep
no predictions to score again).
Delete a marker to re-run that stage;
downstream trainings and label scores are keyed by the state of the label files they read, so they
re-run by themselves when an earlier stage rewrote those files. ``resume=True`` additionally continues
stages that were interrupted half-way (ELNet training from ``last.pt``, annotation from the files
already written) instead of restarting them. All files are written atomically.

Outputs: ``results.md`` (both tables, costs, settings, weights), ``results.json``, ``results.png``,
``report.html``.

Modules, one concept each: :mod:`~sam2elnet.pipeline.experiment_config` (options, constants),
:mod:`~sam2elnet.pipeline.experiment_resume` (a re-run: as recorded, or refused),
:mod:`~sam2elnet.pipeline.experiment_stages` (cached stages), :mod:`~sam2elnet.pipeline.experiment_split`
(the split and its subsets), :mod:`~sam2elnet.pipeline.experiment_engine` (calls into the engine),
:mod:`~sam2elnet.pipeline.experiment_autolabels` (auto-annotation, filter, SAM2-ELNet on the test
split), :mod:`~sam2elnet.pipeline.experiment_table2` (table 2's label sets, label scores and rows),
:mod:`~sam2elnet.pipeline.experiment_downstream` (the downstream settings and trainings),
:mod:`~sam2elnet.pipeline.experiment_scores` (label scores vs the truth, per_image.csv),
:mod:`~sam2elnet.pipeline.experiment_stats` (intervals, per-sensor rows, verdict),
:mod:`~sam2elnet.pipeline.experiment_markdown` (results.md),
:mod:`~sam2elnet.pipeline.experiment_report` (plots, HTML); this module runs the stages
in order, assembles the results (:func:`run_experiment`) and re-exports the public names.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sam2elnet.engine.folder_inputs import check_run_out
from sam2elnet.engine.metrics import BOOTSTRAP_RESAMPLES
from sam2elnet.engine.road_buffer import buffer_range
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment_autolabels import (
    annotate_stage,
    auto_counts_stage,
    auto_label_scores,
    elnet_test_stage,
    filter_decision,
)
from sam2elnet.pipeline.experiment_command import experiment_command
from sam2elnet.pipeline.experiment_config import (
    BOOTSTRAP_SEED,
    OWN_IS_TRUTH_NOTE,
    RANDOM_INIT_EXPERIMENT_API,
    RESULTS_VERSION,
    RUN_PARTS,
    TABLE1_SETTINGS,
    ExperimentConfig,
)
from sam2elnet.pipeline.experiment_downstream import (
    downstream_lanes,
    downstream_runs,
    train_downstream,
)
from sam2elnet.pipeline.experiment_engine import (
    check_weights_kind,
    downstream_config,
    elnet_trunk,
    resolve_weights,
    train_elnet,
)
from sam2elnet.pipeline.experiment_markdown import degenerate_note, render_markdown
from sam2elnet.pipeline.experiment_report import plot_curves, plot_results, write_report_html
from sam2elnet.pipeline.experiment_resume import settle_identity
from sam2elnet.pipeline.experiment_scores import (
    csv_rows,
    score_labels,
    score_per_image,
    write_per_image_csv,
)
from sam2elnet.pipeline.experiment_split import (
    Split,
    make_split,
    norm_config,
    road_domain,
    test_road_buffers,
    write_subset,
)
from sam2elnet.pipeline.experiment_stages import Stages, json_safe
from sam2elnet.pipeline.experiment_stats import (
    add_intervals,
    convergence,
    group_of,
    table_row,
    verdict_lines,
)
from sam2elnet.pipeline.experiment_table2 import (
    enhancement_labels,
    score_label_sets,
    table2_rows,
    table2_sources,
)
from sam2elnet.pipeline.report_protocol import degenerate_rows
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

__all__ = [
    "ExperimentConfig",
    "Split",
    "Stages",
    "add_intervals",
    "convergence",
    "group_of",
    "make_split",
    "render_markdown",
    "run_experiment",
    "score_labels",
    "score_per_image",
    "verdict_lines",
]


def run_experiment(
    cfg: ExperimentConfig, *, random_init: str = RANDOM_INIT_EXPERIMENT_API
) -> dict[str, Any]:
    """Run (or continue) the whole protocol and write the results files; return results.json's dict.

    ``random_init`` is how the caller's user asks for a random encoder, in the weights note and
    a missing weights file's error: the API's ``weights="none"`` (default); ``elnet experiment``
    passes ``--weights none``.

    Logs a warning (``sam2elnet.pipeline.experiment``) when downstream models of table 1 are
    degenerate (:func:`~sam2elnet.pipeline.experiment_markdown.degenerate_note`; results.md and
    report.html say it too).

    Raises:
        UserError, DataError: bad options or data. When the run stops this way before any stage
            has finished, it leaves nothing behind: the output folder is removed if this call
            created it, else only the ``experiment.json`` this call wrote.
    """
    out = Path(cfg.out)
    created = not out.exists()
    had_record = (out / "experiment.json").is_file()
    try:
        return _run_experiment(cfg, random_init)
    except (UserError, DataError):
        if not any((out / "stages").glob("*.json")):
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif not had_record:
                (out / "experiment.json").unlink(missing_ok=True)
        raise


def _run_experiment(cfg: ExperimentConfig, random_init: str) -> dict[str, Any]:
    from sam2elnet.engine.runtime import resolve_device
    from sam2elnet.model.checkpoint_files import check_weights_exist

    cfg.validate()
    resolve_device(cfg.device)  # --device cuda without CUDA: one error line before any stage
    # the weights exist: checked before the data folder and --out (as elnet train)
    check_weights_exist(cfg.weights, random_init)
    data = Path(cfg.data)
    if not data.exists():
        raise DataError("data folder does not exist; check --data", data)
    if data.is_dir() and not any(data.iterdir()):
        raise DataError("data folder is empty; put a dataset in it (see docs/data.md)", data)
    out = Path(cfg.out)
    check_run_out(out, "experiment", data, RUN_PARTS, cfg.weights)  # before anything is written
    check_weights_kind(cfg)  # a YAML or empty file: refused before experiment.json is written
    out.mkdir(parents=True, exist_ok=True)
    cfg, ident, notes = settle_identity(cfg, out)  # a re-run: as recorded, or refused

    stages = Stages(out, cfg.resume, progress=cfg.progress)
    for note in notes:
        stages.say(note)
    stages.expect(_plan(cfg, list(cfg.sources) if cfg.enhancement else []), cfg.eta_reference)
    # downstream trainings run side by side: the ETA counts them by makespan (shared cores)
    downstream_lanes(stages, stages.plan["downstream"], cfg.device)
    t_start = time.perf_counter()
    weights, weights_note = resolve_weights(cfg, random_init)

    # 1. split ---------------------------------------------------------------------------------
    def _split() -> dict:
        sp = make_split(cfg)
        # a bad --road-buffer-m stops here, before the split is kept (px cannot fail: no scan)
        if cfg.road_buffer_m is not None and road_domain(sp).roads:
            test_road_buffers(cfg, sp)
        return asdict(sp)

    split = Split(**stages.run("split", _split, clear=[out / "truth"]))
    sources, table2_absent = table2_sources(cfg, split)
    if table2_absent:  # the ETA plans only the label sets table 2 uses
        stages.expect(_plan(cfg, sources))
    lab_root, unl_root, pool_root = out / "labelled", out / "unlabelled", out / "pool"

    def _subsets() -> dict:
        write_subset(lab_root, split, split.labelled, None)
        write_subset(unl_root, split, split.unlabelled, None, with_masks=False)
        write_subset(pool_root, split, split.pool, None)
        return {
            "labelled": len(split.labelled),
            "unlabelled": len(split.unlabelled),
            "pool": len(split.pool),
            "test": len(split.test),
        }

    stages.run("subsets", _subsets, clear=[lab_root, unl_root, pool_root])
    road_guess = road_domain(split)
    roads = road_guess.roads
    # each test image's road buffer, px (--road-buffer-m: from its own pixel size; checked by
    # the split stage, so a bad one is refused before anything is recorded)
    buffers = test_road_buffers(cfg, split) if roads else {}
    road_buffers = list(buffers.values()) if roads else None  # None: no road measures
    if roads:
        log.info("roads data (%s): road measures in the tables", road_guess.reason)

    # 2. fine-tune SAM2-ELNet on the labelled fraction -------------------------------------------
    elnet = stages.run("elnet", lambda: train_elnet(cfg, lab_root, out / "elnet", weights))
    model_path = elnet["model"]

    # 3. auto-annotate + filter; 3b. SAM2-ELNet itself on the test split ------------------------
    auto = annotate_stage(cfg, stages, out, split, model_path)
    kept_ids = [i for i in split.unlabelled if auto["kept"][i]]
    norm = norm_config(split)  # the same data-chosen scaling elnet train uses, for every run
    dcfg = downstream_config(cfg)
    lab = split.labelled
    later: dict[str, Any] = {}

    def _table2_inputs() -> dict:
        """3b. SAM2-ELNet on the test split, the auto-label counts, 4./6. the label sets for the
        enhancement table and their label IoU: table 1's U-Nets need none of them; table 2's
        settings."""
        later["direct"] = elnet_test_stage(
            cfg, stages, out, split, model_path, norm, roads, road_buffers
        )
        later["counts"] = auto_counts_stage(stages, split, auto)
        later["sets"] = enhancement_labels(cfg, stages, out, split, model_path, sources)
        later["scored"] = score_label_sets(stages, split, later["sets"])  # vs the true labels
        every = downstream_runs(split, kept_ids, auto["labels"], later["sets"])
        later["runs"] = {k: v for k, v in every.items() if k not in TABLE1_SETTINGS}
        return later["runs"]

    # downstream training ------------------------------------------------------------------------
    table1_runs = downstream_runs(split, kept_ids, auto["labels"], {})
    if cfg.enhancement_downstream:  # table 2's U-Nets learn from the label sets: those first
        runs = table1_runs | _table2_inputs()
        down = train_downstream(cfg, stages, out, split, runs, dcfg, norm, roads, road_buffers)
    else:  # the label sets are made while table 1's U-Nets train (five on two cores: at once)
        down = train_downstream(
            cfg, stages, out, split, table1_runs, dcfg, norm, roads, road_buffers,
            meanwhile=_table2_inputs,
        )  # fmt: skip
        runs = table1_runs | later["runs"]
    down_direct, auto_counts, label_sets = later["direct"], later["counts"], later["sets"]

    # results ------------------------------------------------------------------------------------
    down["elnet_direct"] = {**down_direct, "n_train": len(lab)}
    runs["elnet_direct"] = (lab, split.masks, len(lab))
    test_groups = group_of(split, split.test)
    table1 = []
    per_image_rows: list[tuple[str, str, str, str, list[int]]] = []
    for key, title in TABLE1_SETTINGS.items():
        r = down.get(key, {})
        ids, _labels, cost = runs[key]
        row = table_row(key, title, r, cost, len(ids))
        add_intervals(row, r.get("per_image"), split.test, test_groups, seed=BOOTSTRAP_SEED)
        table1.append(row)
        per_image_rows += csv_rows(
            key, "test", split.test, test_groups, r.get("per_image"), r.get("per_image_roads")
        )
    table2, t2_csv = table2_rows(split, later["scored"], down, runs, test_groups)
    auto_stats, auto_csv = auto_label_scores(split, auto, auto_counts)
    write_per_image_csv(
        out / "per_image.csv", per_image_rows + t2_csv + auto_csv, cfg.road_buffer, buffers
    )
    scored = [row for row in table1 if not row.get("skipped")]
    flags = degenerate_rows(scored)  # the verdict's and the log's
    verdict = verdict_lines(
        table1,
        {k: down.get(k, {}).get("per_image") for k in TABLE1_SETTINGS},
        degenerate=dict(zip([r["setting"] for r in scored], flags, strict=True)),
    )
    degenerate = degenerate_note(table1, flags)
    if degenerate:  # results.md and report.html say it too; the log reaches API users and the CLI
        log.warning(degenerate)

    results = {
        "version": RESULTS_VERSION,
        "data": str(Path(cfg.data).resolve()),
        "settings": {**ident, **{k: getattr(cfg, k) for k in cfg.DOWNSTREAM}},
        "command": experiment_command(cfg),
        "weights": {"path": weights, "note": weights_note, "random_init": weights is None},
        "split": {
            "labelled": len(lab),
            "unlabelled": len(split.unlabelled),
            "test": len(split.test),
            "test_source": split.test_source,
            "modality": split.modality,
            "layout": split.layout,
        },
        "elnet": {
            k: elnet.get(k) for k in ("model", "best_epoch", "best_val_iou", "selection", "quality")
        }
        | elnet_trunk(cfg, model_path),
        "autolabels": {
            k: auto[k]
            for k in (
                "n",
                "n_kept",
                "threshold",
                "threshold_rule",
                "fallback",
                "iou_all",
                "iou_kept",
                "spearman",
                "spearman_p",
            )
        }
        | {"filter": filter_decision(auto)}
        | auto_stats,
        "downstream_config": dcfg.to_dict(),
        "table1": table1,
        "table2": table2,
        "table2_absent": table2_absent,
        "verdict": verdict,
        "bootstrap": {
            "resamples": BOOTSTRAP_RESAMPLES,
            "confidence": 0.95,
            "seed": BOOTSTRAP_SEED,
            "unit": "image",
            "method": "percentile",
        },
        "groups": sorted(set(test_groups.values())),
        "per_image_file": "per_image.csv",
        # road data: the test images' road buffers, px ([smallest, largest]; per_image.csv each)
        "road_buffer_px_range": buffer_range(buffers.values()),
        "curves_file": "curves.png"
        if any(len(row.get("curve") or []) > 1 for row in table1 + table2)
        else None,
        "notes": [n for n in split.notes if n != OWN_IS_TRUTH_NOTE or "own" in label_sets]
        + ([auto["fallback"]] if auto.get("fallback") else [])
        + (
            [
                f"Every downstream model trains for {cfg.downstream_epochs} epochs, so settings with "
                "fewer training images also get proportionally fewer optimiser steps; "
                "--downstream-steps gives every setting the same number of updates instead."
            ]
            if cfg.downstream_steps is None
            else []
        ),
        "stages": dict(stages.status),
        # stage -> what happened, for stages whose every label was unusable whatever the filter
        "unusable": dict(stages.unusable),
        "stage_seconds": dict(stages.seconds),
        "seconds_this_run": time.perf_counter() - t_start,
    }
    results = json_safe(results)
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.md", render_markdown(results))
    plot_results(results, out / "results.png")
    if results.get("curves_file"):
        plot_curves(results, out / results["curves_file"])
    if cfg.report:
        write_report_html(cfg, results, split, auto, out)
    return results


def _plan(cfg: ExperimentConfig, sources: list[str]) -> dict[str, int]:
    """Stages to come per kind (the ETA lines) when table 2 runs the label ``sources``."""
    n_src = len(sources)
    n_sets = n_src * (len(cfg.refiners) + 2)  # table 2's label sets: as is, refiners, SAM2-ELNet
    return {
        "split": 1,
        "subsets": 1,
        "elnet": 1,
        "annotate": 1,
        "elnettest": 1,
        "autocounts": 1,
        "coarse": int("sim" in sources),
        "refine": n_src * len(cfg.refiners),
        "enhance": n_src,
        "downstream": 5 + n_sets * cfg.enhancement_downstream,
        "labelscore": n_sets,
    }
