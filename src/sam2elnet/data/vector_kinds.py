"""Line and point features of vector labels: their kinds (``shapely.get_type_id``) and the notes
when they are read without a line width (points skipped, lines burnt 1 px wide), with the
per-feature road-width attributes such a layer may carry but that are not read.

Used by the vector reader (:class:`~sam2elnet.data.vector.VectorLabels`); for a whole layer
(:func:`layer_no_width_notes`) by a file shared by many images
(:func:`~sam2elnet.data.vector_shared.warn_no_width`) and ``elnet import --from vector``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.utils.advice import plural

__all__ = [
    "LINE_TYPE_IDS",
    "NO_WIDTH_KINDS",
    "POINT_TYPE_IDS",
    "WIDTH_ATTRIBUTES",
    "layer_no_width_notes",
    "no_width_notes",
]

POINT_TYPE_IDS = (0, 4)
"""``shapely.get_type_id`` values of point features: Point, MultiPoint (buffered into discs with
a line width, skipped without one)."""

LINE_TYPE_IDS = (1, 2, 5)
"""``shapely.get_type_id`` values of line features: LineString, LinearRing, MultiLineString
(buffered to the line width, or burnt 1 px wide without one). Polygons are 3 and 6,
GeometryCollection 7."""

#: warn_once kinds of the notes about line and point features read without a line width
#: (:func:`no_width_notes`); a layer placed on many images says them once for the layer
NO_WIDTH_KINDS = (
    "vector point features skipped (no line width)",
    "vector line features burnt 1 px wide (no line width)",
)


#: attribute names (lower case) of a per-feature road width, as QGIS / OpenStreetMap layers
#: carry them; not read (one width for all lines, ``--line-width``), so the no-width note names them
WIDTH_ATTRIBUTES = ("width", "road_width", "roadwidth", "width_m", "est_width")


def no_width_notes(
    p: Path, kinds: np.ndarray, columns: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The notes (text, warn_once kind) about features read without a line width: points are
    skipped, lines burnt 1 px wide; at most one of each (kind: :data:`NO_WIDTH_KINDS`), [] when
    there are neither.

    ``p``: the vector file, named in the notes. ``kinds``: int array of shape (N,), one
    ``shapely.get_type_id`` value per feature (0 Point, 4 MultiPoint; 1 LineString,
    2 LinearRing, 5 MultiLineString; polygons and collections are not counted). ``columns``:
    the layer's attribute names; one named as a road width (:data:`WIDTH_ATTRIBUTES`, any
    case) is said not to be read in the lines' note."""
    n_point = int(np.isin(kinds, POINT_TYPE_IDS).sum())
    n_line = int(np.isin(kinds, LINE_TYPE_IDS).sum())
    out = []
    if n_point:
        msg = (
            f"{p}: {plural(n_point, 'point feature')} skipped (give a line "
            "width to buffer them into discs)"
        )
        out.append((msg, NO_WIDTH_KINDS[0]))
    if n_line:
        msg = (
            f"{p}: {plural(n_line, 'line feature')} burnt 1 px wide; give a "
            "line width (--line-width, map units or px) to buffer roads to their real width"
        )
        named = [str(c) for c in columns if str(c).lower() in WIDTH_ATTRIBUTES]
        if named:
            msg += f"; the layer's attribute {named[0]!r} is not read (one width for all lines)"
        out.append((msg, NO_WIDTH_KINDS[1]))
    return out


def layer_no_width_notes(p: Path, frame: Any) -> list[tuple[str, str]]:
    """:func:`no_width_notes` counted over a whole layer ``frame`` (a GeoDataFrame: the kinds
    of its geometries, its columns), said once for a layer placed on many images rather than
    once per image: ``elnet import --from vector``, one coarse-label file for many images
    (:func:`~sam2elnet.data.vector_shared.warn_no_width`)."""
    import shapely

    kinds = shapely.get_type_id(np.asarray(frame.geometry.values, dtype=object))
    return no_width_notes(p, kinds, frame.columns)
