"""``elnet evaluate``: score predicted masks against ground truth (+ label-quality statistics).

Thin layer: parses options, calls :func:`sam2elnet.engine.evaluate.evaluate_folders`, prints a
table, writes the requested JSON / CSV / HTML report.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Optional  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.app import app
from sam2elnet.config import EvaluateOptions, check_options, option_default

# aggregate metrics printed, in order (names from sam2elnet.pipeline.glossary); missing keys skipped
_SHOWN = (
    "iou",
    "f1",
    "precision",
    "recall",
    "iou_bg",
    "miou",
    "accuracy",
    "mean_image_iou",
    "boundary_f1",
    "boundary_precision",
    "boundary_recall",
    "mean_image_boundary_f1",
    "road_correctness",
    "road_completeness",
    "road_quality",
    "road_connectivity",
)


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


@app.command("evaluate")
def evaluate(
    pred: Path = typer.Option(..., "--pred", help="Folder of predicted masks (PNG/TIF)."),
    truth: Path = typer.Option(
        ...,
        "--truth",
        help="Folder of ground-truth masks, or a dataset root with --split.",
    ),
    split: list[str] | None = typer.Option(
        None,
        "--split",
        help="With a dataset root as --truth: score against this split's masks (e.g. test).",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write aggregate + per-image + quality JSON here."
    ),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write per-image rows as CSV here."),
    boundary: bool = typer.Option(False, "--boundary", help="Also compute the boundary F-score."),
    tolerance: float = typer.Option(
        option_default(EvaluateOptions, "tolerance"),
        "--tolerance",
        help="Boundary F-score tolerance in pixels.",
    ),
    roads: Optional[bool] = typer.Option(  # noqa: UP045
        None,
        "--roads/--no-roads",
        help="Skeleton road measures (correctness/completeness/quality/connectivity). Default: on "
        "when the ground truth is a road network (thin, long, connected masks).",
    ),
    quality: Path | None = typer.Option(
        None, "--quality", help="quality.csv to correlate (default: PRED/quality.csv if present)."
    ),
    valid: Path | None = typer.Option(
        None, "--valid", help="Folder of valid-pixel masks (pixels outside are not counted)."
    ),
    positive_values: str | None = typer.Option(
        None,
        "--positive-values",
        help="Ground-truth value(s) that mean 'object' in class-index masks, e.g. 1 or 2,3 "
        "(the rest is background). Default: the rule in docs/data.md.",
    ),
    report: bool = typer.Option(
        False, "--report", help="Write report.html next to the JSON file (else into PRED)."
    ),
    images: Path | None = typer.Option(
        None, "--images", help="Folder of the images, drawn under the overlays in the report."
    ),
    max_items: int = typer.Option(
        option_default(EvaluateOptions, "max_items"),
        "--max-items",
        help="At most this many images in the report.",
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="Quality threshold drawn in the report (default: the run's summary.json, if any).",
    ),
) -> None:
    """Compare predicted masks with ground truth: pixel-summed IoU/F1/precision/recall, optional
    boundary and road measures, and how well quality.csv predicts the true IoU.

    PRED may be a folder of masks or the output folder of ``elnet annotate`` / ``elnet enhance``
    (its labels/ and rejected/ are read together, with its quality.csv)."""
    from rich.console import Console
    from rich.table import Table

    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.errors import UserError
    from sam2elnet.pipeline.glossary import label
    from sam2elnet.utils.paths import check_input, check_output

    check_options(EvaluateOptions, tolerance=tolerance, max_items=max_items, threshold=threshold)
    check_input(pred, "--pred", "prediction folder")
    check_input(truth, "--truth", "ground-truth folder")
    for opt, path in (("--quality", quality), ("--valid", valid)):
        if path is not None:
            check_input(path, opt)
    if images is not None and not images.is_dir():
        raise UserError("images folder does not exist; check --images", images)
    check_output(json_path, "file", "--json")
    check_output(csv_path, "file", "--csv")
    if report:
        check_output((json_path.parent if json_path is not None else pred) / "report.html")
    res = evaluate_folders(
        pred,
        truth,
        quality_csv=quality,
        boundary=boundary,
        roads="auto" if roads is None else roads,
        valid_dir=valid,
        tolerance_px=tolerance,
        progress=sys.stderr.isatty(),
        positive_values=parse_positive_values(positive_values),
        truth_split=split or None,
    )
    console = Console()
    table = Table(
        title=f"{res.aggregate['n_images']} image(s): {pred} vs {truth}", title_justify="left"
    )
    table.add_column("metric (pixel-summed)")
    table.add_column("value", justify="right")
    for key in _SHOWN:
        if key in res.aggregate:
            table.add_row(label(key), _f(res.aggregate[key]))
    console.print(table)
    if roads is None and res.options.get("roads"):
        console.print(
            f"road measures: on ({res.options['roads_reason']}; --no-roads turns them off)"
        )
    if res.quality is not None:
        qs = res.quality
        qt = Table(title=f"label quality ({qs.source})", title_justify="left")
        qt.add_column("statistic")
        qt.add_column("value", justify="right")
        qt.add_row(
            "Spearman (predicted vs true IoU)",
            f"{_f(qs.spearman)} (n={qs.n}, p={_f(qs.spearman_p)})",
        )
        qt.add_row("kept / scored", f"{qs.n_kept} / {qs.n}")
        qt.add_row("mean true IoU: kept", _f(qs.mean_iou_kept))
        qt.add_row("mean true IoU: all", _f(qs.mean_iou_all))
        qt.add_row("pixel-summed IoU: kept", _f(qs.aggregate_iou_kept))
        qt.add_row("pixel-summed IoU: all", _f(qs.aggregate_iou_all))
        console.print(qt)
    if res.unmatched_pred or res.unmatched_truth:
        console.print(
            f"[yellow]unmatched: {len(res.unmatched_pred)} prediction(s), "
            f"{len(res.unmatched_truth)} ground-truth mask(s) (listed in the JSON)[/yellow]"
        )
    if json_path is not None:
        res.write_json(json_path)
        console.print(f"wrote {json_path}")
    if csv_path is not None:
        res.write_csv(csv_path)
        console.print(f"wrote {csv_path}")
    if report:
        out = (json_path.parent if json_path is not None else pred) / "report.html"
        from sam2elnet.pipeline.report import write_evaluation_report

        write_evaluation_report(res, out, images=images, max_items=max_items, threshold=threshold)
        console.print(f"wrote {out}")
