"""Two rasters' pixel grids compared, and a raster label moved from one grid onto the other.

The one rule for putting a label on an image's grid, used by ``elnet evaluate`` (truths),
``elnet enhance`` (:func:`sam2elnet.data.masks.read_mask_on_grid`, whole images), ``elnet scene``
and large ``enhance`` images (:class:`sam2elnet.engine.scene_coarse.CoarseSource`, window by
window) and, for the GCP transformer, the vector-label reader (:mod:`sam2elnet.data.vector`):

* :func:`raster_header`: what one header says (georeference, size, bands, sample size), read once
  per file and pair (:class:`RasterHeader`; :func:`dataset_header` for an open dataset,
  :func:`image_header` for an image's grid, PNG / JPEG included);
* :func:`other_grid`: whether two rasters lie on different grids (:class:`OtherGrid`); same-grid
  pairs, and pairs where either side has no georeference, are used by pixel index;
* :func:`resample_nearest` / :func:`place_on_grid`: nearest-neighbour resampling by map position
  through GDAL's warper (into memory, or a GeoTIFF for a whole scene); how much of the target a
  raster on another grid covers: :mod:`sam2elnet.data.grid_cover`; which rows and columns of the
  source the target can take values from: :func:`footprint_window` (a whole image reads only
  that window of a large regional label).

A grid is georeferenced by CRS + affine transform, or by ground control points only (GCPs with a
CRS, >= 3 of them: a Sentinel-1 GRD scene); :func:`sam2elnet.data.georef.grid_kind` decides which. GCP-only grids are placed with GDAL's thin plate
spline through the GCPs (:data:`GCP_METHOD`), the transformer ``elnet ... --warp-to`` warps with
by default (``gdalwarp -tps``; :mod:`sam2elnet.data.warp`), so a label placed here and a label
warped there agree. Rasters without either (PNG / JPEG, a plain TIFF) have no grid to compare:
they pair by pixel index. Every GCP grid is obtained from a raster as a :class:`GcpGrid`, which
checks its GCPs for outliers when it is built (:mod:`sam2elnet.data.gcp_check`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import (
    crs_name,
    dataset_georeference,
    georeference,
    grid_kind,
    same_crs,
)
from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.errors import DataError

__all__ = [
    "FOOTPRINT_PAD",
    "GCP_METHOD",
    "GcpGrid",
    "OtherGrid",
    "RasterHeader",
    "dataset_header",
    "footprint_window",
    "image_header",
    "other_grid",
    "place_on_grid",
    "raster_header",
    "resample_nearest",
]

GCP_METHOD = "GCP_TPS"
"""GDAL's transformer between pixels and map positions of every GCP-only grid here: a thin plate
spline through the GCPs (``SRC_METHOD`` / ``DST_METHOD=GCP_TPS``, ``gdalwarp -tps``: "Force use
of thin plate spline transformer based on available GCPs", https://gdal.org/programs/gdalwarp.html),
not the least-squares polynomial (``GCP_POLYNOMIAL``, ``gdalwarp -order n``, order chosen from
the number of GCPs by default). The spline passes through every GCP; the polynomial only fits
them. Measured on a Sentinel-1-like grid (10 lines x 21 GCPs over 2000 x 2000 px, a track
turning 0.5 deg / 100 km, EPSG:4326 GCPs; ``benchmarks/gcp_transformers.py``): the two agree
within 0.02 px at 10 m pixels and 0.45 px at 125 m pixels (250 km scene) on flat ground, but a
1000 m hill at 10 m pixels moves the GCPs by terrain displacement the polynomial cannot follow:
polynomial 40 px from the true positions, spline 0.35 px (docs/geospatial.md)."""


@dataclass(frozen=True)
class RasterHeader:
    """One raster's header: ``geo`` (:func:`~sam2elnet.data.georef.dataset_georeference`:
    ``{"crs", "transform"}``, ``{"gcps", "crs"}`` or ``{}``), ``shape`` (H, W) px, ``bands``
    and ``itemsize`` (bytes per sample); ``shape`` None for a file GDAL does not read here
    (:data:`~sam2elnet.data.naming.CV2_SUFFIXES`, PNG / JPEG, which OpenCV decodes; or damaged:
    the reader that follows reports the damage). Other rasters (BMP and GIF too) are read
    through GDAL, header and pixels alike (:func:`sam2elnet.data.images.read_pixels`)."""

    path: Path
    geo: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, int] | None = None
    bands: int = 1
    itemsize: int = 1


def raster_header(path: str | Path) -> RasterHeader:
    """Read ``path``'s header once (GDAL, no ``.aux.xml`` side files); see :class:`RasterHeader`."""
    p = Path(path)
    if p.suffix.lower() in CV2_SUFFIXES or not p.is_file():  # decoded by OpenCV: no header
        return RasterHeader(p)
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(p) as ds:
                return RasterHeader(
                    p,
                    dataset_georeference(ds),
                    (ds.height, ds.width),
                    ds.count,
                    np.dtype(ds.dtypes[0]).itemsize,
                )
    except (RasterioError, OSError):
        return RasterHeader(p)


def image_header(image: str | Path | Any) -> RasterHeader:
    """The grid of an image as the image reader sees it: for a path, from the header alone (no
    pixels; :func:`raster_header`, a PNG / JPEG without georeference and its (H, W) from the PIL
    header, :func:`~sam2elnet.data.pair_sizes.image_size`); for a read image
    (:class:`~sam2elnet.data.images.RasterImage`) from its ``path``, ``profile`` and ``shape``.
    ``shape`` is never None.

    Raises:
        DataError: a missing or undecodable image file.
    """
    if not isinstance(image, (str, Path)):
        return RasterHeader(Path(image.path), georeference(image.profile), image.shape)
    from sam2elnet.data.pair_sizes import image_size

    head = raster_header(image)
    return head if head.shape is not None else RasterHeader(Path(image), {}, image_size(image))


def dataset_header(ds: Any) -> RasterHeader:
    """:class:`RasterHeader` of an open rasterio dataset (its ``name`` as the path)."""
    item = np.dtype(ds.dtypes[0]).itemsize
    return RasterHeader(
        Path(ds.name), dataset_georeference(ds), (ds.height, ds.width), ds.count, item
    )


@dataclass(frozen=True, eq=False)
class GcpGrid:
    """A raster's georeference by ground control points only (Sentinel-1 GRD, QGIS georeferencer
    output): the one place a GCP grid is obtained from a raster.

    Building one checks its GCPs (:func:`sam2elnet.data.gcp_check.check_gcps`: a warning naming
    :attr:`path` when some do not fit the others, once per GCP set and run; never refused), so
    every reader that places anything through GCPs (images, scenes, vector labels, warps, label
    and truth placement, the export's polygons, the ``--quality-gpkg`` windows) warns the same way
    without calling the check itself. Build with :meth:`of` (an open dataset) or :meth:`of_geo`
    (a :class:`RasterHeader`'s ``geo``); the GCP transformer and the affine fit come from
    :meth:`transformer` and :meth:`affine`, nowhere else, and the GCPs given to GDAL's warper
    (``rasterio.warp.reproject`` / ``calculate_default_transform``) from :attr:`gcps`
    (``tests/data/test_gcp_grid.py`` checks all three).

    Attributes:
        gcps: the GCPs as a list of ``rasterio.control.GroundControlPoint`` (``row`` / ``col``
            in pixels, corner convention: (0, 0) is the top left corner of the first pixel;
            ``x`` / ``y`` in :attr:`crs` units).
        crs: the GCPs' CRS (``rasterio.crs.CRS``), None when the file gives none.
        path: the raster, named in the check's warning (None: not named).
        residuals: the check's :class:`~sam2elnet.data.gcp_check.GcpResiduals`.
    """

    gcps: list[Any]
    crs: Any
    path: str | Path | None = None
    residuals: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from sam2elnet.data.gcp_check import check_gcps

        object.__setattr__(self, "gcps", list(self.gcps))
        object.__setattr__(self, "residuals", check_gcps(self.gcps, self.path))

    @classmethod
    def of(cls, ds: Any, path: str | Path | None = None) -> GcpGrid | None:
        """The GCP grid of an open rasterio dataset without a CRS that has GCPs (``ds.gcps``),
        else None (CRS + transform, or no georeference). ``path`` (default ``ds.name``) is named
        in the check's warning."""
        if ds.crs is not None:
            return None
        gcps, crs = ds.gcps
        if not gcps:
            return None
        return cls(gcps, crs, ds.name if path is None else path)

    @classmethod
    def of_geo(cls, geo: dict[str, Any], path: str | Path | None = None) -> GcpGrid | None:
        """The GCP grid of a :class:`RasterHeader`'s ``geo`` (``{"gcps", "crs"}``), else None."""
        if "transform" in geo or not geo.get("gcps"):
            return None
        return cls(geo["gcps"], geo.get("crs"), path)

    @property
    def placeable(self) -> bool:
        """Map positions can be computed from these GCPs
        (:func:`~sam2elnet.data.georef.grid_kind` ``"gcps"``: enough of them, with a CRS); else
        the raster is used as if it had no georeference."""
        return grid_kind({"gcps": self.gcps, "crs": self.crs}) == "gcps"

    def transformer(self, tps: bool = GCP_METHOD == "GCP_TPS") -> Any:
        """GDAL's GCP transformer (``rasterio.transform.GCPTransformer``; a context manager;
        ``.xy(row, col)`` -> map, ``.rowcol(x, y)`` -> pixels): the thin plate spline through
        the GCPs (:data:`GCP_METHOD`, the default), or with ``tps=False`` GDAL's least-squares
        GCP polynomial (order picked from the GCP count; ``--warp-method polynomial``)."""
        from rasterio.transform import GCPTransformer

        return GCPTransformer(self.gcps, tps=tps)

    def affine(self) -> Any:
        """The pixel -> map mapping of the *geometries* written for a GCP-only raster: the
        polygons of ``elnet export`` and the ``elnet scene --quality-gpkg`` windows, in
        :attr:`crs`.

        An affine fit to the GCPs by least squares (``rasterio.transform.from_gcps``, GDAL's
        ``GDALGCPsToGeoTransform``): ``affine * (col, row)`` -> (x, y). Exact for GCPs that lie
        on an affine grid; elsewhere approximate away from the GCPs (a polygon vertex maps to a
        straight line segment of map space, so the labels' geometries cannot follow the
        spline): warped outputs (``--warp-to``) place both layers with the GCP transformer
        instead (:func:`sam2elnet.data.warp.pixels_to_map`).

        Returns:
            ``affine.Affine``.
        """
        from rasterio.transform import from_gcps

        return from_gcps(self.gcps)


@dataclass
class OtherGrid:
    """Two rasters on different map grids (:func:`other_grid`): the georeference
    (``{"crs", "transform"}`` or ``{"crs", "gcps"}``) and (H, W) of the raster to move (``src``)
    and of the grid to put it on (``dst``)."""

    src_geo: dict[str, Any]
    src_shape: tuple[int, int]
    dst_geo: dict[str, Any]
    dst_shape: tuple[int, int]

    def describe(self) -> str:
        """e.g. ``64x64 px of 20 x 20 map units in EPSG:32633 -> 128x128 px of 10 x 10 map
        units in EPSG:32633`` (W x H; pixel size in the CRS's units), or ``150x120 px placed by
        12 ground control points in EPSG:4326`` for a GCP-only grid."""

        def one(geo: dict[str, Any], shape: tuple[int, int]) -> str:
            if "transform" not in geo:
                n = len(geo["gcps"])
                where = crs_name(geo["crs"])
                return f"{shape[1]}x{shape[0]} px placed by {n} ground control points in {where}"
            t = geo["transform"]
            size = f"{abs(t.a):.6g} x {abs(t.e):.6g} map units"
            return f"{shape[1]}x{shape[0]} px of {size} in {crs_name(geo['crs'])}"

        return f"{one(self.src_geo, self.src_shape)} -> {one(self.dst_geo, self.dst_shape)}"


def _grid_tolerance(transform: Any) -> float:
    """How far two grids' transform coefficients may differ and still be the same grid: 1/1000 of
    the smaller pixel side of ``transform`` (CRS units). A fixed tolerance cannot serve every CRS:
    1e-5 is a whole pixel of a 1 m grid in degrees (EPSG:4326, ~9e-6 degree pixels) but a
    hundred-thousandth of a 1 m pixel in metres (UTM)."""
    side = min(abs(transform.a) + abs(transform.d), abs(transform.b) + abs(transform.e))
    return side / 1000 if side > 0 else 1e-5


def _same_gcps(a: list[Any], b: list[Any]) -> bool:
    """The same control points: equal pixel positions (1/1000 px) and map positions (1e-9
    relative to the largest coordinate), in the same order."""
    if len(a) != len(b):
        return False
    pa = np.array([(g.row, g.col, g.x, g.y) for g in a], float)
    pb = np.array([(g.row, g.col, g.x, g.y) for g in b], float)
    scale = max(1.0, float(np.abs(pa[:, 2:]).max()))
    return bool(
        np.allclose(pa[:, :2], pb[:, :2], rtol=0, atol=1e-3)
        and np.allclose(pa[:, 2:], pb[:, 2:], rtol=0, atol=1e-9 * scale)
    )


def other_grid(
    path: str | Path | RasterHeader, like: str | Path | RasterHeader
) -> OtherGrid | None:
    """Whether raster ``path`` lies on another map grid than raster ``like``.

    Args:
        path: The raster to place (e.g. a ground-truth mask), or its :func:`raster_header`.
        like: The raster whose grid counts (e.g. the prediction), or its header.

    Returns:
        :class:`OtherGrid` when both are georeferenced (CRS + transform, or GCPs;
        :func:`~sam2elnet.data.georef.grid_kind`)
        and their size, CRS, transform or GCPs differ (transform coefficients compared with
        ``Affine.almost_equals`` to 1/1000 of ``like``'s pixel size, :func:`_grid_tolerance`;
        a GCP-only raster and one with a transform are always on different grids); None when
        they share the grid, or when either has no georeference (PNG / JPEG, a plain TIFF: such
        pairs can only be used by pixel index).
    """
    src = path if isinstance(path, RasterHeader) else raster_header(path)
    dst = like if isinstance(like, RasterHeader) else raster_header(like)
    kinds = grid_kind(src.geo), grid_kind(dst.geo)
    if "none" in kinds or src.shape is None or dst.shape is None:
        return None
    same = src.shape == dst.shape and same_crs(src.geo["crs"], dst.geo["crs"])
    if kinds == ("transform", "transform"):
        t = dst.geo["transform"]
        same = same and src.geo["transform"].almost_equals(t, precision=_grid_tolerance(t))
    elif kinds == ("gcps", "gcps"):
        same = same and _same_gcps(src.geo["gcps"], dst.geo["gcps"])
    else:
        same = False
    return None if same else OtherGrid(src.geo, src.shape, dst.geo, dst.shape)


def resample_nearest(
    source: Any,
    grid: OtherGrid,
    *,
    fill: float,
    src_nodata: float | None = None,
    out_path: str | Path | None = None,
    path: str | Path | None = None,
    like: str | Path | None = None,
) -> np.ndarray | None:
    """Values of ``source`` (on ``grid.src``) at the pixels of ``grid.dst``, nearest neighbour.

    The one resampling of every raster label placed on another raster's grid (``evaluate``'s
    truths, ``enhance`` / ``scene``'s coarse rasters): ``rasterio.warp.reproject`` (GDAL's
    warper, ``Resampling.nearest``: each target pixel takes the value of the source pixel under
    its centre, so class values stay exact; rasterio docs, "Reprojection") into a dataset on
    ``grid.dst`` (its CRS + transform, or its GCPs: ``DST_METHOD``). A GCP-only source or target
    is placed through its GCPs with :data:`GCP_METHOD`. One call builds the GCP transformer once:
    a thin plate spline's set-up grows with the cube of the GCP count (about 3 ms for a GRD's
    210 GCPs, 5 s for 2,100), so a scene is placed in one call, not per window.

    Args:
        source: (H, W) array on ``grid.src_shape``, or a ``rasterio.band`` of the source file
            (GDAL reads only the blocks the target needs).
        grid: from :func:`other_grid`.
        fill: value of target pixels outside the source's footprint (and of source nodata);
            the target's nodata.
        src_nodata: the source's nodata value (None: none).
        out_path: write the result there (tiled, deflate GeoTIFF, GDAL's chunked warp: memory
            bounded whatever ``grid.dst_shape``) instead of returning it.
        path / like: the source and target files, named in the error.

    Returns:
        (h, w) array of ``grid.dst_shape`` in the source's dtype, or None with ``out_path``.

    Raises:
        DataError: GDAL cannot compute the transformation (e.g. GCPs that do not fit); the
            message says to warp the files to one map grid first.
    """
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError
    from rasterio.warp import Resampling, reproject

    dtype = source.dtype if isinstance(source, np.ndarray) else source.ds.dtypes[source.bidx - 1]
    src, dst_geo = grid.src_geo, grid.dst_geo
    src_gcps, dst_gcps = GcpGrid.of_geo(src, path), GcpGrid.of_geo(dst_geo, like)
    opts: dict[str, Any] = {"src_crs": src["crs"], "src_nodata": src_nodata}
    if src_gcps is None:
        opts["src_transform"] = src["transform"]
    else:
        opts.update(gcps=src_gcps.gcps, SRC_METHOD=GCP_METHOD)
    h, w = grid.dst_shape
    profile: dict[str, Any] = {"width": w, "height": h, "count": 1, "dtype": dtype, "nodata": fill}
    if out_path is None:
        profile["driver"] = "MEM"
    else:
        profile.update(driver="GTiff", tiled=True, blockxsize=256, blockysize=256)
        profile.update(compress="deflate", BIGTIFF="IF_SAFER")
    if dst_gcps is None:
        profile.update(crs=dst_geo["crs"], transform=dst_geo["transform"])
    else:
        opts["DST_METHOD"] = GCP_METHOD
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(str(out_path or "target"), "w+", **profile) as ds:
                if dst_gcps is not None:
                    ds.gcps = (dst_gcps.gcps, dst_gcps.crs)
                reproject(
                    source,
                    rasterio.band(ds, 1),
                    dst_crs=dst_geo["crs"],
                    dst_nodata=fill,
                    init_dest_nodata=True,
                    resampling=Resampling.nearest,
                    **opts,
                )
                return None if out_path is not None else ds.read(1)
    except (RasterioError, CPLE_BaseError, ValueError) as err:  # GDAL's transformer errors
        from sam2elnet.data.gdal_errors import gdal_reason

        target = f"the grid of {like}" if like is not None else "the other raster's grid"
        raise DataError(
            f"cannot be placed on {target} ({grid.describe()}; {gdal_reason(err)}); check the "
            "ground control points, or warp both files to one map grid first (gdalwarp -t_srs "
            "EPSG:xxxx)",
            path,
        ) from None


FOOTPRINT_PAD = 2
"""Source pixels added on every side of :func:`footprint_window`: GDAL's warper maps each target
pixel centre to the source with an approximate transformer (error up to 1/8 px, rasterio's
``reproject`` default) and the footprint is traced through the target's pixel corners, so two
pixels hold every source pixel a nearest-neighbour placement takes, whatever the rounding."""


def footprint_window(grid: OtherGrid, pad: int = FOOTPRINT_PAD) -> tuple[int, int, int, int] | None:
    """The rows and columns of the raster on ``grid.src`` that the pixels of ``grid.dst`` can
    take values from (:func:`resample_nearest`): the target's footprint in source pixels.

    The target's outline (every pixel corner along its four edges, map positions by its
    transform) is moved into the source's CRS (``rasterio.warp.transform``, PROJ) and source
    pixels by the source's inverse transform; its bounding box, widened by ``pad`` source pixels
    (:data:`FOOTPRINT_PAD`) and clipped to the source, is the window. A projection maps the
    inside of the outline inside its image, so no target pixel centre falls outside the box
    (a footprint across the source CRS's antimeridian spans the whole width: still correct).
    Placing the window (its transform: ``rasterio.windows.transform``) instead of the whole
    source gives the same pixels: each target pixel takes the source pixel under its centre.

    Args:
        grid: from :func:`other_grid`.
        pad: source pixels added on every side (>= 0).

    Returns:
        ``(row0, col0, rows, cols)`` in source pixels (ints, inside ``grid.src_shape``;
        ``rows`` or ``cols`` 0 when the target's footprint misses the source), or None when it
        cannot be told here: a GCP-only side (placed through its GCPs), or an outline PROJ
        cannot move (the whole source is placed, and GDAL says what fails).
    """
    if "transform" not in grid.src_geo or "transform" not in grid.dst_geo:
        return None
    h, w = grid.dst_shape
    cols, rows = np.arange(w + 1, dtype=float), np.arange(h + 1, dtype=float)
    px = np.concatenate([cols, np.full(h + 1, float(w)), cols[::-1], np.zeros(h + 1)])
    py = np.concatenate([np.zeros(w + 1), rows, np.full(w + 1, float(h)), rows[::-1]])
    xs, ys = grid.dst_geo["transform"] * (px, py)
    src_crs, dst_crs = grid.src_geo["crs"], grid.dst_geo["crs"]
    if not same_crs(src_crs, dst_crs):
        from rasterio.warp import transform

        try:
            moved = transform(dst_crs, src_crs, xs, ys)
        except Exception:  # noqa: BLE001 - any PROJ failure: place the whole source as before
            return None
        xs, ys = np.asarray(moved[0], float), np.asarray(moved[1], float)
    c, r = ~grid.src_geo["transform"] * (np.asarray(xs, float), np.asarray(ys, float))
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r))):
        return None
    sh, sw = grid.src_shape
    col0 = min(max(int(np.floor(c.min())) - pad, 0), sw)
    col1 = min(max(int(np.ceil(c.max())) + pad, 0), sw)
    row0 = min(max(int(np.floor(r.min())) - pad, 0), sh)
    row1 = min(max(int(np.ceil(r.max())) + pad, 0), sh)
    return row0, col0, max(0, row1 - row0), max(0, col1 - col0)


def place_on_grid(
    mask: np.ndarray,
    valid: np.ndarray | None,
    grid: OtherGrid,
    path: str | Path | None = None,
    like: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Resample a decoded mask onto ``grid.dst`` by map position, nearest neighbour
    (:func:`resample_nearest`). Object, background and ignored pixels are carried as the codes
    1 / 0 / 2; target pixels outside the source's footprint are not valid.

    Args:
        mask: bool (H, W) on ``grid.src``, True = object.
        valid: bool (H, W) or None (all valid).
        grid: from :func:`other_grid`.
        path: the source file, named in the error; ``like``: the target's file, named in it.

    Returns:
        ``(object, valid, outside)`` on ``grid.dst_shape``: bool arrays (``valid`` None when
        every pixel is covered and valid) and the number of target pixels outside the
        source's footprint (int, 0 ..  H*W).

    Raises:
        DataError: GDAL cannot compute the transformation (:func:`resample_nearest`).
    """
    code = mask.astype(np.uint8)
    if valid is not None:
        code[~valid] = 2
    dst = resample_nearest(code, grid, fill=3, src_nodata=3, path=path, like=like)
    valid_out = dst < 2
    return dst == 1, (None if valid_out.all() else valid_out), int((dst == 3).sum())
