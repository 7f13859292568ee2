"""The buffer of the road measures, in pixels and in metres: the one place ground metres
(``--road-buffer-m``) become pixels, for ``elnet evaluate``, ``train``, ``cv`` and ``experiment``.

The buffer is given in pixels (``--road-buffer``) or in metres (``--road-buffer-m``, as
road-extraction evaluations quote it, e.g. about 2 m for 0.5 m aerial imagery). Metres are ground
metres; they become pixels **per image**, with each image's own ground pixel size, from its CRS
and transform with the projection's scale factor at the image centre applied
(:func:`sam2elnet.data.georef.pixel_size`: Web Mercator EPSG:3857 at 60 deg N, 0.5 m CRS pixels
are 0.25 m on the ground, so 2 m is 8 px; at the equator 4 px; UTM 0.9996). A folder of Web
Mercator tiles at different latitudes, or of images at different resolutions, is so measured
with the same ground tolerance on every image. The road measures are computed on the
prediction's grid (``evaluate``: a truth on another grid is resampled onto it; ``train`` /
``cv`` / ``experiment``: the image's own grid), so that grid's pixel size is the one that
counts. Every result records the buffer in both units where the pixel size is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path

import numpy as np

from sam2elnet.data.georef import PixelSize, pixel_size, warn_scale_spread
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import ROAD_BUFFER_MAX

__all__ = [
    "SAME_PIXEL_SIZE",
    "buffer_range",
    "buffer_said",
    "image_buffers_px",
    "recorded_buffer",
    "per_item",
    "pixel_sizes_m",
    "road_buffers_px",
    "same_pixel_size",
]

SAME_PIXEL_SIZE = 0.01
"""Relative difference below which two pixel sizes (or buffers) count as one: rounding in a
GeoTIFF's transform differs in the last digits. An evaluation records one ``pixel_size_m`` and
one ``road_buffer_px`` only where all images agree within it."""


def pixel_sizes_m(paths: Sequence[Path]) -> dict[Path, PixelSize]:
    """Each raster's ground pixel size in metres (header only; PNG / JPEG have no
    georeference): :func:`sam2elnet.data.georef.pixel_size` of each file at its image centre,
    ``.metres`` None with ``.why`` where unknown. Logs one warning for the rasters over which
    the ground pixel size varies by more than 1 %
    (:func:`~sam2elnet.data.georef.warn_scale_spread`)."""
    from sam2elnet.data.grids import raster_header

    sizes = {}
    for p in paths:
        head = raster_header(p)
        sizes[Path(p)] = pixel_size(head.geo, head.shape)
    warn_scale_spread(sizes)
    return sizes


def same_pixel_size(values: list[float]) -> bool:
    """Whether pixel sizes (or lengths derived from them) are one size: each within
    :data:`SAME_PIXEL_SIZE` (relative) of the first. The one rule for what an evaluation
    records as one size (:mod:`~sam2elnet.engine.eval_widths`)."""
    first = values[0]
    return all(abs(v - first) <= SAME_PIXEL_SIZE * first for v in values[1:])


def road_buffers_px(buffer_m: float, sizes: dict[Path, PixelSize]) -> dict[Path, float]:
    """``buffer_m`` ground metres in pixels of each image: ``buffer_m / its ground pixel size``.

    Args:
        buffer_m: the buffer, ground metres (> 0; the range is
            :func:`sam2elnet.option_values.road_buffer_m_field`'s).
        sizes: :func:`pixel_sizes_m` of the images measured (evaluate: the predictions).

    Returns:
        Each image's buffer in px (float > 0), by path, in ``sizes``' order.

    Raises:
        DataError: an image without a projected CRS (no CRS: PNG / JPEG; GCPs only; degrees);
            the error names the file and says to give the buffer in pixels (``--road-buffer``).
        UserError: an image's buffer is more than :data:`~sam2elnet.option_values.ROAD_BUFFER_MAX`
            px (the message names the image).
    """
    out: dict[Path, float] = {}
    for path, ps in sizes.items():
        size, why = ps.metres, ps.why
        if size is None or size <= 0:
            raise DataError(
                f"has {why or 'no pixel size'}: --road-buffer-m needs images in a projected "
                "CRS (the pixel size in metres comes from the transform); give the buffer in "
                "pixels with --road-buffer",
                path,
            )
        px = float(buffer_m) / size
        if px > ROAD_BUFFER_MAX:
            raise UserError(
                f"--road-buffer-m {buffer_m:g} is {px:.4g} px at {size:.4g} m ground pixels "
                f"({Path(path).name}): more than {ROAD_BUFFER_MAX:g} px matches almost "
                "everything; give a smaller buffer"
            )
        out[Path(path)] = px
    return out


def recorded_buffer(
    buffer_px: float, buffer_m: float | None, pixel_m: float | None
) -> tuple[float, float | None]:
    """One image's road buffer in both units, as its results record it (``road_buffer_px``,
    ``road_buffer_m``): ``buffer_m`` as given when given (``--road-buffer-m 2`` is recorded as
    2, not as 2 / pixel * pixel = 1.9999999999999998), else ``buffer_px`` times the ground
    pixel size ``pixel_m`` (metres; None: not known, no metres).

    Args:
        buffer_px: the buffer in px used on the image (given, or :func:`road_buffers_px` of
            ``buffer_m``).
        buffer_m: the buffer in ground metres when given in metres, else None.
        pixel_m: the image's ground pixel size in metres, or None.

    Returns:
        ``(px, m)``: the buffer in px as used, and in ground metres (``buffer_m``, or
        ``buffer_px * pixel_m``; None when neither is known).
    """
    if buffer_m is not None:
        return float(buffer_px), float(buffer_m)
    return float(buffer_px), None if pixel_m is None else float(buffer_px) * pixel_m


def image_buffers_px(
    buffer_px: float | None, buffer_m: float | None, paths: Iterable[str | Path]
) -> dict[Path, float]:
    """The road buffer of each image in pixels, from the resolved pair of
    :func:`~sam2elnet.option_values.road_buffer_units` (as a settled configuration holds it):
    ``(px, None)`` gives ``px`` for every image, ``(None, m)`` :func:`road_buffers_px` of the
    images' ground pixel sizes (header reads only). Used by ``train`` (validation images),
    ``cv`` and ``experiment`` (test images) before anything is trained, so a bad input stops
    the run at once.

    Raises:
        ValueError: not a resolved pair (both or neither given).
        DataError / UserError: as :func:`road_buffers_px`.
    """
    if (buffer_px is None) == (buffer_m is None):
        raise ValueError(
            f"image_buffers_px needs the buffer in one unit (road_buffer_units), got "
            f"{buffer_px!r} px and {buffer_m!r} m"
        )
    paths = [Path(p) for p in paths]
    if buffer_m is None:
        return dict.fromkeys(paths, float(buffer_px))  # type: ignore[arg-type]
    return road_buffers_px(buffer_m, pixel_sizes_m(paths))


def buffer_range(buffers: Iterable[float]) -> tuple[float, float] | None:
    """(smallest, largest) of per-image buffers in px; None for none."""
    vals = [float(b) for b in buffers]
    return (min(vals), max(vals)) if vals else None


def buffer_said(
    buffer_px: float | None = None,
    buffer_m: float | None = None,
    px_range: Sequence[float] | None = None,
    *,
    by_image: bool = False,
) -> str:
    """The road buffer in words: the one formatter of ``elnet evaluate``'s, ``train``'s, ``cv``'s
    and ``experiment``'s log lines, reports and refusals.

    Args:
        buffer_px: the buffer in px (``--road-buffer``); used only when ``buffer_m`` is None.
        buffer_m: the buffer in ground metres (``--road-buffer-m``), or None.
        px_range: (smallest, largest) px of the images (:func:`buffer_range`; one pixel size:
            both the same), or None where not known.
        by_image: say ``" by image"`` after a px range that is a range (``"2 m = 4-8 px by
            image"``; not after one px), for a sentence that names no images.

    Returns:
        ``"3 px"`` (``buffer_px``, ``:g``); ``"2 m"`` (metres, px not known); ``"2 m = 4 px"``
        (metres, every image one pixel size within :data:`SAME_PIXEL_SIZE`); ``"2 m = 4-8 px"``
        (per image); ``"4-8 px"`` (only ``px_range``). Pixels of metres with 3 significant
        digits.

    Raises:
        ValueError: none of the three given.
    """
    px = None
    if px_range is not None:
        lo, hi = float(px_range[0]), float(px_range[1])
        one = same_pixel_size([lo, hi])
        px = f"{lo:.3g} px" if one else f"{lo:.3g}-{hi:.3g} px" + (" by image" if by_image else "")
    if buffer_m is not None:
        return f"{float(buffer_m):g} m" + (f" = {px}" if px else "")
    if buffer_px is not None:
        return f"{float(buffer_px):g} px"
    if px is not None:
        return px
    raise ValueError("no road buffer: give it in px, in metres or as a px range")


def per_item(road_buffer: float | Sequence[float] | None, n: int) -> list[float]:
    """One road buffer (px) per item of ``n``: ``road_buffer`` for each, or, given a sequence
    (each image's own, e.g. of :func:`image_buffers_px`), that sequence. Raises ValueError for a
    sequence of another length, and for None (a configuration in metres has no px buffer,
    ``road_buffer`` None: give each image's own px)."""
    if road_buffer is None:
        raise ValueError(
            "no road buffer in px (given in metres): give each image's own px (image_buffers_px)"
        )
    # one number: a Real (Python and numpy scalars alike, numpy registers them as Real) or
    # any other 0-d value float() takes (a 0-d array or tensor); anything else is a sequence
    if isinstance(road_buffer, Real) or np.ndim(road_buffer) == 0:
        return [float(road_buffer)] * n  # type: ignore[arg-type]
    out = [float(b) for b in road_buffer]
    if len(out) != n:
        raise ValueError(f"{len(out)} road buffers for {n} images")
    return out
