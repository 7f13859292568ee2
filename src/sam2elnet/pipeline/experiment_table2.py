"""The protocol's table 2 (label enhancement vs classical refinement): which label sources it
runs, their label sets as cached stages (coarse, refined by each classical baseline, enhanced by
SAM2-ELNet), the label scores of every set (per image, per sensor) and the table's rows.

Part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.pipeline.experiment_config import (
    BOOTSTRAP_SEED,
    OWN_NOT_SCORED,
    TABLE2_METHODS,
    ExperimentConfig,
)
from sam2elnet.pipeline.experiment_engine import (
    enhance_images,
    predictor_for,
    rows_to_labels,
    unusable_record,
)
from sam2elnet.pipeline.experiment_scores import counts_vs_truth, csv_rows
from sam2elnet.pipeline.experiment_split import Split, norm_config
from sam2elnet.pipeline.experiment_stages import Stages, file_stat, sha
from sam2elnet.pipeline.experiment_stats import add_intervals, group_of, table_row
from sam2elnet.utils.paths import link_or_copy

LabelSets = dict[str, dict[str, dict[str, str]]]
"""{source: {method: {id: label path}}} of table 2."""


def table2_sources(cfg: ExperimentConfig, split: Split) -> tuple[list[str], dict[str, str]]:
    """(the label sources table 2 runs, {source left out: why}).

    The dataset's own labels are left out when they are its true labels (it ships no separate
    coarse labels, ``split.own_is_truth``) and ``enhancement_downstream`` is off: a label score
    needs a truer label than the labels themselves and no downstream model is trained, so their
    refined and enhanced versions would be made for nothing (:data:`OWN_NOT_SCORED`).
    """
    if not cfg.enhancement:
        return [], {}
    absent = {}
    if "own" in cfg.sources and split.own_is_truth and not cfg.enhancement_downstream:
        absent["own"] = OWN_NOT_SCORED
    return [s for s in cfg.sources if s not in absent], absent


def enhancement_labels(
    cfg: ExperimentConfig,
    stages: Stages,
    out: Path,
    split: Split,
    model_path: str,
    sources: Sequence[str],
) -> LabelSets:
    """Label sets {source: {method: {id: path}}} of ``sources`` for table 2 (cached stages)."""
    from sam2elnet.data.coarse import degrade, file_seed
    from sam2elnet.data.masks import read_mask
    from sam2elnet.data.writers import write_mask

    sim_dir = out / "labels" / "sim" / "coarse"

    def _degrade() -> dict:
        ious = []
        for i in split.pool:
            m = read_mask(split.masks[i])
            r = degrade(m, cfg.coarse_profile, cfg.coarse_severity, seed=file_seed(cfg.seed, i))
            write_mask(sim_dir / f"{i}.png", r.mask)
            ious.append(r.iou)
        return {"mean_iou": float(np.mean(ious)), "n": len(ious)}

    bases: dict[str, dict[str, str]] = {}
    if "sim" in sources:
        stages.run("coarse_sim", _degrade, clear=[sim_dir])
        bases["sim"] = {i: str(sim_dir / f"{i}.png") for i in split.pool}
    if "own" in sources:
        bases["own"] = dict(split.own)
    result: LabelSets = {}
    for src, base in bases.items():
        sets: dict[str, dict[str, str]] = {"coarse": base}
        for method in cfg.refiners:
            rdir = out / "labels" / src / method

            def _refine(base: dict = base, rdir: Path = rdir, method: str = method) -> dict:
                from sam2elnet.engine.downstream_data import load_pair
                from sam2elnet.pipeline.refine import refine

                norm = norm_config(split)
                for i in split.pool:
                    x, m, _ = load_pair(Path(split.images[i]), Path(base[i]), norm)
                    write_mask(rdir / f"{i}.png", refine(method, x, m))
                return {"n": len(split.pool)}

            stages.run(f"refine_{src}_{method}", _refine, clear=[rdir])
            sets[method] = {i: str(rdir / f"{i}.png") for i in split.pool}
        edir = out / "labels" / src / "elnet"
        ldir = out / "labels" / src / "input"

        def _enh(base: dict = base, edir: Path = edir, ldir: Path = ldir, src: str = src) -> dict:
            for i in split.pool:
                link_or_copy(Path(base[i]), ldir / f"{i}{Path(base[i]).suffix.lower()}")
            res = enhance_images(
                cfg, predictor_for(cfg, model_path), model_path, out / "pool" / "images", ldir, edir
            )
            labels, quality = rows_to_labels(res, split.pool)
            unusable = unusable_record(res, f"stage enhance_{src} (the pool's {src} labels)")
            return {"labels": labels, "quality": quality} | unusable

        enh = stages.run(f"enhance_{src}", _enh, clear=[edir, ldir])
        sets["elnet"] = enh["labels"]
        result[src] = sets
    return result


LABEL_SCORE_VERSION = 2
"""Part of every label-score stage key: version 2 keeps the per-image counts (per-sensor label
IoU); a stage scored before them is scored once more (it reads label files, trains nothing)."""


def label_scores(split: Split, labels: dict[str, str], src: str) -> dict[str, Any]:
    """Label IoU vs the true labels: all pool images (``iou_all``), the unlabelled part (never seen
    by SAM2-ELNet, ``iou_unlabelled``) and the (N, 4) per-image counts [tp, fp, fn, tn] of the
    pool in ``split.pool`` order (``per_image``); pixels the truth marks as ignore are not
    counted. The dataset's own labels when they are the truth: None (nothing truer to score by).
    """
    from sam2elnet.engine.downstream_score import scores_from_counts

    if src == "own" and split.own_is_truth:
        return {"iou_all": None, "iou_unlabelled": None, "note": "no separate truth"}
    counts = counts_vs_truth(labels, split, split.pool)
    unl = set(split.unlabelled)
    sel = np.array([i in unl for i in split.pool])
    return {
        "iou_all": scores_from_counts(counts.sum(axis=0))["iou"],
        "iou_unlabelled": scores_from_counts(counts[sel].sum(axis=0))["iou"],
        "per_image": counts.tolist(),
    }


def label_groups(split: Split, per_image: Sequence[Sequence[int]] | None) -> dict[str, Any]:
    """Per-sensor label scores of one label set from its pool counts (:func:`label_scores`):
    ``{"label_by_group": ..., "label_unlabelled_by_group": ...}``, each ``{group: {n, iou,
    iou_ci, f1, precision, recall, miou}}`` as the ``by_group`` of a downstream row
    (:func:`~sam2elnet.pipeline.experiment_stats.add_intervals`), and ``label_ci``: the
    bootstrap 95 % interval of the label IoU over all pool images (``all``) and over the
    unlabelled part (``unlabelled``), each ``{"iou_ci": [low, high] | None}`` (plus
    ``iou_ci_left_out`` when resamples without foreground were left out; text:
    :func:`~sam2elnet.pipeline.experiment_stats.ci_text`); empty without counts."""
    out: dict[str, Any] = {"label_by_group": {}, "label_unlabelled_by_group": {}, "label_ci": {}}
    if per_image is None:
        return out
    groups = group_of(split, split.pool)
    idx = {i: n for n, i in enumerate(split.pool)}
    for key, name, ids in (
        ("label_by_group", "all", split.pool),
        ("label_unlabelled_by_group", "unlabelled", split.unlabelled),
    ):
        part: dict[str, Any] = {}
        add_intervals(part, [per_image[idx[i]] for i in ids], ids, groups, seed=BOOTSTRAP_SEED)
        out[key] = part["by_group"]
        out["label_ci"][name] = {k: v for k, v in part.items() if k.startswith("iou_ci")}
    return out


LabelScores = dict[tuple[str, str], tuple[dict[str, Any], Any, dict[str, Any]]]
"""(source, method) -> (label scores of :func:`label_scores` without the per-image counts, those
counts or None, the per-sensor scores and intervals of :func:`label_groups`)."""


def score_label_sets(stages: Stages, split: Split, label_sets: LabelSets) -> LabelScores:
    """Score every label set of table 2 against the true labels, as cached
    ``labelscore_<source>_<method>`` stages (:func:`label_scores`), with its per-sensor scores and
    bootstrap intervals (:func:`label_groups`). Needs no downstream model, so the experiment runs
    it while table 1's U-Nets train."""
    scored: LabelScores = {}
    for src, sets in label_sets.items():
        for method in sets:
            li = stages.run(
                f"labelscore_{src}_{method}",
                lambda sets=sets, method=method, src=src: label_scores(split, sets[method], src),
                key=sha(
                    {
                        "labels": [file_stat(Path(p)) for p in sets[method].values()],
                        "version": LABEL_SCORE_VERSION,
                    }
                ),
            )
            counts = li.pop("per_image", None)
            scored[src, method] = (li, counts, label_groups(split, counts))
    return scored


def table2_rows(
    split: Split,
    scored: LabelScores,
    down: dict[str, dict[str, Any]],
    runs: dict[str, tuple[list[str], dict[str, str], int]],
    test_groups: dict[str, str],
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str, list[int]]]]:
    """Table 2's rows (one per source x method of ``scored``, from :func:`score_label_sets`:
    downstream test scores when trained, the label scores, per sensor) and their per_image.csv
    rows: the downstream model's counts on the test images (part ``test``, when trained) and the
    label set's own counts vs the truth on the pool (parts ``labelled`` / ``unlabelled``; none for
    the dataset's own labels when they are the truth)."""
    rows: list[dict[str, Any]] = []
    per_image_rows: list[tuple[str, str, str, str, list[int]]] = []
    pool_groups = group_of(split, split.pool)
    idx = {i: n for n, i in enumerate(split.pool)}
    for (src, method), (li, counts, groups) in scored.items():
        key = f"enh_{src}_{method}"
        r = down.get(key, {})
        row = table_row(key, TABLE2_METHODS.get(method, method), r, runs[key][2], len(split.pool))
        add_intervals(row, r.get("per_image"), split.test, test_groups, seed=BOOTSTRAP_SEED)
        per_image_rows += csv_rows(
            key, "test", split.test, test_groups, r.get("per_image"), r.get("per_image_roads")
        )
        row["labels"] = "simulated coarse" if src == "sim" else "dataset's own"
        row["method"] = method
        row["source"] = src
        row.update({f"label_{k}": v for k, v in li.items()})
        row.update(groups)
        for part, ids in (("labelled", split.labelled), ("unlabelled", split.unlabelled)):
            sub = None if counts is None else [counts[idx[i]] for i in ids]
            per_image_rows += csv_rows(key, part, ids, pool_groups, sub)
        rows.append(row)
    return rows, per_image_rows
