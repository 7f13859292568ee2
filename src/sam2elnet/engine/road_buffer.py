"""The buffer of the road measures of one evaluation, in pixels and in metres.

``elnet evaluate`` takes the buffer in pixels (``--road-buffer``) or in metres
(``--road-buffer-m``, as road-extraction evaluations quote it, e.g. about 2 m for 0.5 m aerial
imagery). Metres become pixels with the predictions' pixel size, read from their CRS and
transform (:func:`sam2elnet.data.georef.metres_per_pixel`); the road measures are computed on the
prediction's grid (a truth on another grid is resampled onto it), so the prediction's pixel size
is the one that counts. Every result row records the buffer in both units where the pixel size
is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import ROAD_BUFFER_MAX

__all__ = ["SAME_PIXEL_SIZE", "pixel_sizes_m", "road_buffer_px"]

SAME_PIXEL_SIZE = 0.01
"""Relative difference below which two pixel sizes count as one (``--road-buffer-m`` needs one
pixel size: rounding in a GeoTIFF's transform differs in the last digits)."""


def pixel_sizes_m(paths: Sequence[Path]) -> dict[Path, tuple[float | None, str]]:
    """Each raster's pixel size in metres and, where unknown, why (header only; PNG / JPEG
    have no georeference): :func:`sam2elnet.data.georef.metres_per_pixel` of each file."""
    from sam2elnet.data.georef import metres_per_pixel
    from sam2elnet.data.grids import raster_header

    return {Path(p): metres_per_pixel(raster_header(p).geo) for p in paths}


def road_buffer_px(buffer_m: float, sizes: dict[Path, tuple[float | None, str]]) -> float:
    """``buffer_m`` metres in pixels of the predictions' one pixel size.

    Args:
        buffer_m: the buffer, metres (> 0; the range is
            :func:`sam2elnet.option_values.road_buffer_m_field`'s).
        sizes: :func:`pixel_sizes_m` of the predictions scored.

    Returns:
        ``buffer_m / pixel size`` (px).

    Raises:
        DataError: a prediction without a projected CRS (no CRS, GCPs only, degrees), or two
            pixel sizes more than :data:`SAME_PIXEL_SIZE` apart; the error names the file.
        UserError: the buffer is more than :data:`~sam2elnet.option_values.ROAD_BUFFER_MAX` px.
    """
    known: list[tuple[Path, float]] = []
    for path, (size, why) in sizes.items():
        if size is None or size <= 0:
            raise DataError(
                f"has {why or 'no pixel size'}: --road-buffer-m needs predictions in a "
                "projected CRS (the pixel size in metres comes from the transform); give the "
                "buffer in pixels with --road-buffer",
                path,
            )
        known.append((path, size))
    first, size = known[0]
    for path, other in known[1:]:
        if abs(other - size) > SAME_PIXEL_SIZE * size:
            raise DataError(
                f"has {other:g} m pixels, {first.name} {size:g} m: --road-buffer-m needs one "
                "pixel size; evaluate each resolution on its own, or give the buffer in pixels "
                "with --road-buffer",
                path,
            )
    px = float(buffer_m) / size
    if px > ROAD_BUFFER_MAX:
        raise UserError(
            f"--road-buffer-m {buffer_m:g} is {px:g} px at {size:g} m pixels: more than "
            f"{ROAD_BUFFER_MAX:g} px matches almost everything; give a smaller buffer"
        )
    return px
