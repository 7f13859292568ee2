"""Which layer of a vector label file is read: the named one, else the ``labels`` layer of a
file with several, else the first polygon / line layer (with a warning naming the layers).

:func:`sam2elnet.data.vector.read_vector` reads through these; ``elnet import --layer``,
``elnet enhance --layer`` / ``elnet scene --layer`` (a vector ``--labels`` file) and
``elnet evaluate --truth-layer`` (a vector ``--truth`` file) name one (:data:`LAYER_OPTIONS`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sam2elnet.errors import DataError
from sam2elnet.utils.advice import plural
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "CENTRE_LINES_LAYER",
    "LABELS_LAYER",
    "LAYER_OPTIONS",
    "check_layer",
    "default_layer",
    "layer_crs_extent",
]

#: The layer ``elnet export`` writes label polygons to in a GeoPackage (beside ``centre_lines``
#: for roads); read by default from a file with several layers, whatever their order.
LABELS_LAYER = "labels"

#: The layer of road centre lines ``elnet export`` writes beside ``labels`` in a GeoPackage
#: (:mod:`sam2elnet.export.centreline_layer`); not read by default, and not warned about.
CENTRE_LINES_LAYER = "centre_lines"

#: The commands that read a named layer, and their option: the several-layers warning lists them.
LAYER_OPTIONS = "elnet import / enhance / scene --layer NAME, elnet evaluate --truth-layer NAME"


def default_layer(path: Path) -> str | None:
    """The layer :func:`~sam2elnet.data.vector.read_vector` reads from ``path`` when none is named.

    One spatial layer (GeoJSON, Shapefile, most GeoPackages): None, GDAL's first. Several:
    ``labels`` when there is one (an ``elnet export`` road file rewritten with ``centre_lines``
    first: geopandas ``to_file(layer="labels")``, ``ogr2ogr -update -overwrite``), with one
    warning naming any layer besides ``labels`` and ``centre_lines`` (a layer a reviewer added
    to the file), which is not read; else the
    first polygon / line layer (a point layer of reviewer notes is no label), or the first,
    with one warning naming it and the others. Non-spatial tables (``layer_styles``) are not
    counted. A file GDAL cannot list is left to :func:`~sam2elnet.data.vector.read_vector`'s error.
    """
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # noqa: BLE001 - unreadable: read_vector raises the DataError
        return None
    spatial = [str(name) for name, geom in layers if geom is not None]
    if len(spatial) < 2:
        return None
    if LABELS_LAYER in spatial:
        # the export's own layers are labels + centre_lines; a layer a reviewer added (roads
        # drawn as lines in a layer of their own) is not read: said, not left out silently
        others = [n for n in spatial if n not in (LABELS_LAYER, CENTRE_LINES_LAYER)]
        if others:
            one = len(others) == 1
            warn_once(
                log,
                "vector file with layers besides labels",
                f"{path}: reading layer {LABELS_LAYER!r}; {plural(len(others), 'other layer')} "
                f"not read: {', '.join(others)}; to read "
                f"{'it' if one else 'one'}, name it: {LAYER_OPTIONS} (road lines with "
                "--line-width), or move its features into the labels layer",
                key=str(path),
            )
        return LABELS_LAYER
    pick = next((str(n) for n, g in layers if g and "POINT" not in str(g).upper()), spatial[0])
    warn_once(
        log,
        "vector file with several layers, none named labels",
        f"{path}: {len(spatial)} layers ({', '.join(spatial)}): reading the first"
        f"{' polygon / line layer' if pick != spatial[0] else ''}, {pick!r}; to read another, "
        f"rename it to {LABELS_LAYER!r} or keep only that layer in the file (QGIS: Export > Save "
        f"Features As), or name it: {LAYER_OPTIONS}",
        key=str(path),
    )
    return pick


def check_layer(path: Path, layer: str, option: str = "--layer") -> None:
    """Raise a DataError naming the file's layers when ``path`` has no layer ``layer``
    (``option``: the option the message tells to give one of them to).

    A file GDAL cannot list is left to :func:`~sam2elnet.data.vector.read_vector`'s error."""
    import pyogrio

    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception:  # noqa: BLE001 - unreadable: read_vector raises the DataError
        return
    if layer not in names:
        raise DataError(
            f"vector file has no layer {layer!r}; its layers: {', '.join(names) or 'none'} "
            f"(give one of them to {option})",
            path,
        )


def layer_crs_extent(path: Path, layer: str | None = None) -> str:
    """The CRS and extent of ``layer`` of ``path`` (None: the one :func:`default_layer` picks),
    for messages:
    ``"EPSG:4326, extent (15.0, 36.0, 15.01, 36.01)"`` (``"no CRS, extent (...)"``); "" when
    GDAL cannot read them (never raises)."""
    import pyogrio

    from sam2elnet.data.georef import crs_name

    try:
        info = pyogrio.read_info(path, layer=layer or default_layer(path), force_total_bounds=True)
    except Exception:  # noqa: BLE001 - a message's detail: left out when unreadable
        return ""
    bounds = info.get("total_bounds")
    crs = crs_name(info.get("crs"))
    if bounds is None or len(bounds) != 4:
        return crs
    return f"{crs}, extent {tuple(round(float(v), 3) for v in bounds)}"
