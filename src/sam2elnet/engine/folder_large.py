"""A folder job's image too large to predict whole: window by window, into the same row and files.

:meth:`~sam2elnet.engine.folder_job.FolderJob.run` sends an image whose whole-image estimate is
over ``--max-memory`` here instead of to :func:`~sam2elnet.engine.folder_chunk.process_chunk`.
:func:`predict_large` runs the streaming sliding-window path
(:func:`~sam2elnet.engine.scene.predict_scene`) through the job's executor, so only the windows
in flight are in memory, and gives the image the outputs a whole image gets: its label in
``labels/`` or ``rejected/`` (a PNG for a PNG/JPEG input), the probability map, the enhance
change statistics and map, ``--warp-to``, and one ``quality.csv`` row; ``tiles/<image>.gpkg``
adds per-window quality for reviewers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.mask_values import LABEL_NODATA, LABEL_OBJECT
from sam2elnet.engine import memory
from sam2elnet.engine.change_maps import scene_changes
from sam2elnet.engine.executors import CallExecutor
from sam2elnet.engine.folder_chunk import (
    ChunkSpec,
    CoarseFile,
    check_warp_input,
    drop_counterpart,
    warp_outputs,
)
from sam2elnet.engine.folder_workers import CallWindows
from sam2elnet.engine.predictor import Predictor, QualityScoringPredictor
from sam2elnet.engine.scene import predict_scene
from sam2elnet.engine.scene_inputs import GCPS_KEPT_KIND
from sam2elnet.engine.window_size import WindowSize
from sam2elnet.errors import DataError
from sam2elnet.option_checks import api_option
from sam2elnet.utils.advice import plural
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.run_warnings import hidden, warn_once

log = logging.getLogger(__name__)

__all__ = ["WindowedImages", "predict_large"]


@dataclass
class WindowedImages:
    """What a folder job predicted window by window, for its one summary line
    (:meth:`summary`, printed without a bar, as every stage line) instead of a closing progress
    line per image (logged at DEBUG: ``elnet -v`` prints it), and for ``summary.json``'s
    ``n_windowed`` / ``n_windows``.

    ``n_images``: images predicted (not skipped); ``n_windows``: their windows predicted (all
    nodata ones left out); ``seconds``: wall time of those predictions, s.
    """

    n_images: int = 0
    n_windows: int = 0
    seconds: float = 0.0

    def summary(self, task: str, window: WindowSize, max_memory: int) -> str | None:
        """One line for the whole job, None when no image went window by window: ``annotate
        window by window: 3 images too large to predict whole within --max-memory 2.00 MB, 12
        windows of up to 64 px (--tile 64) in 0.4 s`` (``--tile auto``: chosen,
        :func:`~sam2elnet.engine.window_size.resolve_tile`). ``max_memory`` in bytes."""
        if not self.n_images:
            return None

        return (
            f"{task} window by window: {plural(self.n_images, 'image')} too large to predict "
            f"whole within {api_option('max_memory')} {memory.format_bytes(max_memory)}, "
            f"{plural(self.n_windows, 'window')} of up to {window.tile} px ({window.flag}) in "
            f"{self.seconds:.1f} s"
        )


def predict_large(
    p: Predictor,
    spec: ChunkSpec,
    executor: CallExecutor,
    skips: SkipLog,
    f: Path,
    name: str,
    coarse: CoarseFile | None,
    *,
    window: WindowSize,
    overlap: int,
    progress: bool,
    size: tuple[int, int] | None = None,
    tally: WindowedImages | None = None,
) -> dict[str, Any] | None:
    """Predict the large image ``f`` window by window into ``spec.out``.

    Args:
        p: the job's predictor (its ``max_memory`` sizes the window batches).
        spec: the job's output options (folder, threshold, probability maps, ``--warp-to``, ...).
        executor: the job's executor; the window batches run on it (this process or Ray actors).
        skips: the job's skip list; an image that cannot be used is added to it.
        f: the image; ``name``: its label's file name (unique in the job).
        coarse: its coarse label (enhance), None for annotate. One raster for several
            images (:class:`~sam2elnet.data.vector_shared.SharedRaster`) whose footprint
            misses ``f``: ``f`` is predicted, and its row written, as annotate's
            (``SceneResult.coarse_missed``), as a whole image is.
        window: the windows' side (:func:`~sam2elnet.engine.window_size.resolve_tile`: given
            or chosen); ``overlap``: theirs, px; ``progress``: show a progress bar.
        size: ``f``'s (height, width) px as the job's planner read it from the header
            (:meth:`~sam2elnet.engine.folder_chunk.ChunkPlanner.size`); None: unknown (the
            memory warning then assumes a whole window of ``window.tile`` px per side).
        tally: the job's count of images predicted window by window; the image is added to it
            once predicted, and its own closing progress line (``a.png: 4/4 win in ...``) is
            logged at DEBUG only (the job logs :meth:`WindowedImages.summary` once). None: that
            line is logged at INFO, as ``elnet scene`` does.

    Returns:
        The image's ``quality.csv`` row (``image``, ``label``, ``kept``, ``predicted_iou``,
        ``quality_flag``, ``foreground_frac``, [``coarse`` and change statistics], [``prob``]),
        or None when it was skipped (a ``--warp-to`` the image cannot take, a band count the
        model cannot take, an output GDAL cannot warp: the reason is in ``skips``).
    """
    out = spec.out
    tif = Path(name).with_suffix(".tif").name
    try:
        check_warp_input(spec, f)
    except DataError as err:
        skips.add(f, err)
        return None
    scorer = QualityScoringPredictor(p) if p.evaluator.fitted else p
    tile = window.tile
    tile_px = tile * tile
    _warn_window_memory(p, f, window, coarse is not None, size)
    # with --warp-to the outputs are warped below, after the change statistics: the scene's
    # warning that they keep the GCPs would be wrong
    quiet = hidden(GCPS_KEPT_KIND) if spec.warp_to else contextlib.nullcontext()
    try:
        with quiet:
            res = predict_scene(
                f,
                out / "labels" / tif,
                scorer,
                tile=tile,
                overlap=overlap,
                batch_size=p.fit_batch(tile_px, coarse=coarse is not None),
                coarse=coarse,
                line_width=spec.line_width,
                line_width_unit=spec.line_width_unit,
                coarse_positive_values=spec.positive_values,
                prob_path=(out / "prob" / tif) if spec.save_prob else None,
                quality_gpkg=out / "tiles" / f"{Path(tif).stem}.gpkg",
                progress=progress,
                executor=CallWindows(executor, scorer is not p),
                keep_unusable=True,  # its label goes to rejected/ with the flag, as whole images'
                progress_line=tally is None,  # a job summarises its images in one line
            )
    except DataError as err:  # incl. a band count the model cannot take: skip, go on
        skips.add(f, err)
        return None
    if tally is not None:
        tally.n_images += 1
        tally.n_windows += res.n_predicted
        tally.seconds += res.seconds
    if res.coarse_missed:  # a shared raster missing f: predicted, and its row, as annotate's
        coarse = None
    if coarse is not None and spec.rule is not None and spec.rule.active:
        warn_once(
            log,
            "--new-objects / --max-growth not applied to images predicted window by window",
            f"{f.name}: predicted window by window; --new-objects drop / --max-growth apply "
            "to whole images only and are not applied to this image",
        )
    changes: dict[str, Any] = {}
    if coarse is not None:  # enhance: the same change statistics / map as whole images
        changes = scene_changes(
            f,
            coarse,
            out / "labels" / tif,
            out / "changes" / Path(name).stem if spec.save_changes else None,
            png=name != tif,
            line_width=spec.line_width,
            line_width_unit=spec.line_width_unit,
            positive_values=spec.positive_values,
        )
    try:  # after the change statistics, which are counted on the scene grid
        warp_outputs(spec, [out / "labels" / tif, out / "prob" / tif])
    except DataError as err:
        for sub in ("labels", "prob"):
            (out / sub / tif).unlink(missing_ok=True)
        skips.add(f, err)
        return None
    if name != tif:  # PNG/JPEG input: the label keeps the whole-image path's PNG name
        _tif_to_png(out / "labels" / tif, out / "labels" / name)
        if spec.save_prob:
            _tif_to_png(out / "prob" / tif, out / "prob" / name, prob=True)
    score = 0.0 if res.quality_flag else res.predicted_iou  # as whole images: no label, 0
    kept = (spec.keeps(score) if score is not None else True) and not res.quality_flag
    if not kept:
        (out / "rejected").mkdir(parents=True, exist_ok=True)
        os.replace(out / "labels" / name, out / "rejected" / name)
    drop_counterpart(out, Path("labels" if kept else "rejected") / name)
    row: dict[str, Any] = {
        "image": str(f),
        "label": str(Path("labels" if kept else "rejected") / name),
        "kept": kept,
        "predicted_iou": float("nan") if score is None else score,
        "quality_flag": res.quality_flag,
        "foreground_frac": res.foreground_fraction,
    }
    if coarse is not None:
        row["coarse"] = str(coarse)
        row.update(changes)
    if spec.save_prob:
        row["prob"] = str(Path("prob") / name)
    return row


def _tif_to_png(tif: Path, png: Path, prob: bool = False) -> None:
    """Rewrite a scene-path output GeoTIFF (``tif``, removed afterwards) as the PNG the
    whole-image path writes for PNG/JPEG inputs: labels keep their uint8 values (0/255, 127 =
    nodata); float32 probabilities become ``round(p * 255)`` with nodata as 0. The uint8 label is
    read whole (1 byte per pixel, far below the network's working set)."""
    import rasterio

    from sam2elnet.data.writers import write_mask, write_probability

    with rasterio.open(tif) as ds:
        arr = ds.read(1)
    if prob:
        write_probability(png, np.nan_to_num(arr, nan=0.0))
    else:
        write_mask(png, arr == LABEL_OBJECT, nodata=arr == LABEL_NODATA)
    tif.unlink()


def _warn_window_memory(
    p: Predictor, f: Path, window: WindowSize, coarse: bool, size: tuple[int, int] | None
) -> None:
    """Warn (once per job) when one window of ``f`` does not fit ``p.max_memory``: the window is
    ``min(tile, side)`` px per side of ``size`` (the header's (height, width); an image smaller
    than ``--tile`` is one window of its own size, None: ``tile`` per side; ``tile`` is
    ``window.tile``, given or chosen: a chosen one fits unless none of the automatic sides
    does); when the model and runtime alone exceed the budget no ``--tile`` helps, and the
    warning says so and names the budget the image needs whole."""
    tile = window.tile
    h, w = (tile, tile) if size is None else (min(tile, size[0]), min(tile, size[1]))
    if p.fits_whole(h * w, coarse=coarse):
        return
    need = memory.format_bytes(p.whole_bytes(h * w, coarse=coarse))
    budget = memory.format_bytes(p.max_memory)
    if p.fits_whole(16 * 16, coarse=coarse):
        hint = "give a smaller --tile"
        if window.auto:  # none of the automatic sides fits: this is the smallest of them
            hint = f"{tile} px is the smallest automatic window: give a smaller --tile"
    else:
        base = memory.format_bytes(p.whole_bytes(0, coarse=coarse))
        hint = (
            f"the model and runtime alone take about {base} of it, so no --tile keeps to it: "
            f"give {api_option('max_memory')} {need} or more"
        )
    warn_once(
        log,
        "one window needs more than --max-memory",
        f"{f.name}: one {h} x {w} px window ({window.flag}) needs about {need}, more than "
        f"{api_option('max_memory')} {budget}; {hint}",
    )
