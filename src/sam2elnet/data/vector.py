"""Vector labels (GeoJSON / GeoPackage / Shapefile) rasterised onto an image's pixel grid.

Why: users draw coarse labels as polygons (oil slicks) or lines (roads) in a GIS, usually in a
different CRS from the imagery. The model wants a coarse *mask* on the image grid, so we

1. read the features (pyogrio via geopandas), refusing empty / unreadable files with a clear
   :class:`~sam2elnet.errors.DataError` that names the file;
2. repair invalid geometries (``shapely.make_valid``) and say how many were repaired;
3. reproject to the image CRS (``to_crs``); an image without a CRS takes labels without a CRS,
   placed as QGIS shows that image (:func:`~sam2elnet.data.georef.plain_grid_transform`:
   x = column, y = -row, or the image's own geotransform), because there is nothing to
   reproject to; labels lying mostly at y >= 0 are read as y = row (COCO / OpenCV contours,
   earlier sam2elnet exports), with a note;
4. buffer lines (and points) by a width given in map units of the image CRS or in pixels;
5. drop features that miss the image entirely, with a warning that says how many and why; if
   *none* overlap, raise (almost always a CRS mix-up);
6. rasterise on demand for any window of the grid (``VectorLabels.rasterize(window)``), using a
   spatial index, so a 20,000 x 20,000 px scene never needs a full-size label array.

Step 3, where labels land on an image's pixel grid (CRS + transform, GCPs, or pixel coordinates
of an image without georeference), is :mod:`sam2elnet.data.vector_grid`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text, vector_error_text
from sam2elnet.data.georef import crs_name
from sam2elnet.data.naming import VECTOR_SUFFIXES
from sam2elnet.data.tiling import Window
from sam2elnet.data.vector_grid import grid_name, image_grid, no_overlap_message, place_labels
from sam2elnet.data.vector_kinds import LINE_TYPE_IDS, POINT_TYPE_IDS, no_width_notes
from sam2elnet.data.vector_layers import check_layer, default_layer
from sam2elnet.errors import DataError, require_exists
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit
from sam2elnet.utils.advice import plural
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)


__all__ = [
    "is_vector_path",
    "read_vector",
    "clean_placed",
    "VectorLabels",
    "burn_shapes",
    "rasterize_vector",
]


def clean_placed(geoms: np.ndarray, path: Path, note: Any) -> tuple[np.ndarray, np.ndarray]:
    """Label geometries placed in an image CRS, made fit to burn: features with non-finite
    coordinates (a reprojection outside the CRS's area of use gives inf) dropped, invalid ones
    repaired with ``shapely.make_valid``; each step said by ``note(msg, kind)`` (the reader's
    note, :meth:`VectorLabels.from_file`).

    Args:
        geoms: (N,) object array of shapely geometries (not changed).
        path: the label file, named in the notes.

    Returns:
        ``(geoms, kept)``: the (M,) geometries (``geoms`` itself when none was dropped or
        repaired) and the bool (N,) mask of the features kept.
    """
    import shapely

    kept = np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if not kept.all():
        msg = (
            f"{path}: {int((~kept).sum())} of {len(geoms)} features could not be placed in the "
            "image CRS (non-finite coordinates after reprojection); skipped"
        )
        note(msg, "vector features that cannot be placed in the image CRS")
        geoms = geoms[kept]
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
        msg = (
            f"{path}: repaired {plural(int(invalid.sum()), 'invalid geometry', 'invalid geometries')}"
            " with make_valid"
        )
        note(msg, "invalid vector geometries repaired")
    return geoms, kept


def is_vector_path(path: str | Path) -> bool:
    """True if ``path`` has a vector-format suffix we read (GeoJSON, GeoPackage, Shapefile, ...)."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


NO_LABELS_FIX = (
    "give a file with labels drawn in it (or, in a file of several layers, the layer that holds "
    "them)"
)
"""What to do about a layer without a single label geometry (:func:`read_vector`; every
command that reads one, whatever its layer option is called)."""


def read_vector(
    path: str | Path,
    layer: str | int | None = None,
    allow_empty: bool = False,
    option: str = "--layer",
):
    """Read a vector file as a GeoDataFrame; DataError on missing, unreadable or empty input.

    ``layer``: the layer to read (a name the file lacks: DataError listing its layers, to give
    one of them to ``option``, :func:`~sam2elnet.data.vector_layers.check_layer`); None:
    :func:`~sam2elnet.data.vector_layers.default_layer` (the ``labels`` layer of a GeoPackage
    with several, else the first). Features without a geometry (or with an empty
    one) are dropped. ``allow_empty``: a layer with no feature left is returned (empty)
    instead of raising; the review-loop import takes it so (every polygon deleted: no object
    in any reviewed image).
    """
    import geopandas as gpd

    p = Path(path)
    if not p.exists():
        raise DataError("vector label file does not exist; check the path", p)
    if p.is_file() and p.stat().st_size == 0:
        raise DataError("vector label file is empty (0 bytes)", p)
    if layer is None:
        layer = default_layer(p)
    elif isinstance(layer, str):
        check_layer(p, layer, option)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as err:  # pyogrio raises several DataSource/Field errors
        raise DataError(vector_error_text(p, err), p) from err
    if len(gdf) == 0:
        if allow_empty:
            return gdf
        raise DataError(f"vector label file has no features (empty layer); {NO_LABELS_FIX}", p)
    import shapely

    # missing (None) or empty geometries: shapely's tests (geopandas' notna() warns on empties)
    g = np.asarray(gdf.geometry.values, dtype=object)
    n_read = len(gdf)
    gdf = gdf[~(shapely.is_missing(g) | shapely.is_empty(g))]
    if len(gdf) == 0 and not allow_empty:
        raise DataError(
            f"vector label file has no geometry to label with ({plural(n_read, 'feature')}, "
            f"each with an empty or no geometry); {NO_LABELS_FIX}",
            p,
        )
    return gdf


@dataclass
class VectorLabels:
    """Label geometries already in the target grid's coordinates, ready to rasterise by window.

    Build with :meth:`from_file`. ``notes`` lists what was repaired or dropped and why (the same
    text goes to the log as warnings).
    """

    geoms: list[Any]
    transform: Any  # affine.Affine of the full grid (identity for pixel coordinates)
    height: int
    width: int
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: the warn_once kind of each of ``notes``, in the same order
    note_kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from shapely import STRtree

        self._tree = STRtree(self.geoms) if self.geoms else None

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        crs: Any,
        transform: Any,
        height: int,
        width: int,
        line_width: float | None = None,
        line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
        pixel_coords: bool = False,
        layer: str | int | None = None,
        gcps: Any = None,
        frame: Any = None,
        shared: bool = False,
    ) -> VectorLabels:
        """Read ``path`` and prepare its geometries for an image grid.

        ``crs`` / ``transform`` / ``height`` / ``width`` describe the image (``crs=None`` for a
        raster without georeference). ``line_width`` buffers lines and points to that total width,
        in ``line_width_unit`` ``"map"`` (units of the image CRS) or ``"px"`` (pixels).
        ``pixel_coords=True`` ignores any label CRS and reads coordinates as pixel coordinates.
        Pixel coordinates (an image without CRS, or ``pixel_coords``) are x = column, y = -row,
        as QGIS places a raster without georeference (:data:`~sam2elnet.data.georef.PIXEL_GRID`;
        an image with a geotransform but no CRS: that geotransform), so polygons drawn in QGIS
        over the image land on it; labels lying mostly at y >= 0 are read as x = column,
        y = row instead (a note says so).

        ``gcps``: the ground control points of an image georeferenced by GCPs only (Sentinel-1
        GRD; :func:`image_grid`), with ``crs`` their CRS: labels with a CRS are reprojected to
        it and placed on the pixels through the GCPs by GDAL's thin plate spline
        (:data:`sam2elnet.data.grids.GCP_METHOD`, as raster labels are placed and outputs are
        warped; QGIS draws a GCP-only raster with GDAL's GCP polynomial, which differs by the
        amounts given there);
        ``line_width`` in map units is then converted with the GCPs' mean pixel size. Labels
        without a CRS are pixel coordinates, as for an image without georeference.

        ``frame``: ``path`` already read by :func:`read_vector` (one file placed on many
        images is read once). ``shared``: the file covers many images (``elnet evaluate
        --truth labels.gpkg`` with a prediction folder): no feature within this image gives an
        empty label instead of an error, and ``notes`` are collected but not logged (the caller
        says them once).
        """
        import shapely

        p = Path(path)
        gdf = read_vector(p, layer=layer) if frame is None else frame
        notes: list[str] = []
        note_kinds: list[str] = []

        def note(msg: str, kind: str) -> None:  # kind: counted once per run (warn_once)
            if not shared:
                warn_once(log, kind, msg)
            notes.append(msg)
            note_kinds.append(kind)

        n_total = len(gdf)

        if line_width_unit not in get_args(LineWidthUnit):
            raise DataError(f"line width unit must be 'map' or 'px', got {line_width_unit!r}", p)
        if line_width is not None and line_width <= 0:
            raise DataError(f"line width must be positive, got {line_width}", p)

        native = (gdf.crs, gdf.total_bounds if len(gdf) else ())  # for the no-overlap error
        gdf, crs, grid_transform, pix, map_scale = place_labels(
            gdf,
            crs=crs,
            transform=transform,
            gcps=gcps,
            pixel_coords=pixel_coords,
            path=p,
            note=note,
        )

        geoms, _ = clean_placed(np.asarray(gdf.geometry.values, dtype=object), p, note)
        kinds = shapely.get_type_id(geoms)
        is_line = np.isin(kinds, LINE_TYPE_IDS)
        is_point = np.isin(kinds, POINT_TYPE_IDS)
        if line_width is not None:
            dist = 0.5 * line_width * (pix if line_width_unit == "px" else map_scale)
            buf = is_line | is_point
            if buf.any():
                geoms = geoms.copy()
                geoms[buf] = shapely.buffer(geoms[buf], dist)
        else:
            for msg, kind in no_width_notes(p, kinds, gdf.columns):
                note(msg, kind)
            geoms = geoms[~is_point]

        # keep only what touches the image footprint
        from shapely.geometry import box

        xs, ys = zip(
            *(
                grid_transform @ (c, r)
                for c, r in ((0, 0), (width, 0), (0, height), (width, height))
            ),
            strict=True,
        )
        footprint = box(min(xs), min(ys), max(xs), max(ys))
        hits = shapely.intersects(geoms, footprint) if len(geoms) else np.zeros(0, bool)
        n_miss = int((~hits).sum())
        if shared:
            n_miss = 0  # most of a shared file lies outside any one image
        elif len(geoms) == 0 or not hits.any():
            where = (
                crs_name(crs) if crs is not None and not pixel_coords else grid_name(grid_transform)
            )
            if gcps is not None and crs is not None and not pixel_coords:  # placed via GCPs
                where = f"image pixels (x = column, y = row; through its GCPs in {where})"
            label_bounds = shapely.total_bounds(geoms) if len(geoms) else ()
            raise DataError(
                no_overlap_message(n_total, footprint.bounds, label_bounds, where, *native,
                                   pixel_coords=pixel_coords),
                p,
            )  # fmt: skip
        if n_miss:
            lie = "lies" if n_miss == 1 else "lie"
            msg = (
                f"{p}: {n_miss} of {plural(n_total, 'label feature')} {lie} outside the image; "
                "skipped"
            )
            note(msg, "vector label features outside their image")
        geoms = geoms[hits]
        return cls(
            geoms=list(geoms),
            transform=grid_transform,
            height=int(height),
            width=int(width),
            path=p,
            notes=notes,
            note_kinds=note_kinds,
        )

    def rasterize(self, window: Window | None = None, all_touched: bool = False) -> np.ndarray:
        """Burn the labels into a uint8 0/1 array for ``window`` (whole grid when None), pixel
        centres inside (every touched pixel with ``all_touched``; :func:`burn_shapes`)."""
        from rasterio import windows
        from shapely.geometry import box

        if window is None:
            window = Window(0, 0, self.height, self.width)
        if self._tree is None:
            return np.zeros((window.height, window.width), dtype=np.uint8)
        wt = windows.transform(window.to_rasterio(), self.transform)
        c0, r0 = window.col_off, window.row_off
        corners = [
            self.transform @ (c, r)
            for c, r in (
                (c0, r0),
                (c0 + window.width, r0),
                (c0, r0 + window.height),
                (c0 + window.width, r0 + window.height),
            )
        ]
        xs, ys = zip(*corners, strict=True)
        idx = self._tree.query(box(min(xs), min(ys), max(xs), max(ys)))
        if len(idx) == 0:
            return np.zeros((window.height, window.width), dtype=np.uint8)
        return burn_shapes(
            [self.geoms[i] for i in np.sort(idx)],
            window.height,
            window.width,
            wt,
            all_touched=all_touched,
        )


def burn_shapes(
    geoms: Iterable[Any],
    height: int,
    width: int,
    transform: Any = None,
    *,
    all_touched: bool = False,
) -> np.ndarray:
    """Burn shapely geometries into a uint8 0/1 ``(height, width)`` array: the one rasteriser of
    label polygons (vector labels by window, the review digest of ``elnet export --format
    vector``, polygons drawn in COCO / CVAT / Label Studio).

    Args:
        geoms: Shapely geometries in the coordinates of ``transform`` (polygons with holes,
            multipolygons; lines burn the pixels GDAL's line rule crosses).
        height, width: Array size, px.
        transform: ``affine.Affine`` from pixel (column, row) to the geometries' coordinates;
            None: pixel coordinates (x = column, y = row, on pixel corners).
        all_touched: False: a pixel is 1 when its centre lies inside a geometry (GDAL's rule,
            ``rasterio.features.rasterize``); True: every pixel a geometry touches.

    Returns:
        uint8 (height, width), 1 inside, 0 elsewhere (all 0 for no geometry).
    """
    from affine import Affine
    from rasterio import features

    out = np.zeros((int(height), int(width)), dtype=np.uint8)
    shapes = [(g, 1) for g in geoms]
    if not shapes:  # rasterio refuses an empty list
        return out
    features.rasterize(
        shapes,
        out=out,
        transform=Affine.identity() if transform is None else transform,
        fill=0,
        all_touched=all_touched,
        dtype=np.uint8,
    )
    return out


def rasterize_vector(
    vector_path: str | Path,
    image_path: str | Path,
    *,
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    pixel_coords: bool = False,
    frame: Any = None,
    shared: bool = False,
    notes: list[str] | None = None,
    note_kinds: list[tuple[str, str]] | None = None,
) -> np.ndarray:
    """Rasterise a vector label file onto ``image_path``'s full grid -> bool ``(H, W)``.

    For images that fit in memory (single chips); scenes use :class:`VectorLabels` by window.
    ``frame`` / ``shared`` as :meth:`VectorLabels.from_file`. A ``shared`` file is placed as
    ``elnet import --from vector`` places it (:func:`sam2elnet.data.vector_names.image_frame`):
    a feature whose ``source`` names an image (by stem), or whose ``label`` names one of the
    run's images, goes to that image only, any other by map position (a layer with a CRS;
    :func:`sam2elnet.data.vector_names.feature_images`); on an image
    without georeference (CRS + transform, or GCPs) only the features naming it, in pixel
    coordinates (x = column, y = -row, or y = row for features mostly at y >= 0); none: all
    False. Without such attributes its pixel coordinates would put the same polygons on every
    image (DataError naming the image). ``vector_path`` may be the
    :class:`~sam2elnet.data.vector_shared.SharedVector` of ``frame``: which image each feature
    names is then worked out once for the file, not once per image. ``notes`` (a list)
    receives the reader's notes (repairs, dropped features); ``note_kinds`` (a list) the same
    notes as ``(text, kind)`` pairs (:func:`~sam2elnet.data.vector_shared.say_file_notes`
    says those of a shared file once).
    """
    import rasterio

    ip = require_exists(image_path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(ip) as src:
                (crs, transform, gcps), h, w = image_grid(src), src.height, src.width
    except rasterio.errors.RasterioIOError as err:
        raise DataError(raster_error_text("image", err), ip) from None
    if shared:  # the features that belong to this image, as import takes them
        from sam2elnet.data.vector_names import image_frame, in_map

        frame = read_vector(vector_path) if frame is None else frame
        mapped = in_map(frame.crs is not None, crs is not None, gcps is not None, pixel_coords)
        frame = image_frame(vector_path, frame, ip, crs is not None, mapped=mapped)
        if not len(frame):
            return np.zeros((h, w), dtype=bool)
    labels = VectorLabels.from_file(
        vector_path,
        crs=crs,
        transform=transform,
        gcps=gcps,
        height=h,
        width=w,
        line_width=line_width,
        line_width_unit=line_width_unit,
        pixel_coords=pixel_coords,
        frame=frame,
        shared=shared,
    )
    if notes is not None:
        notes.extend(labels.notes)
    if note_kinds is not None:
        note_kinds.extend(zip(labels.notes, labels.note_kinds, strict=True))
    return labels.rasterize().astype(bool)
