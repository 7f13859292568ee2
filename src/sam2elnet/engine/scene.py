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
* **Model-agnostic.** Everything talks to a :class:`WindowPredictor` protocol, so the same code
  runs with the real :class:`sam2elnet.engine.infer.Predictor`, a deterministic fake in tests, or
  actors on a Ray cluster (:mod:`sam2elnet.engine.distributed`, via the ``executor`` argument).

Output conventions (documented in ``docs/geospatial.md``):

* label GeoTIFF: uint8, **0 = background, 255 = foreground, 127 = nodata** (``nodata=127`` tag;
  :func:`sam2elnet.data.raster.read_mask` reads 127 as background), tiled 256 x 256, deflate;
* probability GeoTIFF (optional): float32 in [0, 1] with ``nodata=NaN``, or uint8 ``round(p*254)``
  with ``nodata=255`` and a ``scale`` of 1/254;
* per-tile quality GeoPackage (optional), layer ``tiles``: one polygon per predicted window.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sam2elnet.data.tiling import (
    Window,
    blend_weights,
    decimated_read,
    plan_windows,
    weight_sums,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "LABEL_NODATA",
    "WindowPredictor",
    "WindowScorer",
    "BatchExecutor",
    "LocalExecutor",
    "SceneNormalizer",
    "SceneResult",
    "SceneBatchResult",
    "make_scene_normalizer",
    "run_batch",
    "predict_scene",
    "predict_scenes",
    "scene_job",
    "is_large_scene",
    "load_scene_predictor",
    "QualityScoringPredictor",
    "SmoothingPredictor",
    "SCENE_SUFFIXES",
]

LABEL_NODATA = 127
"""Nodata value of label GeoTIFFs (0 = background, 255 = foreground)."""
PROB_U8_NODATA = 255
BLOCK = 256
"""Output GeoTIFF block size; rows are flushed in multiples of it."""
_COL_CHUNK = 16 * BLOCK
"""Columns converted and written at a time when flushing rows (bounds temporaries)."""
SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
_OVERVIEW_PIXELS = 1_000_000
_GDAL_ENV = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 128}
"""No .aux.xml side files; GDAL's block cache capped at 128 MB (its default, 5 % of RAM, would let
the cache of a 20,000 px scene's blocks grow past a gigabyte). ``GDAL_CACHEMAX`` in the
environment overrides the cap."""


# --------------------------------------------------------------------------------------------
# protocols


@runtime_checkable
class WindowPredictor(Protocol):
    """What scene prediction needs from a model: probabilities for a batch of normalised windows.

    ``batch`` is float32 ``(B, C, h, w)`` already normalised; ``coarse`` is float32 ``(B, h, w)``
    in {0, 1} (label enhancement) or ``None`` (automatic annotation). Returns float32 probabilities
    ``(B, h, w)``. ``in_bands`` is the band count the model takes. Optional attributes used when
    present: ``normalization`` (a :class:`~sam2elnet.data.normalize.NormalizationConfig`) and
    ``size_multiple`` (windows are reflect-padded to a multiple of it).
    """

    in_bands: int

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray: ...


@runtime_checkable
class WindowScorer(Protocol):
    """Optional: a predictor that also predicts each window's label quality (IoU with the truth)."""

    def score_arrays(
        self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray
    ) -> np.ndarray: ...


class BatchExecutor(Protocol):
    """Runs batches through a predictor and yields results *in submission order*.

    The in-order contract is what makes the streaming accumulator (and therefore the output)
    identical whichever executor runs the batches.
    """

    def map_batches(
        self, items: Iterable[tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]: ...


def run_batch(
    predictor: Any, batch: np.ndarray, coarse: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predict one batch: pad to the predictor's ``size_multiple``, predict, crop, optionally score.

    Returns ``(probs (B, h, w) float32, predicted_iou (B,) float32 | None)``.
    """
    b, _c, h, w = batch.shape
    mult = int(getattr(predictor, "size_multiple", 1) or 1)
    ph = (-h) % mult
    pw = (-w) % mult
    x, cx = batch, coarse
    if ph or pw:
        mode = "reflect" if (h > ph and w > pw) else "edge"
        x = np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
        if coarse is not None:
            cx = np.pad(coarse, ((0, 0), (0, ph), (0, pw)), mode=mode)
    probs = np.asarray(predictor.predict_arrays(x, cx), dtype=np.float32)
    if probs.ndim == 4 and probs.shape[1] == 1:
        probs = probs[:, 0]
    if probs.shape != (b, h + ph, w + pw):
        raise RuntimeError(
            f"predictor returned probabilities of shape {probs.shape}, expected {(b, h + ph, w + pw)}"
        )
    probs = np.ascontiguousarray(probs[:, :h, :w])
    iou = None
    score = getattr(predictor, "score_arrays", None)
    if callable(score):
        iou = np.asarray(score(batch, coarse, probs), dtype=np.float32).reshape(b)
    return probs, iou


class LocalExecutor:
    """Runs batches in this process, one after the other."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def map_batches(
        self, items: Iterable[tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for batch, coarse in items:
            yield run_batch(self.predictor, batch, coarse)


# --------------------------------------------------------------------------------------------
# normalisation fixed for the whole scene


@dataclass
class SceneNormalizer:
    """Scene-global normalisation: the same scaling for every window.

    ``cfg`` is a NormalizationConfig whose statistics are fixed (``fixed``/``stats`` method), or
    None for the built-in fallback (per-band ``low``/``high`` linear stretch). Nodata pixels become
    0 after scaling, exactly as :func:`sam2elnet.data.normalize.normalize` treats single images in
    training and in ``elnet annotate``, so a scene window looks to the model like a chip would.
    """

    low: np.ndarray
    high: np.ndarray
    cfg: Any = None
    bands: list[int] | None = None  # 1-based band indexes read from the source (None: all)

    def __call__(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.cfg is not None:
            from sam2elnet.data.normalize import normalize

            return normalize(data, self.cfg, valid=valid)
        xf = np.nan_to_num(data.astype(np.float32))
        scale = np.maximum(self.high - self.low, 1e-6)
        out = (xf - self.low[:, None, None]) / scale[:, None, None]
        np.clip(out, 0.0, 1.0, out=out)
        out *= valid[None]
        return out.astype(np.float32, copy=False)


def _overview(
    src: Any, bands: list[int], max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decimated (C, h, w) data and (h, w) valid mask of the scene (statistics, coarse checks)."""
    return decimated_read(src, bands, max_pixels or _OVERVIEW_PIXELS)


def _sample_valid(src: Any, bands: list[int], want: int = 200_000) -> np.ndarray:
    """Full-resolution sample of valid pixels (C, n), for scenes whose overview shows none."""
    step = max(1, src.height // 64)
    chunks: list[np.ndarray] = []
    got = 0
    from rasterio.windows import Window as RioWindow

    for r in range(0, src.height, step):
        win = RioWindow(0, r, src.width, 1)
        d = src.read(bands, window=win)
        v = src.dataset_mask(window=win) > 0
        if np.issubdtype(d.dtype, np.floating):
            v &= np.all(np.isfinite(d), axis=0)
        if v.any():
            chunks.append(d[:, v])
            got += int(v.sum())
            if got >= want:
                break
    if not chunks:
        return np.zeros((len(bands), 0))
    return np.concatenate(chunks, axis=1)


def make_scene_normalizer(
    src: Any, predictor: Any, bands: list[int] | None = None
) -> SceneNormalizer:
    """Freeze the predictor's normalisation into scene-global statistics.

    * ``percentile`` (per-image) configs become ``fixed`` with per-band low/high = the configured
      percentiles of a decimated overview read (after dB conversion when ``to_db``): per-window
      percentiles would give every tile a different brightness scale and visible seams.
    * ``fixed`` / ``stats`` configs are already global and are used as they are.
    * Without a config (simple predictors) the overview's 1st/99th percentiles stretch to [0, 1].

    Raises DataError when the scene holds no valid pixel at all.
    """
    cfg = getattr(predictor, "normalization", None)
    in_bands = getattr(predictor, "in_bands", None)
    if bands is None:
        bands = list(range(1, src.count + 1))
        if in_bands is not None and src.count != in_bands:
            sar = bool(getattr(cfg, "sar", False))
            if in_bands == 1 and src.count in (3, 4) and (sar or cfg is None):
                bands = [1]  # grey stored as RGB(A): the first band carries it
            elif src.count > in_bands and src.count == in_bands + 1 and _last_is_alpha(src):
                bands = list(range(1, in_bands + 1))
            else:
                raise DataError(
                    f"scene has {src.count} bands but the model takes {in_bands}; "
                    "select bands (--bands 1,2,3) or use a model trained on this sensor",
                    src.name,
                )
    data, valid = _overview(src, bands)
    if valid.any():
        pix = data[:, valid]
    else:
        pix = _sample_valid(src, bands)
        if pix.shape[1] == 0:
            raise DataError(
                "scene is entirely nodata (no valid pixel); nothing to predict. Check the file's "
                "nodata value or mask",
                src.name,
            )
    pix = pix.astype(np.float32)
    if cfg is not None:
        from sam2elnet.data.normalize import to_db

        method = getattr(cfg, "method", None)
        if method == "percentile":
            work = to_db(pix, cfg.db_floor) if getattr(cfg, "to_db", False) else pix
            lo, hi = np.percentile(work, [cfg.p_low, cfg.p_high], axis=1)
            cfg = cfg.model_copy(
                update={
                    "method": "fixed",
                    "low": [float(v) for v in lo],
                    "high": [float(v) for v in hi],
                }
            )
        return SceneNormalizer(low=np.zeros(0), high=np.zeros(0), cfg=cfg, bands=bands)
    lo, hi = np.percentile(pix, [1.0, 99.0], axis=1).astype(np.float32)
    return SceneNormalizer(low=lo, high=hi, cfg=None, bands=bands)


def _last_is_alpha(src: Any) -> bool:
    from rasterio.enums import ColorInterp

    return src.colorinterp[-1] == ColorInterp.alpha


# --------------------------------------------------------------------------------------------
# coarse labels


class _CoarseSource:
    """Coarse label per window: a raster (warped onto the scene grid if needed) or a vector file."""

    def __init__(
        self,
        path: str | Path,
        scene: Any,
        *,
        line_width: float | None = None,
        line_width_unit: str = "map",
        pixel_coords: bool = False,
    ) -> None:
        from sam2elnet.data.vector import VectorLabels, is_vector_path

        self.path = Path(path)
        self._ds = None
        self._vrt = None
        self._vec = None
        if not self.path.exists():
            raise DataError("coarse label file does not exist; check the path", self.path)
        if is_vector_path(self.path):
            self._vec = VectorLabels.from_file(
                self.path,
                crs=scene.crs,
                transform=scene.transform,
                height=scene.height,
                width=scene.width,
                line_width=line_width,
                line_width_unit=line_width_unit,
                pixel_coords=pixel_coords,
            )
            return
        import rasterio
        from rasterio.vrt import WarpedVRT

        try:
            self._ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(f"cannot open coarse label raster ({err})", self.path) from None
        ds = self._ds
        same_grid = ds.height == scene.height and ds.width == scene.width
        if same_grid and scene.crs is not None and ds.crs is not None:
            same_grid = ds.crs == scene.crs and ds.transform.almost_equals(scene.transform)
        if not same_grid:
            if scene.crs is None or ds.crs is None:
                raise DataError(
                    f"coarse label raster is {ds.width}x{ds.height} px but the scene is "
                    f"{scene.width}x{scene.height} and one of them has no CRS, so it cannot be "
                    "aligned; give a label on the scene's grid",
                    self.path,
                )
            from rasterio.enums import Resampling

            self._vrt = WarpedVRT(
                ds,
                crs=scene.crs,
                transform=scene.transform,
                width=scene.width,
                height=scene.height,
                resampling=Resampling.nearest,
            )
        reader = self._vrt or ds
        self._nodata = reader.nodata
        ov, _ = _overview(reader, [1], max_pixels=250_000)
        ov = ov[0]
        if self._nodata is not None:
            ov = ov[ov != self._nodata]
        self._binary01 = ov.size == 0 or float(ov.max()) <= 1

    def read(self, w: Window) -> np.ndarray:
        """uint8 0/1 coarse mask for window ``w``."""
        if self._vec is not None:
            return self._vec.rasterize(w)
        reader = self._vrt or self._ds
        a = reader.read(1, window=w.to_rasterio())
        keep = np.ones(a.shape, bool) if self._nodata is None else a != self._nodata
        fg = (a >= 1) if self._binary01 else (a > 127)
        return (fg & keep).astype(np.uint8)

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        if self._ds is not None:
            self._ds.close()


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

    def summary(self) -> str:
        """One line for the CLI."""
        s = (
            f"{self.out_path}: {self.width}x{self.height} px, {self.n_predicted}/{self.n_windows} "
            f"windows predicted ({self.n_skipped_nodata} all-nodata skipped), foreground "
            f"{self.foreground_fraction:.2%}, {self.seconds:.1f} s"
        )
        if self.prob_path:
            s += f"; probabilities {self.prob_path}"
        if self.quality_path:
            s += f"; per-tile quality ({self.quality_kind}) {self.quality_path}"
        return s


# --------------------------------------------------------------------------------------------
# the streaming accumulator


class _StripAccumulator:
    """Weighted-average blending over a rolling band of rows.

    Holds ``acc`` (sum of weight * probability) for rows ``[top, top + cap)`` only; the weight
    sum is the exact separable product ``wy[r] * wx[c]`` (:func:`~sam2elnet.data.tiling.weight_sums`),
    so it needs no buffer. Windows arrive in non-decreasing ``row_off``; before adding a window
    at row ``r`` every row ``< r`` is final and is flushed (in multiples of :data:`BLOCK` rows, so
    each compressed GeoTIFF block is written once). ``windows`` lists the predicted windows still
    overlapping the buffer, which tells the writer which pixels were predicted at all.
    """

    def __init__(
        self,
        height: int,
        width: int,
        tile_h: int,
        sink: Callable[[int, int, np.ndarray, np.ndarray, list[Window]], None],
        wy: np.ndarray,
    ) -> None:
        self.height = height
        self.width = width
        self.cap = min(height, tile_h + BLOCK)
        self.acc = np.zeros((self.cap, width), np.float32)
        self.wy = wy
        self.windows: list[Window] = []
        self.top = 0
        self.sink = sink

    def add(self, w: Window, probs: np.ndarray, weights: np.ndarray) -> None:
        self.flush_upto(w.row_off)
        r0 = w.row_off - self.top
        if r0 < 0 or r0 + w.height > self.cap:
            raise RuntimeError("windows must arrive in row order (internal error)")
        sl = (slice(r0, r0 + w.height), slice(w.col_off, w.col_off + w.width))
        self.acc[sl] += probs * weights
        self.windows.append(w)

    def flush_upto(self, row: int, final: bool = False) -> None:
        end = self.height if final or row >= self.height else (row // BLOCK) * BLOCK
        if end <= self.top:
            return
        n = end - self.top
        live = [w for w in self.windows if w.row_off < end]
        self.sink(self.top, end, self.acc[:n], self.wy[self.top : end], live)
        self.windows = [w for w in self.windows if w.row_off + w.height > end]
        keep = self.cap - n
        # shift the unfinished rows up in chunks of <= n rows: source and destination never
        # overlap, so numpy needs no full-size temporary copy
        for i in range(0, keep, n):
            j = min(i + n, keep)
            self.acc[i:j] = self.acc[i + n : j + n]
        self.acc[keep:] = 0.0
        self.top = end


class _SceneWriter:
    """Turns finished accumulator rows into label (and probability) GeoTIFF rows.

    Works in column chunks of :data:`_COL_CHUNK` pixels (a multiple of the block size) so its
    temporaries stay small however wide the scene is.
    """

    def __init__(
        self, src: Any, dst: Any, pdst: Any, threshold: float, prob_dtype: str, wx: np.ndarray
    ) -> None:
        self.src, self.dst, self.pdst = src, dst, pdst
        self.threshold = threshold
        self.prob_dtype = prob_dtype
        self.wx = wx
        self.n_fg = 0
        self.n_valid = 0

    def write_rows(
        self, top: int, end: int, acc: np.ndarray, wy: np.ndarray, windows: list[Window]
    ) -> None:
        from rasterio.windows import Window as RioWindow

        width = acc.shape[1]
        for c0 in range(0, width, _COL_CHUNK):
            c1 = min(c0 + _COL_CHUNK, width)
            rw = RioWindow(c0, top, c1 - c0, end - top)
            covered = np.zeros((end - top, c1 - c0), bool)
            for w in windows:
                r_a, r_b = max(w.row_off, top), min(w.row_off + w.height, end)
                c_a, c_b = max(w.col_off, c0), min(w.col_off + w.width, c1)
                if r_a < r_b and c_a < c_b:
                    covered[r_a - top : r_b - top, c_a - c0 : c_b - c0] = True
            prob = acc[:, c0:c1] / (wy[:, None] * self.wx[None, c0:c1])
            valid = covered & (self.src.dataset_mask(window=rw) > 0)
            fg = (prob >= self.threshold) & valid
            lab = np.full(prob.shape, LABEL_NODATA, np.uint8)
            lab[valid] = 0
            lab[fg] = 255
            self.dst.write(lab, 1, window=rw)
            self.n_fg += int(fg.sum())
            self.n_valid += int(valid.sum())
            if self.pdst is None:
                continue
            if self.prob_dtype == "uint8":
                pa = np.full(prob.shape, PROB_U8_NODATA, np.uint8)
                pa[valid] = np.round(np.clip(prob[valid], 0.0, 1.0) * 254).astype(np.uint8)
            else:
                pa = prob
                pa[~valid] = np.nan
            self.pdst.write(pa, 1, window=rw)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))


def _open_scene(path: Path) -> Any:
    import rasterio

    if not path.exists():
        raise DataError("scene does not exist; check the path", path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError("scene file is empty (0 bytes)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise DataError(
            f"cannot open scene ({err}); corrupt, truncated or not a raster", path
        ) from None


def predict_scene(
    src_path: str | Path,
    dst_path: str | Path,
    predictor: Any,
    *,
    tile: int = 1024,
    overlap: int = 128,
    batch_size: int = 4,
    threshold: float = 0.5,
    coarse: str | Path | None = None,
    prob_path: str | Path | None = None,
    prob_dtype: str = "float32",
    quality_gpkg: str | Path | None = None,
    line_width: float | None = None,
    line_width_unit: str = "map",
    labels_pixel_coords: bool = False,
    bands: list[int] | None = None,
    executor: BatchExecutor | None = None,
    progress: bool = True,
) -> SceneResult:
    """Predict a whole (large) raster scene window by window and write a label GeoTIFF.

    ``predictor`` follows :class:`WindowPredictor` (the real
    :class:`sam2elnet.engine.infer.Predictor` does). ``coarse`` is a coarse label (raster on any
    grid with a CRS, or GeoJSON/GeoPackage/Shapefile) for label enhancement; without it the model
    annotates from scratch. ``prob_path`` also writes blended probabilities (``prob_dtype``
    ``float32`` or ``uint8``). ``quality_gpkg`` writes one footprint polygon per predicted window
    with ``predicted_iou`` (when the predictor has ``score_arrays``), ``foreground_fraction``,
    ``mean_entropy`` (an uncertainty proxy, 0 = certain, 1 = coin flip) and ``row``/``col``.
    ``executor`` runs the batches elsewhere (e.g. :class:`sam2elnet.engine.distributed.RayExecutor`);
    the result is identical to the local run. Every output is written atomically.

    Raises DataError for unreadable scenes, an all-nodata scene, band mismatch, bad labels.
    """
    import rasterio
    from tqdm import tqdm

    t0 = time.perf_counter()
    src_path = Path(src_path)
    dst_path = Path(dst_path)
    if tile < 16:
        raise UserError(f"tile must be at least 16 px, got {tile}")
    if not 0 <= overlap < tile:
        raise UserError(f"overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    if prob_dtype not in ("float32", "uint8"):
        raise UserError(f"probability dtype must be float32 or uint8, got {prob_dtype!r}")
    if dst_path.suffix.lower() not in (".tif", ".tiff"):
        raise UserError(f"scene output must be a GeoTIFF (.tif), got {dst_path.name}")
    outs = [Path(p).resolve() for p in (dst_path, prob_path, quality_gpkg) if p is not None]
    if src_path.resolve() in outs or (coarse is not None and Path(coarse).resolve() in outs):
        raise UserError(
            f"an output would overwrite an input ({src_path.name}); choose another --out"
        )
    if len(set(outs)) != len(outs):
        raise UserError("the label, probability and quality outputs must be different files")
    if quality_gpkg is not None and Path(quality_gpkg).suffix.lower() != ".gpkg":
        raise UserError(f"per-tile quality output must be a GeoPackage (.gpkg), got {quality_gpkg}")

    notes: list[str] = []
    env = dict(_GDAL_ENV)
    if "GDAL_CACHEMAX" in os.environ:
        env.pop("GDAL_CACHEMAX")
    with rasterio.Env(**env):
        src = _open_scene(src_path)
        coarse_src: _CoarseSource | None = None
        try:
            H, W = src.height, src.width
            if src.crs is None:
                notes.append(
                    f"{src_path} has no CRS: outputs carry no georeference and vector labels / "
                    "tile footprints use pixel coordinates (x = column, y = row)"
                )
                log.warning(notes[-1])
            try:
                normalizer = make_scene_normalizer(src, predictor, bands)
            except rasterio.errors.RasterioError as err:
                raise DataError(
                    f"cannot read the scene ({err}); the file is corrupt or truncated", src_path
                ) from None
            band_idx = normalizer.bands or list(range(1, src.count + 1))
            if coarse is not None:
                coarse_src = _CoarseSource(
                    coarse,
                    src,
                    line_width=line_width,
                    line_width_unit=line_width_unit,
                    pixel_coords=labels_pixel_coords,
                )
                if coarse_src._vec is not None:
                    notes.extend(coarse_src._vec.notes)
            windows = plan_windows(H, W, tile, overlap)
            th, tw = windows[0].height, windows[0].width
            weights = blend_weights(th, tw, overlap)
            wy, wx = weight_sums(H, W, tile, overlap)
            src_is_float = np.issubdtype(np.dtype(src.dtypes[band_idx[0] - 1]), np.floating)

            profile = {
                "driver": "GTiff",
                "height": H,
                "width": W,
                "count": 1,
                "crs": src.crs,
                "transform": src.transform,
                "tiled": True,
                "blockxsize": BLOCK,
                "blockysize": BLOCK,
                "compress": "deflate",
                "BIGTIFF": "IF_SAFER",
            }
            label_profile = dict(profile, dtype="uint8", nodata=LABEL_NODATA, predictor=2)
            if prob_dtype == "uint8":
                prob_profile = dict(profile, dtype="uint8", nodata=PROB_U8_NODATA, predictor=2)
            else:
                prob_profile = dict(profile, dtype="float32", nodata=float("nan"), predictor=3)

            records: list[dict[str, Any]] = []

            def window_items() -> Iterator[
                tuple[Window, np.ndarray, np.ndarray, np.ndarray | None]
            ]:
                for w in windows:
                    try:
                        rw = w.to_rasterio()
                        data = src.read(band_idx, window=rw)
                        valid = src.dataset_mask(window=rw) > 0
                    except rasterio.errors.RasterioError as err:
                        raise DataError(
                            f"cannot read window at row {w.row_off}, col {w.col_off} ({err}); the "
                            "file is corrupt or truncated",
                            src_path,
                        ) from None
                    if src_is_float:
                        valid &= np.all(np.isfinite(data), axis=0)
                    if not valid.any():
                        yield w, data, valid, None  # skipped marker
                        continue
                    x = normalizer(data, valid)
                    c = coarse_src.read(w) if coarse_src is not None else None
                    yield w, x, valid, c

            skipped = [0]

            def batches() -> Iterator[
                tuple[list[tuple[Window, np.ndarray]], np.ndarray, np.ndarray | None]
            ]:
                buf: list[tuple[Window, np.ndarray, np.ndarray, np.ndarray | None]] = []
                bar = tqdm(
                    total=len(windows),
                    desc=src_path.name,
                    unit="win",
                    disable=not progress,
                    leave=False,
                )
                for item in window_items():
                    bar.update(1)
                    if not item[2].any():
                        skipped[0] += 1
                        continue
                    buf.append(item)
                    if len(buf) == batch_size:
                        yield _stack(buf)
                        buf = []
                if buf:
                    yield _stack(buf)
                bar.close()

            def _stack(buf):
                meta = [(w, v) for w, _x, v, _c in buf]
                x = np.stack([b[1] for b in buf]).astype(np.float32, copy=False)
                c = None
                if coarse_src is not None:
                    c = np.stack([b[3] for b in buf]).astype(np.float32)
                return meta, x, c

            meta_queue: list[list[tuple[Window, np.ndarray]]] = []

            def work_items() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
                for meta, x, c in batches():
                    meta_queue.append(meta)
                    yield x, c

            run = executor if executor is not None else LocalExecutor(predictor)
            n_pred = 0
            iou_acc = [0.0, 0.0]  # valid-pixel-weighted sum of window predicted IoUs, weight
            with atomic_path(dst_path) as tmp_label, _maybe_atomic(prob_path) as tmp_prob:
                with (
                    rasterio.open(tmp_label, "w", **label_profile) as dst,
                    _maybe_open(tmp_prob, prob_profile) as pdst,
                ):
                    sink = _SceneWriter(src, dst, pdst, threshold, prob_dtype, wx)
                    accum = _StripAccumulator(H, W, th, sink.write_rows, wy)
                    for probs, iou in run.map_batches(work_items()):
                        meta = meta_queue.pop(0)
                        for i, (w, valid) in enumerate(meta):
                            p = probs[i]
                            accum.add(w, p, weights)
                            n_pred += 1
                            if iou is not None:
                                nv = float(valid.sum())
                                iou_acc[0] += float(iou[i]) * nv
                                iou_acc[1] += nv
                            if quality_gpkg is not None:
                                pv = p[valid]
                                rec = {
                                    "row": w.row,
                                    "col": w.col,
                                    "row_off": w.row_off,
                                    "col_off": w.col_off,
                                    "valid_fraction": float(valid.mean()),
                                    "foreground_fraction": float((pv >= threshold).mean()),
                                    "mean_entropy": float(_entropy_bits(pv).mean()),
                                }
                                if iou is not None:
                                    rec["predicted_iou"] = float(iou[i])
                                records.append(rec)
                    if n_pred == 0:
                        raise DataError(
                            "scene is entirely nodata (every window is masked); nothing to predict",
                            src_path,
                        )
                    accum.flush_upto(H, final=True)
                    if pdst is not None and prob_dtype == "uint8":
                        pdst.scales = (1.0 / 254.0,)
                    dst.update_tags(
                        SAM2ELNET="label 0=background 255=foreground 127=nodata",
                        THRESHOLD=str(threshold),
                        SOURCE=src_path.name,
                    )
            qpath = None
            qkind = None
            if quality_gpkg is not None:
                qkind = (
                    "predicted_iou"
                    if any("predicted_iou" in r for r in records)
                    else "entropy proxy"
                )
                qpath = _write_quality(
                    Path(quality_gpkg), records, windows_geo(src), src.crs, th, tw
                )
        finally:
            if coarse_src is not None:
                coarse_src.close()
            src.close()

    fg_frac = sink.n_fg / max(sink.n_valid, 1)
    return SceneResult(
        out_path=dst_path,
        prob_path=Path(prob_path) if prob_path else None,
        quality_path=qpath,
        height=H,
        width=W,
        n_windows=len(windows),
        n_predicted=n_pred,
        n_skipped_nodata=skipped[0],
        foreground_fraction=fg_frac,
        seconds=time.perf_counter() - t0,
        quality_kind=qkind,
        predicted_iou=iou_acc[0] / iou_acc[1] if iou_acc[1] > 0 else None,
        notes=notes,
    )


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


def windows_geo(src: Any) -> Callable[[int, int, int, int], Any]:
    """Return a function mapping a pixel rectangle to its footprint polygon in the scene CRS.

    Without a CRS the footprint is in pixel coordinates (x = column, y = row), the same
    convention as vector labels and exports for non-georeferenced rasters.
    """
    from shapely.geometry import box

    if src.crs is None:
        return lambda r, c, h, w: box(c, r, c + w, r + h)
    t = src.transform

    def footprint(r: int, c: int, h: int, w: int) -> Any:
        xs, ys = zip(
            *(t @ (cc, rr) for cc, rr in ((c, r), (c + w, r), (c, r + h), (c + w, r + h))),
            strict=True,
        )
        return box(min(xs), min(ys), max(xs), max(ys))

    return footprint


def _write_quality(
    path: Path,
    records: list[dict[str, Any]],
    footprint: Callable,
    crs: Any,
    tile_h: int,
    tile_w: int,
) -> Path:
    """Write the per-tile quality layer (GeoPackage layer ``tiles``) atomically."""
    import geopandas as gpd

    geoms = [footprint(r["row_off"], r["col_off"], tile_h, tile_w) for r in records]
    gdf = gpd.GeoDataFrame(records, geometry=geoms, crs=crs)
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, layer="tiles", driver="GPKG", engine="pyogrio")
    return path


class _NullCtx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _maybe_atomic(path: str | Path | None) -> Any:
    return atomic_path(path) if path is not None else _NullCtx()


def _maybe_open(path: Path | None, profile: dict[str, Any]) -> Any:
    if path is None:
        return _NullCtx()
    import rasterio

    return rasterio.open(path, "w", **profile)


# --------------------------------------------------------------------------------------------
# folders of scenes, resumable


@dataclass
class SceneBatchResult:
    """What a folder run did: finished, skipped (already done on resume) and failed items."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    manifest: Path

    def summary(self) -> str:
        s = f"{len(self.done)} scenes predicted, {len(self.skipped)} already done, {len(self.failed)} failed"
        for k, v in self.failed.items():
            s += f"\n  failed {k}: {v}"
        return s + f"\nmanifest: {self.manifest}"


def _list_scenes(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(inputs, (str, Path)):
        p = Path(inputs)
        if not p.exists():
            raise DataError("scene folder or file does not exist; check the path", p)
        if p.is_dir():
            files = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SCENE_SUFFIXES
            )
            if not files:
                raise DataError(f"no scenes ({', '.join(SCENE_SUFFIXES)}) in the folder", p)
            return files
        return [p]
    return [Path(x) for x in inputs]


def _match_coarse(coarse: str | Path | None, scene: Path) -> Path | None:
    """Coarse label for ``scene``: a file is used as is; in a folder, the file with the same stem."""
    if coarse is None:
        return None
    c = Path(coarse)
    if not c.is_dir():
        return c
    from sam2elnet.data.vector import VECTOR_SUFFIXES

    for suf in (*SCENE_SUFFIXES, *VECTOR_SUFFIXES, ".png"):
        cand = c / f"{scene.stem}{suf}"
        if cand.exists():
            return cand
    raise DataError(f"no coarse label named {scene.stem}.* in the label folder", c)


def scene_outputs(out_dir: Path, scene: Path, prob: bool, quality: bool) -> dict[str, Path | None]:
    """Output paths of one scene in a batch run."""
    return {
        "label": out_dir / f"{scene.stem}.tif",
        "prob": out_dir / f"{scene.stem}_prob.tif" if prob else None,
        "quality": out_dir / f"{scene.stem}_tiles.gpkg" if quality else None,
    }


def predict_scenes(
    inputs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    predictor: Any,
    *,
    resume: bool = False,
    prob: bool = False,
    quality: bool = False,
    coarse: str | Path | None = None,
    progress: bool = True,
    **scene_kwargs: Any,
) -> SceneBatchResult:
    """Predict every scene of a folder (or list) into ``out_dir``, resumably.

    Outputs per scene ``S``: ``S.tif`` (labels), ``S_prob.tif`` (``prob``), ``S_tiles.gpkg``
    (``quality``). ``out_dir/manifest.jsonl`` records each finished or failed scene (fsync'd);
    with ``resume=True`` scenes recorded as done (whose outputs exist) are skipped, so a killed job
    continues where it stopped and ends with identical outputs (every file is written atomically).
    A scene that cannot be used (corrupt, all nodata, wrong bands) is recorded as failed with the
    reason and the batch goes on. ``coarse`` is a label file or a folder matched by file stem.
    Other keyword arguments go to :func:`predict_scene`.
    """
    from sam2elnet.utils.manifest import Manifest

    out = Path(out_dir)
    scenes = _list_scenes(inputs)
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "manifest.jsonl"
    if not resume and mpath.exists():
        mpath.unlink()
    manifest = Manifest.load(mpath)
    done: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    for scene in scenes:
        key = scene.name
        if resume and manifest.is_done(key):
            skipped.append(key)
            continue
        outs = scene_outputs(out, scene, prob, quality)
        try:
            res = predict_scene(
                scene,
                outs["label"],
                predictor,
                coarse=_match_coarse(coarse, scene),
                prob_path=outs["prob"],
                quality_gpkg=outs["quality"],
                progress=progress,
                **scene_kwargs,
            )
        except DataError as err:
            reason = str(err)
            log.warning("skipping %s: %s", scene, reason)
            manifest.mark_failed(key, reason)
            failed[key] = reason
            continue
        manifest.mark_done(
            key,
            [p for p in outs.values() if p is not None],
            foreground_fraction=round(res.foreground_fraction, 6),
            windows=res.n_predicted,
        )
        done.append(key)
    return SceneBatchResult(done=done, skipped=skipped, failed=failed, manifest=mpath)


# --------------------------------------------------------------------------------------------
# loading predictors and the job behind ``elnet scene``


class QualityScoringPredictor:
    """Adapter: a real :class:`~sam2elnet.engine.infer.Predictor` that also scores each window.

    ``Predictor.predict`` returns probabilities *and* the quality evaluator's predicted IoU from
    one forward (plus the evaluator's test-time views), so ``predict_arrays`` runs it and keeps
    the scores for the ``score_arrays`` call that :func:`run_batch` makes right after, on the same
    batch. Slower than plain ``predict_arrays`` by the TTA views; used only with ``--quality-gpkg``.
    """

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.in_bands = predictor.in_bands
        self.normalization = predictor.normalization
        self.fitted = bool(getattr(getattr(predictor, "evaluator", None), "fitted", False))
        self._scores: np.ndarray | None = None

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        c = None if coarse is None else list(coarse)
        probs, q = self.predictor.predict(list(batch), c)
        self._scores = np.asarray(q.predicted_iou, dtype=np.float32)
        return np.stack(probs).astype(np.float32)

    def score_arrays(
        self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray
    ) -> np.ndarray:
        if self._scores is None or len(self._scores) != len(batch):
            raise RuntimeError("score_arrays must follow predict_arrays on the same batch")
        out, self._scores = self._scores, None
        return out


BUILTIN_PREFIX = "builtin:"


def load_scene_predictor(
    model: str | Path,
    *,
    quality: bool = False,
    device: str = "cpu",
    precision: str = "bf16",
    batch_size: int = 4,
    tta: int | None = None,
    in_bands: int = 1,
) -> Any:
    """Load the predictor for scene jobs (picklable via functools.partial for Ray workers).

    ``model`` is a model file written by ``elnet train``, or ``builtin:smoothing`` for a model-free
    dry run (:class:`SmoothingPredictor`: checks tiling, georeference and outputs on a scene in
    seconds before committing CPU hours). ``quality`` wraps the real predictor so each window is
    also scored by the label quality evaluator.
    """
    m = str(model)
    if m.startswith(BUILTIN_PREFIX):
        name = m[len(BUILTIN_PREFIX) :]
        if name != "smoothing":
            raise UserError(f"unknown built-in model {name!r}; the only one is builtin:smoothing")
        return SmoothingPredictor(in_bands=in_bands, score=False)
    from sam2elnet.engine.infer import Predictor

    p = Predictor.from_file(m, device=device, precision=precision, batch_size=batch_size, tta=tta)
    return QualityScoringPredictor(p) if quality else p


def scene_job(
    image: str | Path,
    out: str | Path,
    model: str | Path,
    *,
    labels: str | Path | None = None,
    prob: bool = False,
    quality: bool = False,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    workers: int = 2,
    device: str = "cpu",
    precision: str = "bf16",
    progress: bool = True,
    **scene_kwargs: Any,
) -> SceneResult | SceneBatchResult:
    """What ``elnet scene`` does: one scene (``image`` a file) or a folder of scenes, locally or on Ray.

    For a single scene ``out`` is the label GeoTIFF; ``prob`` / ``quality`` write
    ``<out stem>_prob.tif`` / ``<out stem>_tiles.gpkg`` next to it. For a folder ``out`` is a
    folder (see :func:`predict_scenes`, resumable with ``resume``).
    """
    import functools

    if backend not in ("local", "ray"):
        raise UserError(f"unknown backend {backend!r}; use local or ray")
    batch_size = int(scene_kwargs.get("batch_size", 4))
    factory = functools.partial(
        load_scene_predictor,
        model,
        quality=quality,
        device=device,
        precision=precision,
        batch_size=batch_size,
    )
    predictor = factory()
    executor = None
    if backend == "ray":
        from sam2elnet.engine.distributed import RayExecutor

        executor = RayExecutor(factory, num_workers=workers, address=address)
    try:
        src = Path(image)
        if src.is_dir():
            return predict_scenes(
                src,
                out,
                predictor,
                resume=resume,
                prob=prob,
                quality=quality,
                coarse=labels,
                executor=executor,
                progress=progress,
                **scene_kwargs,
            )
        dst = Path(out)
        return predict_scene(
            src,
            dst,
            predictor,
            coarse=labels,
            prob_path=dst.with_name(f"{dst.stem}_prob.tif") if prob else None,
            quality_gpkg=dst.with_name(f"{dst.stem}_tiles.gpkg") if quality else None,
            executor=executor,
            progress=progress,
            **scene_kwargs,
        )
    finally:
        if executor is not None:
            executor.close()


# --------------------------------------------------------------------------------------------
# a deterministic stand-in model


class SmoothingPredictor:
    """Deterministic, translation-equivariant stand-in for a model: smooth, then threshold softly.

    ``p = sigmoid(gain * (gauss(x[0], sigma) [+ gauss(coarse)] / n - level))``. Used by the tests,
    the benchmark and dry runs of pipelines before a model is trained: it has the shape contract of
    the real predictor, costs little, and (being a local filter) must give the same result whatever
    the tiling, which is exactly what the tiling tests check. ``score=True`` adds a
    ``score_arrays`` that returns ``1 - mean entropy`` as a mock predicted IoU.
    """

    def __init__(
        self,
        in_bands: int = 1,
        sigma: float = 2.0,
        level: float = 0.5,
        gain: float = 12.0,
        score: bool = False,
        normalization: Any = None,
    ) -> None:
        self.in_bands = in_bands
        self.sigma = sigma
        self.level = level
        self.gain = gain
        self.normalization = normalization
        if score:
            self.score_arrays = self._score

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        x = batch.mean(axis=1).astype(np.float32)
        s = gaussian_filter(x, sigma=(0, self.sigma, self.sigma), mode="reflect")
        if coarse is not None:
            c = gaussian_filter(
                coarse.astype(np.float32), sigma=(0, self.sigma, self.sigma), mode="reflect"
            )
            s = 0.5 * (s + c)
        return (1.0 / (1.0 + np.exp(-self.gain * (s - self.level)))).astype(np.float32)

    def _score(self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray) -> np.ndarray:
        ent = _entropy_bits(probs).reshape(probs.shape[0], -1).mean(axis=1)
        return (1.0 - ent).astype(np.float32)
