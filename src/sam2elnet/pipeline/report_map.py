"""The report's footprint map: where georeferenced inputs lie, coloured by predicted IoU.

:func:`read_footprint` reads a raster's bounds and CRS; :func:`footprint_map` lays all footprints
out as SVG boxes (plain numbers the template draws, no map tiles, no network).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import SCENE_SUFFIXES

log = logging.getLogger(__name__)

__all__ = ["Footprint", "footprint_map", "read_footprint"]


@dataclass
class Footprint:
    """Bounds (left, bottom, right, top) of a georeferenced image in its CRS (any WKT/EPSG string)."""

    left: float
    bottom: float
    right: float
    top: float
    crs: str


def read_footprint(path: str | Path) -> Footprint | None:
    """Footprint of a georeferenced raster (GeoTIFF or any raster rasterio opens).

    Args:
        path: The image file.

    Returns:
        :class:`Footprint` (bounds in the file's CRS, left < right and bottom < top whatever
        the signs of the pixel sizes, CRS as text), or None for images without a
        CRS (plain PNG/JPEG, pixel-coordinate TIFFs) or files rasterio cannot open.
    """
    p = Path(path)
    if p.suffix.lower() not in SCENE_SUFFIXES:
        return None
    try:
        import rasterio

        with rasterio.open(p) as src:
            if src.crs is None or src.transform.is_identity:
                return None
            # the extent of the four corners: rasterio's bounds keep the transform's signs, so
            # a south-up raster (positive y pixel size) had bottom > top and drew as a 1 px
            # sliver at the wrong place (a rotated one: the corners' box, as transform_bounds)
            xs, ys = src.transform * (
                np.array([0.0, src.width, src.width, 0.0]),
                np.array([0.0, 0.0, src.height, src.height]),
            )
            return Footprint(
                float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
                src.crs.to_string(),
            )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - a map is a bonus: a bad file only loses its box
        log.debug("report: no footprint for %s (%s)", p, err)
        return None


def footprint_map(
    footprints: Sequence[Footprint | None],
    values: Sequence[float | None],
    width: int = 640,
) -> dict[str, Any] | None:
    """Geometry for the report's SVG map of image footprints coloured by ``values``.

    All footprints are drawn in their common CRS; when the images use several CRSs their bounds
    are transformed to EPSG:4326 (``rasterio.warp.transform_bounds``). Colours: RdYlGn over
    [0, 1]; grey when the value is unknown.

    Args:
        footprints: One footprint (or None) per item.
        values: Predicted IoU per item (None = unknown).
        width: SVG width, px (height follows the extent, 120-720 px).

    Returns:
        ``{"crs", "width", "height", "boxes": [{"index", "x", "y", "w", "h", "color", "value"}],
        "bounds", "stops"}`` in SVG pixel units (north up), or None when no footprint is given.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    present = [(k, f) for k, f in enumerate(footprints) if f is not None]
    if not present:
        return None
    crss = {f.crs for _, f in present}
    if len(crss) > 1:
        from rasterio.warp import transform_bounds

        boxes = [
            (k, transform_bounds(f.crs, "EPSG:4326", f.left, f.bottom, f.right, f.top))
            for k, f in present
        ]
        crs = "EPSG:4326"
    else:
        boxes = [(k, (f.left, f.bottom, f.right, f.top)) for k, f in present]
        crs = next(iter(crss))
    x0 = min(b[0] for _, b in boxes)
    y0 = min(b[1] for _, b in boxes)
    x1 = max(b[2] for _, b in boxes)
    y1 = max(b[3] for _, b in boxes)
    span_x, span_y = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    pad = 8
    scale = (width - 2 * pad) / span_x
    height = int(min(max(span_y * scale + 2 * pad, 120), 720))
    scale = min(scale, (height - 2 * pad) / span_y)
    cmap = colormaps["RdYlGn"]
    out = []
    for k, (left, bottom, right, top) in boxes:
        v = values[k]
        ok = v is not None and math.isfinite(float(v))
        out.append(
            {
                "index": k,
                "x": round(pad + (left - x0) * scale, 2),
                "y": round(pad + (y1 - top) * scale, 2),
                "w": round(max((right - left) * scale, 1.0), 2),
                "h": round(max((top - bottom) * scale, 1.0), 2),
                "color": to_hex(cmap(float(np.clip(v, 0, 1)))) if ok else "#9aa3b2",
                "value": float(v) if ok else None,
            }
        )
    stops = [(f"{100 * s:.0f}%", to_hex(cmap(s))) for s in np.linspace(0, 1, 6)]
    return {
        "crs": crs,
        "width": width,
        "height": height,
        "boxes": out,
        "bounds": (x0, y0, x1, y1),
        "stops": stops,
    }
