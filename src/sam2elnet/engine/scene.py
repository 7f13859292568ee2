"""Whole-scene prediction for large GeoTIFFs: sliding windows, seam-free blending, streaming output.

Why it is built this way:

* **Bounded memory.** The scene is never read whole. Windows are read with rasterio windowed
  reads, predicted in small batches, and blended into accumulation buffers that hold only the
  current band of rows (``tile + 256`` rows x scene width). Rows that no later window can touch
  are flushed to the output GeoTIFF in block-aligned chunks and dropped. Memory therefore grows
  with the scene *width* times the tile height, never with its area.
* **Tiling-independent results.** Normalisation statistics are scene-global and fixed before the
  first window (a ``percentile`` config is frozen into ``fixed`` low/high values estimated from a
  decimated overview read), so neighbouring windows see identical pixel values; probabilities
  are blended with a strictly positive raised-cosine window (:func:`~sam2elnet.data.tiling.blend_weights`)
  so there are no seams and objects cut by one window are completed by its neighbour.
* **Georeference kept.** Outputs copy the source CRS and transform; nodata pixels of the source
  are nodata in the outputs.
* **Model-agnostic.** Everything talks to the
  :class:`~sam2elnet.engine.executors.WindowPredictor` protocol, so the same code runs with the
  real :class:`sam2elnet.engine.predictor.Predictor`, a deterministic fake in tests, or actors on a
  Ray cluster (:mod:`sam2elnet.engine.distributed`, via the ``executor`` argument).

Where the parts live: the executor contract in :mod:`sam2elnet.engine.executors`, the scene
inputs (normalisation, coarse labels) in :mod:`sam2elnet.engine.scene_inputs`, the option and
output-path checks in :mod:`sam2elnet.engine.scene_checks`, the blending
accumulator and writers in :mod:`sam2elnet.engine.scene_writer`; this module is the loop
inputs -> executor -> accumulator -> writer. Folders of scenes, model loading and the Ray front door
(``elnet scene``) are job front doors in :mod:`sam2elnet.pipeline.scenes`.

Output conventions (documented in ``docs/geospatial.md``):

* label GeoTIFF: uint8, **0 = background, 255 = foreground, 127 = nodata** (``nodata=127`` tag;
  :func:`sam2elnet.data.masks.read_mask` reads 127 as "ignore"), tiled 256 x 256, deflate;
* probability GeoTIFF (optional): float32 in [0, 1] with ``nodata=NaN``, or uint8 ``round(p*254)``
  with ``nodata=255`` and a ``scale`` of 1/254;
* per-tile quality GeoPackage (optional), layer ``tiles``: one polygon per predicted window.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.mask_values import LABEL_NODATA
from sam2elnet.data.naming import SCENE_SUFFIXES
from sam2elnet.data.tiling import Window, blend_weights, plan_windows, weight_sums
from sam2elnet.data.vector_shared import SharedVector
from sam2elnet.engine.executors import (
    BatchExecutor,
    LocalExecutor,
    SmoothingPredictor,
    WindowBatch,
    WindowPredictor,
    WindowScorer,
    run_batch,
)
from sam2elnet.engine.scene_checks import check_scene_options
from sam2elnet.engine.scene_inputs import SceneInputs, scene_gdal_env
from sam2elnet.engine.scene_norm import SceneNormalizer, make_scene_normalizer, unusable_scene_error
from sam2elnet.engine.scene_writer import (
    SceneWriter,
    StripAccumulator,
    TileRecords,
    maybe_atomic,
    maybe_open,
    output_profiles,
    windows_geo,
    write_quality,
)
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import (
    DEFAULT_LINE_WIDTH_UNIT,
    DEFAULT_WARP_METHOD,
    PIXEL_COORDS,
    LineWidthUnit,
)
from sam2elnet.options import SceneOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import atomic_path

__all__ = [
    "LABEL_NODATA",
    "SceneResult",
    "is_large_scene",
    "predict_scene",
    # re-exported from the modules they moved to (engine.executors, engine.scene_inputs)
    "BatchExecutor",
    "LocalExecutor",
    "SceneNormalizer",
    "SmoothingPredictor",
    "WindowPredictor",
    "WindowScorer",
    "make_scene_normalizer",
    "run_batch",
]


# --------------------------------------------------------------------------------------------
# results


@dataclass
class SceneResult:
    """Summary of one scene prediction."""

    out_path: Path
    prob_path: Path | None
    quality_path: Path | None
    height: int
    width: int
    n_windows: int
    n_predicted: int
    n_skipped_nodata: int
    foreground_fraction: float
    seconds: float
    quality_kind: str | None = None
    predicted_iou: float | None = None
    """Valid-pixel-weighted mean of the windows' predicted IoU (None without a scorer)."""
    notes: list[str] = field(default_factory=list)
    out_size: tuple[int, int] | None = None
    """(width, height) in px of the label written after ``--warp-to`` (None: the scene's grid)."""
    quality_flag: str = ""
    """Why the label is unusable (``constant image`` ...: ``keep_unusable``), else ``""``."""
    coarse_missed: bool = False
    """The ``coarse`` label, one raster for several scenes, misses this scene: it was predicted
    without a coarse label, as without ``coarse``
    (:attr:`~sam2elnet.engine.scene_inputs.SceneInputs.coarse_missed`)."""

    def summary(self) -> str:
        """One line for the CLI (the label's size; with ``--warp-to`` the scene's size too)."""
        size = f"{self.width}x{self.height} px"
        if self.out_size is not None:
            size = f"{self.out_size[0]}x{self.out_size[1]} px (warped; scene {size})"
        s = (
            f"{self.out_path}: {size}, {self.n_predicted}/"
            f"{plural(self.n_windows, 'window')} predicted ({self.n_skipped_nodata} all-nodata "
            "skipped), foreground "
            f"{self.foreground_fraction:.2%}, {self.seconds:.1f} s"
        )
        if self.prob_path:
            s += f"; probabilities {self.prob_path}"
        if self.quality_path:
            s += f"; per-tile quality ({self.quality_kind}) {self.quality_path}"
        return s


Meta = list[tuple[Window, np.ndarray]]


def _batches(
    inputs: SceneInputs, windows: list[Window], batch_size: int, bar: Any, skipped: list[int]
) -> Iterator[tuple[Meta, np.ndarray, np.ndarray | None]]:
    """Batches ``(meta, x (B,C,h,w) float32, coarse (B,h,w) float32 | None)`` of valid windows.

    ``meta`` lists each window with its valid mask; all-nodata windows are counted in
    ``skipped[0]`` and left out.
    """
    buf: list[tuple[Window, np.ndarray, np.ndarray, np.ndarray | None]] = []

    def stack() -> tuple[Meta, np.ndarray, np.ndarray | None]:
        meta = [(w, v) for w, _x, v, _c in buf]
        x = np.stack([b[1] for b in buf]).astype(np.float32, copy=False)
        c = None
        if inputs.coarse is not None:
            c = np.stack([b[3] for b in buf]).astype(np.float32)
        return meta, x, c

    for item in inputs.read_windows(windows):
        bar.update(1)
        if not item[2].any():
            skipped[0] += 1
            continue
        buf.append(item)
        if len(buf) == batch_size:
            yield stack()
            buf = []
    if buf:
        yield stack()
    bar.close()


def predict_scene(
    src_path: str | Path,
    dst_path: str | Path,
    predictor: Any,
    *,
    tile: int = 1024,
    overlap: int = option_default(SceneOptions, "overlap"),
    batch_size: int = option_default(SceneOptions, "batch_size"),
    threshold: float = option_default(SceneOptions, "threshold"),
    coarse: str | Path | SharedVector | None = None,
    prob_path: str | Path | None = None,
    prob_dtype: str = "float32",
    quality_gpkg: str | Path | None = None,
    quality_pixel_coords: str = PIXEL_COORDS[0],
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    labels_pixel_coords: bool = False,
    coarse_positive_values: tuple[float, ...] | None = None,
    bands: list[int] | None = None,
    executor: BatchExecutor | None = None,
    progress: bool = True,
    warp_to: str | None = None,
    warp_method: str = DEFAULT_WARP_METHOD,
    tags: dict[str, str] | None = None,
    keep_unusable: bool = False,
    progress_line: bool = True,
) -> SceneResult:
    """Predict a whole (large) raster scene window by window and write a label GeoTIFF.

    Every output is written atomically; with an ``executor`` the result is identical to the
    local run.

    Args:
        src_path: the scene raster (GeoTIFF, VRT, ...), any band count the predictor accepts.
        dst_path: label GeoTIFF to write (uint8: 0 background, 255 foreground, 127 nodata).
        predictor: a :class:`~sam2elnet.engine.executors.WindowPredictor` (the real
            :class:`sam2elnet.engine.predictor.Predictor` is one).
        tile: window size in px, at least :data:`~sam2elnet.options.TILE_MIN` (32).
        overlap: overlap of neighbouring windows in px, in [0, tile).
        batch_size: windows per predictor call (>= 1); fewer when the predictor's
            ``max_memory`` budget (``Predictor.fit_batch``) allows fewer windows per forward.
        threshold: probability threshold of the label, in [0, 1].
        coarse: coarse label for label enhancement (raster on any grid with a CRS, or
            GeoJSON/GeoPackage/Shapefile, also one already read:
            :class:`~sam2elnet.data.vector_shared.SharedVector`); None annotates from scratch,
            as does one raster for several scenes
            (:class:`~sam2elnet.data.vector_shared.SharedRaster`) whose footprint misses this
            scene (said once per run; ``SceneResult.coarse_missed``).
        prob_path: also write blended probabilities here (GeoTIFF).
        prob_dtype: ``"float32"`` (NaN nodata) or ``"uint8"`` (``round(p * 254)``, nodata 255).
        quality_gpkg: also write one footprint polygon per predicted window (layer ``tiles``)
            with ``predicted_iou`` (when the predictor has ``score_arrays``),
            ``foreground_fraction``, ``mean_entropy`` (uncertainty proxy, 0 = certain, 1 = coin
            flip), ``valid_fraction`` and ``row``/``col``; the fractions and the entropy are
            of the window's area in the written label and probabilities (blended where windows
            overlap), not of the window's own prediction.
        quality_pixel_coords: where those footprints go for a scene without a CRS: ``"gdal"``
            (x = column, y = row) or ``"qgis"`` (y = -row, over the scene in QGIS), as
            ``elnet export --pixel-coords`` (:data:`sam2elnet.option_values.PixelCoords`).
        line_width: width of vector line labels (roads), in ``line_width_unit``.
        line_width_unit: ``"map"`` or ``"px"``.
        labels_pixel_coords: vector label coordinates are pixels (x = column, y = -row, as
            QGIS places a raster without georeference; labels mostly at y >= 0: y = row).
        coarse_positive_values: object value(s) of a class-index coarse raster label
            (``--positive-values``).
        bands: 1-based band indexes to read (None: chosen from the predictor's band count).
        executor: runs the batches elsewhere (e.g.
            :class:`sam2elnet.engine.distributed.RayExecutor`); None runs them in this process.
        progress: show a progress bar (off: a line every 30 s and a closing line
            ``<scene>: N/N win in ...`` to the ``sam2elnet.progress`` logger).
        warp_to: ``utm`` or a CRS (``EPSG:32635``): the label and probability GeoTIFFs are then
            resampled onto a regular map grid instead of carrying the scene's GCPs
            (:func:`sam2elnet.data.warp.warp_to_map_grid`; checked before predicting).
        warp_method: GCP transformer for ``warp_to``: ``tps`` or ``polynomial``.
        tags: more metadata tags of the label (the model record, :mod:`sam2elnet.data.label_tags`).
        keep_unusable: write the label of a constant scene and say why in
            ``SceneResult.quality_flag`` instead of raising (annotate/enhance reject it);
            without it an unusable scene is refused before any window is predicted
            (:meth:`~sam2elnet.engine.scene_inputs.SceneInputs.check_usable`).
        progress_line: log that closing line at INFO; False: at DEBUG, for a caller that logs
            one summary line for many images (the folder jobs' window-by-window images).

    Returns:
        A :class:`SceneResult`.

    Raises:
        UserError: invalid options (tile, overlap, output names).
        DataError: unreadable scenes, an all-nodata scene, a constant one (constant image,
            constant after scaling; not with ``keep_unusable``), both before any window is
            predicted; band mismatch, bad labels.
    """
    import rasterio

    from sam2elnet.utils.progress import progress_bar

    t0 = time.perf_counter()
    src_path = Path(src_path)
    dst_path = Path(dst_path)
    check_scene_options(
        src_path,
        dst_path,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        prob_dtype=prob_dtype,
        coarse=coarse,
        prob_path=prob_path,
        quality_gpkg=quality_gpkg,
        pixel_coords=quality_pixel_coords,
    )
    if warp_to:
        from sam2elnet.data.warp import check_warpable

        check_warpable(src_path, warp_to, warp_method)
    with (
        rasterio.Env(**scene_gdal_env()),
        SceneInputs(
            src_path,
            predictor,
            bands=bands,
            coarse=coarse,
            line_width=line_width,
            line_width_unit=line_width_unit,
            pixel_coords=labels_pixel_coords,
            warp_to=warp_to,
            coarse_positive_values=coarse_positive_values,
            footprint_coords=quality_pixel_coords,
        ) as inputs,
    ):
        if not keep_unusable:  # an unusable scene is refused before any window is predicted
            inputs.check_usable()
        src, H, W = inputs.src, inputs.height, inputs.width
        windows = plan_windows(H, W, tile, overlap)
        th, tw = windows[0].height, windows[0].width
        batch_size = _memory_batch(predictor, batch_size, th * tw, inputs.coarse is not None)
        weights = blend_weights(th, tw, overlap)
        wy, wx = weight_sums(H, W, tile, overlap)
        label_profile, prob_profile = output_profiles(src, prob_dtype)
        tiles = TileRecords(threshold, keep_rows=quality_gpkg is not None)
        skipped = [0]
        bar = progress_bar(
            len(windows),
            src_path.name,
            "win",
            progress,
            leave=False,
            final_level=logging.INFO if progress_line else logging.DEBUG,
        )
        meta_queue: list[Meta] = []

        def work_items() -> Iterator[WindowBatch]:
            for meta, x, c in _batches(inputs, windows, batch_size, bar, skipped):
                meta_queue.append(meta)
                masks = [np.asarray(v) for _w, v in meta]  # each window's valid pixels
                full = all(bool(m.all()) for m in masks)
                yield x, c, None if full else np.stack(masks).astype(np.float32)

        run = executor if executor is not None else LocalExecutor(predictor)
        with atomic_path(dst_path) as tmp_label, maybe_atomic(prob_path) as tmp_prob:
            with (
                rasterio.open(tmp_label, "w", **label_profile) as dst,
                maybe_open(tmp_prob, prob_profile) as pdst,
            ):
                sink = SceneWriter(
                    src, dst, pdst, threshold, prob_dtype, wx, valid=inputs.valid, tiles=tiles
                )
                accum = StripAccumulator(H, W, th, sink.write_rows, wy)
                for probs, iou in run.map_batches(work_items()):
                    for i, (w, valid) in enumerate(meta_queue.pop(0)):
                        accum.add(w, probs[i], weights)
                        tiles.add(w, valid, None if iou is None else float(iou[i]))
                if tiles.n == 0:  # no valid window, though the overview had some: stale
                    stale = bool(src.overviews(inputs.bands[0]))
                    raise unusable_scene_error("all nodata", src_path, stale_overviews=stale)
                flag = inputs.quality_flag(keep_unusable)  # before the label is committed
                accum.flush_upto(H, final=True)
                if pdst is not None and prob_dtype == "uint8":
                    pdst.scales = (1.0 / 254.0,)
                dst.update_tags(
                    SAM2ELNET="label 0=background 255=foreground 127=nodata",
                    THRESHOLD=str(threshold),
                    SOURCE=src_path.name,
                    **(tags or {}),
                )
        qpath = None
        if quality_gpkg is not None:
            warp_crs = None
            if warp_to:
                from sam2elnet.data.warp import resolve_warp_crs

                warp_crs = resolve_warp_crs(warp_to, src)
            fp = windows_geo(src, quality_pixel_coords, warp_crs, warp_method)
            if fp.pixel_coords_note:
                inputs.notes.append(fp.pixel_coords_note)
            qpath = write_quality(
                Path(quality_gpkg),
                tiles.rows,
                fp,
                th,
                tw,
                scene=src_path,
                label=Path(dst_path),
                shape=(H, W),
            )

    out_size = None
    if warp_to:
        from sam2elnet.data.warp import warp_to_map_grid

        for path in (dst_path, prob_path):
            if path is not None:
                info = warp_to_map_grid(path, None, warp_to, method=warp_method)
                if info is not None:
                    inputs.notes.append(info.note())
                    if path == dst_path:
                        out_size = (info.width, info.height)
    return SceneResult(
        out_path=dst_path,
        prob_path=Path(prob_path) if prob_path else None,
        quality_path=qpath,
        height=H,
        width=W,
        n_windows=len(windows),
        n_predicted=tiles.n,
        n_skipped_nodata=skipped[0],
        foreground_fraction=sink.n_fg / max(sink.n_valid, 1),
        seconds=time.perf_counter() - t0,
        quality_kind=tiles.kind if quality_gpkg is not None else None,
        predicted_iou=tiles.predicted_iou,
        notes=inputs.notes,
        out_size=out_size,
        quality_flag=flag,
        coarse_missed=inputs.coarse_missed,
    )


def _memory_batch(predictor: Any, batch_size: int, pixels: int, coarse: bool) -> int:
    """``batch_size`` capped so a batch of windows stays within the predictor's memory budget
    (:meth:`sam2elnet.engine.predictor.Predictor.fit_batch`, ``--max-memory``); predictors
    without a budget (fakes, wrappers of other kinds) keep ``batch_size``."""
    fit = getattr(getattr(predictor, "predictor", predictor), "fit_batch", None)
    if fit is None:
        return batch_size
    return max(1, min(batch_size, int(fit(pixels, coarse=coarse))))


def is_large_scene(path: str | Path, max_pixels: int = 4096 * 4096) -> bool:
    """True for a GeoTIFF-like raster bigger than ``max_pixels`` (route it to :func:`predict_scene`).

    Cheap (reads the header only); False for PNG/JPEG and unreadable files, which the folder jobs
    then report in their usual way.
    """
    p = Path(path)
    if p.suffix.lower() not in SCENE_SUFFIXES or not p.is_file():
        return False
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(p) as src:
                return src.height * src.width > max_pixels
    except rasterio.errors.RasterioError:
        return False
