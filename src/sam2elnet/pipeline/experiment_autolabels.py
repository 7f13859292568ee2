"""The protocol's automatic annotation: SAM2-ELNet labels the unlabelled part, the quality filter
keeps the labels it trusts (keeping the better half when it would keep none), every auto-label is
scored against the held-aside truth, and SAM2-ELNet labels the test split (table 1's row (f)).
Cached stages; part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.pipeline.experiment_config import BOOTSTRAP_SEED, ExperimentConfig
from sam2elnet.pipeline.experiment_engine import (
    annotate_images,
    predictor_for,
    quality_threshold,
    rows_to_labels,
)
from sam2elnet.pipeline.experiment_split import Split, write_subset
from sam2elnet.pipeline.experiment_stages import Stages, file_stat, sha
from sam2elnet.pipeline.experiment_stats import (
    add_intervals,
    counts_vs_truth,
    csv_rows,
    group_of,
    label_counts,
    per_image_iou,
    summarize_counts,
)

log = logging.getLogger(__name__)


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


def annotate_stage(
    cfg: ExperimentConfig, stages: Stages, out: Path, split: Split, model_path: str
) -> dict[str, Any]:
    """Stage ``annotate``: auto-labels of the unlabelled part (``OUT/autolabels``), their predicted
    quality, the filter (``kept``; ``threshold``, ``threshold_rule``, ``fallback`` and the decision
    as data, ``filter``: :func:`filter_labels`), their true
    IoU per image and overall (all and kept), and the evaluator's Spearman correlation."""
    auto_dir = out / "autolabels"

    def _auto() -> dict:
        from sam2elnet.engine.metrics import quality_stats

        pred = predictor_for(cfg, model_path)
        res = annotate_images(cfg, pred, model_path, out / "unlabelled" / "images", auto_dir)
        labels, quality = rows_to_labels(res, split.unlabelled)
        kept, decision = filter_labels(quality, *quality_threshold(cfg, pred))
        counts = label_counts(labels, split.masks, split.unlabelled)  # one read of each pair
        per_true = per_image_iou(split.unlabelled, counts)
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
            "threshold": decision["threshold"],
            "threshold_rule": decision["rule"],
            "fallback": fallback_text(decision),
            "filter": decision,
            "n": len(labels),
            "n_kept": len(kept_ids),
            "iou_all": summarize_counts(counts),
            "iou_kept": summarize_counts(
                counts[np.array([kept[i] for i in split.unlabelled], dtype=bool)]
            ),
            "spearman": stats.spearman,
            "spearman_p": stats.spearman_p,
        }

    return stages.run("annotate", _auto, clear=[auto_dir])


def elnet_test_stage(
    cfg: ExperimentConfig,
    stages: Stages,
    out: Path,
    split: Split,
    model_path: str,
    norm: Any,
    roads: bool = False,
) -> dict[str, Any]:
    """Stage ``elnettest``: SAM2-ELNet itself labels the test split, scored exactly like the
    downstream models (``norm``: their normalisation, whose nodata pixels are left out too;
    ``roads``: road data, so the road measures are added as for the downstream models)."""
    test_root, test_label_dir = out / "test", out / "testlabels"

    def _elnet_test() -> dict:
        from sam2elnet.engine.downstream import scores_from_counts
        from sam2elnet.engine.metrics import RoadCounts

        write_subset(test_root, split, split.test, None, with_masks=False)
        res = annotate_images(
            cfg, predictor_for(cfg, model_path), model_path, test_root / "images", test_label_dir
        )
        labels, _quality = rows_to_labels(res, split.test)
        road_rows: list[Any] | None = [] if roads else None
        counts = counts_vs_truth(
            labels,
            split,
            split.test,
            norm=norm,
            road_counts=road_rows,
            road_buffer=cfg.road_buffer,
        )
        metrics = scores_from_counts(counts.sum(axis=0))
        if road_rows is not None:
            metrics.update(sum(road_rows, RoadCounts()).scores())
        metrics["n_test"] = len(split.test)
        per_roads = [list(r.as_tuple()) for r in road_rows or ()]
        return {"metrics": metrics, "per_image": counts.tolist(), "labels": labels} | (
            {"per_image_roads": per_roads} if per_roads else {}
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
