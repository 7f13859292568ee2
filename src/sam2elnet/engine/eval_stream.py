"""Counting one prediction / ground-truth pair (``elnet evaluate``), whole or strip by strip.

:func:`pair_counts` reads one pair (with its valid mask and baseline label) and counts it; a file
that cannot be used (unreadable, truncated, another size) raises a
:class:`~sam2elnet.errors.DataError` naming it, which the evaluation turns into a skip.
:func:`streamable` says when a pair is worth streaming (a label GeoTIFF GDAL can read by
windows, too large to read whole); :func:`streamed_counts` gives the same
:class:`~sam2elnet.engine.metrics.Confusion` (and, when asked, boundary and road counts, see
:mod:`sam2elnet.engine.strip_metrics`) as a whole read with the memory of one row strip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.metrics import (
    BoundaryCounts,
    Confusion,
    RoadCounts,
    boundary_measures,
    confusion,
    road_counts,
)
from sam2elnet.errors import DataError
from sam2elnet.utils.advice import plural

log = logging.getLogger(__name__)

__all__ = [
    "KeptTruths",
    "PairCounts",
    "PairMasks",
    "Resampled",
    "both_unusable",
    "pair_counts",
    "read_binary_mask",
    "read_pair_masks",
    "streamable",
    "streamed_counts",
]


@dataclass
class PairCounts:
    """What :func:`pair_counts` counted for one pair: the confusion, boundary and road counts
    (None when not asked for) and the baseline label's confusion against the same truth (None
    without a baseline); ``resampled`` says how the truth was put on the prediction's grid
    (None: it was on it); ``hd95_px`` the boundaries' HD95
    (:func:`~sam2elnet.engine.metrics.boundary_hd95`, px; None when boundaries were not asked for
    or the pair, read in strips, has more boundary pixels than
    :data:`~sam2elnet.engine.strip_metrics.HD95_MAX_POINTS`; NaN when only one mask has a
    boundary)."""

    confusion: Confusion
    boundary: BoundaryCounts | None = None
    roads: RoadCounts | None = None
    baseline: Confusion | None = None
    resampled: Resampled | None = None
    hd95_px: float | None = None


@dataclass
class Resampled:
    """A ground truth resampled onto its prediction's grid (:func:`pair_counts`): the two grids
    (``grid``, W x H px, pixel size, CRS) and how many prediction pixels lie outside the truth's
    footprint (``outside``, not counted)."""

    grid: str
    outside: int

    def note(self, truth: Path, pred: Path) -> str:
        """The one log line: ``T: ground truth resampled onto the grid of its prediction P ...``."""
        return (
            f"{truth}: ground truth resampled onto the grid of its prediction {pred.name} by map "
            f"position (nearest; {self.grid}); {plural(self.outside, 'prediction pixel')} "
            "outside its footprint not counted"
        )


def pair_counts(
    pred: Path,
    truth: Path,
    valid: Path | None = None,
    baseline: Path | None = None,
    *,
    positive_values: tuple[float, ...] | None = None,
    tolerance_px: float | None = None,
    road_buffer_px: float | None = None,
    resample: bool = True,
    vector: Any = None,
    truth_read: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> PairCounts:
    """Read and count one pair: strip by strip when :func:`streamable`, else whole.

    A truth on another map grid than its prediction (both georeferenced, by CRS + transform or
    by GCPs: another pixel size, extent, CRS or GCPs; :func:`sam2elnet.data.grids.other_grid`,
    each file's header read once) is resampled
    onto the prediction's grid by map position, nearest neighbour
    (:func:`sam2elnet.data.grids.place_on_grid`, read whole); prediction pixels outside the
    truth's footprint are not counted (``PairCounts.resampled``; one warning line).
    With ``resample=False`` such a pair is an error instead. A GCP-only raster (Sentinel-1 GRD)
    is placed through its ground control points (:mod:`sam2elnet.data.grids`). Rasters without
    georeference pair by pixel index and must have the same size.

    A polygon ground truth (GeoPackage / Shapefile / GeoJSON,
    :func:`~sam2elnet.data.vector.is_vector_path`) is rasterised onto the prediction's grid
    (:meth:`sam2elnet.engine.eval_vector.VectorTruth.on_grid`; ``vector``: the
    :class:`~sam2elnet.engine.eval_vector.PolygonFiles` of the evaluation, holding the files
    shared by many predictions; read whole). A polygon ``baseline`` or ``valid`` file is placed
    on the prediction's grid the same way (a pair with one is read whole); a polygon
    prediction (an ``elnet export`` layer) on its raster truth's grid.

    ``valid`` (pixels to count; None = all) must be on the truth's grid (the prediction's
    after resampling; a georeferenced valid mask on another grid is resampled the same way);
    pixels the truth marks as "ignore" and the prediction's nodata pixels (127 in the labels
    this package writes, a GeoTIFF's nodata tag;
    :func:`sam2elnet.data.mask_values.mask_encoding`) are never counted. Boundary counts and
    HD95 are computed when ``tolerance_px`` is given (counts with it), road counts with
    ``road_buffer_px`` (None: not computed). ``baseline`` is scored against the same truth and
    valid pixels. ``truth_read``: the raster truth already read whole (:class:`KeptTruths`), used
    instead of reading it again (a streamed pair reads by strips and does not use it).

    Raises:
        DataError: a file cannot be read (missing, truncated, undecodable, a class-index mask
            without ``positive_values``), the prediction, valid mask or baseline has another
            size than the truth and no common georeference, (``resample=False``) the truth
            lies on another grid, or a truth on another grid does not overlap the prediction
            at all; the error's ``path`` is that file, the message names both.
    """
    from sam2elnet.data.grids import other_grid, raster_header
    from sam2elnet.data.vector import is_vector_path

    polygons = is_vector_path(truth) or is_vector_path(pred)
    heads = None if polygons else (raster_header(truth), raster_header(pred))  # read once
    grid = None if heads is None else other_grid(*heads)
    placed = any(f is not None and is_vector_path(f) for f in (valid, baseline))  # read whole
    on = truth if is_vector_path(pred) else pred  # the pixel grid of the pair
    if heads is not None and grid is None and not placed and streamable(truth, pred, heads):
        conf, bnd, rds, hd = streamed_counts(
            pred, truth, valid, positive_values=positive_values,
            tolerance_px=tolerance_px, road_buffer_px=road_buffer_px,
        )  # fmt: skip
        base = None
        if baseline is not None:
            base = streamed_counts(baseline, truth, valid, positive_values=positive_values)[0]
        return PairCounts(conf, bnd, rds, base, hd95_px=hd)
    m = read_pair_masks(pred, truth, valid, positive_values=positive_values, resample=resample,
                        vector=vector, heads=heads, truth_read=truth_read)  # fmt: skip
    if m.resampled is not None:
        log.warning("%s", m.resampled.note(truth, pred))
    p, t, v = m.pred, m.truth, m.valid
    conf = confusion(p, t, v)
    bnd, hd = boundary_measures(p, t, tolerance_px, v) if tolerance_px is not None else (None, None)
    pc, tc = (p & v, t & v) if v is not None else (p, t)
    rds = road_counts(pc, tc, buffer_px=road_buffer_px) if road_buffer_px is not None else None
    base = None
    if baseline is not None and is_vector_path(baseline):  # placed as a polygon truth is
        base = confusion(_polygons_on(on, baseline, vector), t, v)
    elif baseline is not None:
        b = _same_size(read_binary_mask(baseline), baseline, t, truth, "baseline labels")
        base = confusion(b, t, v)
    return PairCounts(conf, bnd, rds, base, m.resampled, hd)


def both_unusable(
    err: DataError,
    pred: str | Path,
    truth: str | Path,
    positive_values: tuple[float, ...] | None = None,
) -> DataError:
    """``err``, the error of a pair (:func:`pair_counts`) at one of its two files, or one error
    naming both when the other file cannot be used either (read as the pair reads it: whole,
    or strip by strip when large, :func:`~sam2elnet.data.windowed_mask.scan_mask`, with
    ``positive_values`` for the truth only; a polygon file is not read to tell): at ``pred``,
    its reason, then the ground truth's, ``P: cannot decode image (...); ...; its ground truth
    T too`` (alike reasons) or
    ``...; its ground truth T: <its reason>``. The other file's DataError is not raised but
    named in the result."""
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.data.vector import is_vector_path
    from sam2elnet.data.windowed import use_windows
    from sam2elnet.data.windowed_mask import scan_mask
    from sam2elnet.utils.batch import short_reason

    pred, truth = Path(pred), Path(truth)
    if err.path is None or err.path not in (pred, truth):
        return err
    other = truth if err.path == pred else pred
    if is_vector_path(other):
        return err
    try:
        read = scan_mask if use_windows(other) else read_mask_valid  # memory of a strip
        # as the pair reads it: the classes asked for are the truth's, not the prediction's
        read(other, positive_values=positive_values if other == truth else None)
        return err
    except DataError as other_err:
        p_err, t_err = (err, other_err) if other == truth else (other_err, err)
    why = short_reason(str(p_err), pred)
    why_truth = short_reason(str(t_err), truth)
    alike = why_truth.replace(str(truth), str(pred)) == why
    said = " too" if alike else f": {why_truth}"
    return DataError(f"{why}; its ground truth {truth}{said}", pred)


@dataclass
class PairMasks:
    """One pair as ``elnet evaluate`` counts it (:func:`read_pair_masks`): ``pred`` and
    ``truth`` bool (H, W) on the prediction's grid (True = object), ``valid`` bool (H, W) of the
    pixels counted (None: all) and ``resampled`` (None: the truth was on the prediction's grid)."""

    pred: np.ndarray
    truth: np.ndarray
    valid: np.ndarray | None
    resampled: Resampled | None = None


def read_pair_masks(
    pred: Path,
    truth: Path,
    valid: Path | None = None,
    *,
    positive_values: tuple[float, ...] | None = None,
    resample: bool = True,
    vector: Any = None,
    heads: Any = None,
    truth_read: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> PairMasks:
    """Read one pair whole, as :func:`pair_counts` counts it; the one reader of a pair for the
    metrics and for drawing it (the report's error map).

    The truth is put on the prediction's grid (resampled by map position, nearest, when the
    grids differ; polygons rasterised by ``vector``, the evaluation's
    :class:`~sam2elnet.engine.eval_vector.PolygonFiles`, holding the files shared by many
    predictions; None: each polygon file is one pair's). ``valid`` of the result is False where a pixel
    is not counted: the truth's ignore pixels, the prediction's nodata (127 in the labels this
    package writes, a GeoTIFF's nodata tag; :func:`sam2elnet.data.mask_values.mask_encoding`),
    prediction pixels outside a resampled truth's footprint and pixels the ``valid`` mask file
    leaves out. ``heads``: the pair's :func:`~sam2elnet.data.grids.raster_header` (truth,
    prediction), when already read; ``truth_read``: the raster truth's
    :func:`~sam2elnet.data.masks.read_mask_valid` result, when already read. The resampling is
    not logged here (:func:`pair_counts` says it once).

    Raises:
        DataError: as :func:`pair_counts`; a polygon prediction with a polygon truth.
    """
    from sam2elnet.data.grids import other_grid, place_on_grid, raster_header
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.data.vector import is_vector_path

    polygons = is_vector_path(truth)
    pred_polygons = is_vector_path(pred)  # an elnet export layer: placed on the truth's grid
    if polygons and pred_polygons:
        raise DataError(
            f"the predictions in this file and their ground truth {truth} are both polygon "
            "files: no pixel grid to compare them on; give one of them as a mask",
            pred,
        )
    on = truth if pred_polygons else pred  # the pixel grid of the pair
    if heads is None and not polygons and not pred_polygons:
        heads = (raster_header(truth), raster_header(pred))
    grid = None if heads is None else other_grid(*heads)
    if grid is not None and not resample:
        raise DataError(
            f"lies on another map grid than its ground truth {truth} (truth "
            f"{grid.describe()}); drop --no-resample to resample the truth onto the "
            "prediction's grid by map position",
            pred,
        )
    moved = None
    if polygons:
        t, t_valid = _polygons_on(pred, truth, vector), None
    elif truth_read is not None:
        t, t_valid = truth_read
    else:
        t, t_valid = read_mask_valid(truth, positive_values=positive_values)
    if grid is not None:
        t, t_valid, outside = place_on_grid(t, t_valid, grid, truth, pred)
        if outside >= t.size:  # no common map area: nothing to count, not an IoU of "-"
            raise DataError(
                f"does not overlap its ground truth {truth} at all (no prediction pixel inside "
                f"the truth's footprint; truth {grid.describe()}): they show different places; "
                "check which truth goes with this prediction, or the georeference of either",
                pred,
            )
        moved = Resampled(grid.describe(), outside)
    if pred_polygons:
        p, p_valid = _polygons_on(truth, pred, vector), None
    else:
        p, p_valid = read_mask_valid(pred)
    p = _same_size(p, pred, t, truth, "predictions")
    v = p_valid  # the prediction's nodata (127 in our labels, its GeoTIFF nodata tag) is not counted
    if valid is not None and is_vector_path(valid):  # a valid area drawn as polygons
        v = _polygons_on(on, valid, vector)
        v = v if p_valid is None else (v & p_valid)
    elif valid is not None:
        v = read_binary_mask(valid)
        v_grid = other_grid(valid, heads[1]) if grid is not None else None  # type: ignore[index]
        if v_grid is not None:
            v, v_in, _ = place_on_grid(v, None, v_grid, valid, pred)
            v = v if v_in is None else (v & v_in)
        v = _same_size(v, valid, t, truth, "valid masks")
        v = v if p_valid is None else (v & p_valid)
    if t_valid is not None:
        v = t_valid if v is None else (v & t_valid)
    return PairMasks(p, t, v, moved)


def _polygons_on(grid: Path, path: Path, vector: Any) -> np.ndarray:
    """bool (H, W) on raster ``grid``'s pixel grid, True inside a polygon of file ``path``:
    placed by ``vector`` (the evaluation's :class:`~sam2elnet.engine.eval_vector.PolygonFiles`),
    or, when None, as one pair's own file (a fresh
    :class:`~sam2elnet.engine.eval_vector.VectorTruth`). Raises DataError as
    :meth:`~sam2elnet.engine.eval_vector.VectorTruth.on_grid`."""
    from sam2elnet.engine.eval_vector import VectorTruth

    return (vector or VectorTruth()).on_grid(path, grid)


KEEP_BYTES = 512_000_000
"""At most this many bytes of truth masks (object + valid arrays) :class:`KeptTruths` keeps."""


class KeptTruths:
    """Truth masks read before the pair loop of ``elnet evaluate`` (the sample the road-measure
    decision looks at, :func:`sam2elnet.data.domain.road_measures_wanted`), kept for the loop so
    each file is read once.

    :meth:`read` is the reader given to the decision; :meth:`take` hands a kept mask to its pair
    (and forgets it). At most ``max_bytes`` (default :data:`KEEP_BYTES`) are kept; a mask past
    that is read again by its pair, as before.
    """

    def __init__(self, max_bytes: int = KEEP_BYTES) -> None:
        self.max_bytes = max_bytes
        self.kept: dict[Path, tuple[np.ndarray, np.ndarray | None]] = {}
        self.bytes = 0

    def read(
        self, path: str | Path, positive_values: tuple[float, ...] | None = None
    ) -> np.ndarray:
        """Read a truth as :func:`sam2elnet.data.masks.read_mask` does (bool (H, W), True =
        object) and keep it with its valid mask.

        Raises:
            DataError: as :func:`~sam2elnet.data.masks.read_mask_valid`.
        """
        from sam2elnet.data.masks import read_mask_valid

        t, v = read_mask_valid(path, positive_values=positive_values)
        size = t.nbytes + (0 if v is None else v.nbytes)
        if self.bytes + size <= self.max_bytes:
            self.kept[Path(path)] = (t, v)
            self.bytes += size
        return t

    def take(self, path: str | Path) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The kept ``(object, valid)`` of ``path`` (forgotten here), or None when not kept."""
        got = self.kept.pop(Path(path), None)
        if got is not None:
            self.bytes -= got[0].nbytes + (0 if got[1] is None else got[1].nbytes)
        return got


def size_mismatch(
    path: Path, size: tuple[int, int], truth: Path, truth_size: tuple[int, int], what: str
) -> DataError:
    """The error of a prediction / valid mask / baseline (``path``, ``size`` (H, W)) of another
    size than its ground truth (``truth``, ``truth_size``) without a common georeference."""
    return DataError(
        f"is {size[1]}x{size[0]} (WxH) but its ground truth {truth} is "
        f"{truth_size[1]}x{truth_size[0]}; {what} need their mask's size, or both files a "
        "georeference (GeoTIFF with CRS + transform, or GCPs) so the truth is resampled onto "
        "the prediction's grid",
        path,
    )


def _same_size(
    mask: np.ndarray, path: Path, truth: np.ndarray, truth_path: Path, what: str
) -> np.ndarray:
    if mask.shape != truth.shape:
        raise size_mismatch(path, mask.shape, truth_path, truth.shape, what)
    return mask


def streamable(truth: Path, pred: Path, heads: Any = None) -> bool:
    """Count a pair strip by strip: a large ground truth or prediction that GDAL can read by
    windows (:func:`sam2elnet.data.windowed.use_windows`, e.g. a 12,000^2 px label GeoTIFF).
    ``heads``: the pair's :func:`~sam2elnet.data.grids.raster_header` (truth, prediction),
    already read, so the files are not opened again."""
    from sam2elnet.data import windowed

    if heads is None:
        return windowed.use_windows(truth) or windowed.use_windows(pred)
    return any(
        h.shape is not None
        and windowed.windowable(h.path)
        and windowed.whole_read_bytes(*h.shape, h.bands, h.itemsize) > windowed.WINDOW_MIN_BYTES
        for h in heads
    )


def streamed_counts(
    pred: Path,
    truth: Path,
    valid: Path | None,
    *,
    positive_values: tuple[float, ...] | None = None,
    tolerance_px: float | None = None,
    road_buffer_px: float | None = None,
) -> tuple[Confusion, BoundaryCounts | None, RoadCounts | None, float | None]:
    """(:func:`confusion`, boundary counts, road counts, HD95 px) of a pair, read in row strips:
    the same counts as whole reads (the value encoding of each file is decided from all its
    pixels in a first streamed pass, :func:`sam2elnet.data.windowed_mask.scan_mask`), with memory
    of one strip (plus halo rows; HD95 keeps the boundary pixels' coordinates). Boundary counts (:func:`~sam2elnet.engine.metrics.boundary_counts`) and
    HD95 (:func:`~sam2elnet.engine.strip_metrics.strip_boundary_measures`: the same value, None
    for a boundary too long to keep) are computed when ``tolerance_px`` is given, road counts
    (:func:`~sam2elnet.engine.metrics.road_counts` of both masks cut to the valid pixels) when
    ``road_buffer_px`` is given; otherwise None. A file GDAL cannot window (PNG, JPEG) is read
    whole and sliced. Raises DataError like the whole-read path."""
    from sam2elnet.data import windowed, windowed_mask
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.engine.strip_metrics import strip_boundary_measures, strip_road_counts

    def source(path: Path, pv: tuple[float, ...] | None) -> Any:
        if windowed.windowable(path):
            return windowed_mask.mask_plan(path, positive_values=pv)
        return read_mask_valid(path, positive_values=pv)

    t_src = source(truth, positive_values)
    p_src = source(pred, None)
    v_src = source(valid, None) if valid is not None else None

    def shape(src: Any) -> tuple[int, int]:
        return src.shape if isinstance(src, windowed_mask.MaskPlan) else src[0].shape

    h, w = shape(t_src)
    if shape(p_src) != (h, w):
        raise size_mismatch(pred, shape(p_src), truth, (h, w), "predictions")
    if v_src is not None and shape(v_src) != (h, w):
        raise size_mismatch(valid, shape(v_src), truth, (h, w), "valid masks")  # type: ignore[arg-type]

    def strip(src: Any, r0: int, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(src, windowed_mask.MaskPlan):
            return windowed_mask.read_mask_window(src, r0, 0, rows, w)
        m, v = src
        return m[r0 : r0 + rows], (None if v is None else v[r0 : r0 + rows])

    def read(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        t, t_valid = strip(t_src, r0, r1 - r0)
        p, p_valid = strip(p_src, r0, r1 - r0)
        v = strip(v_src, r0, r1 - r0)[0] if v_src is not None else None
        for other in (t_valid, p_valid):  # nodata / ignore pixels of either side
            if other is not None:
                v = other if v is None else (v & other)
        return p, t, v

    total = Confusion()
    step = max(1, windowed.STRIP_PIXELS // max(1, w))
    for r0 in range(0, h, step):
        total = total + confusion(*read(r0, min(h, r0 + step)))
    bound = roads = hd = None
    if tolerance_px is not None:
        bound, hd = strip_boundary_measures(read, h, tolerance_px, strip_rows=step)
    if road_buffer_px is not None:
        roads = strip_road_counts(read, h, w, buffer_px=road_buffer_px, strip_rows=step)
    return total, bound, roads, hd


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as a bool (H, W) array with :func:`sam2elnet.data.masks.read_mask`
    ({0,1}: 1 is foreground; {0,255} and greys: ``> 127``; palette PNGs by class index).
    A file that cannot be read raises :class:`DataError` naming it."""
    from sam2elnet.data.masks import read_mask

    return np.asarray(read_mask(path), dtype=bool)
