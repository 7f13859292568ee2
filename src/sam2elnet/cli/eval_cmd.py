"""``elnet evaluate``: score predicted masks against ground truth (+ label-quality statistics).

Thin layer: parses options, calls :func:`sam2elnet.engine.evaluate.evaluate_folders`, prints the
tables (:mod:`sam2elnet.cli.eval_tables`), writes the requested JSON / CSV / HTML report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import LINE_WIDTH as _LINE_WIDTH
from sam2elnet.cli.shared_options import LINE_WIDTH_PX as _LINE_WIDTH_PX
from sam2elnet.cli.shared_options import (
    NO_PROGRESS,
    line_width_unit,
    road_buffer_px_of,
    switch,
)
from sam2elnet.cli.shared_options import ROAD_BUFFER as _ROAD_BUFFER
from sam2elnet.cli.shared_options import ROAD_BUFFER_M as _ROAD_BUFFER_M
from sam2elnet.data.naming import IMAGE_SUFFIXES
from sam2elnet.data.runfolder import QUALITY_CSV, SUMMARY_JSON, evaluation_page, read_id_list
from sam2elnet.errors import UserError
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import BOUNDARY_TOLERANCE_MAX
from sam2elnet.options import EvaluateOptions


@app.command("evaluate")
def evaluate(
    pred: Path = typer.Option(
        ...,
        "--pred",
        help="Folder of predicted masks (PNG/TIF), one mask file, or one polygon file (e.g. an "
        "`elnet export` layer; placed on each ground-truth mask's grid by map position).",
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
        help=(
            "Write per-image rows as CSV here; skipped pairs go to <name>_evaluate_skipped.csv "
            "beside it."
        ),
    ),
    boundary: bool = typer.Option(
        False,
        "--boundary",
        help="Also compute the boundary F-score and each image's boundary HD95 (px).",
    ),
    tolerance: float = typer.Option(
        option_default(EvaluateOptions, "tolerance"),
        "--tolerance",
        help=f"Boundary F-score tolerance in pixels, 0-{BOUNDARY_TOLERANCE_MAX:g}.",
    ),
    roads: bool = typer.Option(
        False,
        "--roads",
        help="Skeleton road measures (correctness, completeness, quality, connectivity). Default: on "
        "when the ground truth is a road network (thin, long, connected masks) or a road buffer "
        "(--road-buffer / --road-buffer-m) is given.",
    ),
    no_roads: bool = typer.Option(False, "--no-roads", help="No road measures, even for roads."),
    road_buffer: Optional[float] = _ROAD_BUFFER,  # noqa: UP045
    road_buffer_m: Optional[float] = _ROAD_BUFFER_M,  # noqa: UP045
    line_width: Optional[float] = _LINE_WIDTH,  # noqa: UP045
    line_width_px: bool = _LINE_WIDTH_PX,
    truth_layer: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--truth-layer",
        help="The layer to read from a --truth polygon file with several (e.g. new_roads; the "
        "truth only: --baseline / --valid / --pred files are read from their default layer).",
    ),
    quality: Path | None = typer.Option(
        None, "--quality", help="quality.csv to correlate (default: PRED/quality.csv if present)."
    ),
    valid: Path | None = typer.Option(
        None,
        "--valid",
        help="Folder of valid-pixel masks (pixels outside are not counted), or polygons of the "
        "area to count (GPKG/SHP/GeoJSON: one file for all, or one per prediction).",
    ),
    positive_values: str | None = typer.Option(
        None,
        "--positive-values",
        help="Ground-truth value(s) that mean 'object' in class-index masks, e.g. 1 or 2,3 "
        "(the rest is background). Default: the rule in docs/data.md.",
    ),
    report: bool = typer.Option(
        False,
        "--report",
        help="Write report.html next to the JSON file (else into PRED); evaluation.html where "
        "that folder is a run's (summary.json) or holds another command's report.html.",
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
        "`elnet enhance`, or an `elnet refine` output), or their polygons (GPKG/SHP/GeoJSON: "
        "one file for all, placed by map position as --truth, or one per prediction): scored "
        "against the same truth and compared image by image (improved / unchanged / worse).",
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
        "splits.json (its held_out and unused ids) / an experiment's split.json (test).",
    ),
    resample: bool = typer.Option(
        False,
        "--resample",
        help="A ground truth on another map grid than its prediction (both GeoTIFFs with CRS + "
        "transform: other pixel size, extent or CRS) is resampled onto the prediction's grid "
        "(nearest; the default).",
    ),
    no_resample: bool = typer.Option(False, "--no-resample", help="Skip such pairs instead."),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Score predicted masks against ground truth (IoU, F1, precision, recall).

    Pixel-summed IoU/F1/precision/recall, optional boundary and road measures, and how well
    quality.csv predicts the true IoU.

    PRED may be a folder of masks or the output folder of ``elnet annotate`` / ``elnet enhance``
    (its labels/ and rejected/ are read together, with its quality.csv); PRED and TRUTH may also
    be two mask files (one pair).

    Polygon ground truth (GeoPackage, Shapefile, GeoJSON drawn in a GIS) is rasterised onto each
    prediction's grid; one polygon file with a PRED folder scores every prediction against the
    polygons in its footprint (none there: all background). --baseline (coarse polygons drawn
    in QGIS) and --valid (the area to count) take polygon files too, placed the same way; so does
    PRED (polygons exported by `elnet export` and re-evaluated), placed on each TRUTH mask's grid.

    A ground truth on another map grid (pixel size, extent, CRS; both files georeferenced by
    CRS + transform or by GCPs) is
    resampled onto the prediction's grid by map position, nearest neighbour; prediction pixels
    outside its footprint are not counted (one warning line per file, counted in the JSON).

    A pair that cannot be used (a truncated or corrupt mask, a prediction of another size than
    its ground truth and no common georeference) is skipped with a warning naming the file and
    listed with the reason in the JSON and in <--csv stem>_evaluate_skipped.csv beside the --csv
    file; the other pairs are scored. When no pair can be scored, nothing is written and the exit
    code is 2."""
    from rich.console import Console

    from sam2elnet.cli.eval_tables import print_evaluation
    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.engine.eval_inputs import TRUTH_SUFFIXES
    from sam2elnet.engine.eval_result import skipped_list
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.utils.batch import skip_line
    from sam2elnet.utils.paths import check_distinct_outputs, check_input, check_output

    roads_on = switch(roads, no_roads, "roads")  # None: auto
    resample = bool(switch(resample, no_resample, "resample", True))
    # both given: refused in the options' words before anything is read (check_options would
    # name EvaluateOptions' fields, road_buffer / road_buffer_m)
    road_buffer_px_of(road_buffer, road_buffer_m)
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
        truth_layer=truth_layer,
    )
    check_input(pred, "--pred", "prediction folder or file")
    check_input(truth, "--truth", "ground-truth folder or file")
    if baseline is not None:
        check_input(baseline, "--baseline", "baseline label folder")
    keep = None
    if ids is not None:
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
    run_files = (QUALITY_CSV, SUMMARY_JSON)
    read_from = [
        (pred, (*TRUTH_SUFFIXES, *run_files)),
        (truth, TRUTH_SUFFIXES),
        *((d, TRUTH_SUFFIXES) for d in (valid, baseline)),
        (images, IMAGE_SUFFIXES),
    ]
    skipped = skipped_list(csv_path) if csv_path is not None else None
    skipped_csv = skipped.path if skipped is not None else None
    read_files = [quality, ids, pred, truth, valid, baseline]  # files among them: inputs
    pred_dir = pred.parent if pred.is_file() else pred
    for flag, path in (("--json", json_path), ("--csv", csv_path), ("--csv", skipped_csv)):
        check_output(path, "file", flag, inputs=read_files, read_from=read_from)
    page = None
    if report:  # next to --json, else into PRED (next to a PRED file)
        page = evaluation_page(json_path.parent if json_path is not None else pred_dir)
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
    from sam2elnet.utils.batch import drop_skip_list_if_nothing_done

    with drop_skip_list_if_nothing_done(skipped):
        res = evaluate_folders(
            pred,
            truth,
            quality_csv=quality,
            boundary=boundary,
            roads="auto" if roads_on is None else roads_on,
            valid_dir=valid,
            tolerance_px=tolerance,
            progress=not no_progress,  # a bar on terminals only: utils.progress.bar_wanted
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
            line_width_unit=line_width_unit(line_width_px),
            truth_layer=truth_layer,
        )
    # soft_wrap: a message is one line whatever the width (piped into a log, rich wrapped at 80
    # columns and split e.g. the road buffer line mid-phrase); tables keep their layout
    console = Console(soft_wrap=True)
    print_evaluation(
        console,
        res,
        pred=pred,
        truth=truth,
        baseline=baseline,
        roads_on=roads_on,
        json_path=json_path,
        csv_path=csv_path,
    )
    if json_path is not None:
        res.write_json(json_path)
        console.print(f"wrote {json_path}")
    if csv_path is not None:
        res.write_csv(csv_path)
        console.print(f"wrote {csv_path}")
    if skipped is not None and skipped.write(res.skip_log()):  # else an old one removed
        console.print(f"wrote {skipped_csv}")
    if page is not None:  # --report
        from sam2elnet.pipeline.report import write_evaluation_report

        write_evaluation_report(res, page, images=images, max_items=max_items, threshold=threshold)
        console.print(f"wrote {page}")
    if res.skipped:  # the last line, as in every batch command
        where = skipped_csv or json_path or "the warnings above"
        n_total = res.aggregate["n_images"] + len(res.skipped)
        typer.echo(skip_line(len(res.skipped), n_total, where))
