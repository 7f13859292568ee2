"""Per-polygon quality from a scene's per-window quality layer (``<label stem>_tiles.gpkg``).

``elnet scene --quality-gpkg`` (and a tiled ``elnet annotate``) writes one footprint polygon per
predicted window with the quality evaluator's ``predicted_iou``. A polygon export of that label
without a ``quality.csv`` row gives each polygon the overlap-area-weighted mean of the windows
under it (:func:`tile_quality`). The layer of a scene without a CRS is in pixel coordinates, in
either convention (``--pixel-coords gdal``: y = row; ``qgis``: y = -row); :func:`tile_index`
brings it to the frame the label's polygons are made in, so the join does not depend on the two
commands' ``--pixel-coords``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["tile_index", "tile_quality"]

TileIndex = tuple[list[Any], np.ndarray, Any]
"""(window polygons, predicted IoUs, STRtree of the polygons)."""


def tile_index(label: Path, pixel_frame: Any = None) -> TileIndex | None:
    """The per-window quality of a scene, ``<label stem>_tiles.gpkg``.

    Args:
        label: The label raster; its layer is looked up next to it.
        pixel_frame: For a label without a CRS, the ``affine.Affine`` its polygons are placed
            with (identity: x = column, y = row; ``PIXEL_GRID``: y = -row). Windows of a layer
            without a CRS are read as pixel boxes (y = -row when the whole layer lies at
            y <= 0, else y = row) and placed with it. None: the layer is used as it is
            (georeferenced labels: both in the scene's CRS).

    Returns:
        (window polygons, predicted IoUs, STRtree); None when the layer is absent, unreadable
        (a warning says so) or has no ``predicted_iou`` (entropy-only layers are not a quality
        estimate and are not used).
    """
    import geopandas as gpd
    from shapely import STRtree
    from shapely.affinity import affine_transform, scale

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
    if pixel_frame is not None and tiles.crs is None:
        if tiles.total_bounds[3] <= 0:  # y = -row (QGIS's frame): back to rows
            geoms = [scale(g, 1.0, -1.0, origin=(0, 0)) for g in geoms]
        t = pixel_frame
        geoms = [affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f]) for g in geoms]
    return geoms, tiles["predicted_iou"].to_numpy(dtype=float), STRtree(geoms)


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
