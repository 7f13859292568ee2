"""Label rasters -> polygons (GeoJSON / GeoPackage / Shapefile) with useful attributes.

Why: GIS users review and edit labels as polygons, not PNGs. Each connected foreground region
becomes one polygon (holes kept) with attributes a reviewer can sort and filter on: ``source``
(image name), ``label`` (label file), ``category`` (the object category, as the COCO export
names it: :func:`~sam2elnet.export.run_info.default_category`), ``quality`` (the quality
evaluator's predicted IoU from ``quality.csv``), ``status`` (``"kept"`` / ``"rejected"``: the
quality filter's verdict, ``quality.csv``'s ``kept`` column; ``""`` when unknown), ``area_px``,
``area_map`` (map units squared; m² on the ellipsoid for a geographic CRS), ``model_id``.
``elnet import --from vector`` reads the layer back (``--category`` selects on ``category``).

Georeferenced labels export in their CRS, GeoJSON included (by default, as GDAL and QGIS write it:
a ``crs`` member names the CRS; :data:`~sam2elnet.option_values.GEOJSON_CRS`), or reprojected to the one ``--crs`` of the
layer (:mod:`~sam2elnet.export.layer_crs`; labels in several CRSs need it); labels without a CRS
(PNGs, plain TIFFs) export without a CRS in *pixel coordinates* (x = column, y = row, y pointing
down; the case
catalogue's C07 contract); the result notes say so. QGIS draws a raster without
geotransform at y = -row (:data:`sam2elnet.data.georef.PIXEL_GRID`), so such polygons show
mirrored above the image there; ``pixel_coords="qgis"`` (``--pixel-coords qgis``) writes them
where QGIS shows the image instead (:data:`sam2elnet.option_values.PixelCoords`).

Label rasters are polygonised in row strips (:mod:`~sam2elnet.export.polygonize`) and the polygons
written in batches as they come (:data:`WRITE_BATCH`), so memory does not grow with the raster or
the number of polygons; the output does not depend on the strip height or the batch size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import crs_name
from sam2elnet.data.vector import burn_shapes
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.centreline_layer import CentreLineLayer
from sam2elnet.export.labels import LabelRaster
from sam2elnet.export.layer_crs import (
    SEGMENT_PX,
    layer_crs,
    merge_geojson_crs,
    parse_layer_crs,
    rfc7946,
)
from sam2elnet.export.layer_files import (
    LayerWriter,
    layer_columns,
    layer_frame,
    shared_attributes,
)
from sam2elnet.export.polygonize import iter_polygons
from sam2elnet.export.review_edits import exported_fields, loose_pixels, mask_recorded
from sam2elnet.export.run_info import DEFAULT_CATEGORY
from sam2elnet.export.tile_quality import tile_index, tile_quality
from sam2elnet.option_values import GEOJSON_CRS, LAYER_CRS, PIXEL_COORDS
from sam2elnet.utils.advice import name_sample

__all__ = [
    "STATUS",
    "WRITE_BATCH",
    "check_georef",
    "write_polygons",
]

#: polygons per write: the export holds at most this many finished polygons (plus the pieces of
#: the polygons crossing the current strip border), whatever the number of polygons in the labels
WRITE_BATCH = 20_000

_COLUMNS = layer_columns("area_px", "area_map")
STATUS = {True: "kept", False: "rejected", None: ""}
"""``status`` attribute per ``quality.csv`` ``kept`` value (None: no row or no ``kept`` column)."""


def write_polygons(
    files: list[Path],
    out: Path,
    fmt: str,
    *,
    quality: dict[str, float],
    kept: dict[str, bool] | None = None,
    category: str = DEFAULT_CATEGORY,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    model_id: str | None = None,
    strip_rows: int | None = None,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    notes: list[str],
    geojson_crs: str = GEOJSON_CRS[0],
    pixel_coords: str = PIXEL_COORDS[0],
    target_crs: str = LAYER_CRS[0],
    image_names: dict[str, Path] | None = None,
    review: list[dict[str, Any]] | None = None,
    layers_checked: bool = False,
    centre_lines: CentreLineLayer | None = None,
    georefs: dict[Path, tuple[bool, Any]] | None = None,
    skipped: int = 0,
) -> int:
    """Polygonise label rasters into one GeoJSON / GeoPackage / Shapefile layer (written atomically).

    Polygons are written in batches of :data:`WRITE_BATCH` as they come out of the strip-wise
    polygonisation (:func:`~sam2elnet.export.polygonize.iter_polygons`, whose order the ``poly_id`` follows), so memory does
    not grow with the number of polygons. The layer is written under a temporary name and renamed
    when complete (a Shapefile's files are moved ``.shp`` last): an error leaves nothing
    half-written; a Shapefile replaces every file of an earlier one at ``out``, stale ``.prj``
    included (:func:`~sam2elnet.export.layer_files.replace_shapefile`). A GeoJSON file is the batches' GDAL output (``RFC7946`` layer option as below)
    joined into one FeatureCollection, byte for byte what one GDAL write of all features gives,
    plus the ``crs`` member naming a CRS without an EPSG code (WKT), which GDAL does not write;
    a GeoJSON with a ``crs`` member is read back by GDAL before the rename and must give the
    labels' CRS.

    Args:
        files: label rasters (see :func:`~sam2elnet.export.labels.find_labels`).
        out: output file.
        fmt: ``"geojson"``, ``"gpkg"`` or ``"shp"`` (:data:`~sam2elnet.export.layer_files.FORMATS`).
        quality: label or source-image stem -> predicted quality (``quality`` attribute); labels
            without an entry take the per-window quality of ``<label>_tiles.gpkg`` when present
            (:func:`~sam2elnet.export.tile_quality.tile_index`; see ``layers_checked``).
        kept: label or source-image stem -> the quality filter kept it (``status`` attribute
            ``"kept"`` / ``"rejected"``; ``""`` for labels without an entry). See
            :func:`~sam2elnet.export.run_info.quality_images_kept`.
        category: The ``category`` attribute of every polygon (the COCO export's category).
        simplify: Douglas-Peucker tolerance in map units (None: none).
        smooth: buffer-in/buffer-out smoothing distance in map units (None: none).
        min_area_px: drop polygons smaller than this many pixels.
        model_id: written in the ``model_id`` attribute.
        strip_rows: rows polygonised at a time (default: 4 Mpx per strip; bounded memory).
        progress: show a progress bar.
        positive_values: object value(s) of class-index label rasters.
        notes: list that receives remarks for the user (reprojection, pixel coordinates...).
        geojson_crs: ``"source"`` (default; the labels' CRS and map coordinates, named by the
            GeoJSON 2008 ``crs`` member, an EPSG URN or the WKT of a CRS without EPSG code; not
            RFC 7946, whose strict readers assume WGS84) or ``"wgs84"`` (RFC 7946: reprojected
            to WGS84 longitude/latitude in degrees; ``area_map`` stays in the labels' CRS
            units). See :data:`~sam2elnet.option_values.GEOJSON_CRS`; the old spelling of ``target_crs="wgs84"`` for
            GeoJSON (:func:`~sam2elnet.export.layer_crs.merge_geojson_crs`).
        target_crs: the layer's CRS (``--crs``, :mod:`~sam2elnet.export.layer_crs`):
            ``"image"`` (default; the labels' one CRS: labels in several CRSs raise),
            ``"wgs84"`` (EPSG:4326; a GeoJSON by RFC 7946, without ``crs`` member) or any CRS
            rasterio reads (``"EPSG:3035"``). Each label's polygons are reprojected to it, edges
            densified to :data:`~sam2elnet.export.layer_crs.SEGMENT_PX` px first; ``area_px``
            and ``area_map`` stay in the label's own grid / CRS units; the review record's mask is of
            the label's own polygons on its grid, which ``elnet import`` burns back pixel for
            pixel from the reprojected layer.
        pixel_coords: coordinates of labels without a CRS, ``"gdal"`` (default; x = column,
            y = row) or ``"qgis"`` (y = -row, where QGIS shows the image); see
            :data:`~sam2elnet.option_values.PIXEL_COORDS`. No effect on georeferenced labels, GCP-only ones included
            (their polygons are in the GCPs' CRS; a note names them).
        image_names: label stem -> source image (a run's ``quality.csv``) for the ``source``
            attribute of labels without a ``SOURCE`` tag (else the label file's name).
        review: list that receives one entry per label (``source``, ``label``, ``polygons``,
            ``quality``; the polygons rasterised on the label's grid,
            :func:`~sam2elnet.export.review_edits.exported_fields`, for labels up to
            :data:`~sam2elnet.export.review_edits.DIGEST_MAX_PIXELS`), also for
            labels without any polygon: the review set
            (:func:`~sam2elnet.export.review_set.write_review_set`).
        layers_checked: the caller ran :func:`~sam2elnet.export.tile_quality.check_tile_layers`
            on these labels (and it warned): the per-tile quality layers are joined without
            warning again. False (a direct call): :func:`tile_index` warns about each layer it
            cannot join.
        centre_lines: also vectorise each label's road centre lines into this layer
            (:class:`~sam2elnet.export.centreline_layer.CentreLineLayer`, same attributes and CRS as
            the polygons, lengths in pixels and metres), written with the polygons: layer
            ``centre_lines`` of the GeoPackage, else ``<out stem>_centre_lines<suffix>``; each
            ``review`` entry gets ``centre_lines``, ``road_length_px`` and ``road_length_m``.
            None: polygons only.
        georefs: label -> (georeferenced, CRS) as
            :func:`~sam2elnet.export.label_screen.screen_labels` read it; None: each label is
            opened once more to read it before any polygon is made.
        skipped: labels of the export skipped before these (unreadable, ...): counted in the
            progress bar's total and its closing line, ``polygonise: 3/3 labels in ..., skipped
            1`` (:func:`~sam2elnet.utils.progress.track`).

    Returns:
        The number of polygons written.

    Raises:
        DataError: georeferenced and plain labels mixed, labels in several CRSs without
            ``target_crs``, ``target_crs`` for labels without georeference, an unreadable
            label, or GeoJSON
            asked for labels without a georeference (readers would take pixel coordinates for
            WGS84 longitude/latitude), checked before anything is polygonised; a GeoJSON whose
            ``crs`` member GDAL reads back as another CRS (nothing written).
        UserError: an unknown ``geojson_crs``, ``target_crs`` or ``pixel_coords``, or
            ``geojson_crs="wgs84"`` with another ``target_crs``.
    """

    if geojson_crs not in GEOJSON_CRS:
        raise UserError(
            f"--geojson-crs must be one of {', '.join(GEOJSON_CRS)}, got {geojson_crs!r}"
        )
    if pixel_coords not in PIXEL_COORDS:
        raise UserError(
            f"--pixel-coords must be one of {', '.join(PIXEL_COORDS)}, got {pixel_coords!r}"
        )
    from sam2elnet.utils.progress import track

    target = parse_layer_crs(merge_geojson_crs(target_crs, geojson_crs, fmt))
    crs, georef = check_georef(files, fmt, positive_values, target, georefs)
    rfc = rfc7946(fmt, target)  # GeoJSON in WGS84 lon/lat without a 'crs' member
    in_source = fmt == "geojson" and not rfc
    options: dict[str, Any] = {}
    if fmt == "geojson":
        options["RFC7946"] = "YES" if rfc else "NO"
    writer = LayerWriter(
        out, fmt, options, to_wgs84=False, crs_member=crs if in_source else None, crs=crs
    )
    moved: dict[str, list[str]] = {}  # source CRS name -> labels reprojected to the layer CRS
    tile_note = False
    gcp_only: list[str] = []  # labels georeferenced by GCPs only (no CRS of their own)
    n = 0
    geoms: list[Any] = []
    rows: list[dict[str, Any]] = []
    with writer:
        for f in track(files, "polygonise", "label", progress, skipped=skipped):
            lab = LabelRaster(f, positive_values)
            try:
                if not lab.georef and pixel_coords == "qgis":
                    lab.place_as_qgis()
                if image_names and lab.source == f.name and f.stem in image_names:
                    lab.source = image_names[f.stem].name
                if lab.gcp_note:
                    notes.append(lab.gcp_note)
                    gcp_only.append(f.name)
                q = quality.get(f.stem, quality.get(Path(lab.source).stem))
                ok = (kept or {}).get(f.stem, (kept or {}).get(Path(lab.source).stem))
                # quiet when export_labels checked the layers and warned (check_tile_layers)
                tiles = tile_index(lab, quiet=layers_checked) if q is None else None
                attrs = _LabelAttrs(lab, f.name, q, tiles, crs, category, STATUS[ok])
                polys: list[Any] = []
                small = mask_recorded(lab.height, lab.width)
                drawn: list[Any] | None = [] if review is not None and small else None
                for g in iter_polygons(
                    lab,
                    simplify=simplify,
                    smooth=smooth,
                    min_area_px=min_area_px,
                    strip_rows=strip_rows,
                ):
                    polys.append(g)
                    if drawn is not None:
                        drawn.append(g)
                    if len(geoms) + len(polys) >= WRITE_BATCH:
                        attrs.add(polys, geoms, rows, model_id)
                        polys = []
                        writer.write(layer_frame(rows, geoms, crs, _COLUMNS, "poly_id", n))
                        n += len(geoms)
                        geoms, rows = [], []
                attrs.add(polys, geoms, rows, model_id)
                entry = {"source": lab.source, "label": f.name, "polygons": attrs.count}
                entry["quality"] = q
                if drawn is not None:  # what the import rasterises from an unedited layer
                    loose = None  # pixel-edge polygons: every centre half a pixel from an edge
                    if simplify or smooth:  # edges may run through pixel centres
                        loose = loose_pixels(drawn, lab.height, lab.width, lab.transform)
                    fg = burn_shapes(drawn, lab.height, lab.width, lab.transform) > 0
                    entry.update(exported_fields(fg, loose))
                if centre_lines is not None:
                    entry.update(centre_lines.add(attrs, model_id))
                if review is not None:
                    review.append(entry)
            finally:
                lab.close()
            if attrs.used_tiles and not tile_note:
                notes.append(
                    "quality = area-weighted predicted IoU of the scene windows under each "
                    "polygon (from <label>_tiles.gpkg)"
                )
                tile_note = True
            if attrs.reproject:
                moved.setdefault(crs_name(lab.crs), []).append(f.name)
        if geoms or n == 0:  # the last batch, or an empty layer
            writer.write(layer_frame(rows, geoms, crs, _COLUMNS, "poly_id", n))
            n += len(geoms)
        if n == 0:
            notes.append("no foreground in any label: wrote an empty layer")
        if centre_lines is not None:
            centre_lines.write(
                writer,
                lambda path: LayerWriter(
                    path,
                    fmt,
                    options,
                    to_wgs84=writer.to_wgs84,
                    crs_member=writer.crs_member,
                    crs=crs,
                ),
            )
        if not georef and pixel_coords == "qgis":
            notes.append(
                "labels have no CRS: polygons are in pixel coordinates as QGIS places such an "
                "image (x = column, y = -row; --pixel-coords qgis), so they overlay it there"
            )
        elif not georef:
            notes.append(  # one line: the CLI prints the notes (no log warning as well)
                "labels have no CRS: polygons are in pixel coordinates (x = column, y = row; "
                "QGIS draws such an image at y = -row, so they show mirrored above it there: "
                "--pixel-coords qgis writes y = -row)"
            )
        elif pixel_coords == "qgis" and gcp_only:
            more = f" and {len(gcp_only) - 1} more" if len(gcp_only) > 1 else ""
            notes.append(
                f"--pixel-coords qgis ignored: {gcp_only[0]}{more} has no CRS but is "
                f"georeferenced by ground control points, so its polygons are in map "
                f"coordinates ({crs_name(crs)}), where QGIS shows the label; the option applies "
                "to labels without any georeference only"
            )
        elif pixel_coords == "qgis":
            notes.append("--pixel-coords qgis applies to labels without a CRS only; ignored")
        if in_source and crs is not None and crs.to_epsg() != 4326:
            whose = "the labels'" if target is None else "the --crs"
            notes.append(
                f"GeoJSON written in {whose} CRS "
                f"({crs_name(crs)}) with a 'crs' member, as GDAL and QGIS write it; strict "
                "RFC 7946 readers (web maps) assume WGS84 longitude/latitude: --crs wgs84 "
                "reprojects"
            )
        if moved:  # area_map stays in each label's own CRS units
            what = "; ".join(f"{len(v)} from {k} ({name_sample(v, 3)})" for k, v in moved.items())
            rule = " (RFC 7946 GeoJSON)" if rfc else ""
            notes.append(
                f"polygons reprojected to {crs_name(crs)}{rule} by --crs: {what}; area_map is "
                "in each label's own CRS units"
            )
    return n


def _geodesic(crs: Any) -> Any:
    """The ellipsoid (``pyproj.Geod``) of a geographic ``crs`` (EPSG:4326, a GCP-only label's
    GCP CRS), on which :class:`_LabelAttrs` measures ``area_map`` in m² (degrees² would be
    meaningless and round to 0); None for a projected CRS or none. Read once per CRS, not
    once per label (:func:`_geod_of`: keyed by the CRS's WKT)."""
    if crs is None:
        return None
    return _geod_of(crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs))


@functools.lru_cache(maxsize=16)
def _geod_of(crs: str) -> Any:
    """:func:`_geodesic` of a CRS given as WKT (or another ``pyproj.CRS.from_user_input``
    string); the ``pyproj.Geod`` is shared by the labels of that CRS (it is not changed)."""
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    return c.get_geod() if c.is_geographic else None


def geodesic_areas(geod: Any, polys: Sequence[Any]) -> list[float]:
    """Areas in m² of ``polys`` (shapely polygons in longitude/latitude degrees) on the
    ellipsoid ``geod`` (``pyproj.Geod``), holes subtracted whichever way their rings run.

    ``Geod.geometry_area_perimeter`` signs each ring's area by its direction (counter-clockwise
    positive) and adds them, so a hole running the same way as its outer ring was added; the
    rings are oriented first (``shapely.orient_polygons``: exterior counter-clockwise, holes
    clockwise). Returns one area >= 0 per polygon, in input order."""
    import shapely

    oriented = shapely.orient_polygons(np.asarray(list(polys), dtype=object))
    return [abs(geod.geometry_area_perimeter(g)[0]) for g in oriented]


class _LabelAttrs:
    """The attribute rows of one label's polygons (quality, areas, source), in the layer CRS."""

    def __init__(
        self,
        lab: LabelRaster,
        name: str,
        q: float | None,
        tiles: Any,
        crs: Any,
        category: str,
        status: str,
    ) -> None:
        self.lab, self.name, self.q, self.tiles, self.crs = lab, name, q, tiles, crs
        self.category, self.status = category, status
        self.px = lab.pixel_area or 1.0
        self.reproject = bool(lab.georef and crs is not None and lab.crs != crs)
        self.geod = _geodesic(lab.crs) if lab.georef else None  # degrees: area_map in m²
        self.used_tiles = False
        self.count = 0  # polygons added

    def add(
        self,
        polys: list[Any],
        geoms: list[Any],
        rows: list[dict[str, Any]],
        model_id: str | None,
    ) -> None:
        """Append ``polys`` (label CRS) and their attribute rows to ``geoms`` / ``rows``."""
        if not polys:
            return
        self.count += len(polys)
        if self.tiles is not None:
            per_poly = tile_quality(self.tiles, polys)
            self.used_tiles = True
        else:
            per_poly = [self.q] * len(polys)
        areas_px = [g.area / self.px for g in polys]
        if self.geod is not None:  # a geographic CRS (lon/lat): geodesic m² on its ellipsoid
            areas_map = geodesic_areas(self.geod, polys)
        else:  # in the label's own (projected) CRS units, whatever --crs
            areas_map = [g.area for g in polys]
        if self.reproject:  # edges densified first: straight in the label CRS, close in the layer's
            import geopandas as gpd
            import shapely

            dense = shapely.segmentize(np.asarray(polys, dtype=object), SEGMENT_PX * self.px**0.5)
            polys = gpd.GeoSeries(dense, crs=self.lab.crs).to_crs(self.crs).tolist()
        for g, a_px, a_map, qq in zip(polys, areas_px, areas_map, per_poly, strict=True):
            geoms.append(g)
            rows.append(
                {
                    **shared_attributes(
                        self.lab.source, self.name, self.category, qq, self.status, model_id
                    ),
                    "area_px": round(a_px, 3),
                    "area_map": round(a_map, 6),
                }
            )


def check_georef(
    files: list[Path],
    fmt: str,
    positive_values: tuple[float, ...] | None,
    target: Any = None,
    georefs: dict[Path, tuple[bool, Any]] | None = None,
) -> tuple[Any, bool]:
    """(layer CRS: ``target``, else the labels' one CRS, :func:`~sam2elnet.export.layer_crs.
    layer_crs`; whether the labels are georeferenced); raises the georeference errors of
    :func:`write_polygons` before any polygon is made. ``georefs``: each label's (georeferenced,
    CRS) already read (else each label is opened here).

    The strict lower level: any mix is an error here. ``elnet export``
    (:func:`~sam2elnet.export.api.export_labels`) screens the labels first
    (:func:`~sam2elnet.export.label_screen.screen_labels`: skips those without georeference
    among georeferenced ones, then runs this check before anything is written, chips and
    the list of skipped labels included), so there it only meets labels it accepts or refuses
    as a whole."""
    crss: list[tuple[Path, Any]] = []
    kinds = set()
    known = georefs or {}
    for f in files:
        if f in known:
            is_geo, lab_crs = known[f]
        else:
            lab = LabelRaster(f, positive_values)
            lab.close()
            is_geo, lab_crs = lab.georef, lab.crs
        kinds.add(is_geo)
        if len(kinds) > 1:
            raise DataError(
                "some labels are georeferenced and some are not; one layer cannot mix map and "
                "pixel coordinates: export_labels (elnet export) of their folder skips the "
                "ones without georeference, or export them separately",
                f,
            )
        if is_geo:
            crss.append((f, lab_crs))
    georef = kinds == {True}
    if target is not None and not georef:
        raise DataError(
            "labels have no georeference, so --crs cannot reproject them; drop --crs (polygons "
            "in pixel coordinates) or give georeferenced GeoTIFF labels",
            files[0],
        )
    crs = layer_crs(target, crss)
    if not georef and fmt == "geojson":
        raise DataError(
            "labels have no georeference, but GeoJSON readers take coordinates without a CRS "
            "as WGS84 longitude/latitude (RFC 7946); nothing written. Export pixel-coordinate "
            "polygons to .gpkg or .shp (or COCO .json), or give georeferenced GeoTIFF labels",
            files[0],
        )
    return crs, georef
