"""Folder evaluation (``elnet evaluate``): pair predicted masks with their ground truth and score them.

:func:`evaluate_folders` scans a prediction folder (or the output folder of ``elnet annotate`` /
``elnet enhance``) and a ground-truth folder, pairs files by
:func:`~sam2elnet.data.naming.mask_key`, scores each pair with the pure measures of
:mod:`sam2elnet.engine.metrics` (pixel scores, optional boundary F-score and road measures) and,
when the run's ``quality.csv`` is found (:mod:`sam2elnet.data.runfolder`), how well the predicted
label quality tracks the true IoU. What it reads is found by :mod:`sam2elnet.engine.eval_inputs`
(masks, pairs) and :mod:`sam2elnet.engine.eval_quality` (the runs' ``quality.csv``); its widths
are checked and recorded by :mod:`sam2elnet.engine.eval_widths`. The rows and the result it
returns, with their JSON / CSV writers, are in :mod:`sam2elnet.engine.eval_result`; reading an evaluation's pairs back as they
were counted (reports) in :mod:`sam2elnet.engine.eval_readback` (the result types are
re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from sam2elnet.data.naming import VECTOR_SUFFIXES
from sam2elnet.engine.eval_inputs import (
    check_not_images,
    group_name,
    masks_of,
    natural_key,
    no_pairs_error,
    pair_inputs,
)
from sam2elnet.engine.eval_quality import add_quality, quality_filter, quality_rows
from sam2elnet.engine.eval_result import EvaluationResult, ImageResult, aggregate, hd95_note
from sam2elnet.engine.eval_stream import (
    KeptTruths,
    both_unusable,
    pair_counts,
    read_binary_mask,
)
from sam2elnet.engine.eval_vector import PolygonFiles, VectorTruth, layer_check
from sam2elnet.engine.eval_widths import (
    buffer_option_words,
    buffer_px_options,
    check_widths,
    ground_options,
    one_buffer_m,
)
from sam2elnet.engine.metrics import QualityStats, quality_stats, scores
from sam2elnet.engine.road_buffer import pixel_sizes_m, recorded_buffer, road_buffers_px
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import (
    BOUNDARY_TOLERANCE_PX,
    DEFAULT_LINE_WIDTH_UNIT,
    GroupBy,
    LineWidthUnit,
    road_buffer_units,
)
from sam2elnet.options import EvaluateOptions
from sam2elnet.utils.advice import none_of, plural
from sam2elnet.utils.batch import SkipLog

log = logging.getLogger(__name__)

__all__ = [
    "GROUP_BY",
    "EvaluationResult",
    "ImageResult",
    "evaluate_folders",
    "read_binary_mask",
]


GROUP_BY: tuple[str, ...] = get_args(GroupBy)
"""Ways to split an evaluation into groups: ``folder`` = the ground truth's sub-folder."""


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    quality_csv: str | Path | None = None,
    boundary: bool = False,
    roads: bool | str = "auto",
    valid_dir: str | Path | None = None,
    *,
    tolerance_px: float = BOUNDARY_TOLERANCE_PX,
    road_buffer_px: float | None = None,
    road_buffer_m: float | None = None,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    truth_split: str | Sequence[str] | None = None,
    baseline_dir: str | Path | None = None,
    group_by: str = option_default(EvaluateOptions, "group_by"),
    worse_by: float = option_default(EvaluateOptions, "worse_by"),
    tau: float | None = None,
    ids: set[str] | None = None,
    resample: bool = True,
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    truth_layer: str | None = None,
) -> EvaluationResult:
    """Compare every predicted mask in ``pred_dir`` with its ground truth in ``truth_dir``.

    With ``truth_split`` (e.g. ``"test"``) ``truth_dir`` is a dataset root (SOS, CHN6-CUG, generic
    split folders) and the ground truth is that split's masks, found by
    :func:`sam2elnet.data.splits.select_split` (all sensors together).

    Files pair by :func:`~sam2elnet.data.naming.mask_key` (stem minus ``_mask``/``_sat``/``_label``/``_pred``/...), so
    ``10791_pred.png`` meets ``10791_mask.png``; images stored next to the masks (``<id>_sat.jpg``)
    are skipped. Folders without masks of their own are searched below (:func:`scan_masks`): a SOS
    ``train/`` folder with ``palsar/`` and ``sentinel/``, or a folder holding one enhance run per
    sensor; names must then be unique across the sub-folders. Files without a partner are listed in
    ``unmatched_pred`` / ``unmatched_truth`` and logged. ``valid_dir`` optionally holds masks of
    pixels to count (same pairing; missing -> all). Pixels the ground truth marks as "ignore"
    (GeoTIFF nodata, 255 in a 0/1 mask, 127 in this project's labels; see
    :func:`sam2elnet.data.mask_values.mask_encoding`) are never counted.
    ``positive_values`` names the object value(s) of class-index ground-truth masks.

    ``roads``: True adds the road measures (:func:`road_counts`), False leaves them out,
    ``"auto"`` (the default, as ``elnet evaluate`` without ``--roads`` / ``--no-roads``; it was
    False, so the Python API left out the road measures the CLI printed for the same road
    folders) adds them when the
    ground-truth masks are road networks (:func:`sam2elnet.data.domain.detect_domain`; the decision
    and its reason are in ``options["roads"]`` / ``options["roads_reason"]``), or when a road
    buffer is given (``road_buffer_px`` or ``road_buffer_m`` not None: the caller wants road
    measures, e.g. against polygon ground truth, which auto leaves off; the reason names the
    buffer and what auto alone would have decided). ``road_buffer_px``
    (> 0, px; None: :data:`~sam2elnet.option_values.ROAD_BUFFER_PX`, unless ``road_buffer_m``
    is given) is their buffer tolerance: a centre-line pixel within it of the other mask's
    centre line is matched (Wiedemann et al. 1998). ``road_buffer_m`` (> 0, ground metres; give
    one of the two, :func:`~sam2elnet.option_values.road_buffer_units`) takes its place: it becomes pixels per image, with each
    prediction's own ground pixel size, from its projected CRS and transform with the
    projection's scale factor at the image centre applied (:func:`sam2elnet.data.georef.pixel_size`;
    :func:`~sam2elnet.engine.road_buffer.road_buffers_px`; DataError for a prediction without
    one), so Web Mercator tiles at different latitudes, or images of different resolutions, are
    all matched within the same ground distance. The aggregate road measures are then the sums
    over images of the matched and total centre-line lengths, each image matched within its own
    buffer (completeness = sum of matched truth lengths / sum of truth lengths, and so on). The
    buffer is recorded in ``options`` (``road_buffer_px``: the buffer in px when it is one for
    every image, else None; None too with ``road_buffer_m`` and no road measures, as no image
    had a buffer in px; ``road_buffer_px_range``: [smallest, largest] px over the images;
    ``road_buffer_m``: the ground metres, given or from the one pixel size, None when not known;
    ``road_buffer_unit``: ``"px"`` | ``"m"``, the unit given; ``pixel_size_m`` and
    ``pixel_scale_factor``: the predictions' one ground pixel size and projection scale factor
    at the image centre, each None when not known or not one; ``pixel_size_m_range`` and
    ``pixel_scale_factor_range``: [smallest, largest] when every one is known,
    :func:`~sam2elnet.engine.eval_widths.ground_options`)
    and in every image row next to its road measures (``road_buffer_px``, that image's;
    ``road_buffer_m``, ``pixel_size_m`` and ``pixel_scale_factor`` when its prediction has a
    projected CRS). ``line_width`` (> 0; None: 1 px) is
    the total width line features of polygon-file truth are buffered to before rasterising, in
    ``line_width_unit`` ``"map"`` (units of the prediction's CRS) or ``"px"``. ``truth_layer``:
    the layer read from a polygon-file truth (:meth:`VectorTruth.truth_layer`; truth only).

    ``pred_dir`` may also be the output folder of ``elnet annotate`` / ``elnet enhance``: when it
    holds no masks itself, its ``labels/`` (kept) and ``rejected/`` sub-folders are read together.

    ``quality_csv`` defaults to :func:`~sam2elnet.data.runfolder.label_quality_csv` with
    ``strict=True`` (``pred_dir/quality.csv``, or the run
    folder's when ``pred_dir`` is ``OUT/labels``), else the ``quality.csv`` of every run folder found
    below ``pred_dir``; its rows (paired by the ``label`` file name, else the ``image`` name) add
    ``predicted_iou``/``kept`` to each image and produce :class:`QualityStats`, with the precision
    and recall of the kept labels at IoU >= ``tau`` (default: the tau of the run's
    ``--target-precision`` filter in its summary.json, else :class:`~sam2elnet.config.QualityConfig`'s).

    ``baseline_dir`` (e.g. the coarse labels given to ``elnet enhance``, or an ``elnet refine``
    output) is scored against the same truth and valid pixels, and compared image by image with
    :func:`sam2elnet.engine.comparison.compare` (``worse_by``: IoU drop counted as a loss, 0.02 =
    2 IoU points). Every evaluated image must have a baseline label (a missing one is an
    error); a baseline label that cannot be read or has another size skips its pair.
    ``group_by="folder"`` also reports every number per ground-truth sub-folder (SOS: per sensor).
    ``ids`` (pairing keys, e.g. a run's held-out ids) restricts the evaluation to those images.

    ``pred_dir`` and ``truth_dir`` may both be files: one pair, whatever the names. Polygon truth
    (GPKG / SHP / GeoJSON) is rasterised onto each prediction's grid; one polygon file as
    ``truth_dir`` with a prediction folder scores every prediction against the polygons in its
    footprint (none: all background; none on any prediction: DataError;
    :func:`~sam2elnet.engine.eval_inputs.pair_inputs`). A truth on another map grid (both with
    CRS + transform, or GCPs) is resampled onto the prediction's by map position, nearest
    neighbour; pixels outside its footprint are not counted; one warning line each, listed in
    ``resampled`` (``resample=False``: skipped; :func:`~sam2elnet.engine.eval_stream.pair_counts`).

    A pair that cannot be used is skipped, as in every batch command
    (:class:`~sam2elnet.utils.batch.SkipLog`): an unreadable, truncated or undecodable prediction,
    ground-truth, valid or baseline mask, or one whose size differs from its ground truth
    without a common georeference. One
    ``skipping FILE: reason`` warning names the file; ``skipped`` lists ``{"file", "reason"}``
    for each, and the other pairs are evaluated.

    Raises:
        UserError, DataError: a missing or empty folder, no pairs at all, evaluated images
            without a baseline label (the message names the files), every pair skipped (one
            error summarising the reasons), ``road_buffer_px`` and ``road_buffer_m`` both
            given, or a vector truth file that cannot be read (or lacks the layer asked for).
    """
    from sam2elnet.config import QualityConfig
    from sam2elnet.engine.comparison import compare
    from sam2elnet.utils.progress import abandon, progress_bar

    if group_by not in GROUP_BY:
        raise UserError(f"group_by {group_by!r} is not one of {', '.join(GROUP_BY)}")
    buffer_words = buffer_option_words(road_buffer_px, road_buffer_m)  # "" when neither given
    roads_asked = roads  # True (--roads), False (--no-roads) or "auto"
    try:  # one unit: (px, None) or (None, m)
        road_buffer_px, road_buffer_m = road_buffer_units(road_buffer_px, road_buffer_m)
    except ValueError as err:
        raise UserError(str(err)) from None
    check_widths(road_buffer_px, road_buffer_m, line_width, line_width_unit)
    pdir, tdir = Path(pred_dir), Path(truth_dir)
    runs: list[Path] = []
    truth = VectorTruth.truth_layer(tdir, truth_layer)  # its layer (one polygon file only)
    pairs = pair_inputs(pdir, tdir, truth_split, runs, truth)
    # every polygon file (truth, baseline, valid area) placed by one placement (eval_vector)
    vector = PolygonFiles(line_width=line_width, line_width_unit=line_width_unit)
    if (layer := pairs.layer or truth) is not None:  # one pair: its own file (--truth-layer)
        layer.own = pairs.one is not None
        vector.share(layer.path, layer)  # type: ignore[arg-type]
    if pairs.pred_layer is not None:  # one polygon layer of predictions (elnet export)
        vector.share(pairs.pred_layer)
    preds, truths, one = pairs.preds, pairs.truths, pairs.one
    valids = masks_of(valid_dir, "valid-mask", one, preds=preds)
    if ids is not None:
        preds = {k: v for k, v in preds.items() if k in ids}
        truths = {k: v for k, v in truths.items() if k in ids}
        if not preds or not truths:
            what = "prediction" if not preds else "ground-truth mask"
            raise DataError(
                f"{none_of(len(ids), 'listed id', f'names a {what}', f'names no {what}')}; "
                "check --ids",
                pdir if not preds else tdir,
            )
    keys = sorted(set(preds) & set(truths), key=natural_key)
    unmatched_pred = sorted((preds[k].name for k in set(preds) - set(truths)), key=natural_key)
    unmatched_truth = sorted((truths[k].name for k in set(truths) - set(preds)), key=natural_key)
    if not keys:
        raise no_pairs_error(pdir, tdir, pairs)
    check_not_images(preds, truths, keys)
    bases: dict[str, Path] = {}
    if baseline_dir is not None:
        bdir = Path(baseline_dir)
        bases = masks_of(bdir, "baseline", one, run_layout=True, preds=preds)
        missing = [k for k in keys if k not in bases]
        if missing:
            raise DataError(
                f"{len(missing)} of the {plural(len(keys), 'evaluated image')} "
                f"{'has' if len(missing) == 1 else 'have'} no baseline label "
                f"(e.g. {', '.join(missing[:5])}); the baseline must cover every evaluated image",
                bdir,
            )
    for given in (valid_dir, baseline_dir):  # one polygon file for the whole folder
        if one is None and given is not None and Path(given).is_file():
            vector.share(Path(given))
    if unmatched_pred or unmatched_truth:
        log.warning(
            "%s and %s have no partner (first: %s)",
            plural(len(unmatched_pred), "prediction"),
            plural(len(unmatched_truth), "ground-truth mask"),
            (unmatched_pred + unmatched_truth)[0],
        )

    from sam2elnet.data.domain import UNJUDGED, road_measures_wanted

    rasters = [truths[k] for k in keys if truths[k].suffix.lower() not in VECTOR_SUFFIXES]
    kept = KeptTruths()  # the truths the road decision reads: counted below without a 2nd read
    roads, roads_reason = (
        road_measures_wanted(roads, rasters, positive_values, read=kept.read)
        if rasters or roads != "auto"
        else (False, "auto: polygon ground truth (--roads for road measures)")
    )
    if not roads and buffer_words and roads_reason.startswith("auto"):  # a buffer: roads wanted
        auto = roads_reason.removesuffix(" (--roads for road measures)")
        roads, roads_reason = True, f"{buffer_words} given; {auto} alone would leave them off"
    notes: list[str] = []
    if not roads and buffer_words:  # a buffer given for measures that are off: say why
        why = "--no-roads" if roads_asked is False else roads_reason
        turn_on = "" if roads_asked is False else "; --roads turns them on"
        notes.append(f"{buffer_words} unused: road measures are off ({why}{turn_on})")
    elif not roads and roads_asked == "auto" and roads_reason.endswith(UNJUDGED):
        # one road scene, or two tiles: too few truths for auto to judge; said, not only logged
        notes.append(f"road measures: off ({roads_reason}; --roads turns them on)")

    # the pixel grid of each pair: the prediction's; the truth's for polygon predictions
    grids = {k: truths[k] if preds[k].suffix.lower() in VECTOR_SUFFIXES else preds[k] for k in keys}
    sizes = pixel_sizes_m(list(grids.values())) if roads else {}
    per_image: dict[Path, float] = {}  # metres: each prediction's buffer from its pixel size
    if roads and road_buffer_m is not None:
        per_image = road_buffers_px(road_buffer_m, sizes)

    qpaths, qrows = quality_rows(quality_csv, pdir.parent if pdir.is_file() else pdir, runs)
    qfilter = quality_filter(qpaths)
    if tau is None:
        tau = (qfilter or {}).get("tau") or QualityConfig().tau

    images: list[ImageResult] = []
    skips = SkipLog("file")  # the batch policy of every command: report, skip, go on
    bar = progress_bar(len(keys), "evaluate", "img", progress)
    try:
        for key in keys:
            buffer = per_image.get(Path(grids[key]), road_buffer_px)
            try:
                got = pair_counts(
                    preds[key], truths[key], valids.get(key), bases.get(key),
                    positive_values=positive_values,
                    tolerance_px=tolerance_px if boundary else None,
                    road_buffer_px=buffer if roads else None,
                    resample=resample, vector=vector, truth_read=kept.take(truths[key]),
                )  # fmt: skip
            except DataError as caught:  # names the file that cannot be used (or both)
                err = both_unusable(caught, preds[key], truths[key], positive_values)
                if len(keys) == 1:  # one pair: its own error, not a batch summary
                    raise err from None
                skips.add(err.path or preds[key], err)
                bar.update(1)
                continue
            res = ImageResult(key, preds[key], truths[key], got.confusion,
                              scores(got.confusion), got.boundary, got.roads,
                              resampled=got.resampled, valid_path=valids.get(key),
                              boundary_hd95=got.hd95_px,
                              positive_values=positive_values)  # fmt: skip
            if roads:  # the buffer in px, and in metres where the pixel size is known
                ps = sizes[Path(grids[key])]
                res.road_buffer = recorded_buffer(buffer, road_buffer_m, ps.metres)
                res.ground = None if ps.metres is None else (ps.metres, ps.scale)
            placed = (truths[key], preds[key], valids.get(key, truths[key]))
            if line_width is not None and any(f.suffix.lower() in VECTOR_SUFFIXES for f in placed):
                res.line_width = (line_width, line_width_unit)  # the report redraws the polygons
            if group_by == "folder":
                res.group = group_name(truths[key], tdir)
            if bases:
                res.baseline_path, res.baseline_confusion = bases[key], got.baseline
            add_quality(res, qrows.get(key))
            images.append(res)
            bar.update(1)
        shared_valid = one is None and valid_dir is not None and Path(valid_dir).is_file()
        if shared_valid and images:  # first: an area that counts nothing leaves no truth either
            layer_check(Path(valid_dir), [r.confusion for r in images], "valid",  # type: ignore[arg-type]
                        [r.name for r in images])  # fmt: skip
        if pairs.layer is not None and images:  # the shared polygon file met no prediction?
            layer_check(pairs.layer.path, [r.confusion for r in images], layer=pairs.layer.layer)  # type: ignore[arg-type]
        if pairs.pred_layer is not None and images:  # the same for a layer of predictions
            layer_check(pairs.pred_layer, [r.confusion for r in images], "prediction")
        shared_base = bases and one is None and Path(baseline_dir).is_file()  # type: ignore[arg-type]
        if shared_base and images:  # the same check for a shared baseline polygon file
            layer_check(Path(baseline_dir), [r.baseline_confusion for r in images], "baseline")  # type: ignore[arg-type]
    except Exception:  # an error stops it: the user sees the error line only, no bar or count
        abandon(bar)
        raise
    except BaseException:  # Ctrl-C: the bar (or its last line) ends where it stopped
        bar.close()
        raise
    if not images:  # every pair skipped: one error line, nothing written
        abandon(bar)
        raise skips.nothing_done(len(keys))
    skips.warn_held()  # the list is written by the caller (--csv), named by the closing line

    def _quality(rows: list[ImageResult]) -> QualityStats | None:
        with_q = [r for r in rows if r.predicted_iou is not None]
        if not with_q:
            return None
        return quality_stats(
            [r.predicted_iou for r in with_q],
            [r.metrics["iou"] for r in with_q],
            [bool(r.kept) for r in with_q],
            [r.confusion for r in with_q],
            source=", ".join(str(q) for q in qpaths),
            tau=tau,
        )

    def _compare(rows: list[ImageResult]) -> Any:
        if not bases:
            return None
        return compare(
            [r.name for r in rows],
            [r.confusion for r in rows],
            [r.baseline_confusion for r in rows],  # type: ignore[misc]
            worse_by=worse_by,
        )

    agg, total = aggregate(images, boundary, roads)
    if boundary and (left_out := hd95_note(images)):  # the mean HD95 is not the whole set's
        notes.append(left_out)
    if agg.get("iou") is not None:  # the stage's key number on its last line (--no-progress)
        extra = {"skipped": len(skips)} if skips else {}
        bar.set_postfix(pixel_iou=f"{agg['iou']:.3f}", **extra, refresh=False)
    bar.close()
    quality = _quality(images) if qrows else None
    if qrows and quality is None:
        log.warning("quality table %s names none of the evaluated images", qpaths[0])
    groups: dict[str, dict[str, Any]] = {}
    if group_by != "none":
        names = sorted({r.group for r in images}, key=natural_key)
        for name in names:
            rows = [r for r in images if r.group == name]
            groups[name] = {
                "aggregate": aggregate(rows, boundary, roads)[0],
                "comparison": _compare(rows),
                "quality": _quality(rows) if qrows else None,
            }
    return EvaluationResult(
        pred_dir=pdir,
        truth_dir=tdir,
        images=images,
        aggregate=agg,
        total=total,
        unmatched_pred=unmatched_pred,
        unmatched_truth=unmatched_truth,
        quality=quality,
        notes=notes,
        options={
            "boundary": boundary,
            "roads": roads,
            "roads_reason": roads_reason,
            "tolerance_px": tolerance_px,
            **buffer_px_options(images, road_buffer_px if road_buffer_m is None else None),
            "road_buffer_m": road_buffer_m if road_buffer_m is not None else one_buffer_m(images),
            "road_buffer_unit": "px" if road_buffer_m is None else "m",
            **ground_options(sizes),
            "line_width": line_width,
            "line_width_unit": line_width_unit,
            "valid_dir": None if valid_dir is None else str(valid_dir),
            "quality_csv": str(qpaths[0]) if qpaths else None,
            "quality_csvs": [str(q) for q in qpaths],
            "baseline_dir": None if baseline_dir is None else str(baseline_dir),
            "group_by": group_by,
            "worse_by": worse_by,
            "tau": tau,
            "ids": None if ids is None else len(ids),
            "resample": resample,
        },
        comparison=_compare(images),
        groups=groups,
        quality_filter=qfilter,
        skipped=skips.rows(),
        layer=pairs.layer,
    )
