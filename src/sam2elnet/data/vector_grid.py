"""Where vector labels land on an image's pixel grid: the image's georeference, and labels
reprojected, taken as pixel coordinates or placed through ground control points.

:func:`image_grid` / :func:`grid_of` give the ``(crs, transform, gcps)`` an image offers
:meth:`~sam2elnet.data.vector.VectorLabels.from_file`; :func:`place_labels` puts the labels into
that grid's coordinates: reprojected to the image CRS; on an image without a CRS as pixel
coordinates (QGIS's x = column, y = -row, or y = row for labels wholly at y >= 0); on a GCP-only
image through its GCPs (GDAL thin plate spline). :func:`grid_name` words a pixel grid in
messages. Reading, repairing, buffering and rasterising the labels is :mod:`sam2elnet.data.vector`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sam2elnet.data.georef import (
    PIXEL_GRID,
    crs_name,
    georeference,
    grid_kind,
    plain_grid_transform,
)
from sam2elnet.errors import DataError
from sam2elnet.utils.advice import none_of

__all__ = [
    "Placement",
    "grid_name",
    "grid_of",
    "image_grid",
    "in_image_crs",
    "no_overlap_message",
    "place_labels",
]


class Placement(NamedTuple):
    """Vector labels placed on an image's pixel grid (:func:`place_labels`)."""

    frame: Any
    """The labels (GeoDataFrame) in the grid's coordinates."""
    crs: Any
    """The image CRS they are in; None: pixel coordinates."""
    transform: Any
    """``affine.Affine``: grid pixel -> label coordinates (identity for GCP-placed labels)."""
    pixel_size: float
    """Label units per pixel (mean of the transform's x and y sizes)."""
    map_scale: float
    """Grid units per map unit of the image CRS (line widths in map units); 1 but for GCPs."""


def place_labels(
    gdf: Any, *, crs: Any, transform: Any, gcps: Any, pixel_coords: bool, path: Path, note: Any
) -> Placement:
    """Put labels read from ``path`` into an image grid's coordinates (the rules of
    :meth:`~sam2elnet.data.vector.VectorLabels.from_file`, whose arguments these are).

    Labels in pixel coordinates (an image without CRS, ``pixel_coords``, or labels without a CRS
    on a GCP-only image) get :func:`_pixel_grid`'s transform; labels without a CRS on a
    georeferenced image are taken as in its CRS (a note says so); others are reprojected to the
    image CRS and, on a GCP-only image, mapped onto its pixels through the GCPs
    (:func:`_to_gcp_pixels`). ``note(msg, kind)`` is the reader's note.

    Raises:
        DataError: labels with a CRS on an image without one, or a reprojection that fails.
    """
    from affine import Affine

    map_scale = 1.0  # grid units per map unit of the image CRS
    if gcps is not None and gdf.crs is None and not pixel_coords:
        crs = None  # labels without a CRS on a GCP-only image: pixel coordinates
    if pixel_coords or crs is None:
        if crs is None and gdf.crs is not None and not pixel_coords:
            raise DataError(
                f"the image has no CRS but the labels are in {crs_name(gdf.crs)}; without a "
                "georeferenced image the labels must be in pixel coordinates with no CRS "
                "(as drawn in QGIS over the image: x = column, y = -row; or y = row), or "
                "georeference the image (`elnet scene --labels-pixel-coords` ignores the "
                f"label CRS){_geojson_hint(path, gdf.crs)}",
                path,
            )
        grid_transform = _pixel_grid(gdf, None if pixel_coords else transform, path, note)
        pix = _pixel_size(grid_transform)
    else:
        grid_transform = transform
        pix = _pixel_size(transform)
        if gdf.crs is None:
            msg = (
                f"{path}: labels have no CRS; assuming they are already in the image CRS "
                f"({crs_name(crs)})"
            )
            note(msg, "vector labels without a CRS, assumed in the image CRS")
        else:
            gdf = in_image_crs(gdf, crs, path)
        if gcps is not None:
            gdf, map_scale = _to_gcp_pixels(gdf, gcps, path)
            grid_transform, pix = Affine.identity(), 1.0
    return Placement(gdf, crs, grid_transform, pix, map_scale)


def _pixel_grid(gdf: Any, transform: Any, path: Path, note: Any) -> Any:
    """The transform that places pixel-coordinate labels on an image without a CRS.

    :func:`~sam2elnet.data.georef.plain_grid_transform` of the image's ``transform`` (QGIS's
    x = column, y = -row, or the image's own geotransform), except that labels lying at y >= 0
    on a grid without geotransform are read as y = row (identity), with a note: on QGIS's grid
    the image is at y <= 0, so the two cannot be confused. "At y >= 0" is by extent: more of the
    labels' y range above 0 than below (``y1 >= -y0``), so a y-down polygon snapped half a pixel
    past the top edge (y = -0.5) does not turn the whole layer into y = -row (which put every
    other polygon of that image above it, silently), and a QGIS polygon overshooting y = 0 by a
    little stays y = -row. ``note(msg, kind)`` is
    the reader's note (:meth:`~sam2elnet.data.vector.VectorLabels.from_file`: logged once per
    run unless ``shared``).
    """
    from affine import Affine

    t = plain_grid_transform(transform)
    if tuple(t)[:6] != PIXEL_GRID:
        return t
    _x0, y0, _x1, y1 = (float(v) for v in gdf.total_bounds)
    if y1 > 0 and y1 >= -y0:  # most of the labels' extent at y > 0 (the image's rows)
        where = (
            "at y >= 0" if y0 >= 0 else f"mostly at y >= 0 (down to y = {y0:g}, past the top edge)"
        )
        msg = (
            f"{path}: labels lie {where}, so y is read as the row (y pointing down, as COCO); "
            "polygons drawn in QGIS over an image without georeference have y = -row"
        )
        note(msg, "vector labels at y >= 0 read as rows")
        return Affine.identity()
    return t


def in_image_crs(gdf: Any, crs: Any, path: Path) -> Any:
    """GeoDataFrame ``gdf`` (labels with a CRS) in the image CRS ``crs``: itself when already
    in it (``==`` or pyproj's ``equals``), else reprojected (``to_crs``).

    Raises:
        DataError: naming ``path`` when the reprojection fails.
    """
    try:
        same = gdf.crs == crs or gdf.crs.equals(crs)
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot compare: reproject
        same = False
    if same:
        return gdf
    try:
        return gdf.to_crs(crs)
    except Exception as err:
        raise DataError(
            f"cannot transform the labels from {crs_name(gdf.crs)} to the image "
            f"CRS {crs_name(crs)} ({type(err).__name__}: {err})",
            path,
        ) from err


def image_grid(ds: Any) -> tuple[Any, Any, Any]:
    """``(crs, transform, gcps)`` of an open rasterio image for :meth:`~sam2elnet.data.vector.VectorLabels.from_file`
    (:func:`grid_of` of its CRS, transform and GCPs; a GCP-only image's GCPs obtained as a
    :class:`sam2elnet.data.grids.GcpGrid`, so they are checked)."""
    from sam2elnet.data.grids import GcpGrid

    g = GcpGrid.of(ds)
    gcps = {} if g is None else {"gcps": g.gcps, "gcp_crs": g.crs}
    return grid_of({"crs": ds.crs, "transform": ds.transform, **gcps})


def grid_of(profile: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(crs, transform, gcps)`` for :meth:`~sam2elnet.data.vector.VectorLabels.from_file` from an
    image's rasterio-style profile (``crs``, ``transform``, ``gcps`` / ``gcp_crs``): for an image
    georeferenced by GCPs only (:func:`~sam2elnet.data.georef.georeference_kind` ``"gcps"``:
    Sentinel-1 GRD) the GCPs' CRS, the identity and the GCPs; else its CRS (None without one)
    and transform (the identity without one) and ``gcps`` None."""
    from affine import Affine

    geo = georeference(profile)
    if grid_kind(geo) == "gcps":
        return geo["crs"], Affine.identity(), list(geo["gcps"])
    return profile.get("crs"), profile.get("transform") or Affine.identity(), None


def _to_gcp_pixels(gdf: Any, gcps: Any, path: Path) -> tuple[Any, float]:
    """Map-coordinate geometries (in the GCPs' CRS) -> pixel coordinates (x = column, y = row)
    through GDAL's GCP transformer of every GCP-only grid here (thin plate spline,
    :data:`sam2elnet.data.grids.GCP_METHOD`); also the pixels per map unit (mean, from an affine
    fit to the GCPs) for line widths. Z is dropped."""
    import shapely

    from sam2elnet.data.grids import GcpGrid

    grid = GcpGrid(gcps, None)  # checked when the image was read (one warning per GCP set)

    def to_px(xy: np.ndarray) -> np.ndarray:
        rows, cols = tr.rowcol(xy[:, 0], xy[:, 1], op=np.positive)  # fractional pixels
        return np.column_stack([cols, rows]).astype(float)

    try:
        with grid.transformer() as tr:
            geoms = shapely.transform(np.asarray(gdf.geometry.values, dtype=object), to_px)
    except Exception as err:  # noqa: BLE001 - GDAL transformer errors
        raise DataError(
            f"cannot place the labels with the image's ground control points ({err}); "
            "warp the image to a map grid first (gdalwarp -tps -t_srs EPSG:xxxx)",
            path,
        ) from err
    import geopandas as gpd

    return gpd.GeoDataFrame(geometry=list(geoms)), 1.0 / _pixel_size(grid.affine())


def _extent(bounds: Any) -> str:
    """``(xmin, ymin, xmax, ymax)`` rounded to 3 decimals, for messages."""
    return str(tuple(round(float(v), 3) for v in bounds))


def no_overlap_message(
    n_total: int,
    image_bounds: Any,
    label_bounds: Any,
    where: str,
    layer_crs: Any,
    layer_bounds: Any,
    pixel_coords: bool = False,
) -> str:
    """The one wording of "no label feature overlaps the image" (almost always a CRS mix-up):
    both extents in the coordinates the labels were placed in (``where``), and the layer's own
    CRS and extent, so a mix-up is plain.

    Args:
        n_total: the layer's feature count.
        image_bounds, label_bounds: ``(xmin, ymin, xmax, ymax)`` of the image footprint and of
            the placed labels, in ``where``'s coordinates (labels: NaN / inf when they could
            not be placed there, e.g. a reprojection out of the CRS's area).
        where: the placed coordinates' name (:func:`~sam2elnet.data.georef.crs_name` of the
            image CRS, or :func:`grid_name`).
        layer_crs: the CRS the layer was read in (None: none); ``layer_bounds`` its extent there.
        pixel_coords: the layer's CRS was ignored (``--labels-pixel-coords``).

    Returns:
        ``none of the N label features overlaps the image: image extent (...) in W, label
        extent (...) there; the layer's own CRS: EPSG:4326, extent (...); check the label CRS
        and that labels and image cover the same area``; for one feature it begins ``the only
        label feature does not overlap the image`` (:func:`~sam2elnet.utils.advice.none_of`).
    """
    lab = np.asarray(label_bounds, dtype=float)
    placed = (
        f"label extent {_extent(lab)} there"
        if lab.size == 4 and np.isfinite(lab).all()
        else f"the labels have no finite extent in {where} (outside that CRS's area?)"
    )

    own = "no CRS" if layer_crs is None else crs_name(layer_crs)
    ignored = " (ignored: --labels-pixel-coords)" if pixel_coords and layer_crs is not None else ""
    native = np.asarray(layer_bounds, dtype=float)
    native_text = (
        f", extent {_extent(native)}" if native.size == 4 and np.isfinite(native).all() else ""
    )
    head = none_of(n_total, "label feature", "overlaps the image", "does not overlap the image")
    return (
        f"{head}: image extent "
        f"{_extent(image_bounds)} in {where}, {placed}; the layer's own CRS: {own}{ignored}"
        f"{native_text}; check the label CRS and that labels and image cover the same area"
    )


def grid_name(transform: Any) -> str:
    """How pixel-coordinate labels are read, for messages."""
    if tuple(transform)[:6] == PIXEL_GRID:
        return "pixel coordinates, x = column, y = -row as QGIS shows the image"
    if transform.is_identity:
        return "pixel coordinates, x = column, y = row"
    return "the image's geotransform (no CRS)"


def _pixel_size(transform: Any) -> float:
    """Mean absolute pixel size of an affine transform (map units per pixel)."""
    return float((abs(transform.a) + abs(transform.e)) / 2.0) or 1.0


def _geojson_hint(path: Path, label_crs: Any) -> str:
    """Why a GeoJSON in WGS 84 cannot hold pixel coordinates (GDAL reads one without a ``crs``
    member as WGS 84, RFC 7946; a GeoPackage or Shapefile keeps "no CRS"); else empty."""
    if path.suffix.lower() not in (".geojson", ".json") or crs_name(label_crs) != "EPSG:4326":
        return ""
    return (
        "; a GeoJSON file cannot hold pixel coordinates: without a `crs` member it is read as "
        "WGS 84 (RFC 7946), so save the layer as GeoPackage (.gpkg) or Shapefile without a CRS"
    )
