"""The buffer of the road measures of one evaluation, in pixels and in metres.

``elnet evaluate`` takes the buffer in pixels (``--road-buffer``) or in metres
(``--road-buffer-m``, as road-extraction evaluations quote it, e.g. about 2 m for 0.5 m aerial
imagery). Metres are ground metres; they become pixels with the predictions' ground pixel size,
from their CRS and transform with the projection's scale factor at the image centre applied
(:func:`sam2elnet.data.georef.pixel_size`: Web Mercator EPSG:3857 at 60 deg N, 0.5 m CRS pixels
are 0.25 m on the ground, so 2 m is 8 px; UTM 0.9996). The road measures are computed on the
prediction's grid (a truth on another grid is resampled onto it), so the prediction's pixel size
is the one that counts. Every result row records the buffer in both units where the pixel size
is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sam2elnet.data.georef import PixelSize
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import ROAD_BUFFER_MAX

__all__ = ["SAME_PIXEL_SIZE", "pixel_sizes_m", "road_buffer_px", "same_pixel_size"]

SAME_PIXEL_SIZE = 0.01
"""Relative difference below which two pixel sizes count as one (``--road-buffer-m`` needs one
pixel size: rounding in a GeoTIFF's transform differs in the last digits)."""


def pixel_sizes_m(paths: Sequence[Path]) -> dict[Path, PixelSize]:
    """Each raster's ground pixel size in metres (header only; PNG / JPEG have no
    georeference): :func:`sam2elnet.data.georef.pixel_size` of each file at its image centre,
    ``.metres`` None with ``.why`` where unknown. Logs one warning for the rasters over which
    the ground pixel size varies by more than 1 %
    (:func:`~sam2elnet.data.georef.warn_scale_spread`)."""
    from sam2elnet.data.georef import pixel_size, warn_scale_spread
    from sam2elnet.data.grids import raster_header

    sizes = {}
    for p in paths:
        head = raster_header(p)
        sizes[Path(p)] = pixel_size(head.geo, head.shape)
    warn_scale_spread(sizes)
    return sizes


def same_pixel_size(values: list[float]) -> bool:
    """Whether pixel sizes (or lengths derived from them) are one size: each within
    :data:`SAME_PIXEL_SIZE` (relative) of the first. The one rule for ``--road-buffer-m``'s
    check and for what an evaluation records (``evaluate._one_m``, ``evaluate._ground``)."""
    first = values[0]
    return all(abs(v - first) <= SAME_PIXEL_SIZE * first for v in values[1:])


def road_buffer_px(buffer_m: float, sizes: dict[Path, PixelSize]) -> float:
    """``buffer_m`` metres in pixels of the predictions' one pixel size.

    Args:
        buffer_m: the buffer, ground metres (> 0; the range is
            :func:`sam2elnet.option_values.road_buffer_m_field`'s).
        sizes: :func:`pixel_sizes_m` of the predictions scored.

    Returns:
        ``buffer_m / ground pixel size`` (px).

    Raises:
        DataError: a prediction without a projected CRS (no CRS, GCPs only, degrees), or two
            pixel sizes more than :data:`SAME_PIXEL_SIZE` apart; the error names the file.
        UserError: the buffer is more than :data:`~sam2elnet.option_values.ROAD_BUFFER_MAX` px.
    """
    known: list[tuple[Path, float]] = []
    for path, ps in sizes.items():
        size, why = ps.metres, ps.why
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
        if not same_pixel_size([size, other]):
            raise DataError(
                f"has {other:.4g} m ground pixels, {first.name} {size:.4g} m: --road-buffer-m "
                "needs one ground pixel size (a Web Mercator tile's depends on its latitude); "
                "evaluate each resolution on its own, or give the buffer in pixels with "
                "--road-buffer",
                path,
            )
    px = float(buffer_m) / size
    if px > ROAD_BUFFER_MAX:
        raise UserError(
            f"--road-buffer-m {buffer_m:g} is {px:.4g} px at {size:.4g} m ground pixels: more "
            f"than {ROAD_BUFFER_MAX:g} px matches almost everything; give a smaller buffer"
        )
    return px
