"""Image/label pair sizes from file headers alone: :func:`image_size` (no pixel decoding,
GeoTIFFs included), :func:`pair_size_error` (a mask or coarse label of another size than its
image; :func:`mask_size_error`, the same from a mask reader's size) and :func:`verify_pairs`
(every pair of a dataset: the first mismatch an error, or skipped in batch mode). Finding the
pairs is :mod:`sam2elnet.data.layouts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.layouts import Sample
from sam2elnet.data.naming import GEO_SUFFIXES
from sam2elnet.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["image_size", "mask_size_error", "pair_size_error", "verify_pairs"]


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file from its header only (no pixel decoding, GeoTIFFs included).

    Args:
        path: The image file.

    Returns:
        ``(height, width)`` in pixels.

    Raises:
        DataError: missing or undecodable file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("file does not exist; check the path", p)
    if p.suffix.lower() in GEO_SUFFIXES:  # header only: a 12,000^2 px GeoTIFF is not read
        import rasterio

        from sam2elnet.data.windowed import GDAL_ENV, open_raster

        try:
            with rasterio.Env(**GDAL_ENV), open_raster(p) as src:
                return int(src.height), int(src.width)
        except (rasterio.errors.RasterioError, OSError) as err:
            raise DataError(raster_error_text("raster", err), p) from None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError):
        raise DataError(
            "cannot decode image (corrupt, truncated or not an image); re-export it or remove it", p
        ) from None
    return h, w


def verify_pairs(
    samples: Sequence[Sample], strict: bool = True, progress: bool = False
) -> list[Sample]:
    """Check every image/label pair has the same size (headers only, fast).

    Args:
        samples: The pairs (masks and coarse labels are checked against their image).
        strict: True: the first mismatch is an error; False (batch mode): mismatched pairs are
            skipped with a warning.
        progress: Show a progress bar.

    Returns:
        The pairs whose sizes match (all of them when ``strict``).

    Raises:
        DataError: with ``strict``, the first mismatch, naming both files and both sizes (W x H).
    """
    from sam2elnet.utils.progress import track

    good = []
    for s in track(samples, "check pairs", "pair", progress):
        err = pair_size_error(s)
        if err is None:
            good.append(s)
            continue
        if strict:
            raise err
        log.warning("skipping %s", err)
    return good


def mask_size_error(
    path: Path,
    height: int,
    width: int,
    shape: tuple[int, int],
    image_path: str | Path | None = None,
) -> DataError:
    """The error for a mask of ``height`` x ``width`` px where ``shape`` (H, W) was expected: one
    message for whole reads (:func:`sam2elnet.data.masks.read_mask_valid`) and windowed ones
    (:mod:`sam2elnet.data.windowed_mask`), naming the image when there is one (re-exported by
    :mod:`sam2elnet.data.masks`)."""
    other = f" but image {image_path} is" if image_path is not None else ", expected"
    return DataError(
        f"mask size {width}x{height}{other} {shape[1]}x{shape[0]} (WxH); "
        "re-export the mask at the image's size or remove the pair",
        path,
    )


def pair_size_error(s: Sample) -> DataError | None:
    """The error of a pair whose mask or coarse label has another size than its image (headers
    only, :func:`image_size`), naming both files and both sizes (W x H); None when they match.

    Raises:
        DataError: a file whose header cannot be read (missing, not an image).
    """
    shape = image_size(s.image)
    for p in (s.mask, s.coarse):
        if p is not None and (size := image_size(p)) != shape:
            return DataError(
                f"size {size[::-1]} differs from image {s.image} {shape[::-1]} (WxH); re-export "
                "the label at the image's size or remove the pair",
                p,
            )
    return None
