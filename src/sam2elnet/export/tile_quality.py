"""Per-polygon quality from a scene's per-window quality layer (``<label stem>_tiles.gpkg``).

``elnet scene --quality-gpkg`` (and a tiled ``elnet annotate``) writes one footprint polygon per
predicted window with the quality evaluator's ``predicted_iou``. A polygon export of that label
without a ``quality.csv`` row gives each polygon the overlap-area-weighted mean of the windows
under it (:func:`tile_quality`). The layer of a scene without a CRS is in pixel coordinates, in
either convention (``--pixel-coords gdal``: y = row; ``qgis``: y = -row); :func:`tile_index`
brings it to the frame the label's polygons are made in, so the join does not depend on the two
commands' ``--pixel-coords``; a GCP-only scene's older layer in pixel coordinates is placed
through the label's GCPs the same way, a layer in another CRS is reprojected, and a layer that
cannot be placed on the label or does not overlap it is not used (a warning says what to re-run).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["carry_layer", "tile_index", "tile_quality"]

TileIndex = tuple[list[Any], np.ndarray, Any]
"""(window polygons, predicted IoUs, STRtree of the polygons)."""


def tile_index(
    label: Path,
    frame: Any,
    crs: Any = None,
    shape: tuple[int, int] | None = None,
) -> TileIndex | None:
    """The per-window quality of a scene, ``<label stem>_tiles.gpkg``, in the frame the label's
    polygons are made in.

    * a layer without a CRS holds pixel boxes (an image without georeference, or a GCP-only
      scene's layer written before its windows were placed in the GCPs' CRS): read as y = -row
      when the whole layer lies at y <= 0 (QGIS's frame), else y = row, and placed with
      ``frame`` (a GCP-only label's affine fit to its GCPs, as the windows are placed now);
    * a layer with a CRS: reprojected to ``crs`` when that differs (a layer of a scene run with
      ``--warp-to`` for a label warped to another CRS); a warning, and no join, when the label
      has no CRS (nothing to place the layer on);
    * a layer that then does not overlap the label's footprint (another scene's, or written in
      another frame): a warning saying to re-run ``elnet scene --quality-gpkg``, and no join
      (before, such a layer gave polygons a wrong window's quality or none, silently).

    Args:
        label: The label raster; its layer is looked up next to it.
        frame: the ``affine.Affine`` the label's polygons are placed with, pixel -> frame
            (``LabelRaster.transform``: the geotransform, a GCP-only label's affine fit, or for
            a label without a CRS the identity, x = column, y = row, or ``PIXEL_GRID``,
            y = -row).
        crs: the label's CRS (a GCP-only label's: its GCPs'); None without one.
        shape: the label's (height, width) in pixels, for the overlap check (None: not checked).

    Returns:
        (window polygons, predicted IoUs, STRtree); None when the layer is absent, unreadable,
        cannot be placed on the label (a warning says so for both) or has no ``predicted_iou``
        (entropy-only layers are not a quality estimate and are not used).
    """
    import geopandas as gpd
    import shapely
    from shapely import STRtree
    from shapely.affinity import affine_transform, scale
    from shapely.geometry import Polygon

    from sam2elnet.data.georef import crs_name, same_crs

    path = label.with_name(f"{label.stem}_tiles.gpkg")
    if not path.exists():
        return None
    rerun = f"re-run elnet scene --quality-gpkg for {label.name}'s scene to rebuild it"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiles = gpd.read_file(path, layer="tiles", engine="pyogrio")
    except Exception:
        log.warning("%s: unreadable per-tile quality layer; ignored", path)
        return None
    if "predicted_iou" not in tiles.columns or not len(tiles):
        return None
    if tiles.crs is None:
        geoms = list(tiles.geometry.values)
        if tiles.total_bounds[3] <= 0:  # y = -row (QGIS's frame): back to rows
            geoms = [scale(g, 1.0, -1.0, origin=(0, 0)) for g in geoms]
        t = frame
        geoms = [affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f]) for g in geoms]
    elif crs is None:
        log.warning(
            "%s: the per-tile quality layer is in %s but %s has no CRS: quality not joined; %s",
            path, crs_name(tiles.crs), label.name, rerun,
        )  # fmt: skip
        return None
    else:
        if not same_crs(tiles.crs, crs):
            tiles = tiles.to_crs(crs)
        geoms = list(tiles.geometry.values)
    if shape is not None:
        h, w = shape
        xs, ys = frame * (np.array([0, w, w, 0], float), np.array([0, 0, h, h], float))
        footprint = Polygon(np.column_stack([xs, ys]))
        if not shapely.intersects(np.asarray(geoms, dtype=object), footprint).any():
            log.warning(
                "%s: the per-tile quality layer does not overlap %s (another scene's, or written "
                "in another frame): quality not joined; %s",
                path, label.name, rerun,
            )  # fmt: skip
            return None
    return geoms, tiles["predicted_iou"].to_numpy(dtype=float), STRtree(geoms)


def carry_layer(label: Path, warped: Path) -> None:
    """Copy ``label``'s ``<stem>_tiles.gpkg`` next to ``warped`` (its copy warped to a map grid,
    ``elnet export --warp-to``), where :func:`tile_index` finds it and reprojects its windows to
    the warp CRS. A layer without a CRS holds pixel boxes of the unwarped label, which do not lie
    on the warped grid: not copied, and a warning says what to re-run. Nothing without a layer.
    """
    import shutil

    import pyogrio

    path = label.with_name(f"{label.stem}_tiles.gpkg")
    if not path.is_file():
        return
    try:
        crs = pyogrio.read_info(path, layer="tiles").get("crs")
    except Exception:  # noqa: BLE001 - tile_index reports an unreadable layer
        crs = "unknown"
    if crs is None:
        log.warning(
            "%s: the per-tile quality layer is in pixel coordinates of %s (an older elnet scene "
            "wrote GCP-only scenes' windows so), which do not lie on the --warp-to grid: quality "
            "not joined; re-run elnet scene --quality-gpkg for that scene (its windows are then "
            "in the GCPs' CRS), or export without --warp-to",
            path, label.name,
        )  # fmt: skip
        return
    shutil.copyfile(path, warped.with_name(f"{warped.stem}_tiles.gpkg"))


def tile_quality(index: TileIndex, polys: list[Any]) -> list[float | None]:
    """Per-polygon quality: the mean ``predicted_iou`` of the windows (:func:`tile_index`) each
    polygon overlaps, weighted by the overlap area; None where it overlaps none."""
    geoms, ious, tree = index
    out: list[float | None] = []
    for g in polys:
        idx = tree.query(g, predicate="intersects")
        w = np.array([geoms[i].intersection(g).area for i in idx])
        out.append(float(np.dot(w, ious[idx]) / w.sum()) if len(idx) and w.sum() > 0 else None)
    return out
