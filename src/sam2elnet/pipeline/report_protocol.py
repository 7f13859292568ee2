"""The report of the paper's protocol (``elnet experiment`` and ``elnet demo`` share it).

Turns the protocol's results dict (results.json: ``table1``, ``table2``, ``autolabels``,
``split``) into the tables of ``report.html`` and hands them, with the auto-label items, to
:func:`sam2elnet.pipeline.report.write_report`: table 1 (automatic annotation) and table 2
(label enhancement) with test IoU and its bootstrap interval, their per-sensor tables, the road
measures of road data (:func:`~sam2elnet.pipeline.experiment_stats.road_rows`), and the warnings
about degenerate downstream models (:func:`degenerate_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.pipeline.experiment_config import NO_ENHANCEMENT_DOWNSTREAM, table2_downstream
from sam2elnet.pipeline.experiment_stats import ci_text, road_note, road_rows, sensor_tables
from sam2elnet.pipeline.report import write_report
from sam2elnet.pipeline.report_items import ReportItem
from sam2elnet.pipeline.report_tables import as_float
from sam2elnet.utils.advice import plural

__all__ = ["degenerate_rows", "unusable_lines", "write_protocol_report"]

_STAGE_LABELS = {
    "annotate": "the auto-labels of the unlabelled images",
    "elnettest": "SAM2-ELNet's labels of the test images, row (f)",
}


def _has(v: Any) -> bool:
    return as_float(v) is not None


def degenerate_rows(rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """Per downstream-result row: "all foreground" / "no foreground" when the model is degenerate.

    A row with recall >= 0.999 and background IoU <= 0.001 (``iou_bg`` given, or ``2 * miou -
    iou``) labelled (almost) every test pixel foreground; a row with recall <= 0.001 found none of
    the foreground. Rows without these scores get None.
    """
    out: list[str | None] = []
    for r in rows:
        rec, iou = as_float(r.get("recall")), as_float(r.get("iou"))
        bg = as_float(r.get("iou_bg"))
        if bg is None and iou is not None and as_float(r.get("miou")) is not None:
            bg = 2.0 * float(r["miou"]) - iou
        if rec is not None and rec >= 0.999 and bg is not None and bg <= 1e-3:
            out.append("all foreground")
        elif rec is not None and rec <= 1e-3:
            out.append("no foreground")
        else:
            out.append(None)
    return out


def unusable_lines(results: Mapping[str, Any], table: int) -> list[str]:
    """One sentence per stage of table ``table`` whose every label was unusable whatever the
    filter (results.json ``unusable``: stage -> what happened; table 1: ``annotate``,
    ``elnettest``; table 2: ``enhance_<source>``), naming the stage, its labels and the reason;
    ``[]`` when there is none (or results made before ``unusable`` was recorded). Those labels
    stay in the tables, scored as they are; results.md and report.html show the same words."""
    out = []
    for stage, why in (results.get("unusable") or {}).items():
        if stage.startswith("enhance_"):
            if table != 2:
                continue
            src = stage.removeprefix("enhance_")
            what = f"SAM2-ELNet's enhancement of the pool's {src} labels"
        elif table == 1 and stage in _STAGE_LABELS:
            what = _STAGE_LABELS[stage]
        else:
            continue
        out.append(f"Nothing usable in stage {stage} ({what}): {why}; scored as they are")
    return out


def write_protocol_report(
    path: str | Path,
    results: Mapping[str, Any],
    items: Sequence[ReportItem],
    *,
    title: str,
    notes: Sequence[str] = (),
    figure: Any = None,
    max_items: int = 60,
    order: str = "worst",
    curves: Any = None,
) -> Path:
    """The report of the paper's protocol (``elnet experiment`` and ``elnet demo`` share it).

    ``results`` is the experiment's results dict (``table1``, ``table2``, ``autolabels``,
    ``split``); ``items`` the auto-labels (and enhancement examples) next to their truth;
    ``figure`` the downstream-IoU / labelling-cost plot (PNG bytes or a Figure), ``curves`` the
    downstream learning curves (curves.png bytes, or None). The verdict lines (``verdict``: (c)
    and (d) vs (a), the label cost saving) are notes, as in results.md. Downstream rows
    whose model predicted (almost) everything foreground, or nothing, are highlighted, and a
    warning says so when every row is: the comparison then measures nothing. A table 2 of label
    scores only (``enhancement_downstream=False``) is shown without the downstream columns, with
    a note saying so; a label source table 2 left out (``table2_absent``) gets a note saying why.
    Test IoU is followed by its bootstrap 95 % interval (``iou_ci``, the text results.md shows).
    With more than one sensor (``groups``), table 1 per sensor follows table 1, and table 2 per
    sensor (test scores, when its downstream models were trained) and its label IoU per sensor
    follow table 2, as in results.md
    (:func:`~sam2elnet.pipeline.experiment_stats.sensor_tables`). On road data (rows carrying the
    road measures) "Table 1: road measures" and "Table 2: road measures" follow their table
    (:func:`~sam2elnet.pipeline.experiment_stats.road_rows`: IoU, F1, road correctness,
    completeness, quality and connectivity, each 0-1), with a note saying what they measure.
    A stage whose every label was unusable whatever the filter (``unusable``) gets one warning
    naming it and the reason (:func:`unusable_lines`).
    """
    table1 = list(results.get("table1") or [])
    table2 = list(results.get("table2") or [])
    cols = ("title", "hand_labels", "train_images", "iou", "iou_ci", "f1", "precision", "recall")
    t1 = [{k: ci_text(row) if k == "iou_ci" else row.get(k) for k in cols} for row in table1]

    def label_ci(row: Mapping[str, Any], part: str) -> str:
        return ci_text((row.get("label_ci") or {}).get(part) or {})

    t2 = [
        {
            "labels": row.get("labels"),
            **{k: ci_text(row) if k == "iou_ci" else row.get(k) for k in cols},
            "label_iou_all": row.get("label_iou_all"),
            "label_iou_all_ci": label_ci(row, "all"),
        }
        for row in table2
    ]
    notes = list(notes) + [f"Verdict: {line}" for line in results.get("verdict") or []]
    if table2 and not table2_downstream(results):  # label scores only: no downstream columns
        t2 = [
            {
                **{k: row.get(k) for k in ("labels", "title", "hand_labels", "label_iou_all")},
                "label_iou_all_ci": label_ci(row, "all"),
                "label_iou_unlabelled": row.get("label_iou_unlabelled"),
                "label_iou_unlabelled_ci": label_ci(row, "unlabelled"),
            }
            for row in table2
        ]
        notes.append(f"{NO_ENHANCEMENT_DOWNSTREAM[0].upper()}{NO_ENHANCEMENT_DOWNSTREAM[1:]}.")
    notes += [f"{why}." for why in (results.get("table2_absent") or {}).values()]
    sensor = sensor_tables(dict(results))
    roads1, roads2 = road_rows(table1), road_rows(table2, ("labels", "title"))
    if roads1 or roads2:
        notes.append(f"{road_note(results)}.")
    f1, f2 = degenerate_rows(table1), degenerate_rows(table2)
    flags = f1 + f2
    warns = []
    judged = [f for f, row in zip(flags, table1 + table2, strict=True) if _has(row.get("recall"))]
    if judged and all(f is not None for f in judged):
        kinds = sorted({f for f in judged if f})
        what = {
            "all foreground": "labelled (almost) every test pixel as foreground (recall 1, "
            "background IoU 0)",
            "no foreground": "found no foreground at all (recall 0)",
        }
        warns.append(
            "Every downstream model is degenerate: it "
            + " or ".join(what[k] for k in kinds)
            + ". The tables below compare nothing; train the downstream models longer "
            "(--downstream-epochs / --downstream-steps) or on more images before reading them."
        )
    elif any(flags):
        n = sum(1 for f in flags if f)
        it, its = ("it", "its") if n == 1 else ("they", "their")
        warns.append(
            f"{plural(n, 'downstream model is', 'downstream models are')} degenerate "
            f"(highlighted {'row' if n == 1 else 'rows'}): {it} predicted almost every pixel as "
            f"foreground, or none; {its} scores say nothing about the labels."
        )
    warns += [f"{line}." for t in (1, 2) for line in unusable_lines(results, t)]
    auto = {k: v for k, v in (results.get("autolabels") or {}).items() if k != "filter"}  # as words
    facts = {}
    if _has(auto.get("tau")):
        facts["tau"] = float(auto["tau"])
    if _has(auto.get("target_precision")):
        facts["target_precision"] = float(auto["target_precision"])
    thr = auto.get("threshold")
    return write_report(
        path,
        items,
        title=title,
        metrics={"auto-labels": auto, "split": dict(results.get("split") or {})},
        quality_threshold=as_float(thr),
        filter_applied=_has(thr),
        notes=notes,
        warnings=warns,
        max_items=max_items,
        order=order,
        figures={
            **({"downstream IoU and labelling cost": figure} if figure is not None else {}),
            **({"downstream learning curves (test IoU vs step)": curves} if curves else {}),
        }
        or None,
        tables={
            "Table 1: automatic annotation": t1,
            **({"Table 1: road measures": roads1} if roads1 else {}),
            **{k: v for k, v in sensor.items() if k.startswith("Table 1")},
            "Table 2: label enhancement": t2,
            **({"Table 2: road measures": roads2} if roads2 else {}),
            **{k: v for k, v in sensor.items() if k.startswith("Table 2")},
        },
        table_flags={"Table 1: automatic annotation": f1, "Table 2: label enhancement": f2},
        **facts,
    )
