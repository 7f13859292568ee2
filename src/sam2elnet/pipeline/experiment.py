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
   ``enhancement_downstream=False``), plus the label IoU against the true labels where those exist.
   Classical baselines are in the same table so the gain is measured.

Every stage writes its outputs under ``OUT`` and a done-marker ``OUT/stages/<stage>.json``; a stage
with a marker is skipped on re-run (same settings required). Delete a marker to re-run that stage;
downstream trainings and label scores are keyed by the state of the label files they read, so they
re-run by themselves when an earlier stage rewrote those files. ``resume=True`` additionally continues
stages that were interrupted half-way (ELNet training from ``last.pt``, annotation from the files
already written) instead of restarting them. All files are written atomically.

Outputs: ``results.md`` (both tables, costs, settings, weights), ``results.json``, ``results.png``,
``report.html``.

Modules, one concept each: :mod:`~sam2elnet.pipeline.experiment_config` (options, constants),
:mod:`~sam2elnet.pipeline.experiment_stages` (cached stages), :mod:`~sam2elnet.pipeline.experiment_split`
(the split and its subsets), :mod:`~sam2elnet.pipeline.experiment_engine` (calls into the engine),
:mod:`~sam2elnet.pipeline.experiment_stats` (scores, intervals, verdict),
:mod:`~sam2elnet.pipeline.experiment_report` (markdown, plots, HTML); this module runs the stages
(:func:`run_experiment`) and re-exports the public names.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.folder_inputs import check_run_out
from sam2elnet.engine.metrics import BOOTSTRAP_RESAMPLES
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment_config import (
    BOOTSTRAP_SEED,
    DOWNSTREAM_EVAL_VERSION,
    NO_ENHANCEMENT_DOWNSTREAM,
    RESULTS_VERSION,
    RUN_PARTS,
    TABLE1_SETTINGS,
    TABLE2_METHODS,
    ExperimentConfig,
    upgrade_identity,
)
from sam2elnet.pipeline.experiment_engine import (
    annotate_images,
    downstream_config,
    elnet_trunk,
    enhancement_labels,
    predictor_for,
    quality_threshold,
    resolve_weights,
    rows_to_labels,
    train_elnet,
)
from sam2elnet.pipeline.experiment_report import (
    plot_curves,
    plot_results,
    render_markdown,
    write_report_html,
)
from sam2elnet.pipeline.experiment_split import (
    Split,
    make_split,
    norm_config,
    road_domain,
    write_subset,
)
from sam2elnet.pipeline.experiment_stages import Stages, file_stat, json_safe, sha
from sam2elnet.pipeline.experiment_stats import (
    add_intervals,
    convergence,
    counts_vs_truth,
    csv_rows,
    group_of,
    label_iou,
    score_labels,
    score_per_image,
    table_row,
    verdict_lines,
    write_per_image_csv,
)
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


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Run (or continue) the whole protocol and write the results files; return results.json's dict.

    Raises:
        UserError, DataError: bad options or data. When the run stops this way before any stage
            has finished, it leaves nothing behind: the output folder is removed if this call
            created it, else only the ``experiment.json`` this call wrote.
    """
    out = Path(cfg.out)
    created = not out.exists()
    had_record = (out / "experiment.json").is_file()
    try:
        return _run_experiment(cfg)
    except (UserError, DataError):
        if not any((out / "stages").glob("*.json")):
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif not had_record:
                (out / "experiment.json").unlink(missing_ok=True)
        raise


def _run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    cfg.validate()
    data = Path(cfg.data)
    if not data.exists():
        raise DataError("data folder does not exist; check --data", data)
    if data.is_dir() and not any(data.iterdir()):
        raise DataError("data folder is empty; put a dataset in it (see docs/data.md)", data)
    out = Path(cfg.out)
    check_run_out(out, "experiment", data, RUN_PARTS, cfg.weights)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    ident_path = out / "experiment.json"
    ident = cfg.identity()
    finished = any((out / "stages").glob("*.json"))
    if ident_path.is_file() and finished:
        old = upgrade_identity(json.loads(ident_path.read_text(encoding="utf-8")))
        diff = sorted(
            k
            for k in set(old) | set(ident)
            if k not in cfg.DOWNSTREAM and old.get(k) != ident.get(k)
        )
        if diff:
            raise UserError(
                f"this folder holds an experiment with other settings ({', '.join(diff)}); "
                "choose a new --out or delete the folder",
                out,
            )
    if (
        not ident_path.is_file()
        or not finished
        or ident != json.loads(ident_path.read_text("utf-8"))
    ):
        write_json_atomic(ident_path, ident)

    stages = Stages(out, cfg.resume, progress=cfg.progress)
    n_src = len(cfg.sources) if cfg.enhancement else 0
    n_sets = n_src * (len(cfg.refiners) + 2)  # table 2's label sets: as is, refiners, SAM2-ELNet
    stages.expect(
        {
            "split": 1,
            "subsets": 1,
            "elnet": 1,
            "annotate": 1,
            "elnettest": 1,
            "autocounts": 1,
            "coarse": int(cfg.enhancement and "sim" in cfg.sources),
            "refine": n_src * len(cfg.refiners),
            "enhance": n_src,
            "downstream": 5 + n_sets * cfg.enhancement_downstream,
            "labelscore": n_sets,
        }
    )
    t_start = time.perf_counter()
    weights, weights_note = resolve_weights(cfg)

    # 1. split ---------------------------------------------------------------------------------
    def _split() -> dict:
        sp = make_split(cfg)
        return asdict(sp)

    split = Split(**stages.run("split", _split, clear=[out / "truth"]))
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
    if roads:
        log.info("roads data (%s): road measures in the tables", road_guess.reason)

    # 2. fine-tune SAM2-ELNet on the labelled fraction -------------------------------------------
    elnet = stages.run("elnet", lambda: train_elnet(cfg, lab_root, out / "elnet", weights))
    model_path = elnet["model"]

    # 3. auto-annotate + filter -----------------------------------------------------------------
    auto_dir = out / "autolabels"

    def _auto() -> dict:
        from sam2elnet.engine.metrics import quality_stats

        pred = predictor_for(cfg, model_path)
        res = annotate_images(cfg, pred, model_path, unl_root / "images", auto_dir)
        labels, quality = rows_to_labels(res, split.unlabelled)
        thr, how = quality_threshold(cfg, pred)
        kept = {i: bool(np.isfinite(q) and q >= thr) for i, q in quality.items()}
        fallback = None
        if not any(kept.values()):
            # Keep the better half by predicted quality. Calibrated scores tie a lot (isotonic
            # steps), so "> median" is tried first and ">= median" only when that keeps nothing.
            med = float(np.nanmedian(list(quality.values())))
            kept = {i: bool(q > med) for i, q in quality.items()}
            op = ">"
            if not any(kept.values()):
                kept = {i: bool(q >= med) for i, q in quality.items()}
                op = ">="
            fallback = (
                f"the filter ({how}) kept no label; fell back to keeping labels with "
                f"predicted quality {op} the median ({med:.3f})"
            )
            thr = med
        per_true = score_per_image(labels, split.masks, split.unlabelled)
        stats = quality_stats(
            [quality[i] for i in split.unlabelled],
            [per_true[i] for i in split.unlabelled],
            kept=[kept[i] for i in split.unlabelled],
        )
        kept_ids = [i for i in split.unlabelled if kept[i]]
        return {
            "labels": labels,
            "quality": quality,
            "true_iou": per_true,
            "kept": kept,
            "threshold": thr,
            "threshold_rule": how,
            "fallback": fallback,
            "n": len(labels),
            "n_kept": len(kept_ids),
            "iou_all": score_labels(labels, split.masks, split.unlabelled),
            "iou_kept": score_labels(labels, split.masks, kept_ids),
            "spearman": stats.spearman,
            "spearman_p": stats.spearman_p,
        }

    auto = stages.run("annotate", _auto, clear=[auto_dir])
    kept_ids = [i for i in split.unlabelled if auto["kept"][i]]
    norm = norm_config(split)  # the same data-chosen scaling elnet train uses, for every run

    # 3b. SAM2-ELNet itself on the test split (scored exactly like the downstream models) ---------
    test_root, test_label_dir = out / "test", out / "testlabels"

    def _elnet_test() -> dict:
        from sam2elnet.engine.downstream import scores_from_counts

        write_subset(test_root, split, split.test, None, with_masks=False)
        res = annotate_images(
            cfg, predictor_for(cfg, model_path), model_path, test_root / "images", test_label_dir
        )
        labels, _quality = rows_to_labels(res, split.test)
        counts = counts_vs_truth(labels, split, split.test, norm=norm)
        metrics = scores_from_counts(counts.sum(axis=0))
        metrics["n_test"] = len(split.test)
        return {"metrics": metrics, "per_image": counts.tolist(), "labels": labels}

    down_direct = stages.run(
        "elnettest",
        _elnet_test,
        clear=[test_root, test_label_dir],
        key=sha(file_stat(Path(model_path))),
    )

    # per-image counts of the auto-labels vs the held-aside truth (for their confidence intervals)
    auto_counts = stages.run(
        "autocounts",
        lambda: {"per_image": counts_vs_truth(auto["labels"], split, split.unlabelled).tolist()},
        key=sha([file_stat(Path(auto["labels"][i])) for i in split.unlabelled]),
    )["per_image"]

    # 4./6. label sets for the enhancement table -----------------------------------------------
    label_sets: dict[str, dict[str, str]] = {}
    table2_rows: list[dict[str, Any]] = []
    if cfg.enhancement:
        label_sets = enhancement_labels(cfg, stages, out, split, model_path)

    # downstream training ------------------------------------------------------------------------
    dcfg = downstream_config(cfg)
    cache: dict = {}
    autolabels = auto["labels"]
    lab, unl = split.labelled, split.unlabelled
    merged = {**split.masks, **autolabels}
    runs: dict[str, tuple[list[str], dict[str, str], int]] = {
        "full": (split.pool, split.masks, len(split.pool)),
        "fraction": (lab, split.masks, len(lab)),
        "auto_filtered": (kept_ids, autolabels, len(lab)),
        "fraction_auto_filtered": (sorted(lab + kept_ids), merged, len(lab)),
        "fraction_auto_all": (sorted(lab + unl), merged, len(lab)),
    }
    for src, sets in label_sets.items():
        for method, labels in sets.items():
            hand = len(split.pool) + (len(lab) if method == "elnet" else 0)
            runs[f"enh_{src}_{method}"] = (split.pool, labels, hand)

    test_pairs = split.pairs(split.test)
    down: dict[str, dict[str, Any]] = {}
    # learning-curve points do not change the trained model; without them the key is the one of
    # runs made before curves existed, so those trainings are reused (--curve-points 0)
    dcfg_key = {k: v for k, v in dcfg.to_dict().items() if k != "curve_points" or v > 1}
    # float32 was spelled "fp32" before the one precision vocabulary; the key keeps that spelling
    # so float32 models trained before are reused, not trained again
    if dcfg_key.get("precision") == "32":
        dcfg_key["precision"] = "fp32"
    for name, (ids, labels, _cost) in runs.items():
        if name.startswith("enh_") and not cfg.enhancement_downstream:
            down[name] = {"skipped": NO_ENHANCEMENT_DOWNSTREAM}  # table 2: label scores only
            continue
        if not ids:
            down[name] = {"skipped": "no training labels (the filter kept none)"}
            continue
        pairs = split.pairs(ids, labels)
        # labels by path *and* file state: a re-run earlier stage rewrites them under the same names
        fp = sha(
            {
                "pairs": [(str(a), str(b), *file_stat(b)) for a, b in pairs],
                "cfg": dcfg_key,
                "norm": norm.model_dump(mode="json"),
                "test": [str(a) for a, _ in test_pairs],
                "eval": DOWNSTREAM_EVAL_VERSION,
                **({"roads": True} if roads else {}),
            }
        )
        cache_file = out / "downstream" / "by_fingerprint" / f"{fp}.json"

        def _train_one(
            pairs: list = pairs, cache_file: Path = cache_file, name: str = name
        ) -> dict:
            from sam2elnet.engine.downstream import train_and_evaluate

            if cache_file.is_file():  # the same labels were trained under another setting name
                return json.loads(cache_file.read_text(encoding="utf-8"))
            res = train_and_evaluate(
                pairs, test_pairs, dcfg, norm_cfg=norm, cache=cache, roads=roads
            )
            d = json_safe(res.to_dict())
            write_json_atomic(cache_file, d)
            return d

        down[name] = stages.run(f"downstream_{name}", _train_one, key=fp)

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
        per_image_rows += csv_rows(key, "test", split.test, test_groups, r.get("per_image"))
    if cfg.enhancement:
        for src, sets in label_sets.items():
            for method in sets:
                key = f"enh_{src}_{method}"
                r = down.get(key, {})
                row = table_row(
                    key, TABLE2_METHODS.get(method, method), r, runs[key][2], len(split.pool)
                )
                add_intervals(row, r.get("per_image"), split.test, test_groups, seed=BOOTSTRAP_SEED)
                per_image_rows += csv_rows(key, "test", split.test, test_groups, r.get("per_image"))
                row["labels"] = "simulated coarse" if src == "sim" else "dataset's own"
                row["method"] = method
                row["source"] = src
                li = stages.run(
                    f"labelscore_{src}_{method}",
                    lambda sets=sets, method=method, src=src: label_iou(split, sets[method], src),
                    key=sha([file_stat(Path(p)) for p in sets[method].values()]),
                )
                row.update({f"label_{k}": v for k, v in li.items()})
                table2_rows.append(row)
    unl_groups = group_of(split, split.unlabelled)
    auto_stats = {"iou_all": dict(auto["iou_all"]), "iou_kept": dict(auto["iou_kept"])}
    idx = {i: n for n, i in enumerate(split.unlabelled)}
    for name, ids in (("iou_all", split.unlabelled), ("iou_kept", kept_ids)):
        sub = [auto_counts[idx[i]] for i in ids]
        add_intervals(auto_stats[name], sub, ids, unl_groups, seed=BOOTSTRAP_SEED)
    per_image_rows += csv_rows(
        "autolabels", "unlabelled", split.unlabelled, unl_groups, auto_counts
    )
    write_per_image_csv(out / "per_image.csv", per_image_rows)
    verdict = verdict_lines(table1, {k: down.get(k, {}).get("per_image") for k in TABLE1_SETTINGS})

    results = {
        "version": RESULTS_VERSION,
        "data": str(Path(cfg.data).resolve()),
        "settings": {**ident, **{k: getattr(cfg, k) for k in cfg.DOWNSTREAM}},
        "weights": {"path": weights, "note": weights_note, "random_init": weights is None},
        "split": {
            "labelled": len(lab),
            "unlabelled": len(unl),
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
        | auto_stats,
        "downstream_config": dcfg.to_dict(),
        "table1": table1,
        "table2": table2_rows,
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
        "curves_file": "curves.png"
        if any(len(row.get("curve") or []) > 1 for row in table1 + table2_rows)
        else None,
        "notes": split.notes
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
