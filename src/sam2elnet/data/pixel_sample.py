"""A bounded look at a raster's valid pixels, for the checks before a job (is this folder of
images masks, this folder of labels images: :mod:`sam2elnet.data.masks`): a small file is read
whole, a large one decimated, so the look never costs more than :data:`SAMPLE_PIXELS` per band."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.utils.run_warnings import quiet

__all__ = ["CONTENT_CHECK_MAX_BYTES", "SAMPLE_CACHE_MB", "SAMPLE_PIXELS", "valid_pixels"]

SAMPLE_PIXELS = 2**20
"""Pixels per band that :func:`sam2elnet.data.masks.image_like_label` and :func:`~sam2elnet.data.masks.image_values` read at most: a raster
whose header says more is read decimated (nearest neighbour, every f-th row and column,
:func:`sam2elnet.data.tiling.decimated_read`), so a 10,000 px JPEG-compressed GeoTIFF of a few MB
is not decoded whole into memory for a look before the job."""

SAMPLE_CACHE_MB = 32
"""GDAL's block cache (MB, :func:`sam2elnet.data.windowed.gdal_env`) while the sample is read.
GDAL's default, 5 % of the RAM, kept every decoded block of a large file: the look at a
10,000^2 px JPEG-compressed RGB GeoTIFF peaked at 685 / 714 MB (striped / 256 px tiles; the
decoded file, 300 MB, in the cache), 140 / 142 MB with this cap. 32 MB holds the block rows a
decimated strip of about 512 rows shares with the next one (16 MB: 1.04 s of CPU instead of
0.72 s for the tiled file, its boundary tiles decoded twice; docs/benchmarks.md, "The
images-vs-masks check on a large raster")."""

CONTENT_CHECK_MAX_BYTES = 64 * 2**20
"""A file GDAL cannot open is looked at by the whole-image reader only up to this size (64 MiB);
a larger one is not read whole for a look (:class:`~sam2elnet.errors.DataError`). Files GDAL
opens are looked at whatever their size, on the bounded sample."""


def valid_pixels(p: Path) -> np.ndarray:
    """(C, n) valid pixels of a raster (nodata, alpha and non-finite values left out; all of
    them when none is valid), in the file's dtype: the whole file
    (:func:`sam2elnet.data.images.read_image`) up to :data:`SAMPLE_PIXELS` pixels per band, else a
    decimated sample of at most that many (the header read first; GDAL's block cache capped at
    :data:`SAMPLE_CACHE_MB`). Memory: the sample, one strip of about 512 rows (files without
    overviews, :func:`sam2elnet.data.tiling.decimated_read`) and the capped cache, whatever the
    file's size.

    Raises:
        DataError: the file cannot be read, or GDAL cannot open it and it is larger than
            :data:`CONTENT_CHECK_MAX_BYTES` (not read whole).
        OSError: the file cannot be read.
    """
    import rasterio
    from rasterio.errors import RasterioError

    from sam2elnet.data.images import read_image
    from sam2elnet.data.tiling import decimated_read, overview_alpha
    from sam2elnet.data.windowed import gdal_env

    data = valid = None
    large = opened = False
    try:
        with quiet(), warnings.catch_warnings():  # a look before the job: the job's read warns
            warnings.simplefilter("ignore")
            with rasterio.Env(**gdal_env(SAMPLE_CACHE_MB)), rasterio.open(p) as src:
                opened = True
                large = bool(src.count) and src.width * src.height > SAMPLE_PIXELS
                if large:
                    alpha = overview_alpha(src, SAMPLE_PIXELS)
                    bands = list(range(1, src.count + 1))
                    data, valid = decimated_read(src, bands, SAMPLE_PIXELS, alpha=alpha)
                    data = data[:-1] if alpha else data
    except RasterioError as err:
        if large:  # its header read, its pixels not (truncated): not read whole below
            raise DataError(f"cannot read raster ({err})", p) from None
    if data is None or valid is None:  # small, or not opened by GDAL: the image reader's way
        if not opened and p.is_file() and p.stat().st_size > CONTENT_CHECK_MAX_BYTES:
            raise DataError("cannot read raster (GDAL cannot open it; too large to read whole)", p)
        with quiet():
            img = read_image(p)
        data, valid = img.data, img.valid
    return data[:, valid] if valid.any() else data.reshape(data.shape[0], -1)
