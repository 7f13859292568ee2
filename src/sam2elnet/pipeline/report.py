"""Self-contained HTML report a reviewer works from: per-image table, overlays, viewer, plots, map.

One ``report.html`` file carries everything (images as base64 ``data:`` URIs, inline CSS and a
small inline script, no external links), so it can be mailed, attached to an issue or opened
offline. The page is the jinja2 template ``templates/report.html.j2`` (autoescaped), rendered by
:mod:`sam2elnet.pipeline.report_page` from :class:`ReportItem` objects and metric dicts
(:mod:`~sam2elnet.pipeline.report_items`, :mod:`~sam2elnet.pipeline.report_rows`,
:mod:`~sam2elnet.pipeline.report_cards`, :mod:`~sam2elnet.pipeline.report_tables`);
:mod:`~sam2elnet.pipeline.report_figures`, :mod:`~sam2elnet.pipeline.report_plots` and
:mod:`~sam2elnet.pipeline.report_map` draw the pictures. This module writes the file and
builds the reports of ``annotate`` / ``enhance`` runs and of ``evaluate``; the protocol's report
(``experiment`` and ``demo``) is :mod:`sam2elnet.pipeline.report_protocol`.

What the page holds (see docs/evaluation.md, "Reading the report"):

* warnings (degenerate downstream models, no filter ran, an enhance run's coarse labels that
  miss or only partly cover their images) and notes;
* the summary and metric tables with readable names, and a glossary of every key shown;
* plots: quality histogram, predicted-vs-true scatter (false alarms on empty truth marked),
  precision/recall of the quality filter vs its threshold, and the caller's figures;
* a map of image footprints coloured by predicted IoU when the images are georeferenced;
* a sortable, filterable per-image table (file, status, predicted/true/input IoU, areas, flags,
  paths of the label and image to open for fixing);
* one card per image (worst first) and a full-size viewer with image / input label / label /
  truth / errors / probability layers toggled.

Size: each shown item's image is embedded once (JPEG, up to ``full_px`` pixels on its long
side) as a CSS class shared by all its panels and the viewer; mask layers are palette PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.grid_cover import PARTIAL_COVER_KIND
from sam2elnet.data.naming import IMAGE_TAGS, MASK_SUFFIXES, mask_key
from sam2elnet.data.runfolder import (
    EVALUATION_TITLE,
    QUALITY_CSV,
    REPORT_HTML,
    SKIPPED_CSV,
    parse_bool,
    read_csv_rows,
    read_quality_table,
    read_summary,
)
from sam2elnet.data.vector_shared import SHARED_EMPTY_KIND
from sam2elnet.errors import UserError
from sam2elnet.option_checks import option_default
from sam2elnet.options import EvaluateOptions
from sam2elnet.pipeline.glossary import ROAD_TABLE_HEADER, road_buffer_options_words
from sam2elnet.pipeline.report_figures import COLORS, display_rgb, overlay_rgb
from sam2elnet.pipeline.report_items import ReportItem, evaluation_items
from sam2elnet.pipeline.report_page import render_report
from sam2elnet.pipeline.report_rows import object_counts
from sam2elnet.pipeline.report_tables import as_float
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_text_atomic
from sam2elnet.utils.run_warnings import repeated_notes

__all__ = [
    "ReportItem",
    "render_report",
    "write_report",
    "write_run_report",
    "write_evaluation_report",
    "evaluation_items",
    "object_counts",
    "overlay_rgb",
    "display_rgb",
    "COLORS",
]


def _has(v: Any) -> bool:
    return as_float(v) is not None


def write_report(path: str | Path, items: Sequence[ReportItem], **kwargs: Any) -> Path:
    """Write a self-contained ``report.html`` and return its path (atomic write).

    Keyword arguments (all optional except ``title``):

    * ``title`` (str): page title.
    * ``metrics``: dict of scalars (one table, keys shown with readable names) or of named dicts /
      lists of row dicts (one table each).
    * ``quality_threshold`` (float): acceptance threshold, drawn in the plots.
    * ``filter_applied`` (bool): whether a quality filter decided ``kept``; default: a threshold
      is given or some item was rejected. Without a filter, cards say "unfiltered", never "kept".
    * ``filter_possible`` (bool, default True): whether the labels were made by a command with a
      quality filter (``elnet annotate`` / ``enhance``). False (``elnet cv``, whose test labels
      are never filtered): no alert that "no quality filter ran" and no advice to rerun with one.
    * ``tau`` (float, default 0.7) and ``target_precision``: the "good label" IoU and the wanted
      precision for the precision/recall-vs-threshold plot.
    * ``notes`` (str or list), ``warnings`` (list of str, shown as alerts), ``next_steps``.
    * ``max_items`` (200): cards drawn (the per-image table lists every item);
      ``order``: ``"worst"`` (default, lowest predicted IoU first), ``"best"`` or ``"name"``.
    * ``figures``: extra matplotlib figures or PNG bytes (list, or dict caption -> figure);
      ``tables``: title -> dict or list of row dicts; ``table_flags``: title -> one note per row
      (rows with a note are highlighted).
    * ``thumb_px`` (160) card size, ``full_px`` (512) long side of the embedded image and layers.
    * ``coarse_layer`` / ``coarse_images``: the layer an ``elnet enhance`` run read from its
      vector coarse labels and, per vector file, the stems of the images it served it to (its
      ``summary.json`` entries of those names): the cards draw each item's input label as the
      run placed it, also when only some of those images are items (one card); without them the
      file's default layer, placed with the items' images
      (:func:`~sam2elnet.pipeline.report_vector.share_vector_labels`).

    The per-image table links each item's files: relative to the page for files in ``path``'s
    folder or below it (a run folder's labels: the links survive moving, zipping or sharing the
    folder), absolute ``file://`` URIs for files elsewhere (input images outside the folder).

    Unreadable images or masks are logged and named on their card instead of failing the report.

    Raises:
        ValueError: an unknown ``order``.
        UserError: ``path`` is a folder or lies under a file (nothing is written).
        DataError: a vector coarse label file (``coarse_layer`` / an item's vector ``coarse``)
            that cannot be read or lacks the layer.
    """
    page = Path(path)
    return write_text_atomic(page, render_report(items, page_dir=page.parent, **kwargs))


# --------------------------------------------------------------------------------------------
# reports of runs and evaluations
# --------------------------------------------------------------------------------------------


def _filter_facts(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """tau / target precision recorded in an annotate/enhance ``summary.json`` (``filter`` entry)."""
    out: dict[str, Any] = {}
    flt = (summary or {}).get("filter") or {}
    tp = flt.get("target_precision") if isinstance(flt, Mapping) else None
    if isinstance(tp, Mapping):
        if _has(tp.get("tau")):
            out["tau"] = float(tp["tau"])
        if _has(tp.get("target_precision")):
            out["target_precision"] = float(tp["target_precision"])
    return out


def _next_steps(run: Path | None, filtered: bool, filter_possible: bool = True) -> list[str]:
    steps = [
        "Sort the per-image table by predicted IoU (lowest first) and open the worst labels "
        "from their paths in QGIS or your labelling tool.",
    ]
    if not filtered and filter_possible:
        steps.append(
            "Choose a threshold (the quality-filter plot, when drawn, gives its precision and "
            "recall) and rerun with --min-quality Q (or --target-precision P with a fitted "
            "evaluator)."
        )
    if run is not None:
        steps.append(
            "Review them in Label Studio, least trusted first (kept and rejected labels; "
            f"--labels {run / 'rejected'} for the rejected ones only): "
            f"elnet export --labels {run} --format label-studio --out {run / 'ls' / 'tasks.json'}; "
            "bring the corrections back with elnet import EXPORT.json --from label-studio "
            "--out MASKS."
        )
        steps.append(
            f"Or in CVAT: elnet export --labels {run} --format coco --coco-rle "
            f"--out {run / 'cvat' / 'coco.json'}, upload it to the task as COCO 1.0; after "
            "review export the task (CVAT for images 1.1, or COCO 1.0) and elnet import "
            "TASK.zip --from cvat "
            "--images IMAGES --out MASKS."
        )
        steps.append(
            f"Or in QGIS: elnet export --labels {run} --out {run / 'qgis' / 'labels.gpkg'} "
            "--pixel-coords qgis (polygons over images without a CRS, where QGIS shows them); "
            f"edit and save the layer, then elnet import {run / 'qgis' / 'labels.gpkg'} "
            "--from vector --images IMAGES --out MASKS (docs/review.md)."
        )
        steps.append(
            f"Score the labels against truth: elnet evaluate --pred {run} --truth MASKS --report"
        )
    return steps


def write_run_report(
    run_dir: str | Path,
    *,
    kind: str | None = None,
    title: str | None = None,
    summary: Mapping[str, Any] | None = None,
    quality_csv: str | Path | None = None,
    truth_dir: str | Path | None = None,
    path: str | Path | None = None,
    quality_threshold: float | None = None,
    max_items: int = 200,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """``report.html`` for an ``elnet annotate`` / ``elnet enhance`` output folder.

    Reads ``run_dir/quality.csv`` (columns ``image``, ``label`` relative to ``run_dir``,
    ``predicted_iou``, ``kept``, optional ``coarse`` = input label path and ``prob`` = probability
    map, + features) and ``summary.json`` (metrics table; ``threshold``: the filter, None = no filter
    ran; ``filter.target_precision.tau``) unless ``summary`` is given. With ``truth_dir`` each label
    is also scored against its ground truth (true IoU, input IoU for enhance runs), so the
    predicted-vs-true and filter plots appear. Writes ``run_dir/report.html`` unless ``path`` is
    given. ``rows`` (the quality.csv rows of a job still running, e.g.
    :attr:`sam2elnet.engine.folder_job.FolderResult.rows`) replace reading the file.

    Raises:
        UserError: neither ``rows`` nor ``quality.csv`` (or ``quality_csv``) is there, or the
            report path is a folder.
        DataError: ``quality.csv`` / ``skipped.csv`` cannot be read or lacks its name and score
            columns; what :func:`write_report` raises.
    """
    run = Path(run_dir)
    qpath = Path(quality_csv) if quality_csv is not None else run / QUALITY_CSV
    if rows is None:
        if not qpath.is_file():
            raise UserError(
                "no quality.csv in the run folder; is it an annotate/enhance output?", qpath
            )
        rows = read_quality_table(qpath)
    if summary is None:
        summary = read_summary(run)
    if quality_threshold is None and summary is not None and _has(summary.get("threshold")):
        quality_threshold = float(summary["threshold"])

    truths: dict[str, Path] = {}
    if truth_dir is not None:
        for f in sorted(Path(truth_dir).iterdir()):
            if f.is_file() and f.suffix.lower() in MASK_SUFFIXES:
                if not f.stem.lower().endswith(IMAGE_TAGS):
                    truths.setdefault(mask_key(f.name), f)

    def existing(p: Any) -> Path | None:
        if p is None or str(p) == "":
            return None
        for cand in (Path(str(p)), run / str(p)):
            if cand.is_file():
                return cand
        return None

    items: list[ReportItem] = []
    for row in rows:
        name = Path(str(row.get("label") or row.get("image") or "?")).stem
        truth = truths.get(mask_key(name)) if truths else None
        extra = {
            k: row[k]
            for k in ("quality_flag", "added_px", "removed_px")
            if row.get(k) not in (None, "")
        }
        items.append(
            ReportItem(
                name=name,
                image=existing(row.get("image")),
                input_label=existing(row.get("coarse")),
                output=existing(row.get("label")),
                truth=truth,
                probability=existing(row.get("prob")),
                predicted_iou=as_float(row.get("predicted_iou")),
                kept=row["kept"]
                if isinstance(row.get("kept"), bool)
                else parse_bool(row.get("kept")),
                extra=extra,
            )
        )
    metrics = None
    if summary is not None:
        metrics = {k: v for k, v in summary.items() if not isinstance(v, (list, tuple, Mapping))}
    label_kind = kind or (summary or {}).get("task") or "run"
    filtered = quality_threshold is not None or any(i.kept is False for i in items)
    tables, skipped_warnings = _run_skipped_table(run, len(items))
    warnings = [*_coverage_warnings(summary), *skipped_warnings]
    return write_report(
        path if path is not None else run / REPORT_HTML,
        items,
        title=title or f"sam2elnet {label_kind}: {run.name}",
        metrics=metrics,
        quality_threshold=quality_threshold,
        filter_applied=filtered,
        notes=[f"run folder: {run}", f"quality table: {qpath}"],
        max_items=max_items,
        next_steps=_next_steps(run, filtered),
        tables=tables,
        warnings=warnings,
        # vector coarse labels from the layer enhance read (--layer), placed with its images
        coarse_layer=(summary or {}).get("coarse_layer"),
        coarse_images=(summary or {}).get("coarse_images"),
        **_filter_facts(summary),
    )


_COVERAGE_KINDS: tuple[str, ...] = (SHARED_EMPTY_KIND, PARTIAL_COVER_KIND)
"""The run warnings (:func:`~sam2elnet.utils.run_warnings.warn_once` kinds) of coarse labels that
miss an image (one file for all images: :func:`~sam2elnet.data.vector_shared.warn_no_features`)
or cover only part of it (:func:`~sam2elnet.data.grid_cover.partial_cover_note`): a card's area
outside the label is no object the label drew, so the run report shows them."""


def _coverage_warnings(summary: Mapping[str, Any] | None) -> list[str]:
    """The coverage warnings of an ``annotate`` / ``enhance`` run, for its report's alerts.

    Args:
        summary: the run's ``summary.json`` (or the job's summary), whose ``warnings`` entry is
            :meth:`~sam2elnet.utils.run_warnings.RunWarnings.record`: ``{"warning": kind,
            "count": n, "first": text, ["sample": names]}`` per kind.

    Returns:
        Per kind of :data:`_COVERAGE_KINDS` the run met, in the run's order: the warning it
        printed and, for a kind met more than once, its closing note (``the warning above (...)
        applied to 3 images in all (a.tif, c.tif, d.tif); only the first was shown``); ``[]``
        without such warnings (or a summary without ``warnings``).
    """
    out: list[str] = []
    for rec in (summary or {}).get("warnings") or ():
        if isinstance(rec, Mapping) and rec.get("warning") in _COVERAGE_KINDS and rec.get("first"):
            out += [str(rec["first"]), *repeated_notes([dict(rec)], "image")]
    return out


def _run_skipped_table(run: Path, n_done: int) -> tuple[dict[str, Any], list[str]]:
    """The images an annotate / enhance run skipped (``run/skipped.csv``: corrupt, all nodata,
    another band count ...), for its report: ``_skipped_table``'s ``skipped images`` table and
    warning line; nothing when none was skipped."""
    path = run / SKIPPED_CSV
    if not path.is_file():
        return {}, []
    rows = [
        {"file": r.get("image", ""), "reason": r.get("reason", "")} for r in read_csv_rows(path)
    ]
    return _skipped_table(rows, n_done, unit="image", outcome="no label was made")


def _run_summary(quality_csv: str | Path | None) -> dict[str, Any] | None:
    """The summary.json next to an annotate/enhance quality table, if any."""
    return read_summary(Path(quality_csv).parent) if quality_csv else None


def write_evaluation_report(
    result: Any,
    path: str | Path,
    *,
    images: str | Path | None = None,
    max_items: int = option_default(EvaluateOptions, "max_items"),
    threshold: float | None = None,
    filter_possible: bool = True,
) -> Path:
    """``report.html`` of an ``elnet evaluate`` result (:class:`sam2elnet.engine.eval_result.EvaluationResult`).

    Each image comes from ``images`` (a folder, matched by name; an image file for a one-pair
    result) else from the quality table's
    ``image`` column; the input label from its ``coarse`` column (enhance runs). ``threshold``
    defaults to the one the evaluated run recorded in its summary.json (None: no filter ran).
    Metric tables: the pixel-summed aggregate, the per-image means, the road measures and the
    label-quality statistics.
    ``filter_possible`` False: the labels come from a command without a quality filter (the
    test labels of ``elnet cv``), so the page does not say that none ran (:func:`write_report`).

    Raises:
        UserError, DataError: as :func:`write_report` (``path`` a folder, an unreadable vector
            label file).
    """
    run_summary = _run_summary(result.options.get("quality_csv"))
    if threshold is None and run_summary is not None and _has(run_summary.get("threshold")):
        threshold = float(run_summary["threshold"])
    items = evaluation_items(result, images)
    metrics: dict[str, Any] = _aggregate_tables(result.aggregate)
    if result.quality is not None:
        metrics["label quality"] = {
            k: v for k, v in result.quality.as_dict().items() if k != "source"
        }
    comparison = getattr(result, "comparison", None)
    if comparison is not None:
        metrics["compared with the baseline"] = {
            k: v for k, v in comparison.as_dict().items() if k != "worse_images"
        }
    for name, g in (getattr(result, "groups", None) or {}).items():
        metrics.update(_aggregate_tables(g["aggregate"], f"{name}: "))
        if g["comparison"] is not None:
            metrics[f"{name}: compared with the baseline"] = {
                k: v for k, v in g["comparison"].as_dict().items() if k != "worse_images"
            }
        if g["quality"] is not None:
            metrics[f"{name}: label quality"] = {
                k: v for k, v in g["quality"].as_dict().items() if k != "source"
            }
    notes = [f"predictions: {result.pred_dir}", f"ground truth: {result.truth_dir}"]
    o = result.options
    if o.get("roads") and (o.get("road_buffer_px") or o.get("road_buffer_px_range")) is not None:
        notes.append(road_buffer_options_words(o))
    if comparison is not None:
        notes.append(f"baseline: {result.options.get('baseline_dir')}")
        if comparison.worse_images:
            shown = ", ".join(comparison.worse_images[:20])
            more = " ..." if len(comparison.worse_images) > 20 else ""
            notes.append(
                f"worse than the baseline by more than {comparison.worse_by:g} IoU "
                f"({len(comparison.worse_images)}, worst first): {shown}{more}"
            )
    notes.extend(getattr(result, "notes", []))  # e.g. why HD95 is absent for some images
    if result.unmatched_pred or result.unmatched_truth:
        notes.append(
            f"unmatched files: {plural(len(result.unmatched_pred), 'prediction')}, "
            f"{len(result.unmatched_truth)} ground truth"
        )
    filtered = threshold is not None or any(r.kept is False for r in result.images)
    tables, warnings = _skipped_table(result.skipped, len(result.images))
    return write_report(
        path,
        items,
        title=EVALUATION_TITLE,
        metrics=metrics,
        quality_threshold=threshold,
        filter_applied=filtered,
        filter_possible=filter_possible,
        notes=notes,
        max_items=max_items,
        next_steps=_next_steps(None, filtered, filter_possible),
        tables=tables,
        warnings=warnings,
        # the enhance run's coarse labels from the layer it read, placed with its images
        coarse_layer=(run_summary or {}).get("coarse_layer"),
        coarse_images=(run_summary or {}).get("coarse_images"),
        **_filter_facts(run_summary),
    )


def _aggregate_tables(aggregate: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """An evaluation's aggregate (overall, or of one group with ``prefix`` ``"NAME: "``) as the
    report's tables, one kind of number each: ``aggregate (pixel-summed)`` (scores from counts
    summed over the images), ``aggregate (mean per image)`` (the ``mean_image_*`` keys, plain
    means over the images) and the road centre-line measures (``road_*``,
    :data:`~sam2elnet.pipeline.glossary.ROAD_TABLE_HEADER`), the last two only when present;
    ``total_*`` counts left out."""
    from sam2elnet.engine.eval_result import IMAGE_MEAN_PREFIX

    agg = {k: v for k, v in aggregate.items() if not k.startswith("total_")}
    road = {k: agg.pop(k) for k in [k for k in agg if k.startswith("road_")]}
    means = {k: agg.pop(k) for k in [k for k in agg if k.startswith(IMAGE_MEAN_PREFIX)]}
    tables: dict[str, dict[str, Any]] = {f"{prefix}aggregate (pixel-summed)": agg}
    if means:
        tables[f"{prefix}aggregate (mean per image)"] = means
    if road:  # centre-line measures, not pixel-summed: a table of their own
        tables[f"{prefix}{ROAD_TABLE_HEADER}"] = road
    return tables


def _skipped_table(
    skipped: Sequence[Mapping[str, str]],
    n_done: int,
    *,
    unit: str = "pair",
    outcome: str = "they could not be scored and are not in the numbers",
) -> tuple[dict[str, Any], list[str]]:
    """What a run skipped, for its report: a ``skipped {unit}s`` table (file, reason without the
    leading path) and one warning line ``"n of N {unit}s skipped: {outcome} (table ...)"``,
    ``N`` = ``n`` + ``n_done``; nothing when none was skipped. ``skipped``: ``file`` / ``reason``
    mappings; the defaults word an evaluation's skipped pairs."""
    from sam2elnet.utils.batch import short_reason

    if not skipped:
        return {}, []
    rows = [{"file": s["file"], "reason": short_reason(s["reason"], s["file"])} for s in skipped]
    n, table = len(rows), f"skipped {unit}s"
    said = f"{n} of {plural(n + n_done, unit)} skipped: {outcome} (table '{table}')"
    return {table: rows}, [said]
