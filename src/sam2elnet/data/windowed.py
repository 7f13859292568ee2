"""Windowed reads of large rasters: the crop a training step needs, never the whole file.

Reading a 12,000^2 px GeoTIFF whole to cut one 256 px training crop costs gigabytes (the raw
bands, their float32 normalised copy, masks). For such files the training dataset
(:class:`sam2elnet.data.datasets.SegmentationDataset`) reads only the window of each crop with
rasterio's windowed reads. What the whole-image reader (:func:`sam2elnet.data.raster.read_image`,
:func:`sam2elnet.data.raster.read_mask_valid`) decides from *all* pixels of a file is decided
here once per file, from one streamed pass over row strips (memory: one strip,
:data:`STRIP_PIXELS` pixels), and kept in a plan:

* images (:func:`scan_image` -> :class:`ImagePlan`): whether the last band is alpha (GDAL's tag
  and, for integer data, only "transparent"/"opaque" values anywhere), whether a SAR grey image
  stored as 3-4 identical bands collapses to one (largest band difference anywhere <= 2), the
  bands kept, the nodata tag, and a pixel sample for statistics (below);
* masks (:func:`scan_mask` -> :class:`MaskPlan`): the value histogram of every band, hence the
  same :class:`~sam2elnet.data.raster.MaskEncoding` as a whole read
  (:func:`~sam2elnet.data.raster.encoding_from_counts`), alpha, identical-channel collapse and
  the multi-channel agreement check.

A crop read with :func:`read_image_window` / :func:`read_mask_window` is therefore identical,
value for value, to the same rows and columns of a whole read (tested with seeded crops).

**Statistics sample.** Per-image statistics (the ``percentile`` normalisation of optical
images, dataset statistics in :func:`sam2elnet.data.normalize.compute_stats`) come from a
regular sample taken during the pass: every ``k``-th pixel in raster order with
``k = ceil(H * W / STATS_SAMPLE)`` (all pixels of images up to :data:`STATS_SAMPLE` px, which then
give exactly the whole-image statistics). The whole-image path itself takes the percentiles of
a raster-order stride sample of at most 65,536 valid pixels; the windowed path applies the same
function to this sample, i.e. to at least ``min(65,536, valid pixels)`` pixels. The error of a
``p`` quantile from ``n`` sampled pixels is about ``sqrt(p (1 - p) / n)`` in rank: 0.04
percentage points for the 1st/99th percentile at ``n = 65,536`` - the same order as the
whole-image path's own sampling (tested: the fraction of all pixels below the sampled 1st
percentile stays within 1 +- 0.25 %).

**PNG / JPEG** cannot be read by windows (OpenCV and GDAL decode them from the first row), so
they are always read whole; such files are small on disk but decode to H x W x bands bytes - a
12,000^2 px PNG mask is 144 MB per read. Convert large labels to tiled GeoTIFF
(``gdal_translate -co TILED=YES -co COMPRESS=DEFLATE in.png out.tif``) to get windowed reads.

Routing (:func:`use_windows`): a file is read by windows when GDAL can window it (not PNG/JPEG)
and its whole read would hold more than ``max_bytes`` (default :data:`WINDOW_MIN_BYTES`) of
decoded and normalised pixels (:func:`whole_read_bytes`); smaller files keep the whole read
(and the caches built on it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.images import MAX_BANDS, RasterImage
from sam2elnet.data.mask_values import (
    MaskEncoding,
    encoding_from_counts,
    merge_counts,
    value_counts,
)
from sam2elnet.errors import DataError

__all__ = [
    "GDAL_ENV",
    "STATS_SAMPLE",
    "STRIP_PIXELS",
    "WINDOW_MIN_BYTES",
    "ImagePlan",
    "MaskPlan",
    "image_plan",
    "mask_plan",
    "open_raster",
    "read_image_decimated",
    "read_image_window",
    "read_mask_decimated",
    "read_mask_window",
    "sample_image",
    "scan_image",
    "scan_mask",
    "use_windows",
    "whole_read_bytes",
    "windowable",
]

WINDOW_MIN_BYTES = 64_000_000
"""Files whose whole read would hold more than this (64 MB, :func:`whole_read_bytes`) are read by
windows: a 3-band uint8 image of about 1,450^2 px, a 1-band one of about 2,300^2 px."""

STRIP_PIXELS = 4_000_000
"""Pixels per row strip of a streamed pass (a 12,000 px wide file: 333 rows per strip)."""

STATS_SAMPLE = 1_000_000
"""Target size of the raster-order stride sample kept for statistics (see the module docstring)."""

GDAL_ENV = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 64}
"""No ``.aux.xml`` side files; GDAL's block cache capped at 64 MB (its default, 5 % of RAM, would
let the decoded blocks of random crops over a large file grow past a gigabyte)."""

_WHOLE_ONLY = (".png", ".jpg", ".jpeg")


def windowable(path: str | Path) -> bool:
    """True when a file can be read by windows: anything GDAL reads except PNG and JPEG."""
    return Path(path).suffix.lower() not in _WHOLE_ONLY


def whole_read_bytes(height: int, width: int, bands: int, itemsize: int) -> int:
    """Bytes a whole read of an image holds at once in training: the raw bands, their float32
    normalised copy and a float32 working copy (``bands * (itemsize + 8)``), plus mask, valid
    and coarse label (3 bytes) per pixel."""
    return int(height) * int(width) * (int(bands) * (int(itemsize) + 8) + 3)


def open_raster(path: Path) -> Any:
    """``rasterio.open(path)`` without the not-georeferenced warning (the caller closes it and
    handles rasterio's errors)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def _header(path: Path) -> tuple[int, int, int, int] | None:
    """(height, width, bands, itemsize) from the header, or None when GDAL cannot open it."""
    import rasterio

    try:
        with rasterio.Env(**GDAL_ENV), open_raster(path) as src:
            return src.height, src.width, src.count, np.dtype(src.dtypes[0]).itemsize
    except (rasterio.errors.RasterioError, OSError):
        return None


def use_windows(path: str | Path, max_bytes: int | None = None, min_side: int = 0) -> bool:
    """Whether training should read ``path`` by windows: windowable, larger than ``min_side``
    (the largest crop) on some side and a whole read above ``max_bytes``
    (default :data:`WINDOW_MIN_BYTES`). Unreadable files answer False (the whole reader then
    reports them in its usual way)."""
    p = Path(path)
    if not windowable(p) or not p.is_file():
        return False
    head = _header(p)
    if head is None:
        return False
    h, w, c, item = head
    limit = WINDOW_MIN_BYTES if max_bytes is None else int(max_bytes)
    return max(h, w) > min_side and whole_read_bytes(h, w, c, item) > limit


def _strips(height: int, width: int, block_rows: int = 1) -> Iterator[tuple[int, int]]:
    """(first row, rows) of row strips of about :data:`STRIP_PIXELS` px, block-aligned."""
    rows = max(1, STRIP_PIXELS // max(1, width))
    rows = max(block_rows, rows - rows % max(1, block_rows))
    for r0 in range(0, height, rows):
        yield r0, min(rows, height - r0)


def _read(src: Any, path: Path, window: Any, what: str) -> np.ndarray:
    import rasterio

    try:
        return src.read(window=window)
    except rasterio.errors.RasterioError as err:
        raise DataError(
            f"cannot read {what} ({err.__class__.__name__}: corrupt, truncated or unsupported "
            "format); re-export it as GeoTIFF/PNG or remove it",
            path,
        ) from None


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


# --------------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImagePlan:
    """What a whole read of an image decides from all its pixels (see the module docstring).

    ``keep`` are the 0-based file bands kept (alpha dropped, ``--bands`` applied, SAR grey
    collapsed); ``sample`` is the raw (all file bands, n) stride sample for statistics, with
    ``sample_step`` its raster-order step.
    """

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    nodata: float | None
    alpha: bool
    keep: tuple[int, ...]
    sample: np.ndarray = field(repr=False)
    sample_step: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return self.height, self.width

    @property
    def bands(self) -> int:
        """Bands a read returns."""
        return len(self.keep)

    def apply(self, raw: np.ndarray) -> RasterImage:
        """(count, h, w) raw file bands -> the :class:`RasterImage` :func:`read_image` would give
        for these pixels (same nodata rules, bands and dtype)."""
        nodata = None
        if self.nodata is not None:
            nd = self.nodata
            nodata = (
                np.all(np.isnan(raw), axis=0)
                if np.isnan(nd)
                else np.all(raw == np.asarray(nd, dtype=raw.dtype), axis=0)
            )
        if self.alpha:
            transparent = raw[-1] == 0
            if transparent.any():
                nodata = transparent if nodata is None else (nodata | transparent)
        data = raw[list(self.keep)]
        if np.issubdtype(data.dtype, np.floating):
            bad = np.any(~np.isfinite(data), axis=0)
            if bad.any():
                nodata = bad if nodata is None else (nodata | bad)
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        if nodata is not None and not nodata.any():
            nodata = None
        return RasterImage(data=np.ascontiguousarray(data), nodata=nodata, path=self.path)


def scan_image(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> ImagePlan:
    """One streamed pass over an image: the decisions of :func:`read_image` and a statistics
    sample (module docstring). Raises DataError like :func:`read_image` (missing, corrupt or
    truncated file, bad ``bands``, too many bands)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    from sam2elnet.data.images import is_alpha_band, select_bands

    p = Path(path)
    if not p.is_file():
        raise DataError("image does not exist; check the path", p)
    try:
        with rasterio.Env(**GDAL_ENV), open_raster(p) as src:
            h, w, c = src.height, src.width, src.count
            dtype = np.dtype(src.dtypes[0])
            maybe_alpha = c > 1 and src.colorinterp[-1] == ColorInterp.alpha
            alpha_ok = maybe_alpha
            # the bands kept with / without alpha (before the SAR grey collapse)
            idx = np.arange(c)
            keep_n = tuple(select_bands(idx[:, None, None], bands, p)[:, 0, 0])
            keep_a: tuple[int, ...] = keep_n
            alpha_err: DataError | None = None
            if maybe_alpha:
                try:
                    keep_a = tuple(select_bands(idx[:-1, None, None], bands, p)[:, 0, 0])
                except DataError as err:  # --bands names the alpha band: an error if it is one
                    alpha_err = err
            diff = {keep_a: 0.0, keep_n: 0.0}
            step = max(1, math.ceil(h * w / STATS_SAMPLE))
            picks: list[np.ndarray] = []
            block = src.block_shapes[0][0] if src.block_shapes else 1
            for r0, rows in _strips(h, w, block):
                raw = _read(src, p, Window(0, r0, w, rows), "raster")
                if alpha_ok:  # the whole reader's rule, strip by strip
                    alpha_ok = is_alpha_band(True, raw[-1])
                if sar:
                    for keep in diff:
                        if len(keep) in (3, 4):
                            ref = raw[keep[0]].astype(np.float32)
                            for b in keep[1:]:
                                d = float(np.max(np.abs(raw[b].astype(np.float32) - ref)))
                                diff[keep] = max(diff[keep], d)
                flat = raw.reshape(c, -1)
                first = (-(r0 * w)) % step
                picks.append(flat[:, first::step].copy())
            nodata = src.nodata
    except rasterio.errors.RasterioError as err:
        raise DataError(
            f"cannot read raster ({err.__class__.__name__}: corrupt, truncated or unsupported "
            "format); re-export it as GeoTIFF/PNG or remove it",
            p,
        ) from None
    if alpha_ok and alpha_err is not None:
        raise alpha_err
    keep = keep_a if alpha_ok else keep_n
    if len(keep) > MAX_BANDS:
        raise DataError(
            f"unsupported band count {len(keep)} (at most {MAX_BANDS}); "
            "select the bands you need into a new file",
            p,
        )
    if sar and len(keep) in (3, 4) and diff[keep] <= 2.0:
        keep = keep[:1]
    return ImagePlan(
        path=p,
        height=h,
        width=w,
        count=c,
        dtype=str(dtype),
        nodata=None if nodata is None else float(nodata),
        alpha=alpha_ok,
        keep=tuple(int(k) for k in keep),
        sample=np.concatenate(picks, axis=1),
        sample_step=step,
    )


def sample_image(plan: ImagePlan) -> RasterImage:
    """The statistics sample as a (bands, 1, n) :class:`RasterImage` (nodata rules applied),
    for code that computes statistics from a whole image (percentiles, dataset statistics)."""
    return plan.apply(plan.sample[:, None, :])


def read_image_window(plan: ImagePlan, row0: int, col0: int, rows: int, cols: int) -> RasterImage:
    """Rows ``row0 : row0 + rows``, columns ``col0 : col0 + cols`` (clipped to the image) of the
    image, exactly as in a whole :func:`read_image` of the file."""
    import rasterio
    from rasterio.windows import Window

    rows = max(0, min(rows, plan.height - row0))
    cols = max(0, min(cols, plan.width - col0))
    with rasterio.Env(**GDAL_ENV), open_raster(plan.path) as src:
        raw = _read(src, plan.path, Window(col0, row0, cols, rows), "raster")
    return plan.apply(raw)


def _decimated_raw(path: Path, step: int, what: str) -> np.ndarray:
    """Every ``step``-th row and column of all bands, read strip by strip."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.Env(**GDAL_ENV), open_raster(path) as src:
        h, w = src.height, src.width
        rows = max(step, (STRIP_PIXELS // max(1, w)) // step * step)
        parts = []
        for r0 in range(0, h, rows):
            raw = _read(src, path, Window(0, r0, w, min(rows, h - r0)), what)
            parts.append(raw[:, ::step, ::step].copy())
    return np.concatenate(parts, axis=1)


def read_image_decimated(plan: ImagePlan, step: int) -> RasterImage:
    """Every ``step``-th row and column of the image (nearest-neighbour decimation, rows and
    columns ``0, step, 2 step, ...``), read strip by strip: memory one strip plus the result."""
    return plan.apply(_decimated_raw(plan.path, max(1, int(step)), "raster"))


# ---------------------------------------------------------------------------------------- masks
_MAX_DISTINCT = 65_536
"""Distinct values a streamed mask histogram keeps (more only happen in probability-like float
masks, decided by their range: the smallest values and the largest one are kept)."""


@dataclass(frozen=True)
class MaskPlan:
    """How each pixel of a label file decodes, decided from all its pixels (module docstring).

    ``keep``: 0-based bands decoded (more than one: a per-pixel majority vote, as the whole
    reader does); ``encodings``: one :class:`MaskEncoding` per kept band; ``object_px`` /
    ``background_px``: pixel counts over the file (from band 1 of ``keep``).
    """

    path: Path
    height: int
    width: int
    keep: tuple[int, ...]
    encodings: tuple[MaskEncoding, ...]
    object_px: int = 0
    background_px: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the label."""
        return self.height, self.width

    def apply(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(count, h, w) raw bands -> (object, valid) bool (h, w) as :func:`read_mask_valid`
        decodes them (valid None when no pixel is ignored)."""
        decoded = [enc.apply(raw[b]) for b, enc in zip(self.keep, self.encodings, strict=True)]
        mask, ignore = decoded[0]
        if len(decoded) > 1:
            votes = np.sum([d[0] for d in decoded], axis=0)
            mask = votes * 2 > len(decoded)
            igns = [d[1] for d in decoded if d[1] is not None]
            ignore = np.logical_or.reduce(igns) if igns else None
            if ignore is not None:
                mask &= ~ignore
        return np.ascontiguousarray(mask), (None if ignore is None else ~ignore)


def _cap(counts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    u, n = counts
    if len(u) <= _MAX_DISTINCT:
        return counts
    keep = np.r_[np.arange(_MAX_DISTINCT - 1), len(u) - 1]
    return u[keep], n[keep]


def scan_mask(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> MaskPlan:
    """One streamed pass over a label file (two for a multi-channel label whose channels
    differ): the decisions of :func:`read_mask_valid`. Raises DataError like it (missing,
    corrupt, class-index values without ``positive_values``, size different from ``shape``,
    disagreeing channels)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    p = Path(path)
    if not p.is_file():
        raise DataError("mask does not exist; check the path", p)
    try:
        with rasterio.Env(**GDAL_ENV), open_raster(p) as src:
            h, w, c = src.height, src.width, src.count
            if shape is not None and (h, w) != tuple(shape):
                other = f" but image {image_path} is" if image_path is not None else ", expected"
                raise DataError(
                    f"mask size {w}x{h}{other} {shape[1]}x{shape[0]} (WxH); "
                    "re-export the mask at the image's size or remove the pair",
                    p,
                )
            dtype = np.dtype(src.dtypes[0])
            nodata = src.nodata
            integer = np.issubdtype(dtype, np.integer)
            alpha = c > 1 and src.colorinterp[-1] == ColorInterp.alpha
            top = np.iinfo(dtype).max if integer else None
            same = [True] * c
            hists: list[tuple[np.ndarray, np.ndarray]] = [
                (np.zeros(0, dtype), np.zeros(0, np.int64)) for _ in range(c)
            ]
            block = src.block_shapes[0][0] if src.block_shapes else 1
            strips = list(_strips(h, w, block))
            for r0, rows in strips:
                raw = _read(src, p, Window(0, r0, w, rows), "mask")
                if alpha and integer:
                    alpha = bool(np.all((raw[-1] == 0) | (raw[-1] == top)))
                for b in range(c):
                    if b and same[b]:
                        same[b] = bool(np.array_equal(raw[b], raw[0]))
                    hists[b] = _cap(merge_counts(hists[b], value_counts(raw[b], nodata)))
            keep = tuple(range(c - 1 if alpha else c))
            if not keep:
                raise DataError("mask has no bands; re-export it as a single-band PNG", p)
            if len(keep) > 1 and all(same[b] for b in keep[1:]):
                keep = keep[:1]
            encodings = tuple(
                encoding_from_counts(
                    *hists[b],
                    dtype=dtype,
                    nodata=nodata,
                    positive_values=positive_values,
                    lossy=p.suffix.lower() in (".jpg", ".jpeg"),
                    path=p,
                )
                for b in keep
            )
            if len(keep) > 1:  # the channels must agree on (nearly) every pixel
                differ = 0
                for r0, rows in strips:
                    raw = _read(src, p, Window(0, r0, w, rows), "mask")
                    fg = np.sum(
                        [e.apply(raw[b])[0] for b, e in zip(keep, encodings, strict=True)], axis=0
                    )
                    differ += int(np.count_nonzero((fg > 0) & (fg < len(keep))))
                if differ / float(h * w) > 0.01:
                    raise DataError(
                        f"mask has {len(keep)} channels that differ ({differ / (h * w):.1%} of "
                        "pixels); save it as a single-band mask (0 = background, 255 = object)",
                        p,
                    )
    except rasterio.errors.RasterioError as err:
        raise DataError(
            f"cannot read mask ({err.__class__.__name__}: corrupt, truncated or unsupported "
            "format); re-export it as GeoTIFF/PNG or remove it",
            p,
        ) from None
    # object / background pixel counts (band of the first kept channel)
    u, n = hists[keep[0]]
    if len(u) and positive_values is None:
        fg, ign = encodings[0].apply(u)
        ign = np.zeros(len(u), bool) if ign is None else ign
        obj, bg = int(n[fg].sum()), int(n[~fg & ~ign].sum())
    else:  # --positive-values: counts not kept; assume both (checked on crops)
        obj = bg = 1
    return MaskPlan(p, h, w, keep, encodings, obj, bg)


def read_mask_window(
    plan: MaskPlan, row0: int, col0: int, rows: int, cols: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(object, valid) of a window (clipped to the label), exactly as the same rows and columns
    of a whole :func:`read_mask_valid`; valid None when the window holds no ignored pixel."""
    import rasterio
    from rasterio.windows import Window

    rows = max(0, min(rows, plan.height - row0))
    cols = max(0, min(cols, plan.width - col0))
    with rasterio.Env(**GDAL_ENV), open_raster(plan.path) as src:
        raw = _read(src, plan.path, Window(col0, row0, cols, rows), "mask")
    return plan.apply(raw)


def read_mask_decimated(plan: MaskPlan, step: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(object, valid) of every ``step``-th row and column (nearest), read strip by strip."""
    return plan.apply(_decimated_raw(plan.path, max(1, int(step)), "mask"))


# ------------------------------------------------------------------------------------ the cache
_PLANS: dict[tuple[Any, ...], Any] = {}
_MAX_PLANS = 4096


def _cached(key: tuple[Any, ...], make: Any) -> Any:
    if key not in _PLANS:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = make()
    return _PLANS[key]


def image_plan(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> ImagePlan:
    """:func:`scan_image`, cached per process by file (path, modification time, size) and
    arguments: the data check before training scans each large file once and the dataset (and
    its forked DataLoader workers) reuse the plan."""
    p = Path(path)
    key = ("image", *_file_key(p), bool(sar), tuple(bands or ()))
    return _cached(key, lambda: scan_image(p, sar, bands))


def mask_plan(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> MaskPlan:
    """:func:`scan_mask`, cached like :func:`image_plan` (the shape check runs every call)."""
    p = Path(path)
    key = ("mask", *_file_key(p), tuple(positive_values or ()))
    plan = _cached(key, lambda: scan_mask(p, None, image_path, positive_values))
    if shape is not None and plan.shape != tuple(shape):
        other = f" but image {image_path} is" if image_path is not None else ", expected"
        raise DataError(
            f"mask size {plan.width}x{plan.height}{other} {shape[1]}x{shape[0]} (WxH); "
            "re-export the mask at the image's size or remove the pair",
            p,
        )
    return plan
