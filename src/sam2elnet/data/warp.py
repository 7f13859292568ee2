"""Warping an output raster (label, probability map) from ground control points to a map grid.

A Sentinel-1 GRD measurement GeoTIFF has no CRS and no affine transform, only ground control
points (GCPs, usually in EPSG:4326). Labels predicted on it keep those GCPs by default (what
``gdal_translate`` does); :func:`warp_to_map_grid` instead resamples a label onto a regular,
north-up map grid (CRS + affine transform), the result of

    gdalwarp -tps -t_srs EPSG:32635 -r near -dstnodata 127 label.tif label_map.tif

done with :func:`rasterio.warp.reproject` (GDAL's warper, so positions are GDAL's): the GCP
transformer is a thin plate spline through the GCPs (``method="tps"``, the default, GDAL
``SRC_METHOD=GCP_TPS``, exact at every GCP; what most Sentinel-1 users warp with, and the one
transformer every label is placed on a GCP-only grid with, :data:`sam2elnet.data.grids.GCP_METHOD`,
so a warped output and a placed label agree) or a least-squares polynomial
(``method="polynomial"``, GDAL's default for ``gdalwarp`` without ``-tps``; smoother with noisy
GCPs). The output grid (extent, size, pixel size) is GDAL's suggested warp output
(:func:`rasterio.warp.calculate_default_transform`), as ``gdalwarp`` picks it without
``-tr``/``-ts``. Labels are resampled by nearest neighbour, so they keep exactly the values
0 / 255 / 127 (nodata; also outside the scene footprint); float probabilities bilinearly with NaN
nodata. A raster that already has a CRS + transform is reprojected the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.gdal_errors import gdal_reason, raster_error_text
from sam2elnet.data.georef import MIN_GCPS, crs_name, dataset_grid_kind
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import DEFAULT_WARP_METHOD, WARP_METHODS
from sam2elnet.utils.advice import plural

__all__ = [
    "DEFAULT_WARP_METHOD",
    "WARP_METHODS",
    "WarpInfo",
    "NoGeoreferenceError",
    "check_warp_options",
    "check_warpable",
    "parse_warp_crs",
    "EDGE_STEPS",
    "pixels_to_map",
    "rect_polygons",
    "resolve_warp_crs",
    "warp_to_map_grid",
]

_GDAL_METHOD = {"tps": "GCP_TPS", "polynomial": "GCP_POLYNOMIAL"}


def parse_warp_crs(text: str | None) -> str | None:
    """Check a ``--warp-to`` value: ``utm`` (the UTM zone of the scene's centre, WGS 84) or any
    CRS rasterio accepts (``EPSG:32635``, ``EPSG:4326``, a WKT or PROJ string). None/"" -> None.

    Raises:
        UserError: an unknown CRS (the message names it and the accepted forms).
    """
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    if t.lower() == "utm":
        return "utm"
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    from sam2elnet.utils.quiet import quiet_native_stderr

    try:
        with quiet_native_stderr():  # PROJ prints "crs not found" itself
            CRS.from_user_input(t)
    except CRSError:
        raise UserError(
            f"--warp-to {t!r} is not a CRS; give utm (the scene's UTM zone) or e.g. EPSG:32635, "
            "EPSG:4326"
        ) from None
    return t


def check_warp_options(warp_to: str | None, method: str = DEFAULT_WARP_METHOD) -> str | None:
    """``--warp-to`` / ``--warp-method`` checked before any work (UserError naming the accepted
    values); returns :func:`parse_warp_crs` of ``warp_to``."""
    if method not in WARP_METHODS:
        raise UserError(f"--warp-method must be one of {', '.join(WARP_METHODS)}, got {method!r}")
    return parse_warp_crs(warp_to)


def _centre_lonlat(ds: Any) -> tuple[float, float]:
    """(lon, lat) of the raster's centre, through its GCPs or transform."""
    from rasterio.crs import CRS
    from rasterio.warp import transform

    from sam2elnet.data.grids import GcpGrid

    grid = GcpGrid.of(ds)
    if grid is not None:
        with grid.transformer() as tr:
            x, y = tr.xy(ds.height / 2, ds.width / 2)
        src_crs = grid.crs
    else:
        x, y = ds.transform * (ds.width / 2, ds.height / 2)
        src_crs = ds.crs
    lon, lat = transform(src_crs, CRS.from_epsg(4326), [x], [y])
    return float(lon[0]), float(lat[0])


def resolve_warp_crs(text: str, ds: Any) -> Any:
    """The target :class:`rasterio.crs.CRS` of ``--warp-to`` for an open dataset: ``utm`` is the
    WGS 84 UTM zone containing the scene centre (EPSG:326zz north, 327zz south; zone =
    floor((lon + 180) / 6) + 1, the standard UTM zone rule without the Norway/Svalbard
    exceptions).

    Raises:
        DataError: ``utm`` for a dataset whose centre has no longitude / latitude (its
            georeference places it off the globe).
    """
    from rasterio.crs import CRS

    if text.lower() != "utm":
        return CRS.from_user_input(text)
    lon, lat = _centre_lonlat(ds)
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise DataError(
            "its centre has no longitude / latitude (the georeference places it off the globe), "
            "so no UTM zone holds it; check its CRS and transform, or give --warp-to a CRS",
            ds.name,
        )
    zone = min(60, max(1, int(np.floor((lon + 180.0) / 6.0)) + 1))
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


class NoGeoreferenceError(DataError):
    """A raster without any georeference (no CRS, no ground control points): nothing places it
    on a map. ``elnet export --warp-to`` skips such a label among georeferenced ones."""


def _check_georeference(ds: Any, path: Path) -> bool:
    """True for a GCP-only dataset, False for CRS + transform
    (:func:`~sam2elnet.data.georef.grid_kind`); DataError when it cannot be warped
    (:class:`NoGeoreferenceError`: no georeference; fewer than 3 GCPs, GCPs without a CRS)."""
    kind = dataset_grid_kind(ds)
    if kind != "none":
        return kind == "gcps"
    gcps, gcp_crs = ds.gcps
    if not gcps:
        raise NoGeoreferenceError(
            "has no georeference (no CRS, no ground control points): it cannot be warped to "
            "a map grid; drop --warp-to",
            path,
        )
    raise DataError(
        f"has {plural(len(gcps), 'ground control point')}{'' if gcp_crs else ' without a CRS'}; "
        f"warping needs at least {MIN_GCPS} with a CRS; drop --warp-to",
        path,
    )


def check_warpable(path: str | Path, crs: str, method: str = DEFAULT_WARP_METHOD) -> Any:
    """Check before predicting that ``path`` (the input image) can be warped to ``crs`` with
    ``method`` (:func:`warp_to_map_grid`'s DataError / UserError otherwise); return the target
    CRS."""
    import rasterio

    check_warp_options(crs, method)
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as ds:
                _check_georeference(ds, p)
                return resolve_warp_crs(crs, ds)
    except rasterio.errors.RasterioIOError as err:
        raise DataError(raster_error_text("raster", err), p) from None


def pixels_to_map(
    ds: Any, rows: np.ndarray, cols: np.ndarray, crs: Any, method: str = DEFAULT_WARP_METHOD
) -> tuple[np.ndarray, np.ndarray]:
    """Map positions in ``crs`` of pixel positions of ``ds``, as :func:`warp_to_map_grid` with
    ``method`` places them: through the GCPs (``rasterio.transform.GCPTransformer``: the thin
    plate spline, or GDAL's GCP polynomial with the order GDAL picks from the GCP count) for a
    GCP-only dataset, through its transform otherwise, then reprojected
    (``rasterio.warp.transform``). Used for geometries that must lie on a warped output, e.g.
    the ``--quality-gpkg`` windows of a scene run with ``--warp-to``.

    Args:
        ds: an open rasterio dataset (GCPs with a CRS, or CRS + transform).
        rows, cols: (N,) float pixel positions (corner convention: (0, 0) is the top left
            corner of the first pixel).
        crs: the target ``rasterio.crs.CRS``.
        method: ``tps`` or ``polynomial`` (ignored for CRS + transform).

    Returns:
        ``(x, y)``: (N,) float64 arrays in ``crs``.
    """
    from rasterio.warp import transform

    from sam2elnet.data.grids import GcpGrid

    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    grid = GcpGrid.of(ds)
    if grid is not None:
        with grid.transformer(tps=_GDAL_METHOD[method] == "GCP_TPS") as tr:
            x, y = tr.xy(rows, cols, offset="ul")
        src_crs = grid.crs
    else:
        x, y = ds.transform * (cols, rows)
        src_crs = ds.crs
    xs, ys = transform(src_crs, crs, np.ravel(x), np.ravel(y))
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


EDGE_STEPS = 16
"""Segments per side of a pixel rectangle placed through a GCP transformer or reprojected."""


def rect_polygons(
    rects: list[tuple[float, float, float, float]],
    xy: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]],
    steps: int = 1,
) -> list[Any]:
    """Polygons of ``(row_off, col_off, height, width)`` pixel rectangles in map coordinates.

    Args:
        rects: pixel rectangles (corner convention, as :func:`pixels_to_map`).
        xy: ``(rows, cols) -> (xs, ys)`` for (N,) float arrays: an affine transform, or
            :func:`pixels_to_map` with a dataset, CRS and method.
        steps: segments per side (:data:`EDGE_STEPS` when ``xy`` is not affine, so the sides
            follow it).

    Returns:
        One ``shapely`` polygon per rectangle, ``4 * steps`` vertices, oriented by
        ``shapely.geometry.polygon.orient`` (exterior counter-clockwise).
    """
    from shapely.geometry import Polygon
    from shapely.geometry.polygon import orient

    if not rects:
        return []
    u = np.arange(steps, dtype=np.float64) / steps  # one side, its far corner excluded
    rings_r, rings_c = [], []
    for r, c, h, w in rects:  # clockwise on screen from the top left corner
        rings_r.append(np.concatenate([r + 0 * u, r + h * u, r + h + 0 * u, r + h * (1 - u)]))
        rings_c.append(np.concatenate([c + w * u, c + w + 0 * u, c + w * (1 - u), c + 0 * u]))
    xs, ys = xy(np.concatenate(rings_r), np.concatenate(rings_c))
    n = 4 * steps
    xs, ys = np.asarray(xs).reshape(-1, n), np.asarray(ys).reshape(-1, n)
    return [orient(Polygon(np.column_stack([x, y]))) for x, y in zip(xs, ys, strict=True)]


@dataclass
class WarpInfo:
    """What :func:`warp_to_map_grid` did (for the CLI note)."""

    path: Path
    crs: str
    width: int
    height: int
    pixel_size: tuple[float, float]
    source: str  # "gcps (tps)", "gcps (polynomial)" or "crs"

    def note(self) -> str:
        """One line: what was warped, from what, onto which grid."""
        return (
            f"{self.path.name}: warped from {self.source} to a {self.width}x{self.height} px map "
            f"grid in {self.crs} ({self.pixel_size[0]:.6g} x {self.pixel_size[1]:.6g} map units "
            "per pixel)"
        )


def warp_to_map_grid(
    src_path: str | Path,
    dst_path: str | Path | None = None,
    crs: str = "utm",
    *,
    method: str = DEFAULT_WARP_METHOD,
) -> WarpInfo | None:
    """Resample a single-band output GeoTIFF onto a regular map grid in ``crs``.

    Args:
        src_path: label (uint8 0/255, nodata 127) or probability GeoTIFF (float32, NaN nodata;
            or uint8 ``p*254`` with nodata 255), georeferenced by GCPs or by CRS + transform.
        dst_path: output GeoTIFF; None replaces ``src_path`` (atomically).
        crs: ``utm`` or any CRS string (:func:`parse_warp_crs`).
        method: ``tps`` or ``polynomial`` (GCP transformer; ignored for CRS + transform).

    Returns:
        :class:`WarpInfo`, or None when nothing was to do (already in ``crs`` with a transform
        and ``dst_path`` is None, e.g. a resumed batch).

    Raises:
        DataError: GDAL cannot read it (corrupt, truncated: the readers' wording,
            :func:`~sam2elnet.data.gdal_errors.raster_error_text`), no georeference at all
            (:class:`NoGeoreferenceError`: nothing to place on a map), fewer than 3 GCPs, or GDAL
            cannot warp it to ``crs`` (GCPs: the message says to check them; CRS + transform: its
            footprint lies outside the area ``crs`` maps, e.g. a polar raster to Web Mercator).
        UserError: an unknown ``method`` or ``crs``.
    """
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.warp import calculate_default_transform, reproject

    from sam2elnet.data.writers import verify_written
    from sam2elnet.utils.atomic import atomic_path

    check_warp_options(crs, method)
    src_p = Path(src_path)
    dst_p = src_p if dst_path is None else Path(dst_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(src_p)
    except RasterioError as err:
        raise DataError(raster_error_text("raster", err), src_p) from None
    with ds:
        try:
            use_gcps = _check_georeference(ds, src_p)
        except NoGeoreferenceError:
            try:  # a truncated file whose header opens: that, not "no georeference"
                ds.read(1)
            except RasterioError as err:
                raise DataError(raster_error_text("raster", err), src_p) from None
            raise
        gcps, gcp_crs = [], None
        if use_gcps:
            from sam2elnet.data.grids import GcpGrid

            grid = GcpGrid(*ds.gcps, src_p)  # its GCPs checked
            gcps, gcp_crs = grid.gcps, grid.crs
        dst_crs = resolve_warp_crs(crs, ds)
        if not use_gcps and ds.crs == dst_crs and dst_path is None:
            return None
        try:
            data = ds.read(1)
        except RasterioError as err:  # truncated: the header read, the pixels not
            raise DataError(raster_error_text("raster", err), src_p) from None
        nodata = ds.nodata
        is_float = np.issubdtype(data.dtype, np.floating)
        if nodata is None and is_float:
            nodata = float("nan")
        fill = 0 if nodata is None else nodata  # untagged integer rasters: outside = 0
        opts: dict[str, Any] = {}
        if use_gcps:
            opts["SRC_METHOD"] = _GDAL_METHOD[method]
            geo: dict[str, Any] = {"gcps": gcps, "src_crs": gcp_crs}
            source = f"{len(gcps)} ground control points ({method})"
        else:
            geo = {"src_transform": ds.transform, "src_crs": ds.crs}
            source = crs_name(ds.crs)
        try:
            if use_gcps:
                dst_t, w, h = calculate_default_transform(
                    gcp_crs, dst_crs, ds.width, ds.height, gcps=gcps, **opts
                )
            else:
                dst_t, w, h = calculate_default_transform(
                    ds.crs, dst_crs, ds.width, ds.height, *ds.bounds
                )
            out = np.full((h, w), fill, dtype=data.dtype)
            reproject(
                data,
                out,
                src_nodata=nodata,
                dst_transform=dst_t,
                dst_crs=dst_crs,
                dst_nodata=fill,
                resampling=Resampling.bilinear if is_float else Resampling.nearest,
                **geo,
                **opts,
            )
        except (RasterioError, CPLE_BaseError, ValueError) as err:
            advice = (
                "check the ground control points, or warp with gdalwarp"
                if use_gcps
                else f"its footprint lies outside the area {crs_name(dst_crs)} maps, or its "
                "georeference is wrong: check its CRS and transform, choose another --warp-to "
                "(utm: the zone of each file's centre) or drop --warp-to"
            )
            raise DataError(
                f"cannot warp to {crs_name(dst_crs)} ({gdal_reason(err)}); {advice}", src_p
            ) from None
        profile = {
            "driver": "GTiff",
            "height": h,
            "width": w,
            "count": 1,
            "dtype": str(data.dtype),
            "crs": dst_crs,
            "transform": dst_t,
            "nodata": nodata,
            "compress": "deflate",
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        if w < 256 or h < 256:
            profile.update(tiled=False)
            del profile["blockxsize"], profile["blockysize"]
        tags = ds.tags()
    tags["WARPED_FROM"] = source
    with atomic_path(dst_p, verify=verify_written) as tmp:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(out[None])
            dst.update_tags(**tags)
    return WarpInfo(dst_p, dst_crs.to_string(), w, h, (abs(dst_t.a), abs(dst_t.e)), source)
