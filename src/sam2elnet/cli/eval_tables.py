"""What ``elnet evaluate`` prints: the metric tables (overall, road measures, per group, against
the baseline, label quality) and the notes under them.

Rendering only: the numbers come from :func:`sam2elnet.engine.evaluate.evaluate_folders`
(an ``EvaluationResult``); the command itself (options, path checks, files written) is
:mod:`sam2elnet.cli.eval_cmd`. rich is imported where a table is made, so ``elnet --help`` does
not load it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sam2elnet.utils.advice import plural

# aggregate metrics printed, in order (names from sam2elnet.pipeline.glossary); missing keys skipped
_SHOWN = (
    "iou",
    "f1",
    "precision",
    "recall",
    "iou_bg",
    "miou",
    "accuracy",
    "kappa",
    "mean_image_iou",
    "boundary_f1",
    "boundary_precision",
    "boundary_recall",
    "mean_image_boundary_f1",
    "mean_image_boundary_hd95_px",
)
# the road measures (sam2elnet.engine.metrics.ROAD_KEYS) follow in a table of their own


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _columns(res: Any) -> list[tuple[str, Any]]:
    """(title, group dict or the overall result) for the per-group tables; overall last."""
    cols = [(name, g) for name, g in res.groups.items()]
    overall = {"aggregate": res.aggregate, "comparison": res.comparison, "quality": res.quality}
    return [*cols, ("all", overall)]


def _group_table(res: Any) -> Any:
    from rich.table import Table

    t = Table(title="per group (ground-truth sub-folder)", title_justify="left")
    t.add_column("metric")
    cols = _columns(res)
    for name, _ in cols:
        t.add_column(name, justify="right")
    for key, title in (
        ("n_images", "images"),
        ("iou", "IoU (pixel-summed)"),
        ("f1", "F1"),
        ("miou", "two-class mIoU"),
        ("mean_image_iou", "mean per-image IoU"),
    ):
        t.add_row(title, *(_f(g["aggregate"].get(key)) for _, g in cols))
    return t


def _pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * v:.1f} %"


def _comparison_table(res: Any, baseline: Any) -> Any:
    from rich.table import Table

    cols = [(n, g["comparison"]) for n, g in _columns(res) if g["comparison"] is not None]
    t = Table(title=f"compared with the baseline ({baseline})", title_justify="left")
    t.add_column("statistic")
    for name, _ in cols:
        t.add_column(name, justify="right")
    c0 = res.comparison
    rows = (
        ("images compared", lambda c: str(c.n)),
        ("IoU: prediction (pixel-summed)", lambda c: _f(c.iou)),
        ("IoU: baseline (pixel-summed)", lambda c: _f(c.baseline_iou)),
        ("gain, IoU points", lambda c: f"{100 * c.gain:+.2f}" if math.isfinite(c.gain) else "—"),
        ("mean per-image IoU: prediction", lambda c: _f(c.mean_image_iou)),
        ("mean per-image IoU: baseline", lambda c: _f(c.mean_baseline_image_iou)),
        ("mean per-image delta", lambda c: _f(c.mean_delta)),
        ("improved", lambda c: f"{_pct(c.share_improved)} ({c.n_improved})"),
        ("unchanged", lambda c: f"{_pct(c.share_unchanged)} ({c.n_unchanged})"),
        (
            f"worse by > {100 * c0.worse_by:g} points",
            lambda c: f"{_pct(c.share_worse_by)} ({c.n_worse_by})",
        ),
        ("worse at all", lambda c: str(c.n_worse)),
        (
            "improved, of the improvable",
            lambda c: f"{_pct(c.share_improved_of_improvable)} (of {c.n_improvable})",
        ),
        (
            "empty truth + empty baseline: kept empty / spoiled",
            lambda c: f"{c.n_empty_stayed_empty} / {c.n_empty_spoiled}",
        ),
    )
    for title, fn in rows:
        t.add_row(title, *(fn(c) for _, c in cols))
    return t


def _quality_table(res: Any) -> Any:
    from rich.table import Table

    cols = [(n, g["quality"]) for n, g in _columns(res) if g["quality"] is not None]
    qs = res.quality
    t = Table(title=f"label quality ({qs.source})", title_justify="left")
    t.add_column("statistic")
    for name, _ in cols:
        t.add_column(name, justify="right")
    rows = (
        ("Spearman (predicted vs true IoU)", lambda q: f"{_f(q.spearman)} (n={q.n})"),
        ("kept / scored", lambda q: f"{q.n_kept} / {q.n}"),
        (
            f"precision of kept (true IoU >= {_f(qs.tau)})",
            lambda q: _f(q.precision_kept),
        ),
        ("recall of good labels", lambda q: f"{_f(q.recall_kept)} (of {q.n_good})"),
        ("mean true IoU: kept", lambda q: _f(q.mean_iou_kept)),
        ("mean true IoU: all", lambda q: _f(q.mean_iou_all)),
        ("pixel-summed IoU: kept", lambda q: _f(q.aggregate_iou_kept)),
        ("pixel-summed IoU: all", lambda q: _f(q.aggregate_iou_all)),
    )
    for title, fn in rows:
        t.add_row(title, *(fn(q) for _, q in cols))
    none_good = _none_good(qs)
    f = res.quality_filter
    if f and f.get("threshold") is not None:
        how = (
            f"for precision >= {f['target_precision']} (estimated at training: precision "
            f"{_f(f.get('estimated_precision'))}, recall {_f(f.get('estimated_recall'))})"
            if f.get("target_precision") is not None
            else "(--min-quality)"
        )
        t.caption = f"the run kept labels with predicted IoU >= {_f(f['threshold'])} {how}"
        if f.get("target_precision") is not None and f.get("achievable") is False:
            t.caption = (
                f"--target-precision {f['target_precision']} was not reachable at training "
                f"({f.get('note') or 'no threshold reached it'}): the run's threshold "
                f"{_f(f['threshold'])} lies above every score it was calibrated on"
            )
    if none_good:
        t.caption = f"{t.caption}\n{none_good}" if t.caption else none_good
    return t


def _none_good(qs: Any) -> str:
    """The table's line when no scored label reaches ``tau`` (thin roads rarely reach IoU 0.7):
    precision and recall of kept labels then measure nothing, and ``--tau`` is the cause."""
    if qs.tau is None or qs.n_good != 0 or not qs.n:
        return ""
    return (
        f"no label reached true IoU >= {qs.tau:g} (--tau; mean true IoU {_f(qs.mean_iou_all)}): "
        "precision and recall of kept measure nothing at this tau; give --tau an IoU your good "
        "labels reach (thin roads: docs/roads.md)"
    )


def print_evaluation(
    console: Any,
    res: Any,
    *,
    pred: Path,
    truth: Path,
    baseline: Path | None,
    roads_on: bool | None,
    json_path: Path | None,
    csv_path: Path | None,
) -> None:
    """Print ``elnet evaluate``'s result on ``console`` (a ``rich.console.Console``).

    Args:
        console: Where the tables go.
        res: The ``EvaluationResult`` of :func:`sam2elnet.engine.evaluate.evaluate_folders`.
        pred, truth, baseline: The folders or files given (named in titles and notes).
        roads_on: ``--roads`` (True), ``--no-roads`` (False) or neither (None: detected).
        json_path, csv_path: The ``--json`` / ``--csv`` files, named where they list more.
    """
    from rich.table import Table

    from sam2elnet.engine.eval_result import IMAGE_MEAN_PREFIX
    from sam2elnet.engine.metrics import ROAD_KEYS
    from sam2elnet.pipeline.glossary import ROAD_TABLE_HEADER, label, road_buffer_options_words

    table = Table(
        title=f"{plural(res.aggregate['n_images'], 'image')}: {pred} vs {truth}",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("over the images")
    for key in _SHOWN:
        if key in res.aggregate:
            over = "mean per image" if key.startswith(IMAGE_MEAN_PREFIX) else "pixel-summed"
            table.add_row(label(key), _f(res.aggregate[key]), over)
    console.print(table)
    road_rows = [(label(k), _f(res.aggregate[k])) for k in ROAD_KEYS if k in res.aggregate]
    if road_rows:  # not pixel-summed: centre-line lengths and road pieces summed over images
        roads_table = Table()
        roads_table.add_column(ROAD_TABLE_HEADER)
        roads_table.add_column("value", justify="right")
        for row in road_rows:
            roads_table.add_row(*row)
        console.print(roads_table)
    if res.options.get("roads"):  # which buffer, whether asked for or detected
        if roads_on is None:
            console.print(
                f"road measures: on ({res.options['roads_reason']}; --no-roads turns them off)"
            )
        console.print(road_buffer_options_words(res.options))
    for note in res.notes:  # e.g. a road buffer given for road measures that are off
        console.print(f"note: {note}")
    if res.groups:
        console.print(_group_table(res))
    if res.comparison is not None:
        console.print(_comparison_table(res, baseline))
        worse = res.comparison.worse_images
        if worse:
            shown = ", ".join(worse[:10]) + (" ..." if len(worse) > 10 else "")
            where = f" (all in {csv_path}, column outcome/delta_iou)" if csv_path else ""
            console.print(
                f"worse than the baseline by more than {res.comparison.worse_by:g} IoU: "
                f"{plural(len(worse), 'image')}, worst first: {shown}{where}"
            )
    if res.quality is not None:
        console.print(_quality_table(res))
    moved = res.resampled
    if moved:
        outside = sum(m["outside_pixels"] for m in moved)
        console.print(
            f"ground truth resampled onto the prediction's grid: {plural(len(moved), 'file')}; "
            f"{plural(outside, 'prediction pixel')} outside its footprint not counted"
        )
    if res.unmatched_pred or res.unmatched_truth:
        listed = f"listed in {json_path}" if json_path is not None else "--json FILE lists them"
        console.print(
            f"[yellow]unmatched: {plural(len(res.unmatched_pred), 'prediction')}, "
            f"{plural(len(res.unmatched_truth), 'ground-truth mask')} ({listed})[/yellow]"
        )
