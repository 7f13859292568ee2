"""Which ``elnet export`` options apply to which export format: one table.

:data:`OPTION_SCOPE` is the one place that says it; :func:`ignored_notes` turns an option given
for a format it does not apply to into one ``note:`` line (the export goes on without it), and
docs/export.md lists the table. ``--warp-to`` is not here: for COCO, chips and Label Studio it is
refused (an error, :func:`check_no_warp`), as the labels would have to be resampled for
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sam2elnet.errors import UserError
from sam2elnet.export.layer_files import FORMATS
from sam2elnet.option_values import GEOJSON_CRS, LAYER_CRS, PIXEL_COORDS

__all__ = [
    "OPTION_SCOPE",
    "POLYGON_FORMATS",
    "POLYGON_LAYERS",
    "Scope",
    "check_no_warp",
    "check_ranges",
    "ignored_notes",
]

POLYGON_FORMATS: tuple[str, ...] = tuple(FORMATS)
"""The polygon layer formats (:data:`~sam2elnet.export.layer_files.FORMATS`' names)."""

POLYGON_LAYERS = "polygon layers (.gpkg, .shp, .geojson)"
"""The :data:`POLYGON_FORMATS` in words, for notes and errors."""


class Scope(NamedTuple):
    """Where one export option applies."""

    flag: str  #: the CLI option
    formats: tuple[str, ...]  #: the export formats it applies to
    where: str  #: those formats in words, for the note
    given: Callable[[Any], bool]  #: whether a value asks for something (not the default)


def _set(v: Any) -> bool:
    return v is not None and v is not False


OPTION_SCOPE: dict[str, Scope] = {
    "simplify": Scope("--simplify", POLYGON_FORMATS, POLYGON_LAYERS, _set),
    "smooth": Scope("--smooth", POLYGON_FORMATS, POLYGON_LAYERS, _set),
    "min_area_px": Scope("--min-area", POLYGON_FORMATS, POLYGON_LAYERS, lambda v: bool(v)),
    "crs": Scope(
        "--crs",
        POLYGON_FORMATS,
        POLYGON_LAYERS,
        lambda v: v is not None and str(v).lower() != LAYER_CRS[0],
    ),
    "geojson_crs": Scope(
        "--geojson-crs",
        ("geojson",),
        "GeoJSON output",
        lambda v: v is not None and str(v).lower() != GEOJSON_CRS[0],
    ),
    "pixel_coords": Scope(
        "--pixel-coords",
        ("gpkg", "shp"),
        ".gpkg / .shp polygons",
        lambda v: v is not None and str(v).lower() != PIXEL_COORDS[0],
    ),
    "centre_lines": Scope(
        "--centre-lines",
        POLYGON_FORMATS,
        POLYGON_LAYERS,
        lambda v: v is True,
    ),
    "chips": Scope("--chips", (*POLYGON_FORMATS, "coco"), "polygon and COCO exports", _set),
    "coco_rle": Scope("--coco-rle", ("coco",), "COCO JSON", lambda v: bool(v)),
    "polygons": Scope("--polygons", ("label-studio",), "Label Studio tasks", lambda v: bool(v)),
    "document_root": Scope("--document-root", ("label-studio",), "Label Studio tasks", _set),
}
"""Export option (:func:`~sam2elnet.export.api.export_labels` keyword) -> :class:`Scope`."""

_WHY = {
    "coco": "COCO stays in image coordinates (x = column, y = row)",
    "label-studio": "Label Studio tasks stay on the image's pixel grid",
}
_COORDS = ("crs", "geojson_crs", "pixel_coords")


def ignored_notes(fmt: str, values: Mapping[str, Any]) -> list[str]:
    """One note per option of ``values`` (keyword -> value) that asks for something (not its
    default) but does not apply to export format ``fmt`` (:data:`OPTION_SCOPE`), in the table's
    order: ``"--simplify applies to polygon layers (.gpkg, .shp, .geojson) only; ignored for
    label-studio"``. An option missing from ``values`` counts as not given (no note)."""
    notes = []
    for name, scope in OPTION_SCOPE.items():
        if name not in values or fmt in scope.formats or not scope.given(values[name]):
            continue
        why = f"; {_WHY[fmt]}" if name in _COORDS and fmt in _WHY else ""
        notes.append(f"{scope.flag} applies to {scope.where} only; ignored for {fmt}{why}")
    return notes


def check_no_warp(warp_to: str | None, why: str) -> None:
    """Refuse ``--warp-to`` for an export that is not a polygon layer (COCO, chips, Label
    Studio tasks); ``why``: what stays on the pixel grid, e.g. ``"COCO files and chips stay on
    the label's pixel grid"``.

    Raises:
        UserError: ``warp_to`` given.
    """
    if warp_to:
        exports = POLYGON_LAYERS.replace("layers", "exports")
        raise UserError(f"--warp-to applies to {exports}; {why}")


def check_ranges(kwargs: dict[str, Any]) -> None:
    """Refuse a ``simplify`` / ``smooth`` / ``min_area_px`` (each >= 0), ``review_count``
    (>= 1) or ``max_quality`` (0-1) out of the range :class:`~sam2elnet.options.ExportOptions`
    gives it (the one place of the ranges, as for ``elnet export``), before anything is read or
    written.

    Raises:
        UserError: ``invalid value for --smooth: -1 (...)`` for the first bad one.
    """
    from sam2elnet.option_checks import check_options
    from sam2elnet.options import ExportOptions

    check_options(
        ExportOptions,
        simplify=kwargs.get("simplify"),
        smooth=kwargs.get("smooth"),
        min_area=kwargs.get("min_area_px"),
        review_count=kwargs.get("review_count"),
        max_quality=kwargs.get("max_quality"),
    )
