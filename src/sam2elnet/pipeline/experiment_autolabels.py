"""The protocol's automatic annotation: SAM2-ELNet labels the unlabelled part, the quality filter
keeps the labels it trusts (keeping the better half when it would keep none), every auto-label is
scored against the held-aside truth, and SAM2-ELNet labels the test split (table 1's row (f)).
Cached stages; part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.runfolder import remove_stale_report
from sam2elnet.engine.metrics import RoadCounts, quality_stats
from sam2elnet.pipeline.experiment_config import BOOTSTRAP_SEED, ExperimentConfig
from sam2elnet.pipeline.experiment_engine import (
    annotate_images,
    predictor_for,
    quality_threshold,
    rows_to_labels,
    unusable_record,
)
from sam2elnet.pipeline.experiment_scores import (
    counts_vs_truth,
    csv_rows,
    label_counts,
    per_image_iou,
    summarize_counts,
)
from sam2elnet.pipeline.experiment_split import Split, write_subset
from sam2elnet.pipeline.experiment_stages import Stages, file_stat, json_safe, sha
from sam2elnet.pipeline.experiment_stats import add_intervals, group_of
from sam2elnet.utils.atomic import write_json_atomic


def filter_labels(
    quality: dict[str, float], threshold: float, rule: str
) -> tuple[dict[str, bool], dict[str, Any]]:
    """The quality filter: which auto-labels are kept, and the decision as data.

    ``quality`` maps id -> predicted quality (NaN = no score: never kept by the rule);
    ``threshold`` and ``rule`` (its words) come from the threshold rule. Labels with quality >=
    the threshold are kept. When that keeps none, the better half by predicted quality is kept
    instead: quality > the median, or >= the median when ``>`` keeps none (calibrated scores tie
    a lot: isotonic steps). Returns ({id: kept}, decision) with decision ``rule``,
    ``rule_threshold``, ``threshold`` (the one applied: the rule's, or the median), ``fallback``
    (bool) and ``keep`` (``">="`` or ``">"``: how kept labels compare with ``threshold``).
    """
    kept = {i: bool(np.isfinite(q) and q >= threshold) for i, q in quality.items()}
    decision: dict[str, Any] = {
        "rule": rule,
        "rule_threshold": float(threshold),
        "threshold": float(threshold),
        "fallback": False,
        "keep": ">=",
    }
    if not any(kept.values()):
        med = float(np.nanmedian(list(quality.values())))
        kept = {i: bool(q > med) for i, q in quality.items()}
        op = ">"
        if not any(kept.values()):
            kept = {i: bool(q >= med) for i, q in quality.items()}
            op = ">="
        decision.update(threshold=med, fallback=True, keep=op)
    return kept, decision


def fallback_text(decision: dict[str, Any]) -> str | None:
    """The fallback's sentence (results.json ``fallback``, a note of results.md), or None when the
    rule's threshold was applied."""
    if not decision["fallback"]:
        return None
    return (
        f"the filter ({decision['rule']}) kept no label; fell back to keeping labels with "
        f"predicted quality {decision['keep']} the median ({decision['threshold']:.3f})"
    )


def filter_decision(auto: dict[str, Any]) -> dict[str, Any]:
    """The filter decision of an ``annotate`` result (or results.json ``autolabels``): its
    ``filter`` (:func:`filter_labels`), or, for results made before that was stored, the same
    fields from ``threshold`` / ``threshold_rule`` / ``fallback`` (whose words name the median's
    comparison)."""
    if auto.get("filter"):
        return dict(auto["filter"])
    fb = auto.get("fallback")
    return {
        "rule": auto["threshold_rule"],
        "rule_threshold": None if fb else auto.get("threshold"),
        "threshold": auto.get("threshold"),
        "fallback": bool(fb),
        "keep": ">" if fb and ">= the median" not in fb else ">=",
    }


def _filtered(
    cfg: ExperimentConfig,
    split: Split,
    labels: dict[str, str],
    quality: dict[str, float],
    predictor: Callable[[], Any],
) -> dict[str, Any]:
    """The quality filter of ``cfg`` applied to the auto-labels ``labels`` (id -> path) with their
    predicted ``quality`` (NaN: none), and their scores against the held-aside truth: the
    ``annotate`` summary less ``labels`` / ``quality``. ``predictor`` gives SAM2-ELNet's
    predictor, asked for only when the threshold rule needs its evaluator (not with
    ``--min-quality``); nothing is predicted."""
    kept, decision = filter_labels(
        quality, *quality_threshold(cfg, None if cfg.min_quality is not None else predictor())
    )
    counts = label_counts(labels, split.masks, split.unlabelled)  # one read of each pair
    per_true = per_image_iou(split.unlabelled, counts)
    stats = quality_stats(
        [quality[i] for i in split.unlabelled],
        [per_true[i] for i in split.unlabelled],
        kept=[kept[i] for i in split.unlabelled],
    )
    kept_ids = [i for i in split.unlabelled if kept[i]]
    return {
        "true_iou": per_true,
        "kept": kept,
        "threshold": decision["threshold"],
        "threshold_rule": decision["rule"],
        "fallback": fallback_text(decision),
        "filter": decision,
        "filter_options": filter_options(cfg),
        "n": len(labels),
        "n_kept": len(kept_ids),
        "iou_all": summarize_counts(counts),
        "iou_kept": summarize_counts(
            counts[np.array([kept[i] for i in split.unlabelled], dtype=bool)]
        ),
        "spearman": stats.spearman,
        "spearman_p": stats.spearman_p,
    }


def filter_options(cfg: ExperimentConfig | dict[str, Any]) -> dict[str, Any]:
    """The options of the quality filter (:data:`ExperimentConfig.FILTER`) of a config or of a
    stored identity (``experiment.json``; a missing one: None, the default)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    return {k: get(k) for k in ExperimentConfig.FILTER}


def record_filter_options(stages: Stages, old_identity: dict[str, Any]) -> None:
    """Give an ``annotate`` marker made before the filter options were recorded in it the options
    of the run that made it (``old_identity``: the ``experiment.json`` it ran under), before
    this run records its own options there."""
    m = stages.marker("annotate")
    try:
        rec = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    summary = rec.get("summary") if isinstance(rec, dict) else None
    if isinstance(summary, dict) and "filter_options" not in summary:
        summary["filter_options"] = filter_options(old_identity)
        write_json_atomic(m, rec)


def _words(opts: dict[str, Any]) -> str:
    given = [f"--{k.replace('_', '-')} {v:g}" for k, v in opts.items() if v is not None]
    return ", ".join(given) or "the default rule"


def annotate_stage(
    cfg: ExperimentConfig, stages: Stages, out: Path, split: Split, model_path: str
) -> dict[str, Any]:
    """Stage ``annotate``: auto-labels of the unlabelled part (``OUT/autolabels``), their predicted
    quality, the filter (``kept``; ``threshold``, ``threshold_rule``, ``fallback`` and the decision
    as data, ``filter``: :func:`filter_labels`; the options it ran with, ``filter_options``),
    their true IoU per image and overall (all and kept), and the evaluator's Spearman
    correlation.

    A stage done before with other filter options (``--min-quality`` / ``--target-precision``)
    is filtered again from its stored labels and predicted quality (nothing is predicted again;
    one line says so, and the marker is updated); the downstream settings trained on the kept
    labels ((c), (d)) then see other label sets and train again by their own keys."""
    auto_dir = out / "autolabels"

    def _auto() -> dict:
        pred = predictor_for(cfg, model_path)
        res = annotate_images(cfg, pred, model_path, out / "unlabelled" / "images", auto_dir)
        labels, quality = rows_to_labels(res, split.unlabelled)
        return (
            {"labels": labels, "quality": quality}
            | _filtered(cfg, split, labels, quality, lambda: pred)
            | unusable_record(res, "stage annotate (the unlabelled images)")
        )

    auto = stages.run("annotate", _auto, clear=[auto_dir])
    was = auto.get("filter_options", filter_options(cfg))  # a marker of this run: the same
    if was == filter_options(cfg):
        return auto
    quality = {
        i: float(q) if q is not None else float("nan")  # stored as JSON: NaN written as null
        for i, q in auto["quality"].items()
    }
    new = {**auto} | _filtered(
        cfg, split, auto["labels"], quality, lambda: predictor_for(cfg, model_path)
    )
    stages.update("annotate", new, "refiltered")
    same = [i for i in split.unlabelled if new["kept"][i]] == [
        i for i in split.unlabelled if auto["kept"][i]
    ]
    stages.say(
        f"stage annotate: done before; its {new['n']} auto-labels filtered again with "
        f"{_words(filter_options(cfg))} (were filtered with {_words(was)}): {new['n_kept']} "
        f"kept (were {auto['n_kept']}); "
        + (
            "the same labels, so no U-Net trains again"
            if same
            else "the U-Nets of (c) and (d), trained on the kept labels, train again"
        )
    )
    if not cfg.report:
        stale = remove_stale_report(out, "the auto-labels were filtered again")
        if stale:
            stages.say(stale)
    return json_safe(new)


def elnet_test_stage(
    cfg: ExperimentConfig,
    stages: Stages,
    out: Path,
    split: Split,
    model_path: str,
    norm: Any,
    roads: bool = False,
    road_buffers: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Stage ``elnettest``: SAM2-ELNet itself labels the test split, scored exactly like the
    downstream models (``norm``: their normalisation, whose nodata pixels are left out too;
    ``roads``: road data, so the road measures are added as for the downstream models, each
    test image's within its own ``road_buffers`` px, in ``split.test`` order; None:
    ``cfg.road_buffer`` for all)."""
    test_root, test_label_dir = out / "test", out / "testlabels"

    def _elnet_test() -> dict:
        from sam2elnet.engine.downstream_score import scores_from_counts

        write_subset(test_root, split, split.test, None, with_masks=False)
        res = annotate_images(
            cfg, predictor_for(cfg, model_path), model_path, test_root / "images", test_label_dir
        )
        labels, _quality = rows_to_labels(res, split.test)
        unusable = unusable_record(res, "stage elnettest (the test images)")
        road_rows: list[Any] | None = [] if roads else None
        counts = counts_vs_truth(
            labels,
            split,
            split.test,
            norm=norm,
            road_counts=road_rows,
            road_buffer=cfg.road_buffer if road_buffers is None else road_buffers,
        )
        metrics = scores_from_counts(counts.sum(axis=0))
        if road_rows is not None:
            metrics.update(sum(road_rows, RoadCounts()).scores())
        metrics["n_test"] = len(split.test)
        per_roads = [list(r.as_tuple()) for r in road_rows or ()]
        return (
            {"metrics": metrics, "per_image": counts.tolist(), "labels": labels}
            | unusable
            | ({"per_image_roads": per_roads} if per_roads else {})
        )

    return stages.run(
        "elnettest",
        _elnet_test,
        clear=[test_root, test_label_dir],
        # road data: a run cached before (f) had road measures scores them once more
        key=sha({"model": file_stat(Path(model_path)), "roads": True})
        if roads
        else sha(file_stat(Path(model_path))),
    )


def auto_counts_stage(stages: Stages, split: Split, auto: dict[str, Any]) -> list[list[int]]:
    """Stage ``autocounts``: per-image counts [tp, fp, fn, tn] of the auto-labels vs the held-aside
    truth, in ``split.unlabelled`` order (for their confidence intervals)."""
    return stages.run(
        "autocounts",
        lambda: {"per_image": counts_vs_truth(auto["labels"], split, split.unlabelled).tolist()},
        key=sha([file_stat(Path(auto["labels"][i])) for i in split.unlabelled]),
    )["per_image"]


def auto_label_scores(
    split: Split, auto: dict[str, Any], counts: list[list[int]]
) -> tuple[dict[str, Any], list[tuple[str, str, str, str, list[int]]]]:
    """results.json's ``iou_all`` / ``iou_kept`` of the auto-labels with their bootstrap intervals
    and per-sensor scores (``counts``: :func:`auto_counts_stage`), and their per_image.csv rows."""
    groups = group_of(split, split.unlabelled)
    stats = {"iou_all": dict(auto["iou_all"]), "iou_kept": dict(auto["iou_kept"])}
    idx = {i: n for n, i in enumerate(split.unlabelled)}
    kept_ids = [i for i in split.unlabelled if auto["kept"][i]]
    for name, ids in (("iou_all", split.unlabelled), ("iou_kept", kept_ids)):
        sub = [counts[idx[i]] for i in ids]
        add_intervals(stats[name], sub, ids, groups, seed=BOOTSTRAP_SEED)
    return stats, csv_rows("autolabels", "unlabelled", split.unlabelled, groups, counts)
