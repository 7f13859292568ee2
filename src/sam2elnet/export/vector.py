"""Label rasters -> polygons (GeoJSON / GeoPackage / Shapefile) with useful attributes.

Why: GIS users review and edit labels as polygons, not PNGs. Each connected foreground region
becomes one polygon (holes kept) with attributes a reviewer can sort and filter on:

``source`` (image / label name), ``label`` (label file), ``quality`` (the label-quality
evaluator's predicted IoU from ``quality.csv`` when there is one), ``area_px`` and ``area_map``
(map units squared; equal to ``area_px`` for non-georeferenced labels), ``model_id``.

Georeferenced labels export in their CRS; labels without a CRS (PNGs, plain TIFFs) export in
*pixel coordinates* (x = column, y = row, y pointing down), which the result notes say.

Large label rasters are polygonised in row strips (bounded memory); polygons cut by a strip
border are merged afterwards, so the output does not depend on the strip height.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.labels import LabelRaster
from sam2elnet.utils.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "GEOJSON_CRS", "polygonize_label", "write_polygons"]

GEOJSON_CRS = ("wgs84", "source")
"""``--geojson-crs``: RFC 7946 WGS84 (default) or the labels' own CRS (opt-in, ``crs`` member)."""

FORMATS = {
    "geojson": ("GeoJSON", ".geojson"),
    "gpkg": ("GPKG", ".gpkg"),
    "shp": ("ESRI Shapefile", ".shp"),
}


def _shapes(mask: np.ndarray, transform: Any) -> Iterator[Any]:
    from rasterio import features
    from shapely.geometry import shape

    if not mask.any():
        return
    for geom, _val in features.shapes(
        mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4
    ):
        yield shape(geom)


def polygonize_label(
    path: str | Path,
    *,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    strip_rows: int | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[list[Any], LabelRaster]:
    """Polygons of the foreground of one label raster, in its CRS (or pixel coordinates).

    Reads ``strip_rows`` rows at a time (default: :data:`sam2elnet.data.windowed.STRIP_PIXELS`
    pixels per strip, so the strip buffer does not grow with the raster width); polygons touching
    an internal strip border are merged with their neighbours at the end, so the result equals a
    whole-raster polygonisation.
    ``smooth`` (map units) rounds staircase edges with a buffer out/in; ``simplify`` (map units)
    is Douglas-Peucker with topology preserved; polygons under ``min_area_px`` pixels are dropped.
    """
    import shapely
    from rasterio import windows
    from shapely.geometry import LineString

    from sam2elnet.data.windowed import STRIP_PIXELS

    lab = LabelRaster(Path(path), positive_values)
    strip_rows = strip_rows or max(1, STRIP_PIXELS // max(1, lab.width))
    done: list[Any] = []
    pending: list[Any] = []
    try:
        for row0 in range(0, lab.height, strip_rows):
            rows = min(strip_rows, lab.height - row0)
            m = lab.read_mask(row0, rows)
            t = windows.transform(windows.Window(0, row0, lab.width, rows), lab.transform)
            cuts = []
            if row0 > 0:
                cuts.append(LineString([t @ (0, 0), t @ (lab.width, 0)]))
            if row0 + rows < lab.height:
                cuts.append(LineString([t @ (0, rows), t @ (lab.width, rows)]))
            for g in _shapes(m, t):
                if cuts and any(g.intersects(c) for c in cuts):
                    pending.append(g)
                else:
                    done.append(g)
        if pending:
            merged = shapely.union_all(pending)
            done.extend(shapely.get_parts(merged).tolist())
    finally:
        lab.close()

    out = []
    px = lab.pixel_area or 1.0
    for g in done:
        if smooth:
            g = g.buffer(smooth, join_style="round").buffer(-smooth, join_style="round")
        if simplify:
            g = g.simplify(simplify, preserve_topology=True)
        if g.is_empty:
            continue
        if not g.is_valid:
            g = shapely.make_valid(g)
        if g.area / px < min_area_px:
            continue
        out.append(g)
    return out, lab


def write_polygons(
    files: list[Path],
    out: Path,
    fmt: str,
    *,
    quality: dict[str, float],
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    model_id: str | None = None,
    strip_rows: int | None = None,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    notes: list[str],
    geojson_crs: str = GEOJSON_CRS[0],
) -> int:
    """Polygonise label rasters into one GeoJSON / GeoPackage / Shapefile layer (written atomically).

    Args:
        files: label rasters (see :func:`~sam2elnet.export.labels.find_labels`).
        out: output file.
        fmt: ``"geojson"``, ``"gpkg"`` or ``"shp"`` (:data:`FORMATS`).
        quality: label or source-image stem -> predicted quality (``quality`` attribute); labels
            without an entry take the per-window quality of ``<label>_tiles.gpkg`` when present.
        simplify: Douglas-Peucker tolerance in map units (None: none).
        smooth: buffer-in/buffer-out smoothing distance in map units (None: none).
        min_area_px: drop polygons smaller than this many pixels.
        model_id: written in the ``model_id`` attribute.
        strip_rows: rows polygonised at a time (default: 4 Mpx per strip; bounded memory).
        progress: show a progress bar.
        positive_values: object value(s) of class-index label rasters.
        notes: list that receives remarks for the user (reprojection, pixel coordinates...).
        geojson_crs: ``"wgs84"`` (default; RFC 7946: WGS84 longitude/latitude) or ``"source"``
            (opt-in, not RFC 7946: the labels' CRS, named by the legacy GeoJSON ``crs`` member
            as GDAL writes it with ``RFC7946=NO``, which QGIS/GDAL read; needs a CRS with an
            EPSG code, since the member cannot name a custom WKT CRS).

    Returns:
        The number of polygons written.

    Raises:
        DataError: georeferenced and plain labels mixed, an unreadable label, GeoJSON asked
            for labels without a georeference (RFC 7946 holds WGS84 only), or
            ``geojson_crs="source"`` for a CRS without an EPSG code.
        UserError: an unknown ``geojson_crs``.
    """
    import geopandas as gpd

    if geojson_crs not in GEOJSON_CRS:
        raise UserError(
            f"--geojson-crs must be one of {', '.join(GEOJSON_CRS)}, got {geojson_crs!r}"
        )
    from sam2elnet.utils.progress import track

    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    crs = None
    georef_kinds = set()
    tile_note = False
    for f in track(files, "polygonise", "label", progress):
        polys, lab = polygonize_label(
            f,
            simplify=simplify,
            smooth=smooth,
            min_area_px=min_area_px,
            strip_rows=strip_rows,
            positive_values=positive_values,
        )
        if lab.gcp_note:
            notes.append(lab.gcp_note)
        georef_kinds.add(lab.georef)
        if len(georef_kinds) > 1:
            raise DataError(
                "some labels are georeferenced and some are not; export them separately "
                "(one file cannot mix map and pixel coordinates)",
                f,
            )
        px = lab.pixel_area or 1.0
        areas_px = [g.area / px for g in polys]
        q = quality.get(f.stem, quality.get(Path(lab.source).stem))
        per_poly = [q] * len(polys)
        if q is None and polys:
            tiles_q = _tile_quality(f, polys)
            if tiles_q is not None:
                per_poly = tiles_q
                if not tile_note:
                    notes.append(
                        "quality = area-weighted predicted IoU of the scene windows under each "
                        "polygon (from <label>_tiles.gpkg)"
                    )
                    tile_note = True
        if lab.georef:
            if crs is None:
                crs = lab.crs
            elif lab.crs != crs:
                polys = gpd.GeoSeries(polys, crs=lab.crs).to_crs(crs).tolist()
                notes.append(
                    f"{f.name}: reprojected from {lab.crs.to_string()} to {crs.to_string()}"
                )
        for g, a_px, qq in zip(polys, areas_px, per_poly, strict=True):
            geoms.append(g)
            rows.append(
                {
                    "source": lab.source,
                    "label": f.name,
                    "quality": qq,
                    "area_px": round(a_px, 3),
                    "area_map": round(g.area, 6),
                    "model_id": model_id,
                }
            )
    if georef_kinds == {False}:
        if fmt == "geojson":
            raise DataError(
                "labels have no georeference, but GeoJSON (RFC 7946) holds WGS84 "
                "longitude/latitude only; nothing written. Export pixel-coordinate polygons to "
                ".gpkg or .shp (or COCO .json), or give georeferenced GeoTIFF labels",
                files[0],
            )
        notes.append("labels have no CRS: polygons are in pixel coordinates (x = column, y = row)")
        log.warning(notes[-1])
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    if not len(gdf):
        gdf = gpd.GeoDataFrame(
            {k: [] for k in ("source", "label", "quality", "area_px", "area_map", "model_id")},
            geometry=[],
            crs=crs,
        )
        notes.append("no foreground in any label: wrote an empty layer")
    gdf.insert(0, "fid_", np.arange(1, len(gdf) + 1))
    gdf = gdf.rename(columns={"fid_": "poly_id"})
    for col in ("quality", "model_id"):
        if gdf[col].isna().all():
            gdf[col] = gdf[col].astype("float64" if col == "quality" else "object")
    options: dict[str, Any] = {}
    if fmt == "geojson" and geojson_crs == "source":
        if crs is None or not crs.to_epsg():
            raise DataError(
                f"--geojson-crs source: the labels' CRS ({_crs_name(crs)}) has no EPSG code, so a "
                "GeoJSON 'crs' member cannot name it and readers would take the coordinates as "
                "WGS84; nothing written. Use .gpkg (keeps any CRS) or the default WGS84 GeoJSON",
                files[0],
            )
        notes.append(
            f"GeoJSON written in the labels' CRS {_crs_name(crs)} with a 'crs' member "
            "(--geojson-crs source; not RFC 7946: QGIS and GDAL read it, strict RFC 7946 "
            "readers such as geojson.io assume WGS84)"
        )
        options["RFC7946"] = "NO"
    elif fmt == "geojson":
        # RFC 7946: WGS84 longitude/latitude; area_map stays in the labels' own CRS units
        if crs is not None and crs.to_epsg() != 4326:
            notes.append(
                f"GeoJSON written in WGS84 longitude/latitude (RFC 7946), reprojected from "
                f"{_crs_name(crs)}; area_map is in that CRS's units. Use .gpkg (or "
                "--geojson-crs source) to keep the CRS"
            )
        gdf = gdf.to_crs("EPSG:4326")
        options["RFC7946"] = "YES"
    driver, _ = FORMATS[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "shp":
            _write_shapefile(gdf, out)
        else:
            kw = {"layer": "labels" if fmt == "gpkg" else out.stem}
            with atomic_path(out) as tmp:
                gdf.to_file(tmp, driver=driver, engine="pyogrio", layer_options=options, **kw)
                if fmt == "gpkg":
                    from sam2elnet.export.qgis_style import add_layer_style

                    add_layer_style(tmp, "labels")  # QGIS opens it coloured by quality
    return len(gdf)


def _crs_name(crs: Any) -> str:
    """EPSG code when the CRS has one, else the CRS's own name (custom WKT)."""
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg:
        return f"EPSG:{epsg}"
    name = getattr(crs, "name", None) or (crs.to_wkt()[:60] if hasattr(crs, "to_wkt") else str(crs))
    return f"the custom CRS '{name}'"


def _tile_quality(label: Path, polys: list[Any]) -> list[float | None] | None:
    """Per-polygon quality from a scene's per-window layer ``<label stem>_tiles.gpkg``.

    Each polygon gets the mean ``predicted_iou`` of the windows it overlaps, weighted by the
    overlap area; None when the layer is absent or has no predicted IoU (entropy-only layers are
    not a quality estimate and are not used).
    """
    import geopandas as gpd
    from shapely import STRtree

    path = label.with_name(f"{label.stem}_tiles.gpkg")
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiles = gpd.read_file(path, layer="tiles", engine="pyogrio")
    except Exception:
        log.warning("%s: unreadable per-tile quality layer; ignored", path)
        return None
    if "predicted_iou" not in tiles.columns or not len(tiles):
        return None
    geoms = list(tiles.geometry.values)
    ious = tiles["predicted_iou"].to_numpy(dtype=float)
    tree = STRtree(geoms)
    out: list[float | None] = []
    for g in polys:
        idx = tree.query(g, predicate="intersects")
        w = np.array([geoms[i].intersection(g).area for i in idx])
        out.append(float(np.dot(w, ious[idx]) / w.sum()) if len(idx) and w.sum() > 0 else None)
    return out


def _write_shapefile(gdf: Any, out: Path) -> None:
    """A Shapefile is several files: write them in a temporary folder, then move each into place
    with ``os.replace``, the ``.shp`` last, so a present ``.shp`` means a complete set."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        target = tmpdir / out.name
        gdf.to_file(target, driver="ESRI Shapefile", engine="pyogrio")
        sides = sorted(tmpdir.glob(target.stem + ".*"), key=lambda f: f.suffix.lower() == ".shp")
        for side in sides:
            os.replace(side, out.with_suffix(side.suffix))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
