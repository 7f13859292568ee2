"""Folder jobs: enhance coarse labels and annotate images with a trained SAM2-ELNet, scoring each label.

* :func:`annotate_folder` / :func:`enhance_folder` are the folder jobs behind ``elnet annotate`` and
  ``elnet enhance``: unreadable images are skipped and listed, outputs are written atomically, a
  killed job continues with ``resume=True``, and ``min_quality`` / ``target_precision`` split the
  labels into ``labels/`` (kept) and ``rejected/``. ``sam2elnet.pipeline.jobs`` wraps them with the
  HTML report and the Ray backend.

The job's parts live beside it: :mod:`~sam2elnet.engine.folder_inputs` (images, label names,
coarse labels, resume state), :mod:`~sam2elnet.engine.folder_chunk` (the per-image work),
:mod:`~sam2elnet.engine.folder_job` (:class:`~sam2elnet.engine.folder_job.FolderJob`: chunks,
large images, CSV tables, summary), :mod:`~sam2elnet.engine.folder_settings` (the options both
jobs share, checked; the model loaded; the job run and its ``summary.json``),
:mod:`~sam2elnet.engine.folder_workers` (predictor and executor) and
:mod:`~sam2elnet.engine.change_maps`. The model side is
:class:`~sam2elnet.engine.predictor.Predictor`. Large GeoTIFF scenes are handled
by :mod:`sam2elnet.engine.scene`, which calls :meth:`~sam2elnet.engine.predictor.Predictor.predict_arrays` (or
:class:`~sam2elnet.engine.predictor.QualityScoringPredictor`) on already normalised windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.images_check import check_images_not_masks
from sam2elnet.data.naming import list_images, mask_key
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.data.vector_shared import (
    check_placeable,
    check_raster_placeable,
    share_raster,
    share_vectors,
    warn_no_width,
)
from sam2elnet.engine.coarse_rule import CoarseRule
from sam2elnet.engine.folder_inputs import (
    check_job_out,
    check_labels_not_images,
    label_index,
    split_samples,
)
from sam2elnet.engine.folder_job import FinishHook, FolderResult
from sam2elnet.engine.folder_settings import FolderSettings
from sam2elnet.engine.folder_workers import ExecutorFactory
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError, UserError
from sam2elnet.model.quality_features import FEATURE_NAMES
from sam2elnet.option_checks import api_option, option_default
from sam2elnet.option_values import DEFAULT_WARP_METHOD
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.batch import SkipLog, unlabelled_skips
from sam2elnet.utils.lock import output_lock

__all__ = ["annotate_folder", "enhance_folder"]


def _default(name: str) -> Any:
    """The declared default of option ``name`` of ``elnet annotate`` / ``elnet enhance``
    (:class:`~sam2elnet.options.FolderJobOptions`, where the CLI takes it from too)."""
    return option_default(FolderJobOptions, name)


def annotate_folder(
    model_path: str | Path | None,
    images: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    min_quality: float | None = None,
    target_precision: float | None = None,
    tau: float | None = None,
    resume: bool = False,
    on_finish: FinishHook | None = None,
    save_prob: bool = False,
    batch_size: int = _default("batch_size"),
    device: str = _default("device"),
    precision: str = _default("precision"),
    tta: int | None = None,
    progress: bool = True,
    predictor: Predictor | None = None,
    tile: int | None = _default("tile"),
    overlap: int = _default("overlap"),
    bands: Sequence[int] | None = None,
    split: str | Sequence[str] | None = None,
    max_memory: int | str | None = None,
    executor_factory: ExecutorFactory | None = None,
    warp_to: str | None = None,
    warp_method: str = DEFAULT_WARP_METHOD,
    echo: Callable[[str], None] | None = None,
    unusable_is_error: bool = True,
) -> FolderResult:
    """Label every image of ``images`` from scratch and score each label.

    With ``split`` (e.g. ``"test"``) ``images`` is a labelled dataset root (SOS, CHN6-CUG, generic
    split folders) and the images of that split are labelled (all sensors).

    Writes ``OUT/labels/`` (kept labels; all when no filter is given), ``OUT/rejected/`` (labels
    below the threshold), ``OUT/prob/`` (with ``save_prob``), ``OUT/quality.csv`` (image, label,
    predicted_iou, kept, uncertainty features), ``OUT/skipped.csv`` and ``OUT/summary.json``.

    ``max_memory`` (bytes, or a size such as ``"1.5G"``; default
    :data:`~sam2elnet.engine.memory.DEFAULT_MAX_MEMORY`) is the memory budget: images whose
    whole-image estimate exceeds it are predicted window by window (``tile``/``overlap``), with
    the same label name and georeference. ``tile`` None (default): the largest window of up to
    1024 px whose one window fits the budget (:func:`~sam2elnet.engine.window_size.resolve_tile`;
    said once in the log, recorded in ``summary.json`` as ``window``).

    ``executor_factory`` (see :data:`ExecutorFactory`; the pipeline's ``backend="ray"``) runs the
    per-image work (:func:`~sam2elnet.engine.folder_chunk.process_chunk`) and the windows of large images on other workers, each
    loading the model once; outputs are the same byte for byte as without it.

    ``warp_to`` (``utm`` or a CRS such as ``EPSG:4326``; :func:`sam2elnet.data.warp.parse_warp_crs`)
    warps every label and probability GeoTIFF onto a regular map grid in that CRS after it is
    written, as ``elnet scene --warp-to`` does (:func:`sam2elnet.data.warp.warp_to_map_grid`,
    GCP transformer ``warp_method``: ``tps`` or ``polynomial``; labels nearest, nodata kept).
    Images that cannot be warped (PNG/JPEG, no georeference, fewer than 3 GCPs) are skipped with
    the reason. An unknown CRS or method raises UserError before anything is read.

    ``model_path`` None with a ``predictor``: the predictor's own file (:attr:`Predictor.path`),
    or, for a model in memory (``Predictor(model, extra)``), none: ``summary.json`` then records
    ``"model": null`` and the model's ``model_config`` (:class:`~sam2elnet.model.ModelConfig`),
    and no ``model_id.json`` is written (the same for :func:`enhance_folder`).

    The precision that runs is logged once (``precision: ...``, to ``echo`` or the log at INFO)
    and recorded in ``summary.json`` as ``precision_resolved`` (``"bf16"`` / ``"32"``, what ran)
    and ``precision_option`` (what was asked for; :func:`~sam2elnet.engine.runtime.precision_record`).

    Raises:
        DataError: every image skipped (nothing left behind), or every label rejected as
            unusable whatever the filter (e.g. all-black tiles: ``nothing usable produced``, the
            run folder stays as the record); the same for :func:`enhance_folder`. A filter that
            keeps no label is no error. With ``unusable_is_error=False`` (the pipelines, which
            score such a run as it is) every label unusable is no error either: the result's
            ``unusable`` says what happened. Also a ``split`` the dataset does not have.
        UserError: ``images`` missing or holding no image, ``split`` with ``images`` not a
            dataset folder, invalid options (``min_quality`` / ``target_precision`` out of range, an
            unknown ``warp_to`` CRS or ``warp_method``, ``resume`` into a folder made with
            another model), or ``out_dir`` that is a file or one of the inputs; neither
            ``model_path`` nor ``predictor``, or ``executor_factory`` with a model in memory;
            before any image is read.
        CheckpointError: ``model_path`` is missing, damaged or not a sam2elnet model file.
        LockedError: another job is writing into ``out_dir``.
    """
    job = FolderSettings.from_arguments(locals())  # first: locals() are the arguments here
    job.check()
    samples = split_samples(images, split, "annotating") if split else None
    files = [s.image for s in samples] if samples is not None else list_images(images)
    check_images_not_masks(files, images)  # before the model loads
    check_job_out(
        out_dir, "annotate", files, model=job.model_path, save_prob=save_prob,
        masks=[s.mask for s in samples or ()], coarse=[s.coarse for s in samples or ()],
    )  # fmt: skip
    model = job.load()
    fields = ["image", "label", "predicted_iou", "kept", "quality_flag", "prob", *FEATURE_NAMES]
    return job.run(model, job.spec("annotate", model), fields, files)


def enhance_folder(
    model_path: str | Path | None,
    images: str | Path | Sequence[str | Path],
    labels: str | Path | None,
    out_dir: str | Path,
    *,
    skip_missing: bool = False,
    min_quality: float | None = None,
    target_precision: float | None = None,
    tau: float | None = None,
    resume: bool = False,
    on_finish: FinishHook | None = None,
    save_prob: bool = False,
    save_changes: bool = True,
    batch_size: int = _default("batch_size"),
    device: str = _default("device"),
    precision: str = _default("precision"),
    tta: int | None = None,
    progress: bool = True,
    predictor: Predictor | None = None,
    tile: int | None = _default("tile"),
    overlap: int = _default("overlap"),
    line_width: float | None = None,
    line_width_unit: str = _default("line_width_unit"),
    bands: Sequence[int] | None = None,
    positive_values: tuple[float, ...] | None = None,
    max_memory: int | str | None = None,
    split: str | Sequence[str] | None = None,
    executor_factory: ExecutorFactory | None = None,
    warp_to: str | None = None,
    warp_method: str = DEFAULT_WARP_METHOD,
    new_objects: str = _default("new_objects"),
    max_growth: float | None = None,
    layer: str | None = None,
    echo: Callable[[str], None] | None = None,
    unusable_is_error: bool = True,
) -> FolderResult:
    """Enhance the coarse label of every image (labels matched by name: ``<id>_sat.jpg`` pairs
    with ``<id>_mask.png``, ``<id>.png`` ...).

    With ``split`` (e.g. ``"test"``) ``images`` is a dataset root and that split's images are
    enhanced, exactly as :func:`annotate_folder` picks them; ``labels`` may then be None to use
    the split's own ``coarse/`` folders (DataError when the split has none).

    Writes ``OUT/labels/`` (enhanced labels, GeoTIFF with the source georeference when the image is
    a GeoTIFF), ``OUT/changes/`` (RGB change maps: green added, red removed; images on the window
    path get theirs strip by strip, a tiled GeoTIFF for GeoTIFF scenes), ``OUT/prob/`` (with
    ``save_prob``), ``OUT/quality.csv`` (+ added/removed pixel counts) and ``OUT/summary.json``.
    Images without a label are an error naming them unless ``skip_missing``. Line (and point)
    features of vector coarse labels (roads drawn as centre lines) are buffered to the total
    width ``line_width`` in ``line_width_unit``: ``"map"`` (units of the image's CRS; pixels for
    an image without georeference) or ``"px"``; without a width they burn 1 px wide (a warning
    says so). One vector file for many images (``labels`` a GeoPackage / GeoJSON / Shapefile) is
    read once for the job and placed on each image from that
    (:func:`~sam2elnet.data.vector_shared.share_vectors`); on images without georeference its
    features go to the image their ``source`` / ``label`` attribute names, in pixel coordinates,
    as ``elnet import --from vector`` places them, and on georeferenced images a feature naming
    another image is left out (:func:`~sam2elnet.data.vector_names.feature_images`; a file that
    can be placed so on none of the images: one UserError; on some: the others are skipped with
    the reason, :func:`~sam2elnet.data.vector_shared.check_placeable`; ``summary.json``
    ``coarse_images`` records the stems each such file served, for the report); ``layer``
    names the layer read from it (a file without it: one DataError listing its layers). Raster coarse
    labels are placed on the image grid by :func:`sam2elnet.data.raster.read_mask_on_grid` (by
    map position when both are georeferenced) and decoded with ``positive_values`` if given.
    One georeferenced raster for all images (``labels`` a GeoTIFF, a regional label:
    :class:`~sam2elnet.data.vector_shared.SharedRaster`) follows the rule of one vector file:
    an image its footprint misses is not skipped but, with one warning per run
    (:func:`~sam2elnet.data.grid_cover.footprint_missed`), predicted without a coarse label as
    :func:`annotate_folder` predicts it (its ``quality.csv`` row: ``has_coarse`` 0,
    ``coarse_agreement`` 0, no ``coarse`` or change columns;
    :class:`~sam2elnet.data.grid_cover.FootprintMissed`; on the window path too, its row then
    without ``coarse`` or change columns); an image without
    georeference is skipped with the reason (none georeferenced: one UserError).
    ``max_memory`` routes images too large to predict whole to the window-by-window path, as in
    :func:`annotate_folder`, and ``executor_factory`` spreads the work as there. ``warp_to`` /
    ``warp_method`` warp the enhanced labels and probability maps onto a map grid as in
    :func:`annotate_folder` (change statistics and change maps stay on the image grid).

    ``new_objects`` (``"drop"``, the default, or ``"keep"``) and ``max_growth`` (px, or None)
    tie each enhanced label to its coarse label (:class:`~sam2elnet.engine.coarse_rule.CoarseRule`):
    by default predicted objects that do not overlap the coarse label are removed, so an empty
    coarse label stays empty. Whole images only; images on the window path are enhanced without
    the rule (a warning names them). The precision is logged and recorded as in
    :func:`annotate_folder`.

    Raises:
        UserError: no ``labels`` and no ``split``; ``labels`` missing, neither a mask folder /
            file nor a vector file, one raster label without georeference for several images
            (or one with it for images none of which has one), the ``images`` folder
            itself or a folder of images instead of masks; a vector file whose features can be
            placed on none of the images; invalid options or outputs as for
            :func:`annotate_folder`.
        DataError: images without a label (unless ``skip_missing``), a ``split`` without
            ``coarse/`` labels, an unreadable vector file or a missing ``layer``; every image
            skipped or every label unusable (nothing produced), as for :func:`annotate_folder`.
        CheckpointError: ``model_path`` is missing, damaged or not a sam2elnet model file.
        LockedError: another job is writing into ``out_dir``.
    """
    job = FolderSettings.from_arguments(locals())  # first: locals() are the arguments here

    job.check(
        line_width=line_width, line_width_unit=line_width_unit, new_objects=new_objects,
        max_growth=max_growth,
    )  # fmt: skip
    rule = CoarseRule(new_objects, max_growth)  # type: ignore[arg-type]
    if labels is None and not split:
        raise UserError(
            f"enhance needs {api_option('labels')}: a folder or a vector file of coarse "
            "labels, or one georeferenced GeoTIFF for all the images; or "
            f"{api_option('split')} with a dataset whose split folders hold a coarse/ folder"
        )
    samples = split_samples(images, split, "enhancing") if split else None
    files = [s.image for s in samples] if samples is not None else list_images(images)
    check_images_not_masks(files, images)  # before the model loads
    if labels is not None:
        label_idx = label_index(labels, len(files))
        label_map = {f: label_idx[mask_key(f.name)] for f in files if mask_key(f.name) in label_idx}
        check_labels_not_images(label_map, labels)  # before the model loads
        where = str(labels)
    else:  # the split's own coarse/ folders
        label_map = {s.image: s.coarse for s in samples or () if s.coarse is not None}
        names = [split] if isinstance(split, str) else list(split or ())
        where = f"the coarse/ folders of split {','.join(names)}"
        if not label_map:
            raise DataError(
                f"{where} hold no coarse labels (no coarse/ folder next to images/); "
                f"give the coarse labels as {api_option('labels')}",
                images if isinstance(images, (str, Path)) else None,
            )
    missing = [f for f in files if f not in label_map]
    if missing and not skip_missing:
        names = ", ".join(f.name for f in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DataError(
            f"{plural(len(missing), 'image has', 'images have')} no label in {where}: {names}; "
            f"add the labels or pass {api_option('skip_missing=True', '--skip-missing')} to "
            "enhance only the others"
        )
    n_all, files = len(files), [f for f in files if f in label_map]
    check_job_out(
        out_dir, "enhance", files, model=job.model_path, labels=labels, save_prob=save_prob,
        save_changes=save_changes, coarse=list(label_map.values()),
        masks=[s.mask for s in samples or ()],
    )  # fmt: skip
    # --skip-missing: the images without a label are skipped (skipped.csv) and named in one note
    unlabelled = SkipLog("image")
    note = unlabelled_skips(unlabelled, missing, n_all, where)
    if not files:  # every image lacks its label: nothing produced, before the model loads
        with output_lock(out_dir):  # locked before its skip list is written, as the job's own
            raise unlabelled.nothing_done(n_all, csv=Path(out_dir) / SKIPPED_CSV)
    # one vector file for many images (--labels lines.gpkg): read once for the job, not per
    # image, and before the model loads (one that cannot be read: one error)
    shared = share_vectors(label_map.values(), strict=True, layer=layer, where=labels)
    served_stems: dict[str, list[str]] = {}  # the report places the file as this run did
    unplaced: list[str] = []  # features naming a tile not in --images: one note each file
    images_named = images if isinstance(images, (str, Path)) else "--images"  # as the user did
    for p, sv in shared.items():  # images without georeference: by name, or one error now
        served = [f for f, lab in label_map.items() if Path(lab) == sv.path]
        if sv.many:
            check_placeable(sv, served)  # some plain images: each skipped with the reason
            shared[p] = sv.serving(served)  # after: keeps the names check_placeable worked out
            served_stems[str(sv.path)] = sorted(f.stem for f in served)
            if lost := shared[p].unplaced_note(images_named):
                unplaced.append(f"{sv.path}: {lost}")
            warn_no_width(sv, line_width)  # lines 1 px wide: said once for the file
    # one raster for many images (--labels region.tif): a regional label, placed by map
    # position; an image its footprint misses is predicted without a coarse label (annotate)
    if labels is not None and (sr := share_raster(labels, files)) is not None:
        check_raster_placeable(sr, files)  # no image georeferenced: one error now
        shared[sr.path] = sr  # type: ignore[assignment]
    model = job.load()
    fields = [
        "image",
        "label",
        "predicted_iou",
        "kept",
        "quality_flag",
        "coarse",
        "changes",
        "prob",
        "added_px",
        "removed_px",
        "changed_frac",
        *FEATURE_NAMES,
    ]
    spec = job.spec(
        "enhance",
        model,
        save_changes=save_changes,
        line_width=line_width,
        line_width_unit=line_width_unit,
        positive_values=tuple(positive_values) if positive_values else None,
        rule=rule,
    )
    summary = {
        "coarse_rule": rule.as_dict(),
        "n_missing_labels": len(missing),
        "missing_labels": [str(m) for m in missing],
    }
    if note:  # printed as a ``note:`` line (cli.job_summary.print_folder)
        summary["missing_labels_note"] = note
    if unplaced:  # printed as ``note:`` lines (cli.job_summary.print_folder)
        summary["unplaced_features_notes"] = unplaced
    if layer is not None:  # the report draws the coarse labels from this layer too
        summary["coarse_layer"] = layer
    if served_stems:  # ... and places a shared file with the images this run served it to
        summary["coarse_images"] = served_stems
    coarse = {f: shared.get(lab, lab) for f, lab in label_map.items()}
    return job.run(
        model, spec, fields, files, coarse.__getitem__, summary, skipped=unlabelled.rows()
    )
