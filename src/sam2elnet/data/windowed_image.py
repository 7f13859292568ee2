"""Windowed reads of large images: :class:`ImagePlan`, crops and the statistics sample.

One streamed pass (:func:`scan_image`, cached per file by :func:`image_plan`) decides what a whole
:func:`sam2elnet.data.raster.read_image` decides from all pixels: whether the last band is alpha
(GDAL's tag and, for integer data, only "transparent"/"opaque" values anywhere), whether a SAR
grey image stored as 3-4 identical bands collapses to one (largest band difference anywhere
<= 2), the bands kept and the nodata tag. A crop read with :func:`read_image_window` is then
identical, value for value, to the same rows and columns of a whole read. Routing, strips and
the cache: :mod:`sam2elnet.data.windowed`.

**Statistics sample.** Per-image statistics (the ``percentile`` normalisation of optical
images, dataset statistics in :func:`sam2elnet.data.norm_fit.compute_stats`) come from a
regular sample taken during the pass: every ``k``-th pixel in raster order with
``k = ceil(H * W / STATS_SAMPLE)`` (all pixels of images up to :data:`STATS_SAMPLE` px, which then
give exactly the whole-image statistics). The whole-image path itself takes the percentiles of
a :func:`~sam2elnet.data.normalize.stride_sample` of at most
:data:`~sam2elnet.data.normalize.PERCENTILE_SAMPLE` valid pixels; the windowed path applies the
same function to this sample, i.e. to at least ``min(PERCENTILE_SAMPLE, valid pixels)`` pixels.
The error of a ``p`` quantile from ``n`` sampled pixels is about ``sqrt(p (1 - p) / n)`` in rank:
0.04 percentage points for the 1st/99th percentile at ``n = PERCENTILE_SAMPLE`` (65,536) - the
same order as the whole-image path's own sampling (tested: the fraction of all pixels below the
sampled 1st percentile stays within 1 +- 0.25 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2elnet.data import windowed
from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.images import MAX_BANDS, RasterImage, check_file, select_bands
from sam2elnet.data.validity import alpha_tagged, band_nodata, finish_pixels, is_alpha_band
from sam2elnet.errors import DataError

__all__ = [
    "STATS_SAMPLE",
    "ImagePlan",
    "image_plan",
    "read_image_decimated",
    "read_image_window",
    "sample_image",
    "scan_image",
]

STATS_SAMPLE = 1_000_000
"""Target size of the raster-order stride sample kept for statistics (see the module docstring)."""


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
        nodata = band_nodata(raw, self.nodata, self.alpha)
        data, nodata = finish_pixels(raw[list(self.keep)], nodata)
        return RasterImage(data=np.ascontiguousarray(data), nodata=nodata, path=self.path)


def scan_image(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> ImagePlan:
    """One streamed pass over an image: the decisions of :func:`read_image` and a statistics
    sample (module docstring). Raises DataError like :func:`read_image` (missing, corrupt or
    truncated file, bad ``bands``, too many bands)."""
    import rasterio
    from rasterio.windows import Window

    p = Path(path)
    check_file(p, "image")
    try:
        with rasterio.Env(**windowed.GDAL_ENV), windowed.open_raster(p) as src:
            h, w, c = src.height, src.width, src.count
            dtype = np.dtype(src.dtypes[0])
            maybe_alpha = alpha_tagged(src)
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
            for r0, rows in windowed.strips(h, w, block):
                raw = windowed.read_raw(src, p, Window(0, r0, w, rows), "raster")
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
        raise DataError(raster_error_text("raster", err), p) from None
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
    with rasterio.Env(**windowed.GDAL_ENV), windowed.open_raster(plan.path) as src:
        raw = windowed.read_raw(src, plan.path, Window(col0, row0, cols, rows), "raster")
    return plan.apply(raw)


def read_image_decimated(plan: ImagePlan, step: int) -> RasterImage:
    """Every ``step``-th row and column of the image (nearest-neighbour decimation, rows and
    columns ``0, step, 2 step, ...``), read strip by strip: memory one strip plus the result."""
    return plan.apply(windowed.decimated_raw(plan.path, max(1, int(step)), "raster"))


def image_plan(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> ImagePlan:
    """:func:`scan_image`, cached per process by file (path, modification time, size) and
    arguments: the data check before training scans each large file once and the dataset (and
    its forked DataLoader workers) reuse the plan."""
    p = Path(path)
    key = ("image", *windowed.file_key(p), bool(sar), tuple(bands or ()))
    return windowed.cached(key, lambda: scan_image(p, sar, bands))
