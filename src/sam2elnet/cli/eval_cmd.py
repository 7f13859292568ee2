"""``elnet evaluate``: score predicted masks against ground truth (+ label-quality statistics).

Thin layer: parses options, calls :func:`sam2elnet.engine.metrics.evaluate_folders`, prints a
table, writes the requested JSON / CSV / HTML report.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import typer

from sam2elnet.cli.app import app
from sam2elnet.config import EvaluateOptions, check_options, option_default

# (key, label) of the aggregate metrics printed, in order; missing keys are skipped
_SHOWN = (
    ("iou", "IoU (foreground)"),
    ("f1", "F1 / Dice"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("iou_bg", "IoU (background)"),
    ("miou", "mIoU (2 classes)"),
    ("accuracy", "overall accuracy"),
    ("mean_image_iou", "mean per-image IoU"),
    ("boundary_f1", "boundary F1"),
    ("boundary_precision", "boundary precision"),
    ("boundary_recall", "boundary recall"),
    ("mean_image_boundary_f1", "mean per-image boundary F1"),
    ("road_correctness", "road correctness"),
    ("road_completeness", "road completeness"),
    ("road_quality", "road quality"),
    ("road_connectivity", "road connectivity"),
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
    truth: Path = typer.Option(..., "--truth", help="Folder of ground-truth masks."),
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
    roads: bool = typer.Option(
        False,
        "--roads",
        help="Also compute skeleton road measures (correctness/completeness/quality/connectivity).",
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

    from sam2elnet.data.raster import parse_positive_values
    from sam2elnet.engine.metrics import evaluate_folders
    from sam2elnet.errors import UserError
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
        roads=roads,
        valid_dir=valid,
        tolerance_px=tolerance,
        progress=sys.stderr.isatty(),
        positive_values=parse_positive_values(positive_values),
    )
    console = Console()
    table = Table(
        title=f"{res.aggregate['n_images']} image(s): {pred} vs {truth}", title_justify="left"
    )
    table.add_column("metric (pixel-summed)")
    table.add_column("value", justify="right")
    for key, label in _SHOWN:
        if key in res.aggregate:
            table.add_row(label, _f(res.aggregate[key]))
    console.print(table)
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
        if threshold is None:
            threshold = _run_threshold(res.options.get("quality_csv"))
        _write_eval_report(res, out, images, max_items, threshold)
        console.print(f"wrote {out}")


def _run_threshold(quality_csv: str | None) -> float | None:
    """The acceptance threshold an annotate/enhance run recorded in its summary.json, if any."""
    import json

    if not quality_csv:
        return None
    summary = Path(quality_csv).parent / "summary.json"
    try:
        value = json.loads(summary.read_text(encoding="utf-8")).get("threshold")
        return float(value) if value is not None else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _image_index(images: Path | None) -> dict[str, Path]:
    """Images of a folder keyed like the masks; ``<id>_sat.*`` wins over a mask stored beside it."""
    from sam2elnet.engine.metrics import mask_key

    found: dict[str, Path] = {}
    if images is None:
        return found
    exts = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
    for f in sorted(images.iterdir()):
        if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."):
            k = mask_key(f.name)
            if k not in found or f.stem.lower().endswith(("_sat", "_image", "_img")):
                found[k] = f
    return found


def _write_eval_report(
    res: Any, out: Path, images: Path | None, max_items: int, threshold: float | None
) -> None:
    """Build report items from an evaluation: image from --images (else quality.csv's image
    column), input label from quality.csv's ``coarse`` column (enhance runs), output and truth."""
    from sam2elnet.pipeline.report import ReportItem, write_report

    img_files = _image_index(images)
    items = []
    for r in res.images:
        image = img_files.get(r.name)
        if image is None and r.image_path and Path(r.image_path).is_file():
            image = Path(r.image_path)
        label = None
        if r.input_label_path and Path(r.input_label_path).is_file():
            label = Path(r.input_label_path)
        items.append(
            ReportItem(
                name=r.name,
                image=image,
                input_label=label,
                output=r.pred_path,
                truth=r.truth_path,
                predicted_iou=r.predicted_iou,
                true_iou=r.metrics["iou"],
                kept=r.kept,
                extra={"F1": r.metrics["f1"], "truth px": r.confusion.tp + r.confusion.fn},
            )
        )
    agg = {k: v for k, v in res.aggregate.items() if not k.startswith("total_")}
    metrics: dict[str, Any] = {"aggregate (pixel-summed)": agg}
    if res.quality is not None:
        metrics["label quality"] = {k: v for k, v in res.quality.as_dict().items() if k != "source"}
    notes = [f"predictions: {res.pred_dir}", f"ground truth: {res.truth_dir}"]
    if res.unmatched_pred or res.unmatched_truth:
        notes.append(
            f"unmatched files: {len(res.unmatched_pred)} prediction(s), "
            f"{len(res.unmatched_truth)} ground truth"
        )
    write_report(
        out,
        items,
        title="elnet evaluate",
        metrics=metrics,
        quality_threshold=threshold,
        notes=notes,
        max_items=max_items,
    )
