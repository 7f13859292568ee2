"""Georeference of a raster: CRS + affine transform, or ground control points (GCPs).

One place that decides which entries of a rasterio profile carry the georeference, so every
written label, probability map and mosaic keeps its source's (an EPSG or custom WKT CRS with its
transform, or, for GCP-only scenes such as Sentinel-1 GRD, the GCPs and their CRS).
"""

from __future__ import annotations

from typing import Any


def georeference(profile: dict[str, Any] | None) -> dict[str, Any]:
    """The georeferencing entries of a raster profile, ready for ``rasterio.open(..., "w")``.

    Args:
        profile: A rasterio-style profile (``crs``, ``transform``, optionally ``gcps`` /
            ``gcp_crs``), or None.

    Returns:
        ``{"crs", "transform"}`` (EPSG or custom WKT CRS, kept as is), or for a GCP-only raster
        (Sentinel-1 GRD) ``{"gcps", "crs"}`` (the GCPs' CRS), or ``{"transform"}`` for a
        non-identity transform without CRS; empty for an image without georeference (PNG/JPEG,
        plain TIFF).
    """
    out: dict[str, Any] = {}
    if not profile:
        return out
    if profile.get("crs") is not None:
        out["crs"] = profile["crs"]
        if profile.get("transform") is not None:
            out["transform"] = profile["transform"]
    elif profile.get("gcps"):
        out["gcps"] = profile["gcps"]
        out["crs"] = profile.get("gcp_crs")
    elif profile.get("transform") is not None and not _is_identity(profile["transform"]):
        out["transform"] = profile["transform"]
    return out


def dataset_georeference(ds: Any) -> dict[str, Any]:
    """:func:`georeference` of an open rasterio dataset (its GCPs included when it has no CRS).

    Args:
        ds: An open ``rasterio`` dataset.

    Returns:
        The entries to pass on: ``rasterio.open(path, "w", **profile, **dataset_georeference(ds))``
        keeps the georeference.
    """
    profile: dict[str, Any] = {"crs": ds.crs, "transform": ds.transform}
    if ds.crs is None:
        gcps, gcp_crs = ds.gcps
        if gcps:
            profile.update(gcps=list(gcps), gcp_crs=gcp_crs)
    return georeference(profile)


def georeference_kind(profile: dict[str, Any] | None) -> str:
    """Which georeference a profile has.

    Args:
        profile: A rasterio-style profile, or None.

    Returns:
        ``"crs"`` (CRS + transform), ``"gcps"`` (ground control points only) or ``"none"``.
    """
    g = georeference(profile)
    if "gcps" in g:
        return "gcps"
    return "crs" if g.get("crs") is not None else "none"


PIXEL_GRID = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
"""Map coordinates of a raster without any georeference, as GIS tools place it: x = column,
y = -row (``affine.Affine(*PIXEL_GRID)``; a pixel's corners are at integer coordinates, the
image occupies x in [0, width], y in [-height, 0]).

Source: GDAL returns the default geotransform (0, 1, 0, 0, 0, 1) (y = row, pointing down) for a
raster without one (``GDALDataset::GetGeoTransform``, https://gdal.org/api/gdaldataset_cpp.html),
but QGIS's GDAL provider replaces it with (0, 1, 0, 0, 0, -1) "if the raster does not have a
valid transform" (``QgsGdalProvider::initBaseDataset``, qgis/QGIS
src/providers/gdal/qgsgdalprovider.cpp), so QGIS shows a PNG / JPEG / plain TIFF upright with
y = -row. Polygons written with y = row would lie mirrored, above the image; polygons drawn in
QGIS over such an image have y = -row. gdal_polygonize keeps GDAL's y = row
(OSGeo/gdal#2830 reports those polygons mirrored in QGIS)."""


def plain_grid_transform(transform: Any = None) -> Any:
    """The map transform of a raster that has no CRS (and no GCPs), as QGIS places it.

    Args:
        transform: the raster's ``affine.Affine`` geotransform (rasterio's ``ds.transform``);
            rasterio reports a raster without one as the identity.

    Returns:
        ``transform`` when it is a real geotransform (not the identity: a world file or a
        GeoTIFF transform without CRS, which QGIS uses as it is), else :data:`PIXEL_GRID`
        (x = column, y = -row). An identity geotransform stored explicitly in a file reads the
        same as none (rasterio cannot tell them apart); this package never writes one.
    """
    from affine import Affine

    if transform is not None and not _is_identity(transform):
        return transform
    return Affine(*PIXEL_GRID)


def _is_identity(transform: Any) -> bool:
    try:
        return tuple(transform)[:6] == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    except TypeError:
        return False


def write_georeference(dst: Any, profile: dict[str, Any] | None) -> None:
    """Attach ``profile``'s GCPs to an open rasterio dataset opened for writing.

    CRS and transform go in the creation profile via :func:`georeference`; GCPs are set here,
    which every GDAL version accepts.

    Args:
        dst: ``rasterio`` dataset open in ``"w"`` mode.
        profile: The source's profile (nothing is done without GCPs).
    """
    g = georeference(profile)
    if "gcps" in g:
        dst.gcps = (g["gcps"], g.get("crs"))


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRSs are the same.

    Args:
        a, b: rasterio ``CRS`` objects (or WKT / EPSG strings).

    Returns:
        ``a == b``; when PROJ cannot compare them (odd WKT), whether their texts are equal.
    """
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - CRS comparison of odd WKT can raise in PROJ
        return str(a) == str(b)


def crs_name(crs: Any) -> str:
    """The one short name of a CRS in messages: never a whole WKT.

    Args:
        crs: a rasterio or pyproj ``CRS``, or anything ``pyproj.CRS.from_user_input`` reads
            (``"EPSG:32633"``, WKT, PROJ string); None for "no CRS".

    Returns:
        ``"EPSG:<code>"`` when the CRS has an EPSG code (``to_epsg``), else
        ``"the custom CRS '<name>'"`` (its WKT name, e.g. ``'unknown'`` for a bare PROJ string),
        ``"no CRS"`` for None; when PROJ cannot read it at all, its ``to_string()`` / ``str()``.
    """
    if crs is None:
        return "no CRS"
    try:
        from pyproj import CRS as ProjCRS

        epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
        proj = None
        if not epsg:
            proj = ProjCRS.from_user_input(crs)
            epsg = proj.to_epsg()
        if epsg:
            return f"EPSG:{epsg}"
        return f"the custom CRS '{proj.name}'"
    except Exception:  # noqa: BLE001 - PROJ raises several error types on odd input
        try:
            return str(crs.to_string())
        except Exception:  # noqa: BLE001
            return str(crs)


def metres_per_pixel(geo: dict[str, Any]) -> tuple[float | None, str]:
    """A raster's pixel size in metres, from its CRS and transform.

    Args:
        geo: its georeference, :func:`dataset_georeference` (``{"crs", "transform"}``,
            ``{"gcps", "crs"}`` or ``{}``; :class:`sam2elnet.data.grids.RasterHeader` ``.geo``).

    Returns:
        ``(size, "")``: the mean of the column and row steps of the affine transform
        (``hypot(a, d)`` and ``hypot(b, e)``, so a rotated grid measures right), in the CRS's
        linear unit times its size in metres (``CRS.linear_units_factor``: 1 for metre CRSs,
        0.3048006 for US survey feet), in a projected CRS; else ``(None, why)``: ``"no CRS"``,
        ``"only ground control points (no map grid)"`` or ``"a geographic CRS (EPSG:4326,
        degrees)"``. Web Mercator (EPSG:3857) metres are map metres, 1 / cos(latitude) times
        ground metres.
    """
    import math

    crs, t = geo.get("crs"), geo.get("transform")
    if geo.get("gcps"):
        return None, "only ground control points (no map grid)"
    if crs is None or t is None:
        return None, "no CRS"
    if getattr(crs, "is_geographic", False) or not getattr(crs, "is_projected", False):
        return None, f"a geographic CRS ({crs_name(crs)}, degrees)"
    factor = metres_per_unit(crs)
    if factor is None:
        return None, f"a CRS whose linear unit is unknown ({crs_name(crs)})"
    step = (math.hypot(t.a, t.d) + math.hypot(t.b, t.e)) / 2.0
    return step * factor, ""


def metres_per_unit(crs: Any) -> float | None:
    """The size in metres of a non-geographic CRS's linear unit, from its first axis (PROJ's
    unit conversion factor: 1 for metre CRSs, 0.3048 for international feet, 0.3048006 for US
    survey feet); None when PROJ names no unit. ``crs``: a rasterio or pyproj CRS, EPSG code or
    WKT (anything ``pyproj.CRS.from_user_input`` reads)."""
    from pyproj import CRS

    try:
        axes = CRS.from_user_input(crs).axis_info
    except Exception:  # noqa: BLE001 - a CRS PROJ cannot read has no known unit
        return None
    factor = axes[0].unit_conversion_factor if axes else None
    return float(factor) if factor else None
