"""Windowed reads of large rasters: the crop a training step needs, never the whole file.

Reading a 12,000^2 px GeoTIFF whole to cut one 256 px training crop costs gigabytes (the raw
bands, their float32 normalised copy, masks). For such files the training dataset
(:class:`sam2elnet.data.datasets.SegmentationDataset`) reads only the window of each crop with
rasterio's windowed reads. What the whole-image reader (:func:`sam2elnet.data.raster.read_image`,
:func:`sam2elnet.data.raster.read_mask_valid`) decides from *all* pixels of a file is decided
here once per file, from one streamed pass over row strips (memory: one strip,
:data:`STRIP_PIXELS` pixels), and kept in a plan:

* images (:func:`sam2elnet.data.windowed_image.scan_image` -> ``ImagePlan``): alpha, the SAR
  grey collapse, the bands kept, the nodata tag and a pixel sample for statistics;
* masks (:func:`sam2elnet.data.windowed_mask.scan_mask` -> ``MaskPlan``): the value histogram of
  every band, hence the same mask encoding as a whole read, alpha, identical-channel collapse and
  the multi-channel agreement check.

A crop read with ``read_image_window`` / ``read_mask_window`` is therefore identical,
value for value, to the same rows and columns of a whole read (tested with seeded crops).

**PNG / JPEG** cannot be read by windows (OpenCV and GDAL decode them from the first row), so
they are always read whole; such files are small on disk but decode to H x W x bands bytes - a
12,000^2 px PNG mask is 144 MB per read. Convert large labels to tiled GeoTIFF
(``gdal_translate -co TILED=YES -co COMPRESS=DEFLATE in.png out.tif``) to get windowed reads.

Routing (:func:`use_windows`): a file is read by windows when GDAL can window it (not PNG/JPEG)
and its whole read would hold more than ``max_bytes`` (default :data:`WINDOW_MIN_BYTES`) of
decoded and normalised pixels (:func:`whole_read_bytes`); smaller files keep the whole read
(and the caches built on it).

This module holds what both plans stand on: the routing, the GDAL settings, row strips, raw
window reads and the per-process plan cache. The plans live in
:mod:`sam2elnet.data.windowed_image` (``image_plan``, crops, decimation, statistics sample) and
:mod:`sam2elnet.data.windowed_mask` (``mask_plan``, crops, decimation).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.errors import DataError

__all__ = [
    "GDAL_ENV",
    "gdal_env",
    "STRIP_PIXELS",
    "WINDOW_MIN_BYTES",
    "cached",
    "decimated_raw",
    "file_key",
    "open_raster",
    "read_raw",
    "strips",
    "use_windows",
    "whole_read_bytes",
    "windowable",
]

WINDOW_MIN_BYTES = 64_000_000
"""Files whose whole read would hold more than this (64 MB, :func:`whole_read_bytes`) are read by
windows: a 3-band uint8 image of about 1,450^2 px, a 1-band one of about 2,300^2 px."""

STRIP_PIXELS = 4_000_000
"""Pixels per row strip of a streamed pass (a 12,000 px wide file: 333 rows per strip)."""


def gdal_env(cache_mb: int) -> dict[str, Any]:
    """``rasterio.Env`` options of the readers: no ``.aux.xml`` side files, GDAL's block cache
    capped at ``cache_mb`` MB (its default, 5 % of RAM, would let the decoded blocks of a large
    file grow past a gigabyte).

    ``rasterio.Env(GDAL_CACHEMAX=n)`` hands ``n`` to ``GDALSetCacheMax64``, which takes
    **bytes** (GDAL's own reading of the config option takes a small number as MB; rasterio's
    does not), so the cap is given in bytes here. Before, ``GDAL_CACHEMAX: 64`` / ``128`` left
    GDAL a cache of 64 / 128 bytes: no block was ever kept, and a resampled read of a file
    with overviews decoded every block once per output row (a 3,000 x 2,500 px COG: the scene
    statistics read took 92 s instead of 0.1 s).

    Args:
        cache_mb: block cache cap in MB (2^20 bytes), > 0.

    Returns:
        dict for ``rasterio.Env(**...)``.
    """
    return {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": int(cache_mb) * 2**20}


GDAL_ENV = gdal_env(64)
"""The window readers' GDAL options (:func:`gdal_env`, 64 MB block cache)."""


def windowable(path: str | Path) -> bool:
    """True when a file can be read by windows: anything GDAL reads except PNG and JPEG."""
    return Path(path).suffix.lower() not in CV2_SUFFIXES


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


def strips(height: int, width: int, block_rows: int = 1) -> Iterator[tuple[int, int]]:
    """(first row, rows) of row strips of about :data:`STRIP_PIXELS` px, block-aligned (read at
    call time, so a test may lower it)."""
    rows = max(1, STRIP_PIXELS // max(1, width))
    rows = max(block_rows, rows - rows % max(1, block_rows))
    for r0 in range(0, height, rows):
        yield r0, min(rows, height - r0)


def read_raw(src: Any, path: Path, window: Any, what: str) -> np.ndarray:
    """``src.read(window=window)``, all bands; DataError naming ``path`` (a ``what`` file) when
    GDAL fails on it."""
    import rasterio

    try:
        return src.read(window=window)
    except rasterio.errors.RasterioError as err:
        raise DataError(raster_error_text(what, err), path) from None


def file_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, modification time in ns, size): the cache key of a file's plan."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def decimated_raw(path: Path, step: int, what: str) -> np.ndarray:
    """Every ``step``-th row and column of all bands, read strip by strip."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.Env(**GDAL_ENV), open_raster(path) as src:
        h, w = src.height, src.width
        rows = max(step, (STRIP_PIXELS // max(1, w)) // step * step)
        parts = []
        for r0 in range(0, h, rows):
            raw = read_raw(src, path, Window(0, r0, w, min(rows, h - r0)), what)
            parts.append(raw[:, ::step, ::step].copy())
    return np.concatenate(parts, axis=1)


# ------------------------------------------------------------------------------- the plan cache
_PLANS: dict[tuple[Any, ...], Any] = {}
_MAX_PLANS = 4096


def cached(key: tuple[Any, ...], make: Any) -> Any:
    """The plan stored under ``key``, made by ``make()`` the first time (per process; the oldest
    of :data:`_MAX_PLANS` plans is dropped first)."""
    if key not in _PLANS:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = make()
    return _PLANS[key]
