"""Georeference of a raster: CRS + affine transform, or ground control points (GCPs).

One place that decides which entries of a rasterio profile carry the georeference, so every
written label, probability map and mosaic keeps its source's (an EPSG or custom WKT CRS with its
transform, or, for GCP-only scenes such as Sentinel-1 GRD, the GCPs and their CRS).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sam2elnet.utils.advice import plural


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


GridKind = Literal["transform", "gcps", "none"]
"""How a raster is georeferenced (:func:`grid_kind`)."""

MIN_GCPS = 3
"""The fewest ground control points (with a CRS) that place a raster on a map."""


def grid_kind(geo: dict[str, Any]) -> GridKind:
    """Whether a raster is georeferenced, and by what: the one rule of every reader here.

    Args:
        geo: the raster's georeference as :func:`georeference` / :func:`dataset_georeference`
            give it (``{"crs", "transform"}``, ``{"gcps", "crs"}``, ``{"transform"}`` or
            ``{}``; ``RasterHeader.geo``).

    Returns:
        ``"transform"``: a CRS with its affine transform (an identity transform included:
        rasterio reports a CRS without geotransform so, and it cannot be told from a stored
        identity); ``"gcps"``: no CRS of its own but at least :data:`MIN_GCPS` ground control
        points with a CRS (Sentinel-1 GRD), placed through them; ``"none"``: nothing a map
        position can be computed from (no CRS: a PNG / JPEG, a plain TIFF, a world file or
        GeoTIFF transform without CRS; fewer GCPs, or GCPs without a CRS). Labels on a
        ``"none"`` raster are in pixel coordinates, and such rasters pair by pixel index.
    """
    if geo.get("crs") is None:
        return "none"
    if "transform" in geo:
        return "transform"
    return "gcps" if len(geo.get("gcps") or ()) >= MIN_GCPS else "none"


def dataset_grid_kind(ds: Any) -> GridKind:
    """:func:`grid_kind` of an open rasterio dataset (of its :func:`dataset_georeference`)."""
    return grid_kind(dataset_georeference(ds))


def georeferenced(path: str | Path) -> bool:
    """Whether vector labels can be placed on raster ``path`` by map position: its
    :func:`~sam2elnet.data.georef.dataset_grid_kind` is not ``"none"`` (a CRS with its
    transform, or >= 3 GCPs with a CRS), read as the polygon readers read it
    (:func:`sam2elnet.data.vector_grid.image_grid`: GDAL's side files, a world file or
    ``.aux.xml``, count). An unreadable file answers True (its pair's reader reports it)."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                return dataset_grid_kind(ds) != "none"
    except (rasterio.errors.RasterioError, OSError):
        return True


def georeference_kind(profile: dict[str, Any] | None) -> GridKind:
    """:func:`grid_kind` of a rasterio-style profile (``crs``, ``transform``, optionally
    ``gcps`` / ``gcp_crs``; None: ``"none"``), through :func:`georeference`."""
    return grid_kind(georeference(profile))


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


def shapely_coefficients(transform: Any) -> list[float]:
    """``[a, b, d, e, xoff, yoff]`` of an ``affine.Affine`` ``transform`` (x' = a * x + b * y +
    xoff, y' = d * x + e * y + yoff; rasterio's pixel -> map), the coefficient list of
    ``shapely.affinity.affine_transform``."""
    t = transform
    return [t.a, t.b, t.d, t.e, t.xoff, t.yoff]


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


SCALE_SPREAD_WARN = 0.01
"""Relative spread of the ground pixel size over an image (largest / smallest - 1) above which
:func:`warn_scale_spread` warns: a Web Mercator tile spanning more than about 0.3 degrees of
latitude at 60 deg N (some 70 km of CRS metres) no longer has one ground pixel size. (A UTM
scene never gets there: its scale changes by under 0.1 % over 100 km.)"""


@dataclass(frozen=True)
class PixelSize:
    """A raster's pixel size on the ground (:func:`pixel_size`).

    Attributes:
        metres: ground metres per pixel at the image centre (mean of the column and row steps),
            None where unknown.
        why: why ``metres`` is None (``"no CRS"``, ``"only ground control points (no map
            grid)"``, ``"a geographic CRS (EPSG:4326, degrees)"``, ...); ``""`` when known.
        map_metres: the same pixel in the CRS: the transform's step in CRS units times the
            unit's size in metres (:func:`metres_per_unit`); what the CRS calls a metre.
        scale: ``map_metres / metres``, the projection's point scale factor at the image centre
            (map length / ground length: 0.9996 on a UTM zone's central meridian, about
            sec(latitude) in Web Mercator, 2.0 at 60 deg N); None where it could not be
            computed (the CRS unit is then taken as a ground metre, ``metres == map_metres``).
        low, high: the smallest and largest ground pixel size over the image (its centre,
            corner and edge-midpoint pixels), metres.
        crs: the CRS's short name (:func:`crs_name`).
    """

    metres: float | None = None
    why: str = ""
    map_metres: float | None = None
    scale: float | None = None
    low: float | None = None
    high: float | None = None
    crs: str = ""

    @property
    def spread(self) -> float:
        """``high / low - 1``: how much the ground pixel size varies over the image (0 where
        unknown)."""
        if not self.low or not self.high:
            return 0.0
        return self.high / self.low - 1.0

    def spread_note(self) -> str:
        """What :func:`warn_scale_spread` says about this raster: that the ground pixel size
        varies by more than :data:`SCALE_SPREAD_WARN` over it, or that PROJ gave no scale factor
        (CRS metres taken as ground metres); ``""`` otherwise."""
        if self.metres is not None and self.scale is None:
            return (
                f"PROJ cannot take {self.crs} to latitude / longitude here, so its unit is taken "
                "as a ground metre (the projection's scale factor is not applied)"
            )
        if self.spread <= SCALE_SPREAD_WARN or not self.metres or not self.low or not self.high:
            return ""
        off = max(self.high / self.metres - 1.0, 1.0 - self.low / self.metres)
        return (
            f"the ground pixel size varies by {100 * self.spread:.1f} % across the image "
            f"({self.low:.4g}-{self.high:.4g} m, {self.crs}); the size at the image centre, "
            f"{self.metres:.4g} m (projection scale factor {self.scale or 1.0:.4g}), is used, "
            f"so distances in metres near the image's edges are up to {100 * off:.1f} % off"
        )


def pixel_size(geo: dict[str, Any], shape: tuple[int, int] | None = None) -> PixelSize:
    """A raster's pixel size on the ground, in metres, from its CRS and transform.

    The ground length of the centre pixel's column step and row step (pixel centre +- half a
    pixel along each grid axis, through the affine transform, so a rotated grid measures right)
    is the geodesic distance between the two points on the CRS's ellipsoid
    (:func:`lonlat_route`: PROJ takes them to latitude / longitude, ``pyproj.Geod.inv``
    measures). That is the projection's point scale factor applied exactly, for every projected
    CRS and unit: the value ``pyproj.Proj(crs).get_factors(lon, lat)`` gives as
    ``parallel_scale`` / ``meridional_scale`` (PROJ ``proj_factors``,
    https://proj.org/en/latest/development/reference/functions.html#c.proj_factors) for a
    conformal projection (UTM: 0.9996 on the central meridian, up to about 1.001 at a zone's
    edge), and along each grid axis for a non-conformal one (LAEA EPSG:3035). Mercator's scale
    is sec(latitude) on the sphere (Snyder 1987, *Map Projections: A Working Manual*, USGS
    Professional Paper 1395, eqs. 7-3 and 7-8; on the ellipsoid sqrt(1 - e^2 sin^2 lat) / cos lat):
    Web Mercator (EPSG:3857) takes the spherical formulas on WGS 84 latitudes, so a CRS metre
    at 60 deg N is about 0.5 ground metres (0.5013 along x, 0.5004 along y on the WGS 84
    ellipsoid; PROJ's ``get_factors`` says exactly 2 there, as it sees the sphere).

    Args:
        geo: the raster's georeference, :func:`dataset_georeference` (``{"crs", "transform"}``,
            ``{"gcps", "crs"}`` or ``{}``; :class:`sam2elnet.data.grids.RasterHeader` ``.geo``).
        shape: ``(height, width)`` in pixels (``RasterHeader.shape``); None: one pixel, the
            grid's first.

    Returns:
        :class:`PixelSize`; ``metres`` None with ``why`` for no CRS, GCPs only, a geographic
        CRS (degrees) or a CRS without a known linear unit. Where PROJ cannot take the CRS to
        latitude / longitude, the CRS unit is taken as a ground metre (``scale`` None).
    """
    crs, t = geo.get("crs"), geo.get("transform")
    if geo.get("gcps"):
        return PixelSize(why="only ground control points (no map grid)")
    if crs is None or t is None:
        return PixelSize(why="no CRS")
    name = crs_name(crs)
    if getattr(crs, "is_geographic", False) or not getattr(crs, "is_projected", False):
        return PixelSize(why=f"a geographic CRS ({name}, degrees)", crs=name)
    factor = metres_per_unit(crs)
    if factor is None:
        return PixelSize(why=f"a CRS whose linear unit is unknown ({name})", crs=name)
    map_m = (math.hypot(t.a, t.d) + math.hypot(t.b, t.e)) / 2.0 * factor
    h, w = shape or (1, 1)
    cols, rows = [0.5, w / 2.0, w - 0.5], [0.5, h / 2.0, h - 0.5]
    spots = [(w / 2.0, h / 2.0)] + [(c, r) for r in rows for c in cols]
    try:
        sizes = _ground_steps(crs, t, spots)
    except Exception:  # noqa: BLE001 - PROJ raises several error types outside a projection
        sizes = []
    if not sizes or not all(math.isfinite(v) and v > 0 for v in sizes):
        return PixelSize(map_m, "", map_m, None, map_m, map_m, name)
    return PixelSize(sizes[0], "", map_m, map_m / sizes[0], min(sizes), max(sizes), name)


def _ground_steps(crs: Any, t: Any, spots: list[tuple[float, float]]) -> list[float]:
    """Ground pixel size (mean geodesic column and row step, metres) at each pixel position
    ``(col, row)`` of grid ``t`` in ``crs``."""
    import numpy as np

    to_lonlat, geod = lonlat_route(crs)
    pix = []
    for c, r in spots:
        pix += [(c - 0.5, r), (c + 0.5, r), (c, r - 0.5), (c, r + 0.5)]
    px = np.array(pix, dtype=float)
    x = t.a * px[:, 0] + t.b * px[:, 1] + t.c
    y = t.d * px[:, 0] + t.e * px[:, 1] + t.f
    lon, lat = to_lonlat(x, y)
    _, _, d = geod.inv(lon[0::2], lat[0::2], lon[1::2], lat[1::2])
    d = np.asarray(d, dtype=float)
    return [float(v) for v in (d[0::2] + d[1::2]) / 2.0]


def lonlat_route(crs: Any) -> tuple[Any, Any]:
    """How coordinates in ``crs`` reach the ground: ``(to_lonlat, geod)``.

    ``to_lonlat(x, y)`` (arrays in ``crs``, x = easting / longitude as GIS tools order them)
    returns longitude and latitude in degrees on the CRS's own datum (its geodetic CRS, no datum
    shift; angular units such as the grads of NTF (Paris) converted), and ``geod`` is the
    ``pyproj.Geod`` of its ellipsoid: ``geod.inv`` / ``geod.geometry_length`` of those give
    ground (geodesic) metres (Karney 2013, "Algorithms for geodesics", J. Geodesy 87). One route
    for a projected and a geographic CRS alike.

    Raises:
        pyproj.exceptions.CRSError: ``crs`` cannot be read; ``ValueError`` for a CRS without
        a geodetic CRS (an engineering CRS).
    """
    import numpy as np
    from pyproj import CRS, Transformer

    c = CRS.from_user_input(crs)
    base = c.geodetic_crs
    if base is None:
        raise ValueError(f"{crs_name(c)} has no geodetic CRS (latitude / longitude)")
    axes = base.axis_info
    rad = float(axes[0].unit_conversion_factor) if axes else math.pi / 180.0
    to_deg = rad * 180.0 / math.pi
    tr = Transformer.from_crs(c, base, always_xy=True)

    def to_lonlat(x: Any, y: Any) -> tuple[Any, Any]:
        lon, lat = tr.transform(np.asarray(x, float), np.asarray(y, float), errcheck=True)
        return np.asarray(lon) * to_deg, np.asarray(lat) * to_deg

    return to_lonlat, c.get_geod()


def metres_per_pixel(
    geo: dict[str, Any], shape: tuple[int, int] | None = None
) -> tuple[float | None, str]:
    """A raster's ground pixel size in metres: ``(size, "")``, or ``(None, why)``.

    :func:`pixel_size`'s ``metres`` and ``why`` (same arguments): the pixel at the image
    centre on the ground, the projection's scale factor applied (Web Mercator EPSG:3857 at
    60 deg N: a 0.5 m CRS pixel is 0.25 m; UTM: 0.9996), US-feet CRSs converted.
    """
    ps = pixel_size(geo, shape)
    return ps.metres, ps.why


def warn_scale_spread(sizes: dict[Any, PixelSize]) -> None:
    """Log one warning for the rasters whose ground pixel size varies by more than
    :data:`SCALE_SPREAD_WARN` across the image, or whose scale factor PROJ could not give
    (:meth:`PixelSize.spread_note`), naming the first of them and how many there are; nothing
    when none does. ``sizes``: :class:`PixelSize` by raster path (or name)."""
    wide = [(k, ps) for k, ps in sizes.items() if ps.spread_note()]
    if not wide:
        return
    (first, ps), more = wide[0], len(wide) - 1
    also = f" (and {plural(more, 'more raster')} like it)" if more else ""
    logging.getLogger(__name__).warning("%s%s: %s", getattr(first, "name", first), also,
                                        ps.spread_note())  # fmt: skip


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
