"""The protocol's ``results.md``: tables 1 and 2 with their bootstrap intervals, the per-sensor
and road-measure tables, the auto-label sentence, unusable-image notes, the learning-curve table
and the settings (:func:`render_markdown`); :func:`degenerate_note` is also printed with the
terminal's tables. docs/results.md describes the page.

Part of :mod:`sam2elnet.pipeline.experiment`; ``results.png``, ``curves.png`` and
``report.html`` are made by :mod:`sam2elnet.pipeline.experiment_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.pipeline.experiment_autolabels import filter_decision
from sam2elnet.pipeline.experiment_config import (
    CONVERGED_GAIN,
    NO_ENHANCEMENT_DOWNSTREAM,
    table2_downstream,
)
from sam2elnet.pipeline.experiment_stats import (
    ci_text,
    convergence,
    group_rows,
    label_group_rows,
    road_note,
    road_rows,
    table2_name,
)
from sam2elnet.utils.advice import plural


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _iou_ci(row: dict[str, Any]) -> str:
    """``0.712 [0.690, 0.733]`` (IoU and its bootstrap interval, :func:`ci_text`), or the IoU alone."""
    if row.get("iou") is None:
        return "–"
    return f"{_f(row['iou'])} {ci_text(row)}".rstrip()


def filter_words(auto: dict[str, Any]) -> str:
    """How the auto-labels were filtered, for table 1's auto-label sentence.

    ``auto`` is the ``annotate`` stage's result (or results.json ``autolabels``); its filter
    decision (:func:`~sam2elnet.pipeline.experiment_autolabels.filter_decision`) gives the rule
    and, when that rule kept no label, the median predicted quality applied instead and how kept
    labels compare with it. The sentence then names the threshold actually applied, not only the
    rule's (which kept nothing).
    """
    d = filter_decision(auto)
    if not d["fallback"]:
        return d["rule"]
    above = "at or above" if d["keep"] == ">=" else "above"
    return (
        f"{d['rule']} kept none, so the labels {above} the median predicted quality "
        f"({_f(d['threshold'])}) were kept instead"
    )


def _group_table(
    title: str, rows: list[dict[str, Any]], groups: list[str], name: Callable[[dict], str]
) -> list[str]:
    """Per-sensor lines (IoU with CI, F1, precision, recall, mIoU) of a table's rows: the rows of
    :func:`group_rows`."""
    lines = [
        "",
        f"### {title}",
        "",
        "| setting | sensor | test images | IoU [95 % CI] | F1 | precision | recall | mIoU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in group_rows(rows, groups, name):
        iou = f"{_f(p['iou'])} {p['iou_ci']}".rstrip()
        lines.append(
            f"| {p['title']} | {p['sensor']} | {p['test']} | {iou} | {_f(p['f1'])} | "
            f"{_f(p['precision'])} | {_f(p['recall'])} | {_f(p['miou'])} |"
        )
    return lines


def _label_group_table(rows: list[dict[str, Any]]) -> list[str]:
    """results.md lines of :func:`label_group_rows` (all pool images and the unlabelled part, each
    with its bootstrap interval); empty when the pool holds one group only."""
    per = label_group_rows(rows)
    if not per:
        return []
    lines = [
        "",
        "### Table 2 per sensor (label IoU)",
        "",
        "| labels | method | sensor | images (all) | label IoU (all) [95 % CI] "
        "| images (unlabelled part) | label IoU (unlabelled part) [95 % CI] |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for p in per:
        all_ = f"{_f(p['label_iou_all'])} {p['label_iou_all_ci']}".rstrip()
        unl = f"{_f(p['label_iou_unlabelled'])} {p['label_iou_unlabelled_ci']}".rstrip()
        lines.append(
            f"| {p['labels']} | {p['method']} | {p['sensor']} | {p['pool_images']} | {all_} | "
            f"{p['unlabelled_images']} | {unl} |"
        )
    return lines


def _label_iou(row: dict[str, Any], part: str) -> str:
    """A table-2 row's label IoU of ``part`` (``all`` / ``unlabelled``) with its bootstrap 95 %
    interval over images (``label_ci``; none for results made before it was kept, or for the
    dataset's own labels when they are the truth): ``0.797 [0.721, 0.850]``."""
    key = "label_iou_all" if part == "all" else "label_iou_unlabelled"
    ci = ci_text((row.get("label_ci") or {}).get(part) or {})
    return f"{_f(row.get(key))} {ci}".rstrip()


def _road_table(
    rows: list[dict[str, Any]], names: tuple[str, ...] = ("title",), note: str = ""
) -> list[str]:
    """results.md lines of the road measures of table rows that have them (road data; empty list
    otherwise): :func:`~sam2elnet.pipeline.experiment_stats.road_rows`, as report.html shows them
    (``names``: the columns naming a row; table 2: ``labels``, ``title``; ``note``: the sentence
    above it, :func:`~sam2elnet.pipeline.experiment_stats.road_note`)."""
    have = road_rows(rows, names)
    if not have:
        return []
    heads = {"title": "setting", "labels": "training labels"}
    if "labels" in names:
        heads["title"] = "method"
    cols = [heads.get(k, k) for k in names]
    cols += ["IoU", "F1", "road correctness", "road completeness", "road quality"]
    cols += ["road connectivity"]
    lines = ["", f"{note}:", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * len(names) + "---:|" * (len(cols) - len(names)))
    for row in have:
        lines.append("| " + " | ".join(_f(v) for v in row.values()) + " |")
    return lines


def degenerate_note(
    rows: list[dict[str, Any]], flags: Sequence[str | None] | None = None
) -> str | None:
    """One sentence naming the rows of ``rows`` whose model is degenerate (labelled every test
    pixel foreground, or none: :func:`~sam2elnet.pipeline.report_protocol.degenerate_rows`),
    or None when there are none. Such a row's IoU is the foreground share of the test set (or 0),
    so a verdict comparing it says nothing about the labels; report.html highlights the rows,
    results.md and the printed tables say it with this sentence. ``flags``: ``degenerate_rows``
    of the rows not skipped, in order, when worked out already (the verdict's); None: worked
    out here."""
    from sam2elnet.pipeline.report_protocol import degenerate_rows

    what = {
        "all foreground": "labelled (almost) every test pixel foreground (recall 1, background "
        "IoU 0)",
        "no foreground": "found no foreground (recall 0)",
    }
    scored = [row for row in rows if not row.get("skipped")]
    by_kind: dict[str, list[str]] = {}
    flags = degenerate_rows(scored) if flags is None else flags
    for row, flag in zip(scored, flags, strict=True):
        if flag:
            by_kind.setdefault(flag, []).append(str(row.get("title", "?")).split(" ")[0])
    if not by_kind:
        return None
    n = sum(len(v) for v in by_kind.values())
    bad = [f"{', '.join(names)} {what[kind]}" for kind, names in by_kind.items()]
    its, it = ("Its", "it was") if n == 1 else ("Their", "they were")
    return (
        f"{plural(n, 'model of table 1 is', 'models of table 1 are')} degenerate: "
        f"{'; '.join(bad)}. {its} scores, and a verdict that uses them, say nothing about the "
        f"labels {it} trained on: train the downstream models longer (--downstream-epochs / "
        "--downstream-steps) or on more images"
    )


def _unusable_md(r: dict[str, Any], table: int) -> list[str]:
    """results.md lines of the stages of table ``table`` whose every label was unusable
    (:func:`~sam2elnet.pipeline.report_protocol.unusable_lines`)."""
    from sam2elnet.pipeline.report_protocol import unusable_lines

    return [line for why in unusable_lines(r, table) for line in ("", f"**Warning:** {why}.")]


def _share(labelled: int, pool: int, fraction: float) -> str:
    """The labelled share as it came out of the split ('31%'), and the asked ``--fraction``
    where rounding to whole images moved it ('31%; --fraction 0.3 asked')."""
    got = labelled / pool if pool else 0.0
    text = f"{got:.0%}"
    return text if f"{fraction:.0%}" == text else f"{text}; --fraction {fraction:g} asked"


def render_markdown(r: dict[str, Any]) -> str:
    """results.md: both tables, labelling cost, auto-label quality, settings and weights."""
    s = r["settings"]
    a = r["autolabels"]
    sp = r["split"]
    pool = sp["labelled"] + sp["unlabelled"]
    # the object class by the data's domain: road measures are in the rows of road data only
    roads = any(row.get(k) is not None for row in r["table1"] for k in ROAD_KEYS)
    obj, miou_src = (
        ("road", "the two-class mIoU") if roads else ("oil", "the two-class mIoU SOS papers quote")
    )
    lines = [
        "# SAM2-ELNet protocol experiment",
        "",
        f"Data: `{r['data']}` ({sp['layout']} layout, {sp['modality']}). "
        f"Training pool {pool} images: {sp['labelled']} labelled "
        f"({_share(sp['labelled'], pool, s['fraction'])}), {sp['unlabelled']} treated as "
        "unlabelled. "
        f"Test: {sp['test']} images ({sp['test_source']}).",
        *(["", f"Command (every number below): `{r['command']}`"] if r.get("command") else []),
        "",
        f"**Encoder:** {r['weights']['note']}",
        "",
        "## Table 1 — automatic annotation (downstream U-Net, test split, pixel-aggregated)",
        "",
        f"IoU = {obj} (foreground) IoU with its bootstrap 95 % confidence interval over test "
        f"images; mIoU = mean of {obj} and background IoU ({miou_src}). Row (f) is "
        "SAM2-ELNet itself annotating the test images, to compare with (b), a plain U-Net trained "
        "on the same labelled fraction.",
        "",
        "| setting | hand labels | train images | IoU [95 % CI] | F1 | precision | recall | mIoU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["table1"]:
        if row.get("skipped"):
            lines.append(
                f"| {row['title']} | {row['hand_labels']} | {row['train_images']} | "
                f"skipped: {row['skipped']} | | | | |"
            )
            continue
        lines.append(
            f"| {row['title']} | {row['hand_labels']} | {row['train_images']} | "
            f"{_iou_ci(row)} | {_f(row['f1'])} | {_f(row['precision'])} | "
            f"{_f(row['recall'])} | {_f(row.get('miou'))} |"
        )
    lines += _road_table(r["table1"], note=road_note(r))
    degenerate = degenerate_note(r["table1"])
    if degenerate:
        lines += ["", f"**Warning:** {degenerate}."]
    if r.get("verdict"):
        lines += ["", "**Verdict.**", ""] + [f"- {v}" for v in r["verdict"]]
    groups = r.get("groups") or []
    if len(groups) > 1:
        lines += _group_table("Table 1 per sensor", r["table1"], groups, lambda row: row["title"])
    ia, ik = a["iou_all"], a["iou_kept"]
    lines += [
        "",
        f"Auto-labels: {a['n']} generated, {a['n_kept']} kept by the quality filter "
        f"({filter_words(a)}). IoU against the held-aside true labels: all {_iou_ci(ia)} "
        f"(mean per image {_f(ia['mean_image_iou'])}), kept {_iou_ci(ik)} "
        f"(mean per image {_f(ik['mean_image_iou'])}). Spearman correlation of predicted quality "
        f"vs true IoU: {_f(a['spearman'])}.",
    ]
    if len(groups) > 1 and ia.get("by_group"):
        per = []
        for g in groups:
            ga, gk = ia["by_group"].get(g), (ik.get("by_group") or {}).get(g)
            if ga:
                per.append(
                    f"{g}: all {_iou_ci(ga)} (n={ga['n']}), kept "
                    + (f"{_iou_ci(gk)} (n={gk['n']})" if gk else "–")
                )
        lines += ["", "Auto-label IoU per sensor: " + "; ".join(per) + "."]
    lines += _unusable_md(r, 1)
    lines += [
        "",
        "Labelling cost = number of hand-drawn labels a setting needs; auto-label settings need only "
        "the labelled fraction (used to fine-tune SAM2-ELNet).",
    ]
    if r["table2"] and not table2_downstream(r):
        lines += [
            "",
            "## Table 2 — label enhancement vs classical refinement (label IoU)",
            "",
            f"Note: {NO_ENHANCEMENT_DOWNSTREAM}.",
            "",
            "| labels | method | hand labels | label IoU (all) [95 % CI] "
            "| label IoU (unlabelled part) [95 % CI] |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {row['labels']} | {row['title']} | {row['hand_labels']} | "
            f"{_label_iou(row, 'all')} | {_label_iou(row, 'unlabelled')} |"
            for row in r["table2"]
        ]
    elif r["table2"]:
        lines += [
            "",
            "## Table 2 — label enhancement vs classical refinement (same downstream U-Net)",
            "",
            "| training labels | method | hand labels | label IoU (all) [95 % CI] "
            "| label IoU (unlabelled part) [95 % CI] "
            "| test IoU [95 % CI] | F1 | precision | recall | mIoU |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["table2"]:
            lines.append(
                f"| {row['labels']} | {row['title']} | {row['hand_labels']} | "
                f"{_label_iou(row, 'all')} | {_label_iou(row, 'unlabelled')} | "
                f"{_iou_ci(row)} | {_f(row['f1'])} | {_f(row['precision'])} | "
                f"{_f(row['recall'])} | {_f(row.get('miou'))} |"
            )
        lines += _road_table(r["table2"], ("labels", "title"), road_note(r))
    if r["table2"]:
        if len(groups) > 1 and table2_downstream(r):
            lines += _group_table("Table 2 per sensor", r["table2"], groups, table2_name)
        lines += _label_group_table(r["table2"])
        lines += [
            "",
            "Label IoU is against the true labels; 'unlabelled part' are the images SAM2-ELNet never saw "
            "a true label of. Hand labels: every training image carries a coarse hand label; "
            "SAM2-ELNet additionally needed the precise labels of the labelled fraction to learn from.",
        ]
        lines += _unusable_md(r, 2)
    absent = list((r.get("table2_absent") or {}).values())
    if absent and not r["table2"]:
        lines += ["", "## Table 2 — label enhancement vs classical refinement", ""]
    lines += [line for why in absent for line in ("", f"{why}.")]
    lines += _curve_lines(r)
    if r.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    d = r["downstream_config"]
    lines += [
        "",
        "## Settings",
        "",
        f"- SAM2-ELNet: size {s['size']}, trunk training {s['trunk']}, "
        f"{r['elnet']['trunk_note'].removeprefix('SAM2-ELNet: ')}, {s['epochs']} epochs, "
        f"{s['image_size']} px, batch {s['batch_size']}, precision {s['precision']}, "
        f"seed {s['seed']}; best epoch {r['elnet'].get('best_epoch')}, validation IoU {_f(r['elnet'].get('best_val_iou'))}"
        + (f" ({r['elnet']['selection']})" if r["elnet"].get("selection") else "")
        + ".",
        f"- Downstream: {d['model']} {d['model_options']}, "
        + (f"{d['steps']} optimiser steps" if d.get("steps") else f"{d['epochs']} epochs")
        + f", {d['image_size']} px crops (evaluated at native size), "
        f"batch {d['batch_size']}, lr {d['lr']} (AdamW, warm-up + cosine), "
        f"precision {d['precision']}, seed {d['seed']} — identical for every setting.",
        f"- Coarse-label simulator: profile {s['coarse_profile']}, severity {s['coarse_severity']}.",
        *(
            [
                "- Mask values read as object (--positive-values): "
                + ", ".join(f"{v:g}" for v in s["positive_values"])
                + "."
            ]
            if s.get("positive_values")
            else []
        ),
        *(
            [
                f"- Confidence intervals: percentile bootstrap (Efron & Tibshirani 1993) over "
                f"{r['bootstrap']['unit']}s, {r['bootstrap']['resamples']} resamples with "
                f"replacement, seed {r['bootstrap']['seed']}; each resample's IoU is "
                "pixel-aggregated from its images' confusion counts (per_image.csv). A resample "
                "whose images all have empty truth and an empty label has no IoU (union 0; the "
                "point estimate counts an empty union as 1): such resamples are left out of the "
                "interval and their number is given next to it, and there is no interval when they "
                "exceed 2.5 % of the resamples (an end would then be set by that convention, not "
                "by the data)."
            ]
            if r.get("bootstrap")
            else []
        ),
        f"- Stages this run: {', '.join(f'{k}={v}' for k, v in r['stages'].items())}.",
        f"- Wall time this run: {r['seconds_this_run']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def _curve_lines(r: dict[str, Any]) -> list[str]:
    """results.md section: the learning-curve figure and one line per model with its last change."""
    rows = [row for row in r["table1"] + r["table2"] if len(row.get("curve") or []) > 1]
    if not rows or not r.get("curves_file"):
        return []
    steps = [int(p["step"]) for p in rows[0]["curve"]]
    lines = [
        "",
        "## Downstream learning curves",
        "",
        f"![test IoU during training]({r['curves_file']})",
        "",
        "Each downstream model scored on the test split at evenly spaced optimiser steps "
        f"(inference only). 'converged' = test IoU changed by at most {CONVERGED_GAIN:.2f} over "
        "the last interval.",
        "",
        "| setting | " + " | ".join(f"step {s}" for s in steps) + " | last change | status |",
        "|---|" + "---:|" * len(steps) + "---:|---|",
    ]
    for row in rows:
        name = row["title"] if "labels" not in row else f"{row['labels']}: {row['title']}"
        by_step = {int(p["step"]): p.get("iou") for p in row["curve"]}
        gain, status = convergence(row["curve"])
        lines.append(
            f"| {name} | "
            + " | ".join(_f(by_step.get(s)) for s in steps)
            + f" | {'–' if gain is None else f'{gain:+.3f}'} | {status} |"
        )
    return lines
