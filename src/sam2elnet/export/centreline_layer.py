"""The ``centre_lines`` layer of a polygon export: each label's road centre lines
(:func:`sam2elnet.export.centrelines.mask_lines`' steps) placed on the map, measured and written
beside the polygons.

Whether an export writes them (:func:`wants_centre_lines`: on for road labels), where
(:func:`centre_lines_path`: GeoPackage layer :data:`LAYER`, else a sibling file), the lines
through the label's transform (:func:`place_lines`), their ground length in metres
(:func:`lengths_m`, geodesic) and the layer itself (:class:`CentreLineLayer`).

Large labels (:class:`CentreLineLayer`): a label whose thinning would hold more than
:data:`MEMORY_BUDGET_BYTES` is read in row strips by windows (``LabelRaster.read_mask`` of the
strip's rows plus a halo; never the whole array) and thinned strip by strip with
:func:`sam2elnet.data.skeleton.strip_centre_lines`, whose halo rule makes the stitched skeleton
that of the whole label, bit for bit (:func:`sam2elnet.export.centrelines.skeleton_lines`).
Memory: one strip window (:data:`~sam2elnet.data.skeleton.THIN_BYTES_PER_PX` bytes per pixel)
plus the unsimplified lines (16 bytes per skeleton pixel). A label of more than one strip shows
a progress bar over its strips (``--no-progress``: one log line when done).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import crs_name, lonlat_route, metres_per_unit, shapely_coefficients
from sam2elnet.data.skeleton import strip_rows_for
from sam2elnet.data.vector_layers import CENTRE_LINES_LAYER
from sam2elnet.export.centrelines import MIN_LENGTH_PX, SIMPLIFY_PX, finish_lines, skeleton_lines
from sam2elnet.export.layer_files import layer_columns, layer_frame, shared_attributes
from sam2elnet.export.line_ends import extend_free_ends
from sam2elnet.utils.run_warnings import warn_once

__all__ = [
    "LAYER",
    "LINES_SENT",
    "MEMORY_BUDGET_BYTES",
    "CentreLineLayer",
    "centre_lines_path",
    "lengths_m",
    "place_lines",
    "wants_centre_lines",
]


LAYER = CENTRE_LINES_LAYER
"""GeoPackage layer name of the centre lines (the polygons are layer ``labels``); for GeoJSON /
Shapefile the sibling file ``<out stem>_centre_lines<suffix>`` (:func:`centre_lines_path`)."""
LINES_SENT = "centre_lines"
"""Key of an image's number of centre lines in its per-image record (:meth:`CentreLineLayer.add`
writes it; ``elnet import`` compares it with the lines the layer holds on return)."""


MEMORY_BUDGET_BYTES = 256_000_000
"""Most bytes one label's thinning may hold (256 MB): labels whose whole thinning would hold more
(:data:`~sam2elnet.data.skeleton.THIN_BYTES_PER_PX` per pixel: above 36 Mpx, e.g. 6,100^2 px)
are thinned in row strips of :func:`~sam2elnet.data.skeleton.strip_rows_for` rows (a 20,000 px
wide label: 1,700 rows per strip, 12 strips). Read at call time, so a test may lower it."""


_COLUMNS = layer_columns("length_px", "length_m")
_FLOATS = ("quality", "length_px", "length_m")


def wants_centre_lines(option: bool | None, category: str) -> bool:
    """Whether an export writes centre lines: ``option`` when given (``--centre-lines`` /
    ``--no-centre-lines``), else on for road labels (``category`` ``"road"``, any case, as
    :func:`~sam2elnet.export.run_info.default_category` names a roads run)."""
    if option is not None:
        return bool(option)
    return category.strip().lower() in ("road", "roads")


def centre_lines_path(out: str | Path, fmt: str) -> Path:
    """Where the centre lines of a polygon export to ``out`` go: ``out`` itself for a GeoPackage
    (layer :data:`LAYER`), else the sibling ``<out stem>_centre_lines<suffix>``."""
    p = Path(out)
    return p if fmt == "gpkg" else p.with_name(f"{p.stem}_{LAYER}{p.suffix}")


def place_lines(lines: list[Any], transform: Any) -> list[Any]:
    """Pixel-coordinate lines (:func:`mask_lines`) through an affine ``transform`` (map x =
    a * x + b * y + c, map y = d * x + e * y + f; rasterio's / affine's). Identity: as given."""
    from shapely.affinity import affine_transform

    coeffs = shapely_coefficients(transform)
    return [affine_transform(g, coeffs) for g in lines]


def lengths_m(lines: list[Any], crs: Any) -> list[float]:
    """Ground length of each line in metres, for lines in ``crs`` (a rasterio / pyproj CRS or
    None).

    Any CRS, projected or geographic: the vertices go to latitude / longitude on the CRS's own
    datum and the length is the sum of the geodesic distances between them on its ellipsoid
    (:func:`sam2elnet.data.georef.lonlat_route`, ``pyproj.Geod.line_lengths``; Karney 2013).
    So the projection's scale factor does not enter: a road in Web Mercator (EPSG:3857) at
    60 deg N is half its length in CRS metres, a UTM one 0.04 % longer than its grid length on
    the central meridian; US-feet CRSs come out in metres. Each segment is measured along the
    geodesic between its ends (the straight segment in the CRS differs from it by far less than
    a pixel over a road segment). Where PROJ cannot take the CRS to latitude / longitude, the
    planar length times the CRS unit in metres (grid length; with a warning). No CRS: NaN for
    every line (pixel coordinates; use the length in pixels).
    """
    if crs is None:
        return [math.nan] * len(lines)
    if not lines:
        return []
    import shapely

    xy, which = shapely.get_coordinates(np.asarray(lines, dtype=object), return_index=True)
    try:
        to_lonlat, geod = lonlat_route(crs)
        lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
        steps = np.asarray(geod.line_lengths(lon, lat), dtype=float)
    except Exception as err:  # noqa: BLE001 - PROJ raises several error types
        # once per CRS, not once per label of a scene folder
        warn_once(
            logging.getLogger(__name__),
            "centre lines: CRS not convertible to latitude / longitude",
            f"centre lines: {crs_name(crs)} cannot be taken to latitude / longitude ({err}): "
            "length_m is the planar length in the CRS, not the ground length",
            key=crs_name(crs),
        )
        factor = metres_per_unit(crs) or 1.0
        return [float(g.length) * factor for g in lines]
    same = which[1:] == which[:-1]  # a step between two vertices of one line
    total = np.bincount(which[1:][same], weights=steps[same], minlength=len(lines))
    return [float(v) for v in total]


class CentreLineLayer:
    """The centre lines of an export, label by label, held until :meth:`write`.

    Rows carry ``line_id`` (1, 2, ... in label order), ``source``, ``label``, ``category``,
    ``quality``, ``status`` and ``model_id`` as the polygon layer does, plus ``length_px``
    (length on the label's pixel grid, pixels) and ``length_m`` (ground metres, geodesic,
    :func:`lengths_m`; NaN without a CRS). Simplified lines are few vertices per road stretch,
    so holding them is small next to the label rasters.
    """

    def __init__(
        self,
        simplify_px: float = SIMPLIFY_PX,
        min_length_px: float = MIN_LENGTH_PX,
        progress: bool = True,
        budget_bytes: int | None = None,
    ):
        self.simplify_px, self.min_length_px = simplify_px, min_length_px
        #: a bar over the strips of a label thinned in strips (False: a log line when done)
        self.progress = progress
        #: the thinning's memory budget (None: :data:`MEMORY_BUDGET_BYTES` at call time)
        self.budget_bytes = budget_bytes
        self.geoms: list[Any] = []
        self.rows: list[dict[str, Any]] = []

    def label_lines(self, lab: Any, name: str) -> list[Any]:
        """The centre lines of a label raster (``LabelRaster``) in pixel coordinates, as
        :func:`mask_lines` of its whole mask: thinned whole when that fits the memory budget,
        else read and thinned in row strips (module docstring) with a progress bar over them."""
        from sam2elnet.utils.progress import abandon, progress_bar

        budget = MEMORY_BUDGET_BYTES if self.budget_bytes is None else self.budget_bytes
        rows = strip_rows_for(lab.width, budget)

        # a label thinned whole is read once, and its free ends are extended on that array;
        # a label thinned in strips is read by windows (its strips, then a box per free end)
        whole = lab.read_mask() if rows >= lab.height else None

        def read(r0: int, r1: int) -> np.ndarray:
            return whole[r0:r1] if whole is not None else lab.read_mask(r0, r1 - r0)

        if whole is not None:
            lines = skeleton_lines(read, lab.height)
        else:
            n = -(-lab.height // rows)
            bar = progress_bar(n, f"centre lines {name}", "strip", self.progress, leave=False)
            bar.set_postfix(rows=rows)
            try:
                lines = skeleton_lines(read, lab.height, rows, bar=bar)
            except BaseException:
                abandon(bar)  # only the error line, no "done" line
                raise
            bar.close()

        def ends(found: list[Any]) -> list[Any]:
            def box(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
                if whole is not None:
                    return whole[r0:r1, c0:c1]
                return lab.read_mask(r0, r1 - r0, c0, c1 - c0)

            return extend_free_ends(found, box, lab.height, lab.width)

        return finish_lines(
            lines, simplify_px=self.simplify_px, min_length_px=self.min_length_px, ends=ends
        )

    def add(self, attrs: Any, model_id: str | None) -> dict[str, Any]:
        """Vectorise the label of ``attrs`` (the polygon layer's per-label attributes: ``lab``,
        ``name``, ``q``, ``tiles``, ``crs``, ``category``, ``status``, ``reproject``) and keep its
        lines in the layer CRS. Returns the label's summary for the per-image record:
        :data:`LINES_SENT` (count), ``road_length_px``, ``road_length_m`` (None without a CRS)."""
        lab = attrs.lab
        pix = self.label_lines(lab, attrs.name)
        lines = place_lines(pix, lab.transform)
        metres = lengths_m(lines, lab.crs if lab.georef else None)
        if attrs.tiles is not None and lines:
            from sam2elnet.export.tile_quality import tile_quality

            half = 0.5 * math.sqrt(lab.pixel_area or 1.0)  # a line as a one-pixel-wide band
            quality = tile_quality(attrs.tiles, [g.buffer(half, cap_style="flat") for g in lines])
        else:
            quality = [attrs.q] * len(lines)
        if attrs.reproject and lines:
            import geopandas as gpd

            lines = gpd.GeoSeries(lines, crs=lab.crs).to_crs(attrs.crs).tolist()
        for g, p, m, q in zip(lines, pix, metres, quality, strict=True):
            self.geoms.append(g)
            self.rows.append(
                {
                    **shared_attributes(
                        lab.source, attrs.name, attrs.category, q, attrs.status, model_id
                    ),
                    "length_px": round(float(p.length), 3),
                    "length_m": round(m, 3),
                }
            )
        total_m = float(sum(metres)) if lab.georef else None
        return {
            LINES_SENT: len(lines),
            "road_length_px": round(float(sum(g.length for g in pix)), 3),
            "road_length_m": None if total_m is None else round(total_m, 3),
        }

    def frame(self, crs: Any) -> Any:
        """The layer as a GeoDataFrame (``line_id`` first; ``quality`` / ``length_px`` /
        ``length_m`` float64, NaN for none), in ``crs``
        (:func:`~sam2elnet.export.layer_files.layer_frame`)."""
        return layer_frame(self.rows, self.geoms, crs, _COLUMNS, "line_id", floats=_FLOATS)

    def write(self, writer: Any, make_writer: Any) -> None:
        """Write the layer: into the open GeoPackage of the polygon ``writer`` (layer
        :data:`LAYER`, renamed into place with the polygons), or for GeoJSON / Shapefile through
        ``make_writer(path)``, a writer of the sibling file :func:`centre_lines_path` (written
        whole under a temporary name, before the polygon layer is renamed into place)."""
        gdf = self.frame(writer.crs)
        if writer.fmt == "gpkg":
            writer.write(gdf, layer=LAYER, geometry_type="LineString")
            return
        with make_writer(centre_lines_path(writer.out, writer.fmt)) as w:
            w.write(gdf, geometry_type="LineString")
