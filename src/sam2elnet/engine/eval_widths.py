"""The widths of an evaluation (``elnet evaluate``): checked before any file is read, and
recorded in the result's ``options``.

* :func:`check_widths`: the road buffer (px or ground metres) and the line width of polygon
  files, each a finite number > 0 (UserError naming the parameter);
* :func:`buffer_option_words`: the road buffer in its option's words, for messages;
* :func:`buffer_px_options` / :func:`one_buffer_m`: the road buffer the images were scored with,
  in px and in metres (one value when the images agree, and the range);
* :func:`ground_options`: the predictions' ground pixel size and projection scale factor.

Metres become pixels per image in :mod:`sam2elnet.engine.road_buffer`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

from sam2elnet.data.georef import PixelSize
from sam2elnet.engine.eval_result import ImageResult
from sam2elnet.engine.road_buffer import buffer_range, same_pixel_size
from sam2elnet.errors import UserError
from sam2elnet.option_values import LineWidthUnit

__all__ = [
    "buffer_option_words",
    "buffer_px_options",
    "check_widths",
    "ground_options",
    "one_buffer_m",
]


def buffer_option_words(road_buffer_px: float | None, road_buffer_m: float | None) -> str:
    """The road buffer as given, in its option's words (``--road-buffer-m 1.5``); "" when none."""
    if road_buffer_m is not None:
        return f"--road-buffer-m {road_buffer_m:g}"
    return "" if road_buffer_px is None else f"--road-buffer {road_buffer_px:g}"


def one_buffer_m(images: list[ImageResult]) -> float | None:
    """The road buffer in metres when every image's is known and they agree (one pixel size)."""
    ms = [r.road_buffer[1] for r in images if r.road_buffer is not None]
    if not ms or any(m is None for m in ms):
        return None
    return float(min(ms)) if same_pixel_size(ms) else None  # type: ignore[arg-type,type-var]


def buffer_px_options(images: list[ImageResult], given: float | None) -> dict[str, Any]:
    """The options entries of the buffer in px: ``road_buffer_px`` (``given``, or the images'
    one buffer when they agree within :data:`~sam2elnet.engine.road_buffer.SAME_PIXEL_SIZE`,
    else None) and ``road_buffer_px_range`` ([smallest, largest] over the images; None
    without road measures)."""
    pxs = [r.road_buffer[0] for r in images if r.road_buffer is not None]
    span = buffer_range(pxs)
    one = given
    if one is None and span is not None and same_pixel_size(list(span)):
        one = pxs[0]
    return {"road_buffer_px": one, "road_buffer_px_range": None if span is None else list(span)}


def ground_options(sizes: dict[Path, PixelSize]) -> dict[str, Any]:
    """The options entries of the predictions' ground pixel, each the one value when every
    prediction's is known and they agree (:func:`~sam2elnet.engine.road_buffer.same_pixel_size`),
    else None, with its [smallest, largest] when every one is known, else None:
    ``pixel_size_m`` / ``pixel_size_m_range`` (ground metres per pixel at the image centre) and
    ``pixel_scale_factor`` / ``pixel_scale_factor_range`` (the projection's scale factor there,
    CRS metres per ground metre). Each decided on its own: images of two resolutions in one UTM
    zone have one scale factor (0.9996) and two pixel sizes; Web Mercator tiles at several
    latitudes have a range of both. Each image's own: its row (``ImageResult.ground``)."""
    out: dict[str, Any] = {}
    for key, vals in (("pixel_size_m", [s.metres for s in sizes.values()]),
                      ("pixel_scale_factor", [s.scale for s in sizes.values()])):  # fmt: skip
        known = bool(vals) and all(v is not None for v in vals)
        span = list(buffer_range(vals)) if known else None  # type: ignore[arg-type]
        one = known and same_pixel_size(vals)  # type: ignore[arg-type]
        out.update({key: vals[0] if one else None, f"{key}_range": span})
    return out


def check_widths(
    road_buffer_px: float | None,
    road_buffer_m: float | None,
    line_width: float | None,
    line_width_unit: str,
) -> None:
    """Check the widths of one evaluation before any file is read (the CLI's ranges are
    :class:`~sam2elnet.options.EvaluateOptions`; the API's callers get the same words).

    Args:
        road_buffer_px: the road buffer in pixels, or None in metres mode
            (:func:`~sam2elnet.option_values.road_buffer_units` gives exactly one of the two).
        road_buffer_m: the road buffer in ground metres, or None in pixel mode.
        line_width: the total width line (and point) features of polygon files are buffered
            to, in ``line_width_unit``; None: lines burnt 1 px wide, points dropped.
        line_width_unit: ``"map"`` (units of the prediction's CRS) or ``"px"``.

    Raises:
        UserError: a given width that is not a finite number > 0 (naming its parameter:
            ``road_buffer_px``, ``road_buffer_m`` or ``line_width``), or a ``line_width_unit``
            other than ``"map"`` / ``"px"``.
    """
    widths = (
        ("road_buffer_px", road_buffer_px),
        ("road_buffer_m", road_buffer_m),
        ("line_width", line_width),
    )
    for name, v in widths:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UserError(f"{name} must be a finite number > 0, got {v}")
    if line_width_unit not in get_args(LineWidthUnit):
        raise UserError(f"line_width_unit must be 'map' or 'px', got {line_width_unit!r}")
