"""``elnet export``: label rasters -> GeoJSON / GeoPackage / Shapefile, COCO JSON (+ chips) or
Label Studio tasks.

:func:`export_labels` picks the format, finds the labels and their quality table, and hands the
work to the format modules (:mod:`~sam2elnet.export.vector` polygons, :mod:`~sam2elnet.export.coco`
COCO JSON, :mod:`~sam2elnet.export.chips` image/mask tiles, :mod:`~sam2elnet.export.labelstudio`
Label Studio tasks, :func:`~sam2elnet.export.labelstudio.export_tasks` its route), and warps
first with ``--warp-to`` (:func:`~sam2elnet.export.warp_labels.export_warped`); what it wrote is an
:class:`~sam2elnet.export.export_result.ExportResult`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sam2elnet.data.run_model import run_model_path, run_model_version
from sam2elnet.export.centreline_layer import CentreLineLayer, centre_lines_path, wants_centre_lines
from sam2elnet.export.chips import iter_chips
from sam2elnet.export.coco import label_items, write_coco
from sam2elnet.export.export_result import ExportResult, skipped_list, write_skipped
from sam2elnet.export.label_screen import screen_labels
from sam2elnet.export.labelstudio import LabelStudioExport, export_tasks
from sam2elnet.export.layer_crs import merge_geojson_crs, parse_layer_crs
from sam2elnet.export.layer_files import FORMATS, format_of
from sam2elnet.export.option_scope import check_ranges, ignored_notes
from sam2elnet.export.review_pick import review_pick, review_quality_csv, with_selection
from sam2elnet.export.review_set import (
    check_review_record,
    review_set_path,
    write_review_set,
)
from sam2elnet.export.run_info import (
    default_category,
    label_tags,
    quality_images_kept,
    run_folder_notes,
    run_label_files,
)
from sam2elnet.export.tile_quality import check_tile_layers
from sam2elnet.export.vector import write_polygons
from sam2elnet.export.warp_labels import export_warped
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import DEFAULT_WARP_METHOD, GEOJSON_CRS, LAYER_CRS, PIXEL_COORDS
from sam2elnet.options import ExportOptions
from sam2elnet.utils.batch import drop_skip_list_if_nothing_done
from sam2elnet.utils.paths import check_not_input, check_output

__all__ = ["export_labels"]


def export_labels(
    labels: str | Path,
    out: str | Path,
    fmt: str | None = None,
    *,
    warp_to: str | None = None,
    warp_method: str = DEFAULT_WARP_METHOD,
    polygons: bool = False,
    document_root: str | Path | None = None,
    review_count: int | None = None,
    max_quality: float | None = None,
    **kwargs: Any,
) -> ExportResult | LabelStudioExport:
    """Export label rasters (a file or folder) as GeoJSON / GeoPackage / Shapefile, COCO JSON or
    Label Studio tasks.

    ``fmt="label-studio"`` (never from the suffix: ``.json`` is COCO) writes Label Studio tasks
    with :func:`~sam2elnet.export.labelstudio.export_label_studio` (``polygons``: polygon regions
    instead of brush masks; ``document_root``: the local-files root the image URLs are relative
    to; of ``kwargs`` it takes ``images``, ``quality_csv``, ``model_id``, ``category``,
    ``progress`` and ``positive_values``) and returns its
    :class:`~sam2elnet.export.labelstudio.LabelStudioExport`; ``warp_to`` then raises
    :class:`~sam2elnet.errors.UserError` (tasks stay on the image's pixel grid). An option given
    for a format it does not apply to (``polygons`` / ``document_root`` are Label Studio's,
    ``simplify`` a polygon layer's...: :data:`~sam2elnet.export.option_scope.OPTION_SCOPE`) gets
    one note and is ignored.

    ``warp_to`` (``utm`` or a CRS such as ``EPSG:32635``; vector formats only) first warps each
    label onto a regular map grid (:func:`sam2elnet.data.warp.warp_to_map_grid`, ``warp_method``
    tps | polynomial; in a temporary folder, the labels are not changed), so polygons of a
    GCP-only label (Sentinel-1 GRD) follow the GCP transformer exactly instead of the affine fit
    used without it; a label's ``<stem>_tiles.gpkg`` goes along for the quality join
    (:func:`~sam2elnet.export.tile_quality.carry_layer`; an older layer in pixel coordinates is
    placed on the warped grid). A label of a folder that cannot be warped is skipped, listed
    by its own path (:func:`~sam2elnet.export.warp_labels.warp_label_copies`). Other
    arguments: see :func:`_export_labels`; an ``out`` that is a folder or lies under a file,
    and a negative ``simplify`` / ``smooth`` /
    ``min_area_px`` raises :class:`~sam2elnet.errors.UserError` before anything is read
    (:func:`~sam2elnet.export.option_scope.check_ranges`). An ``out`` that is one of the input
    files (a label, for a Shapefile any sidecar, the quality table, an image file) raises
    :class:`~sam2elnet.errors.UserError`, and a polygon export of a label whose quality layer
    was made for another scene :class:`~sam2elnet.errors.DataError`
    (:func:`~sam2elnet.export.tile_quality.check_tile_layers`), before anything is written; a
    label scored in the quality table takes its quality from there, and its layer is neither
    checked nor carried.
    ``review_count`` / ``max_quality`` (every format): only the labels of lowest predicted IoU
    go out (:func:`~sam2elnet.export.review_pick.pick_for_review`; the result's ``selection``).
    ``model_id`` (the polygons' ``model_id`` attribute, COCO ``info.model_id``) defaults to the
    version of the run's model (:func:`~sam2elnet.data.run_model.run_model_version`, as the
    Label Studio export does; empty when nothing tells it).

    Raises:
        UserError: before anything is read or written: ``out`` a folder, under a file or one
            of the inputs; a format that is unknown or not told by ``out``'s suffix; an unknown
            ``crs`` or one ``geojson_crs`` contradicts; a negative ``simplify`` / ``smooth`` /
            ``min_area_px``; ``warp_to`` with Label Studio tasks or an unknown ``warp_to`` CRS;
            ``review_count`` / ``max_quality`` that select nothing or have no quality table;
            another export's review record in the way. Later: a tolerance spanning a whole label.
        DataError: ``labels`` missing or holding no label raster, an unreadable label or
            ``quality_csv``, labels in several CRSs with ``crs="image"``, a quality layer made
            for another scene, every label skipped (nothing produced:
            :class:`~sam2elnet.utils.batch.NothingDoneError`), or with ``warp_to`` a single
            label without georeference (:class:`~sam2elnet.data.warp.NoGeoreferenceError`).
    """
    check_output(out, "file", "--out")  # a folder there, or a file above it: UserError
    check_ranges({**kwargs, "review_count": review_count, "max_quality": max_quality})
    pick = review_pick(labels, kwargs.get("quality_csv"), review_count, max_quality)
    quality_csv = review_quality_csv(labels, kwargs.get("quality_csv"))  # given, else the run's
    inputs = [*run_label_files(labels), quality_csv, kwargs.get("images")]
    check_not_input(out, inputs)  # every format: before anything is written
    skipped = skipped_list(out, fmt)  # written when a label is skipped: never onto an input
    check_not_input(
        skipped.path, inputs, what=f"--out {out}: its list of skipped labels {skipped.path}"
    )
    if fmt is not None and fmt.lower() == "label-studio":
        kwargs["files"] = pick.files if pick is not None else None
        with drop_skip_list_if_nothing_done(skipped):
            return with_selection(
                export_tasks(labels, out, warp_to, polygons, document_root, kwargs), pick
            )
    kwargs["quality_csv"] = quality_csv
    kind = format_of(out, fmt)  # an unknown one: refused before anything is read or written
    # an unknown --crs, or one --geojson-crs contradicts: refused before anything is written
    target = parse_layer_crs(merge_geojson_crs(kwargs.get("crs") or LAYER_CRS[0],
                                               kwargs.get("geojson_crs") or GEOJSON_CRS[0], kind))  # fmt: skip
    record = review_set_path(out, kind)  # written next to a polygon layer or COCO file
    check_not_input(record, inputs, what=f"--out {out}: its review set {record}")
    if kwargs.get("chips") is None:  # kind: a FORMATS name or "coco" (format_of)
        check_review_record(out, kind)  # another export's record of one stem: not replaced
    if kind in ("geojson", "shp"):  # where centre lines would go (not known yet whether they do)
        lines = centre_lines_path(out, kind)
        check_not_input(lines, inputs, what=f"--out {out}: its centre-line file {lines}")
    # the model that made the labels, found from the labels given (not a --warp-to copy's
    # folder); its version also names the polygons' model_id unless --model-id gives one
    tags = label_tags(labels)  # each label's tags read once
    version = run_model_version(labels, tags=tags)
    kwargs["model_record"] = (run_model_path(labels, tags=tags), version)
    if not kwargs.get("model_id"):  # the Label Studio export's rule: the run's model
        kwargs["model_id"] = version
    if kwargs.get("category") is None:  # the run's (not a --warp-to copy's folder's), and why
        kwargs["run_category"] = default_category(labels, tags=tags)
    files = pick.files if pick is not None else run_label_files(labels)  # those that go out
    # labels with a quality.csv score: their per-window layers are not joined, so not checked
    rated: set[str] = set()
    if kind in FORMATS and kwargs.get("quality_csv") is not None:  # read once (one warning)
        kwargs["quality_table"] = quality_images_kept(kwargs["quality_csv"])
        rated = set(kwargs["quality_table"][0])
    if kind in FORMATS:  # a quality layer made for another scene: refused before any writing
        check_tile_layers(files, kwargs.get("positive_values"), rated)
    # options of other formats: one note each (OPTION_SCOPE)
    given = {**kwargs, "polygons": polygons, "document_root": document_root}
    kwargs["ignored"] = tuple(ignored_notes(kind, given))
    kwargs["crs"] = target  # parsed once (parse_layer_crs passes a parsed CRS through)
    with drop_skip_list_if_nothing_done(skipped):
        if not warp_to:
            return with_selection(_export_labels(labels, out, kind, files=files, **kwargs), pick)
        res = export_warped(
            _export_labels, labels, out, kind, files, rated, warp_to, warp_method, kwargs
        )
    return with_selection(res, pick)


def _export_labels(
    labels: str | Path,
    out: str | Path,
    fmt: str | None = None,
    *,
    quality_csv: str | Path | None = None,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    model_id: str | None = None,
    images: str | Path | None = None,
    chips: str | Path | None = None,
    chip_size: int = option_default(ExportOptions, "chip_size"),
    coco_rle: bool = False,
    category: str | None = None,
    strip_rows: int | None = None,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    geojson_crs: str = GEOJSON_CRS[0],
    pixel_coords: str = PIXEL_COORDS[0],
    crs: Any = None,
    model_record: tuple[Path | None, str | None] = (None, None),
    quality_table: tuple[dict[str, float], dict[str, Path], dict[str, bool]] | None = None,
    centre_lines: bool | None = None,
    ignored: tuple[str, ...] = (),
    run_category: tuple[str, str] | None = None,
    skipped: tuple[dict[str, str], ...] = (),
    files: list[Path] | None = None,
    originals: dict[Path, Path] | None = None,
) -> ExportResult:
    """Export label rasters (a file or folder) as GeoJSON / GeoPackage / Shapefile or COCO JSON.

    A polygon layer is written in one CRS, ``crs`` (``--crs``,
    :mod:`~sam2elnet.export.layer_crs`): ``"image"`` (default) the labels' own CRS, an error
    (:class:`~sam2elnet.errors.DataError`) for labels in several CRSs (scenes of several UTM
    zones); ``"wgs84"`` or any CRS rasterio reads (``"EPSG:3035"``) reprojects every label's
    polygons to it. GeoJSON keeps the labels' CRS and map coordinates by default (a
    GeoJSON 2008 ``crs`` member names the CRS, an EPSG URN or, for a CRS without an EPSG code,
    its WKT, as GDAL and QGIS write it); ``crs="wgs84"`` (or the older ``geojson_crs="wgs84"``)
    writes RFC 7946 WGS84 longitude/latitude (degrees) for web maps
    (:func:`~sam2elnet.export.vector.write_polygons`; an unknown value raises
    :class:`~sam2elnet.errors.UserError`, GeoJSON of labels without a georeference
    :class:`~sam2elnet.errors.DataError`).
    ``fmt`` defaults from ``out``'s suffix. Labels of a folder that cannot be read, and for a
    polygon layer those without georeference among georeferenced ones, are skipped, each with
    its reason in :func:`~sam2elnet.export.export_result.skipped_list_path`
    (``<out stem>_gpkg_skipped.csv``, ``<out stem>_geojson_skipped.csv``, ...;
    :mod:`~sam2elnet.export.label_screen`; every label
    skipped raises :class:`~sam2elnet.errors.UserError`). ``quality_csv`` (found by
    :func:`export_labels`: ``quality.csv`` next to the labels) adds each label's predicted
    quality (``quality_table``: that table as
    :func:`~sam2elnet.export.run_info.quality_images_kept` read it already, so it is read and
    warned about once). ``chips`` also writes
    ``chips/images/*.png`` + ``chips/masks/*.png`` tiles of ``chip_size`` (needs ``images``, the
    folder or file of the source images, unless the labels are scene outputs whose ``SOURCE`` tag
    names an image next to them); with ``fmt="coco"`` the COCO file then describes the chips.
    ``labels`` may be an annotate / enhance run folder: its ``labels/`` and ``rejected/`` are
    exported (a note says how many of each). ``category`` (COCO; the ``category`` attribute of
    polygons, next to ``status`` kept / rejected from ``quality.csv``) defaults to the run's domain
    (:func:`~sam2elnet.export.run_info.default_category`: ``"road"``, ``"oil spill"``, else
    ``"foreground"``). ``pixel_coords`` (``"gdal"`` / ``"qgis"``): where polygons of labels
    without a CRS go (:data:`sam2elnet.option_values.PixelCoords`). A polygon layer is
    accompanied by a record of the images it sent for review, named by the format (not the suffix:
    :func:`~sam2elnet.export.review_set.review_set_path`): ``<out stem>_review.json`` for a
    GeoPackage, ``<out stem>_geojson_review.json`` for GeoJSON, ``<out stem>_shp_review.json``
    for a Shapefile (:mod:`~sam2elnet.export.review_set`; ``elnet import --from vector`` makes
    masks for them); a COCO file (but one of chips) by ``<out stem>_coco_review.json``
    (``elnet import --from cvat`` / ``coco`` tell the images that come back unchanged). An
    export whose record would replace another export's raises :class:`~sam2elnet.errors.UserError`
    (:func:`~sam2elnet.export.review_set.check_review_record`).
    ``centre_lines`` (``--centre-lines`` / ``--no-centre-lines``; None: on when ``category`` is
    ``"road"``, :func:`~sam2elnet.export.centreline_layer.wants_centre_lines`): polygon exports also
    write the labels' road centre lines (:mod:`~sam2elnet.export.centrelines`; GeoPackage layer
    ``centre_lines``, else ``<out stem>_centre_lines<suffix>``), and the review set gets each
    image's road length. COCO: a note says they are not written. ``ignored``: notes on options
    given for another format (:func:`~sam2elnet.export.option_scope.ignored_notes`), first in
    the result's notes. ``run_category``: :func:`~sam2elnet.export.run_info.default_category`
    of the labels as :func:`export_labels` found it (None: looked up here). ``skipped``: labels
    skipped before (``--warp-to``: :func:`~sam2elnet.export.warp_labels.warp_label_copies`),
    listed first in that list. ``files``: the label files to export (a
    review selection, :mod:`~sam2elnet.export.review_pick`); None: every label of ``labels``.
    ``originals``: the label each of ``labels``'s files is a copy of (``--warp-to``), the name a
    skipped copy is listed and warned about by.
    """
    out = Path(out)
    fmt = format_of(out, fmt)
    geojson_crs = geojson_crs.lower()
    notes = list(ignored)
    files = run_label_files(labels) if files is None else files
    # one batch policy: an unreadable label file, or one without georeference among
    # georeferenced ones in a polygon layer, is skipped (listed in skipped_list_path)
    # and every check that can refuse the export (layer CRS, georeference, tolerances) runs
    # here, before anything (chips, the skipped list) is written
    target = parse_layer_crs(merge_geojson_crs(crs, geojson_crs, fmt))
    screened = screen_labels(
        files, labels, fmt, positive_values, target=target, simplify=simplify, smooth=smooth,
        skipped=skipped, names=originals,
    )  # fmt: skip
    files, skips = screened.files, screened.skips.items
    # a run folder: how many kept / rejected labels are exported (the skipped ones not counted)
    notes += run_folder_notes(Path(labels), files)
    if quality_table is None:  # not read by export_labels yet
        quality_table = (
            quality_images_kept(quality_csv) if quality_csv is not None else ({}, {}, {})
        )
    quality, image_names, kept = quality_table

    chip_items = None
    if chips is not None:
        chip_items = iter_chips(
            files,
            images,
            Path(chips),
            chip_size=chip_size,
            progress=progress,
            positive_values=positive_values,
            skipped=len(skips),  # counted in the chips bar and its closing line
        )

    if fmt == "coco":
        if category is None:
            category, why = run_category or default_category(labels)
            if why != "default":
                notes.append(f"category {category!r}: {why}; --category overrides")
            else:  # CVAT refuses annotations of a label its task does not have
                notes.append(
                    f"category {category!r}: nothing names the labels' domain (no run domain, "
                    "model or dataset record); the CVAT task needs a label of this name, or give "
                    "--category, e.g. --category 'oil spill'"
                )
        counted = _Counter(chip_items) if chip_items is not None else None
        sent: list[dict[str, Any]] | None = [] if counted is None else None
        items = (
            counted
            if counted is not None
            else label_items(
                files,
                images,
                positive_values,
                strip_rows=strip_rows,
                image_names=image_names or None,
            )
        )
        _n_images, n_annotations = write_coco(
            out,
            items,
            quality=quality,
            category=category,
            rle=coco_rle,
            model_id=model_id,
            progress=progress,
            total=None if counted is not None else len(files),  # chips: not known ahead
            unit="label" if counted is None else "chip",
            review=sent,
            skipped=0 if counted is not None else len(skips),  # chips: the chips bar's
        )
        record = None
        if sent is not None:  # which images went out: elnet import --from cvat / coco
            record = write_review_set(out, sent, fmt, model_record)
        n_chips = counted.n if counted is not None else 0
        return ExportResult(
            out, fmt, len(files), n_annotations, n_chips, notes, skips,
            write_skipped(out, screened.skips, fmt), review_record=record,
        )  # fmt: skip
    n_chips = sum(1 for _ in chip_items) if chip_items is not None else 0
    if category is None:  # the 'category' attribute: the COCO export's name
        category = (run_category or default_category(labels))[0]
    review: list[dict[str, Any]] = []
    lines = (
        CentreLineLayer(progress=progress) if wants_centre_lines(centre_lines, category) else None
    )
    if lines is not None and centre_lines is None:
        notes.append(
            f"road labels (category {category!r}): centre lines written too, "
            f"{'layer centre_lines' if fmt == 'gpkg' else centre_lines_path(out, fmt).name}"
            " (--no-centre-lines: polygons only)"
        )
    n_features = write_polygons(
        files,
        out,
        fmt,
        quality=quality,
        kept=kept,
        category=category,
        simplify=simplify,
        smooth=smooth,
        min_area_px=min_area_px,
        model_id=model_id,
        strip_rows=strip_rows,
        progress=progress,
        positive_values=positive_values,
        notes=notes,
        geojson_crs=geojson_crs,
        pixel_coords=pixel_coords,
        target_crs=target,
        image_names=image_names or None,
        review=review,
        layers_checked=True,  # export_labels ran check_tile_layers and warned
        centre_lines=lines,
        georefs=screened.georefs,  # read by screen_labels: no label opened twice
        skipped=len(skips),  # counted in the polygonise bar and its closing line
    )
    # which images went out (elnet import --from vector), and the model that made them
    record = write_review_set(out, review, fmt, model_record)
    res = ExportResult(
        out, fmt, len(files), n_features, n_chips, notes, skips,
        write_skipped(out, screened.skips, fmt), review_record=record,
    )  # fmt: skip
    if lines is not None:
        res.lines_out = centre_lines_path(out, fmt)
        res.n_lines = len(lines.rows)
        res.road_length_px = float(sum(e["road_length_px"] for e in review))
        metres = [e["road_length_m"] for e in review]
        res.road_length_m = float(sum(metres)) if metres and None not in metres else None
    return res


class _Counter:
    """Iterator wrapper that counts what passed through."""

    def __init__(self, it: Iterator[Any]) -> None:
        self.it = it
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for x in self.it:
            self.n += 1
            yield x
