"""Scene outputs: the seam-free blending accumulator, the GeoTIFF strip writer, per-tile quality.

* :class:`StripAccumulator` blends window probabilities over a rolling band of rows (memory ~
  scene width x tile height) and hands finished rows to a sink;
* :class:`SceneWriter` is that sink: it turns finished rows into label (and probability) GeoTIFF
  rows in block-aligned column chunks;
* :class:`TileRecords` collects per-window statistics, written by :func:`write_quality` as the
  per-tile quality GeoPackage (layer ``tiles``); its label statistics are counted on the rows as
  :class:`SceneWriter` writes them (the blended label of the window's area, neighbours included).

Output conventions (documented in ``docs/geospatial.md``): label GeoTIFF uint8, 0 = background,
255 = foreground, :data:`LABEL_NODATA` = nodata; probability GeoTIFF float32 with NaN nodata or
uint8 ``round(p * 254)`` with nodata 255 and scale 1/254.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.mask_values import LABEL_NODATA
from sam2elnet.data.tiling import Window
from sam2elnet.data.validity import dataset_valid
from sam2elnet.engine.executors import entropy_bits
from sam2elnet.option_values import DEFAULT_WARP_METHOD, PIXEL_COORDS
from sam2elnet.utils.atomic import atomic_path

__all__ = [
    "BLOCK",
    "LABEL_NODATA",
    "PROB_U8_NODATA",
    "SceneWriter",
    "StripAccumulator",
    "TileRecords",
    "chunk_part",
    "maybe_atomic",
    "maybe_open",
    "output_profiles",
    "WindowFootprints",
    "windows_geo",
    "write_quality",
]

PROB_U8_NODATA = 255
BLOCK = 256
"""Output GeoTIFF block size; rows are flushed in multiples of it."""
_COL_CHUNK = 16 * BLOCK
"""Columns converted and written at a time when flushing rows (bounds temporaries)."""


def chunk_part(w: Window, top: int, c0: int, height: int, width: int) -> tuple[slice, slice] | None:
    """The pixels of window ``w`` inside a chunk of ``height`` x ``width`` px whose first pixel is
    scene row ``top``, column ``c0`` (px), as (row, column) slices of the chunk; None when they do
    not overlap. The one overlap rule of :meth:`SceneWriter.write_rows` (which pixels a window
    covers) and :meth:`TileRecords.count_written` (which rows a chunk adds to)."""
    r_a, r_b = max(w.row_off, top), min(w.row_off + w.height, top + height)
    c_a, c_b = max(w.col_off, c0), min(w.col_off + w.width, c0 + width)
    if r_a >= r_b or c_a >= c_b:
        return None
    return slice(r_a - top, r_b - top), slice(c_a - c0, c_b - c0)


def output_profiles(src: Any, prob_dtype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """rasterio write profiles ``(label, probability)`` on the grid of ``src``.

    Tiled 256 x 256, deflate, BigTIFF when needed; the label is uint8 with nodata
    :data:`LABEL_NODATA`, the probability float32 (nodata NaN) or uint8 (nodata 255).

    Args:
        src: the open source scene (its size, CRS and transform, or its ground control points
            when it has only those, are copied).
        prob_dtype: ``"float32"`` or ``"uint8"``.
    """
    from sam2elnet.data.georef import dataset_georeference

    profile = {
        "driver": "GTiff",
        "height": src.height,
        "width": src.width,
        "count": 1,
        **dataset_georeference(src),  # CRS + transform, or the GCPs of a GCP-only scene
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
    return label_profile, prob_profile


# --------------------------------------------------------------------------------------------
# the streaming accumulator


class StripAccumulator:
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


class SceneWriter:
    """Turns finished accumulator rows into label (and probability) GeoTIFF rows.

    Works in column chunks of :data:`_COL_CHUNK` pixels (a multiple of the block size) so its
    temporaries stay small however wide the scene is. ``tiles`` (optional) is given each chunk as
    written (:meth:`TileRecords.count_written`), so the per-window statistics of the quality
    layer describe the label and probabilities in the files, blended where windows overlap.
    """

    def __init__(
        self,
        src: Any,
        dst: Any,
        pdst: Any,
        threshold: float,
        prob_dtype: str,
        wx: np.ndarray,
        valid: Callable[[Any], np.ndarray] | None = None,
        tiles: TileRecords | None = None,
    ) -> None:
        self.src, self.dst, self.pdst = src, dst, pdst
        self.tiles = tiles
        # pixels holding data in a rasterio window (SceneInputs.valid: the readers' one rule)
        self.valid = valid or (lambda rw: dataset_valid(src, False, window=rw))
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
                if (sl := chunk_part(w, top, c0, end - top, c1 - c0)) is not None:
                    covered[sl] = True
            prob = acc[:, c0:c1] / (wy[:, None] * self.wx[None, c0:c1])
            valid = covered & self.valid(rw)
            fg = (prob >= self.threshold) & valid
            lab = np.full(prob.shape, LABEL_NODATA, np.uint8)
            lab[valid] = 0
            lab[fg] = 255
            self.dst.write(lab, 1, window=rw)
            self.n_fg += int(fg.sum())
            self.n_valid += int(valid.sum())
            if self.tiles is not None:  # before the NaN fill below changes ``prob``
                self.tiles.count_written(top, c0, prob, valid, fg, windows)
            if self.pdst is None:
                continue
            if self.prob_dtype == "uint8":
                pa = np.full(prob.shape, PROB_U8_NODATA, np.uint8)
                pa[valid] = np.round(np.clip(prob[valid], 0.0, 1.0) * 254).astype(np.uint8)
            else:
                pa = prob
                pa[~valid] = np.nan
            self.pdst.write(pa, 1, window=rw)


class TileRecords:
    """Per-window statistics of a scene run: counts, the pixel-weighted predicted IoU, GPKG rows.

    A row's ``valid_fraction``, ``foreground_fraction`` and ``mean_entropy`` describe the window's
    area in the written outputs: :class:`SceneWriter` hands every chunk of finished rows to
    :meth:`count_written`, after windows overlapping it were blended, so where two windows
    disagree both rows count the blended label the user gets, not their own raw prediction.
    They are complete once the accumulator has flushed the last row of the window.

    Args:
        threshold: probability threshold of the label (for ``foreground_fraction``).
        keep_rows: collect one row per window for :func:`write_quality`.
    """

    def __init__(self, threshold: float, keep_rows: bool) -> None:
        self.threshold = threshold
        self.keep_rows = keep_rows
        self.n = 0
        self.rows: list[dict[str, Any]] = []
        self._iou = [0.0, 0.0]  # valid-pixel-weighted sum of window predicted IoUs, weight
        #: window -> its row, and its written [valid px, foreground px, entropy sum in bits]
        self._written: dict[Window, tuple[dict[str, Any], list[float]]] = {}

    def add(self, w: Window, valid: np.ndarray, iou: float | None) -> None:
        """Record window ``w`` (before any of its rows is written) with its (h, w) bool valid
        mask and predicted IoU (None: no scorer)."""
        self.n += 1
        if iou is not None:
            nv = float(valid.sum())
            self._iou[0] += iou * nv
            self._iou[1] += nv
        if self.keep_rows:
            rec = {
                "row": w.row,
                "col": w.col,
                "row_off": w.row_off,
                "col_off": w.col_off,
                "valid_fraction": 0.0,
                "foreground_fraction": float("nan"),  # until its rows are written
                "mean_entropy": float("nan"),
            }
            if iou is not None:
                rec["predicted_iou"] = iou
            self.rows.append(rec)
            self._written[w] = (rec, [0.0, 0.0, 0.0])

    def count_written(
        self,
        top: int,
        c0: int,
        prob: np.ndarray,
        valid: np.ndarray,
        fg: np.ndarray,
        windows: list[Window],
    ) -> None:
        """Count a written chunk into the rows of the recorded ``windows`` it overlaps.

        Args:
            top, c0: scene row and column (px) of the chunk's first pixel.
            prob: (h, w) float32 blended probabilities of the chunk, as written.
            valid: (h, w) bool, the chunk's pixels written as data (not nodata).
            fg: (h, w) bool, the chunk's pixels written as foreground.
            windows: the windows whose pixels the chunk may hold.
        """
        if not self.keep_rows:
            return
        ent: np.ndarray | None = None
        h, w_px = prob.shape
        for w in windows:
            entry = self._written.get(w)
            sl = chunk_part(w, top, c0, h, w_px)
            if entry is None or sl is None:
                continue
            if ent is None:  # once per chunk: each written pixel's entropy is computed once
                ent = np.where(valid, entropy_bits(prob), 0.0)
            rec, sums = entry
            sums[0] += int(valid[sl].sum())
            sums[1] += int(fg[sl].sum())
            sums[2] += float(ent[sl].sum(dtype=np.float64))
            rec["valid_fraction"] = sums[0] / (w.height * w.width)
            if sums[0] > 0:
                rec["foreground_fraction"] = sums[1] / sums[0]
                rec["mean_entropy"] = sums[2] / sums[0]

    @property
    def predicted_iou(self) -> float | None:
        """Valid-pixel-weighted mean predicted IoU of the windows (None without a scorer)."""
        return self._iou[0] / self._iou[1] if self._iou[1] > 0 else None

    @property
    def kind(self) -> str:
        """What the quality layer holds: ``predicted_iou`` or the ``entropy proxy``."""
        return "predicted_iou" if any("predicted_iou" in r for r in self.rows) else "entropy proxy"


class WindowFootprints:
    """Footprint polygons of scene windows in the frame the scene's labels are exported in
    (:attr:`crs`), for the ``--quality-gpkg`` layer; build with :func:`windows_geo`.

    ``fp(row_off, col_off, height, width)`` gives one polygon, :meth:`many` a list (one GCP
    transformer for all of them).
    """

    def __init__(
        self,
        src: Any,
        pixel_coords: str = PIXEL_COORDS[0],
        warp_crs: Any = None,
        warp_method: str = DEFAULT_WARP_METHOD,
    ) -> None:
        from sam2elnet.data.grids import GcpGrid

        gcp_grid = GcpGrid.of(src)
        gcp_only = gcp_grid is not None and gcp_grid.placeable
        #: a note when ``pixel_coords="qgis"`` does not apply (the scene is georeferenced, so the
        #: windows are in map coordinates where QGIS shows the scene), else None
        self.pixel_coords_note: str | None = None
        if pixel_coords == "qgis" and (gcp_only or src.crs is not None):
            how = "its CRS" if src.crs is not None else "ground control points"
            self.pixel_coords_note = (
                f"--pixel-coords qgis ignored: {Path(src.name).name} is georeferenced by {how}, "
                "so the --quality-gpkg windows are in map coordinates, where QGIS shows the "
                "scene; the option applies to scenes without any georeference only"
            )
        self._src = src
        self._warp: tuple[Any, str] | None = None
        self.transform: Any = None  # affine pixel -> frame; None: through the warp mapping
        if warp_crs is not None and (gcp_only or src.crs is not None):
            if gcp_only or src.crs != warp_crs:
                self._warp = (warp_crs, warp_method)
            self.crs = warp_crs
            self.transform = None if self._warp else src.transform
            return
        if gcp_grid is not None and gcp_only:
            self.crs, self.transform = gcp_grid.crs, gcp_grid.affine()
        elif src.crs is None:
            from affine import Affine

            from sam2elnet.data.georef import plain_grid_transform

            self.crs = None
            self.transform = (
                plain_grid_transform(src.transform) if pixel_coords == "qgis" else Affine.identity()
            )
        else:
            self.crs, self.transform = src.crs, src.transform

    def __call__(self, r: int, c: int, h: int, w: int) -> Any:
        return self.many([(r, c, h, w)])[0]

    def many(self, rects: list[tuple[int, int, int, int]]) -> list[Any]:
        """Polygons of ``(row_off, col_off, height, width)`` pixel rectangles."""
        from sam2elnet.data.warp import EDGE_STEPS, pixels_to_map, rect_polygons

        if self._warp is None:
            return rect_polygons(rects, lambda rows, cols: self.transform * (cols, rows))
        crs, method = self._warp
        return rect_polygons(
            rects, lambda rows, cols: pixels_to_map(self._src, rows, cols, crs, method), EDGE_STEPS
        )


def windows_geo(
    src: Any,
    pixel_coords: str = PIXEL_COORDS[0],
    warp_crs: Any = None,
    warp_method: str = DEFAULT_WARP_METHOD,
) -> WindowFootprints:
    """Footprint polygons of a scene's windows, in the coordinates and CRS its label's polygon
    export (``elnet export``) uses, so the two layers line up (:class:`WindowFootprints`):

    * CRS + transform: the scene CRS, through its transform;
    * GCP-only (Sentinel-1 GRD): the GCPs' CRS, through the affine fit to the GCPs the export
      places that label's polygons with (:meth:`sam2elnet.data.grids.GcpGrid.affine`);
    * ``warp_crs`` (``--warp-to``; the outputs are warped): ``warp_crs``, through the GCP
      transformer of ``warp_method`` (or the transform) and reprojected, as the label was warped
      (:func:`sam2elnet.data.warp.pixels_to_map`; sides densified to 16 segments);
    * no georeference: pixel coordinates, as ``elnet export --pixel-coords`` writes polygons of
      such rasters (:data:`sam2elnet.option_values.PixelCoords`): ``gdal`` x = column, y = row;
      ``qgis`` where QGIS shows the scene (:func:`~sam2elnet.data.georef.plain_grid_transform`:
      y = -row). The export's per-polygon quality join reads either
      (:func:`sam2elnet.export.tile_quality.tile_index`).
    """
    return WindowFootprints(src, pixel_coords, warp_crs, warp_method)


def write_quality(
    path: Path,
    records: list[dict[str, Any]],
    footprint: WindowFootprints,
    tile_h: int,
    tile_w: int,
    *,
    scene: Path,
    label: Path,
    shape: tuple[int, int],
) -> Path:
    """Write the per-tile quality layer (GeoPackage layer ``tiles``) atomically, the windows'
    footprints in ``footprint.crs`` (:func:`windows_geo`), with the record of the scene it was
    made for in the layer metadata (:class:`~sam2elnet.data.scene_record.SceneRecord`: the
    ``scene`` image's and the ``label``'s file names, the footprint of the whole scene of
    ``shape`` = (height, width) px, placed as the windows are)."""
    import geopandas as gpd

    from sam2elnet.data.scene_record import TILES_LAYER, SceneRecord

    rects = [(r["row_off"], r["col_off"], tile_h, tile_w) for r in records]
    gdf = gpd.GeoDataFrame(records, geometry=footprint.many(rects), crs=footprint.crs)
    record = SceneRecord(scene.name, label.name, footprint(0, 0, *shape))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # pyogrio warns "'crs' was not provided" for a scene without CRS: the notes say so
        warnings.simplefilter("ignore", UserWarning)
        gdf.to_file(
            tmp,
            layer=TILES_LAYER,
            driver="GPKG",
            engine="pyogrio",
            layer_metadata=record.metadata(),
        )
    return path


class _NullCtx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def maybe_atomic(path: str | Path | None) -> Any:
    return atomic_path(path) if path is not None else _NullCtx()


def maybe_open(path: Path | None, profile: dict[str, Any]) -> Any:
    if path is None:
        return _NullCtx()
    import rasterio

    return rasterio.open(path, "w", **profile)
