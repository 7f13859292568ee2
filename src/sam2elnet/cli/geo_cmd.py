"""``elnet scene`` (large GeoTIFFs, sliding windows) and ``elnet export`` (polygons, COCO, chips).

Thin wrappers: options are parsed here, the work is :func:`sam2elnet.pipeline.scenes.scene_job` and
:func:`sam2elnet.export.api.export_labels`; their errors carry the messages.
"""

# ruff: noqa: UP045  (Optional: typer resolves annotations at runtime; keep 3.10-safe)
from pathlib import Path
from typing import Optional  # noqa: UP035

import typer

from sam2elnet.cli.app import app, shown_before
from sam2elnet.cli.shared_options import (
    LAYER,
    NO_PROGRESS,
    WARP_TO_EXPORT,
    line_width_unit,
    switch,
)
from sam2elnet.cli.shared_options import LINE_WIDTH as _LINE_WIDTH
from sam2elnet.cli.shared_options import LINE_WIDTH_PX as _LINE_WIDTH_PX
from sam2elnet.cli.shared_options import PIXEL_COORDS_OPTION as _PIXEL_COORDS
from sam2elnet.cli.shared_options import WARP_METHOD as _WARP_METHOD
from sam2elnet.cli.shared_options import WARP_TO as _WARP_TO
from sam2elnet.data.naming import PROB_SUFFIX, TILES_SUFFIX, scene_companion
from sam2elnet.data.runfolder import quality_csv_candidates
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import EXPORT_FORMATS, PRECISION_HELP
from sam2elnet.options import TILE_RANGE_HELP, ExportOptions, SceneOptions

_S = SceneOptions  # the one declaration of scene defaults and ranges


def _bands(text: Optional[str]) -> Optional[list]:
    if not text:
        return None
    try:
        out = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise UserError(
            f"--bands must be comma-separated band numbers (1-based), got {text!r}"
        ) from None
    if not out or min(out) < 1:
        raise UserError(f"--bands must be comma-separated band numbers (1-based), got {text!r}")
    return out


@app.command("scene")
def scene_cmd(
    model: str = typer.Option(
        ..., "--model", help="Model file from `elnet train` (or builtin:smoothing for a dry run)."
    ),
    image: Path = typer.Option(
        ..., "--image", help="Scene GeoTIFF, or a folder of scenes (batch, resumable)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Label GeoTIFF (0/255, nodata 127); a folder for a batch."
    ),
    tile: Optional[int] = typer.Option(
        None,
        "--tile",
        help=f"Window size in pixels ({TILE_RANGE_HELP}).",
    ),
    overlap: int = typer.Option(
        option_default(_S, "overlap"),
        "--overlap",
        help="Window overlap in pixels (blended, seam-free; < --tile).",
    ),
    batch_size: int = typer.Option(
        option_default(_S, "batch_size"), "--batch-size", help="Windows per model call (1-1024)."
    ),
    threshold: float = typer.Option(
        option_default(_S, "threshold"),
        "--threshold",
        help="Probability threshold for the label (0-1).",
    ),
    labels: Optional[Path] = typer.Option(
        None,
        "--labels",
        help="Coarse labels to enhance: raster or GeoJSON/GPKG/SHP (a folder for a batch, matched by name).",
    ),
    layer: Optional[str] = LAYER,
    line_width: Optional[float] = _LINE_WIDTH,
    line_width_px: bool = _LINE_WIDTH_PX,
    labels_pixel_coords: bool = typer.Option(
        False,
        "--labels-pixel-coords",
        help="Read vector label coordinates as pixels: x = column, y = -row as QGIS shows a "
        "raster without georeference (labels mostly at y >= 0: y = row).",
    ),
    positive_values: Optional[str] = typer.Option(
        None,
        "--positive-values",
        help="Coarse-label value(s) that mean 'object' in class-index label rasters, e.g. 1 or "
        "2,3 (as enhance --positive-values).",
    ),
    prob: bool = typer.Option(
        False, "--prob", help="Also write <out>_prob.tif (blended probabilities)."
    ),
    prob_uint8: bool = typer.Option(
        False, "--prob-uint8", help="Probabilities as uint8 (p*254, nodata 255) instead of float32."
    ),
    quality_gpkg: bool = typer.Option(
        False, "--quality-gpkg", help="Also write <out>_tiles.gpkg: per-window quality polygons."
    ),
    pixel_coords: str = _PIXEL_COORDS,
    bands: Optional[str] = typer.Option(
        None,
        "--bands",
        help="Scene bands to use, e.g. 1,2,3 (default: all / automatic); a number may repeat: "
        "1,1 feeds band 1 to both bands of a two-band (e.g. VV+VH) model.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Batch: skip scenes the manifest lists as done."
    ),
    backend: str = typer.Option(option_default(_S, "backend"), "--backend", help="local | ray"),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="Ray cluster with --backend ray: auto, HOST:6379 or ray://HOST:10001 (default: a "
        "private local Ray).",
    ),
    workers: int = typer.Option(
        option_default(_S, "workers"), "--workers", help="Ray actors (each loads the model once)."
    ),
    device: str = typer.Option(
        option_default(_S, "device"), "--device", help="cpu | cuda | cuda:N"
    ),
    precision: str = typer.Option(
        option_default(_S, "precision"), "--precision", help=PRECISION_HELP
    ),
    max_memory: Optional[str] = typer.Option(
        None,
        "--max-memory",
        help="Memory budget for the model, e.g. 1.5G or 800M (default "
        f"{option_default(_S, 'max_memory') / 1e9:g}G): windows per forward are capped to fit "
        "it; a --tile whose single window does not fit is refused with the largest that does.",
    ),
    no_progress: bool = NO_PROGRESS,
    warp_to: Optional[str] = _WARP_TO,
    warp_method: str = _WARP_METHOD,
) -> None:
    """Predict a whole scene (any size) window by window; georeference kept, memory bounded."""
    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.data.run_model import BUILTIN_PREFIX
    from sam2elnet.data.warp import check_warp_options
    from sam2elnet.pipeline.scenes import SceneBatchResult, scene_job
    from sam2elnet.utils.paths import check_input, check_not_input, check_output

    opts = check_options(
        SceneOptions,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        threshold=threshold,
        line_width=line_width,
        backend=backend,
        workers=workers,
        device=device,
        precision=precision,
        pixel_coords=pixel_coords.lower(),
        max_memory=max_memory,
    )
    precision = opts.precision
    band_list = _bands(bands)
    warp_to = check_warp_options(warp_to, warp_method)
    if not model.startswith(BUILTIN_PREFIX):
        check_input(model, "--model", "model file")
    check_input(image, "--image", "scene file or folder")
    if labels is not None:
        check_input(labels, "--labels", "label file or folder")
    if image.is_dir():
        check_output(out, "dir", "--out")  # the rest: pipeline.scene_files.check_scene_outputs
    else:
        check_output(out, "file", "--out", inputs=[image, labels])
        for extra, what, on in (
            (PROB_SUFFIX, "probability map", prob),
            (TILES_SUFFIX, "per-window quality layer", quality_gpkg),
        ):
            if on:
                companion = scene_companion(out, extra)
                check_output(companion, "file", "--out")
                check_not_input(
                    companion, [image, labels], what=f"--out {out}: its {what} {companion}"
                )
    if opts.pixel_coords != "gdal" and not quality_gpkg:
        typer.echo("note: --pixel-coords applies to the --quality-gpkg windows; ignored", err=True)
    if resume and not image.is_dir():
        typer.echo(
            f"note: --resume skips the finished scenes of a folder (--image DIR); {image.name} "
            "is one scene, predicted from its first window",
            err=True,
        )
    created = image.is_dir() and not out.exists()
    res = scene_job(
        image,
        out,
        model,
        labels=labels,
        layer=layer,
        prob=prob,
        quality=quality_gpkg,
        resume=resume,
        backend=backend,
        address=address,
        workers=workers,
        device=device,
        precision=precision,
        max_memory=None if max_memory is None else opts.max_memory,
        progress=not no_progress,
        echo=typer.echo,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        threshold=threshold,
        prob_dtype="uint8" if prob_uint8 else "float32",
        line_width=line_width,
        line_width_unit=line_width_unit(line_width_px),
        labels_pixel_coords=labels_pixel_coords,
        quality_pixel_coords=opts.pixel_coords,
        coarse_positive_values=parse_positive_values(positive_values),
        bands=band_list,
        warp_to=warp_to,
        warp_method=warp_method,
    )
    if isinstance(res, SceneBatchResult):
        from sam2elnet.utils.batch import skip_line

        failed = res.nothing_done(image, discard=created)
        if failed is not None:
            raise failed
        typer.echo(res.summary())
        for note in res.notes():  # kinds of warning several scenes gave, each shown once
            typer.echo(f"note: {note}", err=True)
        if res.skipped_csv is not None:  # written by the batch (scene, reason)
            n_total = len(res.done) + len(res.skipped) + len(res.failed)
            typer.echo(skip_line(len(res.failed), n_total, res.skipped_csv))
        return
    for note in res.notes:
        if not shown_before(note):  # a warning line of the same text came already
            typer.echo(f"note: {note}", err=True)
    typer.echo(res.summary())


def _label_inputs(labels: Path) -> list[Path]:
    """The files ``elnet export`` may read from ``--labels``: the label rasters of it (or of an
    annotate run folder's ``labels/`` and ``rejected/``) and the default quality tables."""
    from sam2elnet.export.labels import find_labels

    files: list[Path] = []
    for d in (labels, labels / "labels", labels / "rejected"):
        try:
            files += find_labels(d)
        except DataError:  # not there or no labels: the export itself says so
            pass
    return [*files, *quality_csv_candidates(labels)]  # where export_labels looks


@app.command("export")
def export_cmd(
    labels: Path = typer.Option(
        ...,
        "--labels",
        help="Label raster or folder of them (GeoTIFF/PNG, 0/255 or 0/1), or an annotate/enhance "
        "output folder (its labels/ and rejected/).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output file (.geojson, .gpkg, .shp, or .json for COCO / Label Studio)."
    ),
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        help=f"{' | '.join(EXPORT_FORMATS)} (default: from --out; .json is COCO).",
    ),
    quality_csv: Optional[Path] = typer.Option(
        None,
        "--quality-csv",
        help="quality.csv of annotate/enhance (default: the one next to the labels).",
    ),
    simplify: Optional[float] = typer.Option(
        None,
        "--simplify",
        help="Douglas-Peucker tolerance in each label's own map units, not --crs's (metres for "
        "a UTM label, degrees for an EPSG:4326 one; pixels without CRS).",
    ),
    smooth: Optional[float] = typer.Option(
        None,
        "--smooth",
        help="Round staircase edges with this radius, in each label's own map units, not "
        "--crs's (metres for a UTM label, degrees for an EPSG:4326 one; pixels without CRS).",
    ),
    min_area: float = typer.Option(
        option_default(ExportOptions, "min_area"),
        "--min-area",
        help="Drop polygons smaller than this many pixels.",
    ),
    model_id: Optional[str] = typer.Option(
        None, "--model-id", help="Model identifier stored on every feature."
    ),
    images: Optional[Path] = typer.Option(
        None, "--images", help="Source images (folder or file) for --chips and COCO file names."
    ),
    chips: Optional[Path] = typer.Option(
        None,
        "--chips",
        help="Also write PNG image/mask chips to this folder (COCO then lists the chips).",
    ),
    chip_size: int = typer.Option(
        option_default(ExportOptions, "chip_size"),
        "--chip-size",
        help="Chip size in pixels (16-16384).",
    ),
    coco_rle: bool = typer.Option(
        False,
        "--coco-rle",
        help="COCO segmentations as RLE for every region (default: polygons, RLE for regions with holes).",
    ),
    category: Optional[str] = typer.Option(
        None,
        "--category",
        help="COCO category / Label Studio label / polygons' 'category' attribute (default: "
        "the run's domain, 'road' or "
        "'oil spill', when the labels come from an annotate/enhance run; else 'foreground').",
    ),
    polygons: bool = typer.Option(
        False,
        "--polygons",
        help="Label Studio: pre-annotations as polygons (default: brush masks).",
    ),
    document_root: Optional[Path] = typer.Option(
        None,
        "--document-root",
        help="Label Studio: LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT the image URLs are relative to "
        "(default: the folder of --out).",
    ),
    positive_values: Optional[str] = typer.Option(
        None,
        "--positive-values",
        help="Label value(s) that mean 'object' in class-index label rasters, e.g. 1 or 2,3.",
    ),
    pixel_coords: str = _PIXEL_COORDS,
    no_progress: bool = NO_PROGRESS,
    warp_to: Optional[str] = WARP_TO_EXPORT,
    warp_method: str = _WARP_METHOD,
    geojson_crs: str = typer.Option(
        option_default(ExportOptions, "geojson_crs"),
        "--geojson-crs",
        help="GeoJSON coordinates: source (default: the labels' CRS, named by a 'crs' member "
        "as GDAL and QGIS write it; EPSG code or WKT) or wgs84 (RFC 7946 lon/lat, reprojected; "
        "for web maps and strict RFC 7946 readers). The old spelling of --crs for GeoJSON.",
    ),
    crs: str = typer.Option(
        option_default(ExportOptions, "crs"),
        "--crs",
        help="CRS of the polygon layer (.gpkg, .shp, .geojson): image (default: the labels' "
        "CRS; labels in several CRSs are an error), wgs84 (EPSG:4326; GeoJSON by RFC 7946), or "
        "any CRS such as EPSG:32615, to put scenes of several UTM zones in one layer.",
    ),
    centre_lines: bool = typer.Option(
        False,
        "--centre-lines",
        help="Also write road centre lines (LineStrings with length_px / length_m): GeoPackage "
        "layer centre_lines, else OUT_centre_lines.geojson/.shp (default: on for road labels).",
    ),
    no_centre_lines: bool = typer.Option(
        False, "--no-centre-lines", help="No centre lines, even for road labels."
    ),
    review_count: Optional[int] = typer.Option(
        None,
        "--review-count",
        help="Review on a budget: send only the N labels of lowest predicted IoU (the run's "
        "quality.csv, or --quality-csv; ties by file name), in every format; the review record "
        "lists exactly them, so `elnet import` tells edited from unchanged.",
    ),
    max_quality: Optional[float] = typer.Option(
        None,
        "--max-quality",
        help="Send only labels whose predicted IoU is below Q (0-1); with --review-count: at "
        "most N of them.",
    ),
) -> None:
    """Export label rasters as polygons, COCO JSON or Label Studio tasks.

    Polygons as GeoJSON/GPKG/SHP with attributes; Label Studio tasks carry pre-annotations,
    least trusted first."""
    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.export.api import export_labels
    from sam2elnet.export.export_result import ExportResult
    from sam2elnet.export.labels import find_labels
    from sam2elnet.utils.paths import check_input, check_output

    geojson_crs, pixel_coords = geojson_crs.lower(), pixel_coords.lower()
    centre_lines = switch(centre_lines, no_centre_lines, "centre-lines")  # None: by category
    check_options(
        ExportOptions,
        pixel_coords=pixel_coords,
        fmt=fmt.lower() if fmt else None,
        simplify=simplify,
        smooth=smooth,
        min_area=min_area,
        chip_size=chip_size,
        geojson_crs=geojson_crs,
        review_count=review_count,
        max_quality=max_quality,
        flags={"fmt": "--format"},
    )
    if not labels.exists() and not labels.is_symlink():
        find_labels(labels)  # names a run's rejected/ when the run kept no label
    check_input(labels, "--labels", "label file or folder")
    for opt, path in (("--quality-csv", quality_csv), ("--images", images)):
        if path is not None:
            check_input(path, opt)
    check_output(out, "file", "--out", inputs=[*_label_inputs(labels), quality_csv, images])
    check_output(chips, "dir", "--chips")
    res = export_labels(
        labels,
        out,
        fmt,
        quality_csv=quality_csv,
        simplify=simplify,
        smooth=smooth,
        min_area_px=min_area,
        model_id=model_id,
        images=images,
        chips=chips,
        chip_size=chip_size,
        coco_rle=coco_rle,
        category=category,
        positive_values=parse_positive_values(positive_values),
        progress=not no_progress,
        warp_to=warp_to,
        warp_method=warp_method,
        geojson_crs=geojson_crs,
        pixel_coords=pixel_coords,
        crs=crs,
        centre_lines=centre_lines,
        polygons=polygons,
        document_root=document_root,
        review_count=review_count,
        max_quality=max_quality,
    )
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.summary())
    if isinstance(res, ExportResult) and res.review_record is not None:
        typer.echo(f"review record: {res.review_record}")  # what elnet import reads back
    if res.skipped:  # every format: the batch rule's last line
        from sam2elnet.utils.batch import skip_line

        done = res.n_labels if isinstance(res, ExportResult) else res.n_tasks
        n_total = done + len(res.skipped)
        typer.echo(skip_line(len(res.skipped), n_total, res.skipped_csv))
