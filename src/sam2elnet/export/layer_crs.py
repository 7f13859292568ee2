"""The one CRS of a polygon layer (``elnet export --crs``): GeoPackage, Shapefile and GeoJSON.

A layer holds one CRS. Labels in one CRS export in it by default (``--crs image``); labels of
scenes in several CRSs (e.g. UTM zones 32615 and 32616) cannot share a layer unreprojected, so
without ``--crs`` the export stops with one error naming them (:func:`layer_crs`), and with it
every label's polygons are reprojected to that CRS (:mod:`sam2elnet.export.vector`).

Values (:func:`parse_layer_crs`): ``image`` (the default: the labels' own CRS), ``wgs84``
(EPSG:4326 longitude/latitude; a GeoJSON is then written by RFC 7946: no ``crs`` member,
what ``--geojson-crs wgs84`` did, which stays as its old spelling, :func:`merge_geojson_crs`),
or any CRS rasterio reads (``EPSG:3035``, a WKT or PROJ string).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.georef import crs_name
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import GEOJSON_CRS, LAYER_CRS
from sam2elnet.utils.advice import name_sample

__all__ = ["layer_crs", "merge_geojson_crs", "parse_layer_crs", "rfc7946"]

SEGMENT_PX = 64
"""Before reprojection, polygon edges longer than this many label pixels get vertices at most
this far apart, so an edge that is straight in the label's CRS stays within a tiny fraction of a
pixel of it in the layer CRS (and ``elnet import`` burns the same pixels back)."""


def parse_layer_crs(value: Any) -> Any:
    """The target CRS of ``--crs``: None for ``image`` (or None / ""), EPSG:4326 for ``wgs84``
    (any case), else ``rasterio.crs.CRS.from_user_input(value)``; a ``rasterio.crs.CRS``
    (parsed already) is returned as it is.

    Raises:
        UserError: a value that is not a CRS (the message names the accepted forms).
    """
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    from sam2elnet.utils.quiet import quiet_native_stderr

    if isinstance(value, CRS):
        return value
    t = "" if value is None else str(value).strip()
    if t.lower() in ("", LAYER_CRS[0]):
        return None
    if t.lower() == LAYER_CRS[1]:
        return CRS.from_epsg(4326)
    try:
        with quiet_native_stderr():  # PROJ prints "crs not found" itself
            return CRS.from_user_input(t)
    except CRSError:
        raise UserError(
            f"--crs {t!r} is not a CRS; give image (the labels' CRS, default), wgs84, or an EPSG "
            "code such as EPSG:32633"
        ) from None


def merge_geojson_crs(crs: Any, geojson_crs: str, fmt: str) -> Any:
    """``--crs`` with ``--geojson-crs`` (its old spelling for GeoJSON) folded in: ``wgs84`` for a
    GeoJSON with ``--geojson-crs wgs84`` (``source`` means ``image``); ``crs`` otherwise (for
    other formats ``--geojson-crs`` is ignored, a note of the caller says so).

    Raises:
        UserError: ``--geojson-crs wgs84`` with a ``--crs`` of another CRS.
    """
    if fmt != "geojson" or geojson_crs.lower() != GEOJSON_CRS[1]:
        return crs
    target = parse_layer_crs(crs)
    if target is not None and target.to_epsg() != 4326:
        raise UserError(
            f"--geojson-crs wgs84 and --crs {crs} ask for two CRSs; give --crs alone "
            "(--geojson-crs wgs84 is the old spelling of --crs wgs84)"
        )
    return LAYER_CRS[1]


def rfc7946(fmt: str, target: Any) -> bool:
    """Whether a layer is written by RFC 7946 (WGS84 longitude/latitude, no ``crs`` member): a
    GeoJSON whose ``--crs`` asks for EPSG:4326 (``wgs84``)."""
    return fmt == "geojson" and target is not None and target.to_epsg() == 4326


def layer_crs(target: Any, label_crss: Sequence[tuple[Path, Any]], flag: str = "--crs") -> Any:
    """The CRS of the layer: ``target`` (:func:`parse_layer_crs`) when given, else the one CRS of
    the georeferenced labels (``label_crss``: (label file, its CRS)); None when there is none.

    Raises:
        DataError: no ``target`` and labels in more than one CRS (names them, a few files each,
            and says to give ``--crs``).
    """
    if target is not None or not label_crss:
        return target
    groups: dict[str, list[Path]] = {}
    first: dict[str, Any] = {}
    for f, crs in label_crss:
        key = next((k for k, c in first.items() if _same(c, crs)), None)
        if key is None:
            key = crs.to_wkt()
            first[key] = crs
        groups.setdefault(key, []).append(f)
    if len(groups) == 1:
        return label_crss[0][1]
    parts = []
    for key, files in groups.items():
        names = name_sample([f.name for f in files], 3)
        parts.append(f"{crs_name(first[key])}: {len(files)} ({names})")
    one = crs_name(label_crss[0][1])
    raise DataError(
        f"the labels are in {len(groups)} CRSs ({'; '.join(parts)}) and one layer holds one "
        f"CRS; give {flag} to reproject them all to it, e.g. {flag} {one} or {flag} wgs84 "
        "(or export each CRS on its own)",
        label_crss[0][0].parent,
    )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b or a.equals(b))
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot compare is another CRS
        return False
