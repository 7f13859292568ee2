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
from sam2elnet.cli.shared_options import LINE_WIDTH as _LINE_WIDTH
from sam2elnet.cli.shared_options import LINE_WIDTH_PX as _LINE_WIDTH_PX
from sam2elnet.cli.shared_options import ROAD_BUFFER_M as _ROAD_BUFFER_M
from sam2elnet.cli.shared_options import ROAD_BUFFER_OR_M as _ROAD_BUFFER
from sam2elnet.cli.shared_options import switch
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
    return t


@app.command("evaluate")
def evaluate(
    pred: Path = typer.Option(
        ..., "--pred", help="Folder of predicted masks (PNG/TIF), or one mask file."
    ),
    truth: Path = typer.Option(
        ...,
        "--truth",
        help="Folder of ground-truth masks or polygon files (GPKG/SHP/GeoJSON, named like "
        "the predictions), a dataset root with --split, one mask or polygon file (with a file "
        "as --pred), or one polygon file for a whole --pred folder (each prediction scored "
        "against the polygons in its footprint).",
    ),
    split: list[str] | None = typer.Option(
        None,
        "--split",
        help="With a dataset root as --truth: score against this split's masks (e.g. test).",
    ),
    json_path: Path | None = typer.Option(
        None,
        "--json",
        help="Write aggregate + per-image + quality JSON here (with the skipped pairs).",
    ),
    csv_path: Path | None = typer.Option(
        None,
        "--csv",
        help="Write per-image rows as CSV here; skipped pairs go to <name>_skipped.csv beside it.",
    ),
    boundary: bool = typer.Option(False, "--boundary", help="Also compute the boundary F-score."),
    tolerance: float = typer.Option(
        option_default(EvaluateOptions, "tolerance"),
        "--tolerance",
        help="Boundary F-score tolerance in pixels.",
    ),
    roads: bool = typer.Option(
        False,
        "--roads",
        help="Skeleton road measures (correctness, completeness, quality, connectivity). Default: on "
        "when the ground truth is a road network (thin, long, connected masks).",
    ),
    no_roads: bool = typer.Option(False, "--no-roads", help="No road measures, even for roads."),
    road_buffer: Optional[float] = _ROAD_BUFFER,  # noqa: UP045
    road_buffer_m: Optional[float] = _ROAD_BUFFER_M,  # noqa: UP045
    line_width: Optional[float] = _LINE_WIDTH,  # noqa: UP045
    line_width_px: bool = _LINE_WIDTH_PX,
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
        None,
        "--images",
        help="Folder of the images, drawn under the overlays in the report (with a --pred "
        "file: the image file).",
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
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Folder of the labels the predictions started from (e.g. the coarse labels given to "
        "`elnet enhance`, or an `elnet refine` output): scored against the same truth and "
        "compared image by image (improved / unchanged / worse).",
    ),
    worse_by: float = typer.Option(
        option_default(EvaluateOptions, "worse_by"),
        "--worse-by",
        help="With --baseline: IoU drop that counts as a loss (0.02 = 2 IoU points).",
    ),
    group_by: str = typer.Option(
        option_default(EvaluateOptions, "group_by"),
        "--group-by",
        help="none | folder: also report every number per ground-truth sub-folder "
        "(SOS: per sensor, palsar / sentinel).",
    ),
    tau: float | None = typer.Option(
        None,
        "--tau",
        help="True IoU that makes a label good, for the precision / recall of the kept labels "
        "(default: the tau of the run's --target-precision filter, else 0.7).",
    ),
    ids: Path | None = typer.Option(
        None,
        "--ids",
        help="Evaluate only these images: a text file (one id per line), a JSON list, or a run's "
        "splits.json (its held_out ids) / an experiment's split.json (test).",
    ),
    resample: bool = typer.Option(
        False,
        "--resample",
        help="A ground truth on another map grid than its prediction (both GeoTIFFs with CRS + "
        "transform: other pixel size, extent or CRS) is resampled onto the prediction's grid "
        "(nearest; the default).",
    ),
    no_resample: bool = typer.Option(False, "--no-resample", help="Skip such pairs instead."),
    no_progress: bool = typer.Option(
        False,
        "--no-progress",
        help="No progress bar: one line when scoring ends (images, time, pixel IoU), for logs.",
    ),
) -> None:
    """Score predicted masks against ground truth (IoU, F1, precision, recall).

    Pixel-summed IoU/F1/precision/recall, optional boundary and road measures, and how well
    quality.csv predicts the true IoU.

    PRED may be a folder of masks or the output folder of ``elnet annotate`` / ``elnet enhance``
    (its labels/ and rejected/ are read together, with its quality.csv); PRED and TRUTH may also
    be two mask files (one pair).

    Polygon ground truth (GeoPackage, Shapefile, GeoJSON drawn in a GIS) is rasterised onto each
    prediction's grid; one polygon file with a PRED folder scores every prediction against the
    polygons in its footprint (none there: all background).

    A ground truth on another map grid (pixel size, extent, CRS; both files georeferenced by
    CRS + transform or by GCPs) is
    resampled onto the prediction's grid by map position, nearest neighbour; prediction pixels
    outside its footprint are not counted (one warning line per file, counted in the JSON).

    A pair that cannot be used (a truncated or corrupt mask, a prediction of another size than
    its ground truth and no common georeference) is skipped with a warning naming the file and listed with the reason in
    the JSON and in the --csv file's _skipped.csv; the other pairs are scored. When no pair can
    be scored, nothing is written and the exit code is 2."""
    from rich.console import Console
    from rich.table import Table

    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.data.naming import IMAGE_SUFFIXES, MASK_SUFFIXES
    from sam2elnet.engine.eval_inputs import TRUTH_SUFFIXES
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.engine.metrics import ROAD_KEYS
    from sam2elnet.errors import UserError
    from sam2elnet.option_values import ROAD_BUFFER_PX
    from sam2elnet.pipeline.glossary import ROAD_TABLE_HEADER, label, road_buffer_words
    from sam2elnet.utils.batch import skip_line, skipped_csv_path
    from sam2elnet.utils.paths import check_distinct_outputs, check_input, check_output

    roads_on = switch(roads, no_roads, "roads")  # None: auto
    resample = bool(switch(resample, no_resample, "resample", True))
    check_options(
        EvaluateOptions,
        tolerance=tolerance,
        max_items=max_items,
        threshold=threshold,
        worse_by=worse_by,
        group_by=group_by,
        tau=tau,
        road_buffer=road_buffer,
        road_buffer_m=road_buffer_m,
        line_width=line_width,
    )
    if road_buffer is not None and road_buffer_m is not None:
        raise UserError(
            "--road-buffer (pixels) and --road-buffer-m (metres) both given: give one of them"
        )
    buffer_given = road_buffer is not None or road_buffer_m is not None
    road_buffer = ROAD_BUFFER_PX if road_buffer is None else road_buffer
    check_input(pred, "--pred", "prediction folder or file")
    check_input(truth, "--truth", "ground-truth folder or file")
    if baseline is not None:
        check_input(baseline, "--baseline", "baseline label folder")
    keep = None
    if ids is not None:
        from sam2elnet.data.runfolder import read_id_list

        check_input(ids, "--ids", "id list")
        keep = read_id_list(ids)
    for opt, path in (("--quality", quality), ("--valid", valid)):
        if path is not None:
            check_input(path, opt)
    if images is not None and images.is_file() and not pred.is_file():
        raise UserError(
            f"is a file, but --pred {pred} is a folder: give the folder of the images (matched "
            "to the predictions by name) as --images",
            images,
        )
    if images is not None and not (images.is_dir() or images.is_file()):
        raise UserError("images folder or file does not exist; check --images", images)
    # what is read: masks of every mask folder, PRED's quality.csv / summary.json (also of run
    # folders below it), the images, --quality and --ids; none of them may be an output
    run_files = ("quality.csv", "summary.json")
    read_from = [
        (pred, (*MASK_SUFFIXES, *run_files)),
        (truth, TRUTH_SUFFIXES),
        *((d, MASK_SUFFIXES) for d in (valid, baseline)),
        (images, IMAGE_SUFFIXES),
    ]
    skipped_csv = skipped_csv_path(csv_path) if csv_path is not None else None
    read_files = [quality, ids, pred, truth, valid, baseline]  # files among them: inputs
    pred_dir = pred.parent if pred.is_file() else pred
    for flag, path in (("--json", json_path), ("--csv", csv_path), ("--csv", skipped_csv)):
        check_output(path, "file", flag, inputs=read_files, read_from=read_from)
    page = None
    if report:  # next to --json, else into PRED (next to a PRED file)
        page = (json_path.parent if json_path is not None else pred_dir) / "report.html"
        check_output(page, "file", "--report", inputs=read_files, read_from=read_from)
    # the report first: where it goes is not chosen by a path of its own
    check_distinct_outputs(
        [
            ("the --report page", page),
            ("--json", json_path),
            ("--csv", csv_path),
            ("the list of skipped pairs next to --csv", skipped_csv),
        ]
    )
    res = evaluate_folders(
        pred,
        truth,
        quality_csv=quality,
        boundary=boundary,
        roads="auto" if roads_on is None else roads_on,
        valid_dir=valid,
        tolerance_px=tolerance,
        progress=sys.stderr.isatty() and not no_progress,
        positive_values=parse_positive_values(positive_values),
        truth_split=split or None,
        baseline_dir=baseline,
        group_by=group_by,
        worse_by=worse_by,
        tau=tau,
        ids=keep,
        resample=resample,
        road_buffer_px=road_buffer,
        road_buffer_m=road_buffer_m,
        line_width=line_width,
        line_width_unit="px" if line_width_px else "map",
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
        o = res.options
        console.print(
            road_buffer_words(o["road_buffer_px"], o["road_buffer_m"], o["road_buffer_unit"])
        )
    elif buffer_given:  # a buffer given for measures that are off: say why
        why = "--no-roads" if roads_on is False else res.options["roads_reason"]
        flag = (
            f"--road-buffer {road_buffer:g}"
            if road_buffer_m is None
            else f"--road-buffer-m {road_buffer_m:g}"
        )
        console.print(
            f"note: {flag} unused: road measures are off ({why}"
            + ("" if roads_on is False else "; --roads turns them on")
            + ")"
        )
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
                f"{len(worse)} image(s), worst first: {shown}{where}"
            )
    if res.quality is not None:
        console.print(_quality_table(res))
    moved = res.resampled
    if moved:
        outside = sum(m["outside_pixels"] for m in moved)
        console.print(
            f"ground truth resampled onto the prediction's grid: {len(moved)} file(s); "
            f"{outside} prediction pixel(s) outside its footprint not counted"
        )
    if res.unmatched_pred or res.unmatched_truth:
        listed = f"listed in {json_path}" if json_path is not None else "--json FILE lists them"
        console.print(
            f"[yellow]unmatched: {len(res.unmatched_pred)} prediction(s), "
            f"{len(res.unmatched_truth)} ground-truth mask(s) ({listed})[/yellow]"
        )
    if json_path is not None:
        res.write_json(json_path)
        console.print(f"wrote {json_path}")
    if csv_path is not None:
        res.write_csv(csv_path)
        console.print(f"wrote {csv_path}")
    if skipped_csv is not None and res.skipped:
        from sam2elnet.utils.atomic import write_text_atomic
        from sam2elnet.utils.tables import csv_text

        write_text_atomic(skipped_csv, csv_text(res.skipped, ["file", "reason"]))
        console.print(f"wrote {skipped_csv}")
    elif skipped_csv is not None:  # an earlier run's list no longer holds
        skipped_csv.unlink(missing_ok=True)
    if report:
        out = (json_path.parent if json_path is not None else pred_dir) / "report.html"
        from sam2elnet.pipeline.report import write_evaluation_report

        write_evaluation_report(res, out, images=images, max_items=max_items, threshold=threshold)
        console.print(f"wrote {out}")
    if res.skipped:  # the last line, as in every batch command
        where = skipped_csv or json_path or "the warnings above"
        n_total = res.aggregate["n_images"] + len(res.skipped)
        typer.echo(skip_line(len(res.skipped), n_total, where))
