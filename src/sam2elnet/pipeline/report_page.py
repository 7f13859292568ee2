"""The report page: :class:`ReportItem` objects and metric dicts -> the HTML of ``report.html``.

This module builds the template context (summary, tables with readable names, glossary, plots,
footprint map, cards) and renders ``templates/report.html.j2`` with jinja2 (autoescaped). The
items and their masks are :mod:`sam2elnet.pipeline.report_items`, their rows
:mod:`sam2elnet.pipeline.report_rows` and cards :mod:`sam2elnet.pipeline.report_cards`, the tables
:mod:`sam2elnet.pipeline.report_tables`. :mod:`sam2elnet.pipeline.report_figures` draws the pictures;
:mod:`sam2elnet.pipeline.report` writes the file and builds the reports of runs, evaluations and
the protocol.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet import __version__
from sam2elnet.pipeline import report_figures as figs
from sam2elnet.pipeline import report_plots as charts
from sam2elnet.pipeline.glossary import GLOSSARY
from sam2elnet.pipeline.report_cards import add_card
from sam2elnet.pipeline.report_figures import COLORS
from sam2elnet.pipeline.report_items import ReportItem, read_masks, share_raster_labels
from sam2elnet.pipeline.report_map import footprint_map
from sam2elnet.pipeline.report_rows import object_counts, order_items, prepare_item
from sam2elnet.pipeline.report_tables import (
    as_float,
    fmt_value,
    is_finite,
    kv_table,
    rows_table,
    tables_of,
    used_keys,
)
from sam2elnet.pipeline.report_vector import share_vector_labels
from sam2elnet.utils.advice import plural

__all__ = ["DEFAULT_TAU", "ReportItem", "as_float", "object_counts", "render_report"]

#: Default "good label" IoU of the quality filter curves (the evaluator's default tau).
DEFAULT_TAU = 0.7


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sam2elnet.pipeline", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt_value
    env.filters["fmt3"] = lambda v: "—" if v is None else f"{float(v):.3f}"
    return env


def _figures(figures: Sequence[Any] | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    if isinstance(figures, Mapping):
        return [(str(k), v) for k, v in figures.items()]
    return [("", f) for f in (figures or [])]


def _shown_before_reading(
    items: Sequence[ReportItem], order: str, max_items: int
) -> set[int] | None:
    """The positions of the items whose cards the report shows, when the order
    (:func:`~sam2elnet.pipeline.report_rows.order_items`) does not depend on the masks: every
    item shown, by name, by the given predicted IoUs, or by true IoUs all given (an evaluation's).
    None when it does (true IoUs computed from the masks). Raises ValueError for an unknown
    ``order``."""
    n = max(0, max_items)
    keys = [
        {
            "idx": k,
            "name": it.name,
            "predicted": as_float(it.predicted_iou),
            "true": as_float(it.true_iou),
        }
        for k, it in enumerate(items)
    ]
    ordered = order_items(keys, order)[0]
    if len(items) <= n:
        return set(range(len(items)))
    by_true = order != "name" and all(v["predicted"] is None for v in keys)
    if by_true and any(v["true"] is None for v in keys):
        return None
    return {v["idx"] for v in ordered[:n]}


def render_report(
    items: Sequence[ReportItem],
    *,
    title: str,
    metrics: Mapping[str, Any] | None = None,
    quality_threshold: float | None = None,
    notes: str | Sequence[str] | None = None,
    max_items: int = 200,
    order: str = "worst",
    figures: Sequence[Any] | Mapping[str, Any] | None = None,
    tables: Mapping[str, Any] | None = None,
    thumb_px: int = 160,
    full_px: int = 512,
    filter_applied: bool | None = None,
    filter_possible: bool = True,
    tau: float | None = None,
    target_precision: float | None = None,
    warnings: Sequence[str] = (),
    table_flags: Mapping[str, Sequence[str | None]] | None = None,
    next_steps: Sequence[str] = (),
    page_dir: str | Path | None = None,
    coarse_layer: str | None = None,
    coarse_images: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The report as an HTML string.

    Args:
        items: One :class:`ReportItem` per image.
        title, metrics, quality_threshold, notes, max_items, order, figures, tables, thumb_px,
            full_px, filter_applied, filter_possible, tau, target_precision, warnings,
            table_flags, next_steps, coarse_layer, coarse_images: As the keyword arguments of
            :func:`sam2elnet.pipeline.report.write_report`.
        page_dir: The folder the page will be written to: links to files inside it are relative
            to the page (they survive moving or zipping the folder), links to files elsewhere
            absolute ``file://`` URIs; None: every link absolute.

    Returns:
        The self-contained HTML page (images as ``data:`` URIs, no external links; the
        per-image file links point at the files, not into the page).

    Raises:
        ValueError: an unknown ``order``.
    """
    # one vector label file for many images: read once, and placed as the run placed it (the
    # layer it read, the images it served the file to: summary.json's coarse_layer / _images)
    items = share_vector_labels(items, coarse_layer, coarse_images)
    # ... and one raster for many (enhance --labels region.tif): placed as a regional label
    items = share_raster_labels(items)
    if filter_applied is None:
        filter_applied = is_finite(quality_threshold) or any(i.kept is False for i in items)
    # each item's masks are read once, for its row and, when it is shown, its card, which is
    # drawn then (one item's masks in memory at a time) where the order is known beforehand
    early = _shown_before_reading(items, order, max_items)
    views = []
    styles: list[tuple[str, str]] = []
    for k, it in enumerate(items):
        masks = read_masks(it)
        views.append(prepare_item(it, k, filter_applied, masks, page_dir))
        if early is not None and k in early:
            add_card(views[-1], it, thumb_px, full_px, styles, masks)
    ordered, order_text = order_items(views, order)
    shown = ordered[: max(0, max_items)]
    for v in shown:
        if "card" not in v:  # sorted by IoUs read from the masks: read again for the card
            add_card(v, items[v["idx"]], thumb_px, full_px, styles)
    rank = {f"im{v['idx']}": n for n, v in enumerate(shown)}
    styles = sorted((s for s in styles if s[0] in rank), key=lambda s: rank[s[0]])
    for v in views:
        if f"im{v['idx']}" not in rank:
            v["card"] = None

    statuses = [v["status"] for v in views]
    n_kept, n_rej = statuses.count("kept"), statuses.count("rejected")
    empty = [v for v in views if v["flag"] in ("false alarm", "correct empty")]
    alarms = [v for v in views if v["flag"] == "false alarm"]
    summary: dict[str, Any] = {"items": len(items)}
    if filter_applied:
        summary["kept"], summary["rejected"] = n_kept, n_rej
        if n_kept + n_rej < len(items):  # e.g. the demo's enhanced labels beside its auto-labels
            summary["not_filtered"] = len(items) - n_kept - n_rej  # so the counts add up
    if is_finite(quality_threshold):
        summary["threshold"] = float(quality_threshold)  # type: ignore[arg-type]
    q = [v["predicted"] for v in views if v["predicted"] is not None]
    if q:
        summary["mean_predicted_iou"] = float(np.mean(q))
    t = [v["true"] for v in views if v["true"] is not None]
    if t:
        summary["mean_image_iou"] = float(np.mean(t))
    if empty:
        summary["empty_truth"] = len(empty)
        summary["false_alarms"] = len(alarms)
    counted = [v for v in views if v["objects"] is not None]
    if counted:
        summary["true_objects"] = sum(v["objects"] for v in counted)
        summary["missed_objects"] = sum(v["missed"] for v in counted)
        summary["extra_objects"] = sum(v["extra_objects"] for v in counted)

    page_warnings = list(warnings)
    # the alert names the options of annotate / enhance: only where one of them made the labels
    if filter_possible and not filter_applied and any(s == "unfiltered" for s in statuses):
        page_warnings.append(
            "No quality filter ran (no --min-quality / --target-precision): every label was kept "
            "as it is. Status 'unfiltered' means no decision was made; sort the table by predicted "
            "IoU to find the labels to review first."
        )
    info: list[str] = []
    if alarms:
        one = len(alarms) == 1
        info.append(
            f"{len(alarms)} of {plural(len(empty), 'image')} with empty ground truth got a "
            f"non-empty label: {'a false alarm. Its' if one else 'false alarms. Their'} IoU is 0 "
            "by definition (nothing to overlap), which pulls mean IoUs down; "
            f"{'it is' if one else 'they are'} marked 'false alarm' in the table and as "
            f"{'an orange cross' if one else 'orange crosses'} in the scatter plot."
        )

    tbls = tables_of("summary", summary)
    for k, v in (metrics or {}).items():
        if isinstance(v, (Mapping, list, tuple)):
            tbls += tables_of(str(k), v)
    scalars = {
        k: v for k, v in (metrics or {}).items() if not isinstance(v, (Mapping, list, tuple))
    }
    if scalars:
        tbls.insert(1, kv_table("metrics", scalars))
    caller_tables: list[dict[str, Any]] = []
    for k, v in (tables or {}).items():
        flags = (table_flags or {}).get(str(k))
        if isinstance(v, (list, tuple)) and flags is not None:
            caller_tables.append(rows_table(str(k), v, flags))
        else:
            caller_tables.extend(tables_of(str(k), v))

    # plots
    plots: list[dict[str, str]] = []
    fig = charts.quality_histogram([v["predicted"] for v in views], [v["true"] for v in views],
                                 as_float(quality_threshold))  # fmt: skip
    if fig is not None:
        plots.append({"caption": "", "src": figs.figure_data_uri(fig)})
    both = [v for v in views if v["predicted"] is not None and v["true"] is not None]
    if len(both) >= 2:
        fig = charts.quality_scatter(
            [v["predicted"] for v in both],
            [v["true"] for v in both],
            [v["status"] or "not filtered" for v in both],
            [v["flag"] == "false alarm" for v in both],
            as_float(quality_threshold),
        )
        plots.append({"caption": "", "src": figs.figure_data_uri(fig)})
    used_tau = float(tau) if is_finite(tau) else DEFAULT_TAU
    # the filter's own labels (those with a decision) when there are any, else every label
    judged = [v for v in both if v["status"] is not None] or both
    if len(judged) >= 3:
        curves = charts.filter_curves(
            [v["predicted"] for v in judged], [v["true"] for v in judged], used_tau
        )
        if curves.n_good:
            fig = charts.threshold_curves(
                curves, as_float(quality_threshold), as_float(target_precision)
            )
            plots.append(
                {
                    "caption": "Quality filter: precision and recall of 'keep labels with "
                    f"predicted IoU >= t' on the {len(judged)} labels with known truth (good "
                    f"label: true IoU >= {used_tau:.2f}).",
                    "src": figs.figure_data_uri(fig),
                }
            )
        else:
            info.append(
                f"No quality-filter curves: none of the {len(judged)} labels with known truth "
                f"reaches the good-label IoU τ = {used_tau:.2f}, so every threshold has "
                "precision 0."
            )
    for cap, f in _figures(figures):
        plots.append({"caption": cap, "src": figs.figure_data_uri(f)})

    geo = footprint_map([v["footprint"] for v in views], [v["predicted"] for v in views])
    for v in views:
        v.pop("footprint", None)
    for box in (geo or {}).get("boxes", []):
        box["name"], box["true"] = views[box["index"]]["name"], views[box["index"]]["true"]
    cardw = max([v["card"]["panels"] * (v["card"]["tw"] + 6) + 18 for v in shown] or [300])

    glossary_keys = used_keys(tbls + caller_tables) | {"predicted_iou", "true_iou"}
    if any(v["input"] is not None for v in views):
        glossary_keys.add("input_iou")
    columns = [
        k for k in ("boundary_f1", "boundary_hd95_px") if any(v[k] is not None for v in views)
    ]
    glossary_keys |= set(columns)
    if empty:
        glossary_keys |= {"false_alarms"}
    glossary = sorted(
        (
            {"key": k, "label": GLOSSARY[k][0], "definition": GLOSSARY[k][1]}
            for k in glossary_keys
            if k in GLOSSARY
        ),
        key=lambda g: g["label"].lower(),
    )
    note_list = [notes] if isinstance(notes, str) else list(notes or [])

    ctx = {
        "title": title,
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "warnings": page_warnings,
        "info": info,
        "notes": note_list,
        "tables": tbls,
        "caller_tables": caller_tables,
        "plots": plots,
        "geo": geo,
        "items": ordered,
        "shown": shown,
        "n_items": len(items),
        "order_text": order_text,
        "styles": styles,
        "cardw": cardw,
        "glossary": glossary,
        "colors": {k: "rgb({},{},{})".format(*c) for k, c in COLORS.items()},
        "has_input": any(v["input"] is not None for v in views),
        "has_true": any(v["true"] is not None for v in views),
        "has_roads": any(v["road_quality"] is not None for v in views),
        "score_columns": [(k, *GLOSSARY[k]) for k in columns],  # (key, label, definition)
        "has_truth": any(v["truth_px"] is not None for v in views),
        "has_objects": bool(counted),
        "has_status": any(v["status"] is not None for v in views),
        "has_flags": any(v["flag"] for v in views),
        "filter_applied": filter_applied,
        "next_steps": list(next_steps),
    }
    return _environment().get_template("report.html.j2").render(**ctx)
