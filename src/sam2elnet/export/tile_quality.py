"""Per-polygon quality from a scene's per-window quality layer (``<label stem>_tiles.gpkg``).

``elnet scene --quality-gpkg`` writes one footprint polygon per predicted window with the quality
evaluator's ``predicted_iou``, and records the scene it was made for
(:class:`~sam2elnet.data.scene_record.SceneRecord`). A polygon export of that label without a
``quality.csv`` row gives each polygon the overlap-area-weighted mean of the windows under it
(:func:`tile_quality`). The layer of a scene without a CRS is in pixel coordinates, in either
convention (``--pixel-coords gdal``: y = row; ``qgis``: y = -row); :func:`tile_index` brings it
to the frame the label's polygons are made in, so the join does not depend on the two commands'
``--pixel-coords``; a GCP-only scene's older layer in pixel coordinates is placed through the
label's GCPs the same way, a layer in another CRS is reprojected. A layer recorded for another
scene is an error (:func:`check_tile_layers`, before anything is written); an older layer without
the record is joined with a warning; a layer that cannot be placed on the label or does not
overlap it is not used (a warning says what to re-run).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2elnet.data.naming import TILES_SUFFIX, scene_companion
from sam2elnet.errors import DataError
from sam2elnet.option_values import DEFAULT_WARP_METHOD

if TYPE_CHECKING:
    from sam2elnet.export.labels import LabelRaster

log = logging.getLogger(__name__)

__all__ = ["carry_layer", "check_tile_layers", "tile_index", "tile_quality"]

TileIndex = tuple[list[Any], np.ndarray, Any]
"""(window polygons, predicted IoUs, STRtree of the polygons)."""


EXTENT_SLACK = 0.05
"""How far a label may reach beyond the footprint of the scene its quality layer records
(:func:`check_tile_layers`), as a fraction of the footprint's larger side, on top of
:data:`EXTENT_SLACK_PX`: a layer placed with a GCP-only scene's affine fit is some pixels off
that label warped with the thin plate spline (``export --warp-to``; tens of pixels on a
2,000 px scene in steep terrain, docs/geospatial.md), while another scene's layer is off by a
large part of the scene."""
EXTENT_SLACK_PX = 2
"""Label pixels of slack on top of :data:`EXTENT_SLACK` (GDAL rounds a warped grid outward)."""


def _layer_path(label: Path) -> Path:
    return scene_companion(label, TILES_SUFFIX)


def _rerun(label: Path) -> str:
    return f"re-run elnet scene --quality-gpkg for {label.name}'s scene to rebuild it"


def _place(geoms: list[Any], layer_crs: Any, lab: LabelRaster, flip: bool) -> list[Any]:
    """``geoms`` of a layer in ``layer_crs`` in the frame of ``lab``'s polygons: pixel boxes
    (no CRS; y = -row when ``flip``) through ``lab.transform``, else reprojected to ``lab.crs``
    (not None)."""
    import geopandas as gpd
    from shapely.affinity import affine_transform, scale

    from sam2elnet.data.georef import same_crs, shapely_coefficients

    if layer_crs is None:
        if flip:  # y = -row (QGIS's frame): back to rows
            geoms = [scale(g, 1.0, -1.0, origin=(0, 0)) for g in geoms]
        coeffs = shapely_coefficients(lab.transform)
        return [affine_transform(g, coeffs) for g in geoms]
    if not same_crs(layer_crs, lab.crs):
        return gpd.GeoSeries(geoms, crs=layer_crs).to_crs(lab.crs).tolist()
    return list(geoms)


def check_tile_layers(
    files: list[Path],
    positive_values: tuple[float, ...] | None = None,
    rated: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Refuse a label's quality layer that was made for another scene, before anything is
    written (``elnet export`` to polygons runs it on the labels as given, before any
    ``--warp-to`` copy).

    A layer with a :class:`~sam2elnet.data.scene_record.SceneRecord` belongs to the label when
    (1) the label's ``SOURCE`` tag (when it has one) names the recorded scene, and (2) the label
    lies within the recorded scene footprint, placed and reprojected as the windows are
    (:func:`tile_index`), give or take :data:`EXTENT_SLACK` of the footprint's size plus
    :data:`EXTENT_SLACK_PX` label pixels. A crop of the scene's label still joins (its windows
    are where its polygons are); a partly overlapping other scene, in the same CRS or not, does
    not. Then :func:`tile_index`'s warnings (a layer without the record, from an older
    ``elnet scene``; one that cannot be placed on the label or does not overlap it) name the
    label as given, so the export's own join can be quiet. Unreadable labels are left to the
    export (skipped or refused there).

    Args:
        files: label rasters; a label without ``<stem>_tiles.gpkg`` next to it is not opened.
        positive_values: object value(s) of class-index labels (as the export reads them).
        rated: stems the quality table scores (label or source-image stem, the keys of
            :func:`~sam2elnet.export.run_info.quality_images_kept`'s first dict): such a label
            takes its quality from the table, not from its layer
            (:func:`~sam2elnet.export.vector.write_polygons`), so its layer is not read (a
            label scored by its own stem is not opened either).

    Raises:
        DataError: a layer made for another scene: the message names the layer, the label and
            the recorded scene, and says to move the layer away or re-run ``elnet scene``.
    """
    from sam2elnet.data.scene_record import read_scene_record
    from sam2elnet.export.labels import LabelRaster

    for f in files:
        path = _layer_path(f)
        if not path.is_file() or f.stem in rated:
            continue
        try:
            lab = LabelRaster(f, positive_values)
        except DataError:
            continue  # the export skips or refuses the label itself
        try:
            if Path(lab.source).stem in rated:  # scored under its image's name
                continue
            try:
                record, crs = read_scene_record(path), _layer_crs(path)
            except Exception:  # noqa: BLE001 - an unreadable layer: tile_index warns
                record = None
            if record is not None:
                _check_record(lab, path, record, crs)
            tile_index(lab)  # its warnings, naming the label as given
        finally:
            lab.close()


def _layer_crs(path: Path) -> Any:
    import pyogrio
    from rasterio.crs import CRS

    from sam2elnet.data.scene_record import TILES_LAYER

    crs = pyogrio.read_info(path, layer=TILES_LAYER)["crs"]
    return None if crs is None else CRS.from_user_input(crs)


def _check_record(lab: LabelRaster, path: Path, record: Any, layer_crs: Any) -> None:
    """Raise :class:`DataError` when ``record`` (of the layer ``path``) is not ``lab``'s scene."""
    name = lab.path.name
    made_for = (
        f"this per-window quality layer was made for the scene {record.scene} "
        f"(label {record.label})"
    )
    what = "move the layer away or delete it, or re-run elnet scene --quality-gpkg for"
    tag = lab.source_tag
    if tag is not None and tag != record.scene:
        raise DataError(
            f"{made_for}, but {name} is the label of {tag}: its windows would give {name}'s "
            f"polygons another scene's quality; nothing written. {what.capitalize()} {tag}",
            path,
        )
    if layer_crs is not None and lab.crs is None:
        return  # cannot be placed on the label: tile_index warns and does not join it
    try:
        [fp] = _place([record.footprint], layer_crs, lab, record.footprint.bounds[3] <= 0)
    except Exception:  # pyproj: no transformation between the two CRSs (tile_index warns)
        return
    t = lab.transform
    xs, ys = t * (
        np.array([0, lab.width, lab.width, 0.0]),
        np.array([0, 0, lab.height, lab.height]),
    )
    x0, y0, x1, y1 = fp.bounds
    beyond = max(x0 - min(xs), max(xs) - x1, y0 - min(ys), max(ys) - y1)
    px = float(np.sqrt(lab.pixel_area)) or 1.0
    if beyond > EXTENT_SLACK_PX * px + EXTENT_SLACK * max(x1 - x0, y1 - y0):
        raise DataError(
            f"{made_for}, but {name} reaches {beyond / px:.0f} px beyond that scene's footprint "
            f"(another scene's layer, or a label of another extent): its windows would give "
            f"{name}'s polygons wrong quality; nothing written. {what.capitalize()} {name}'s "
            "scene",
            path,
        )


def tile_index(lab: LabelRaster, quiet: bool = False) -> TileIndex | None:
    """The per-window quality of a scene, ``<label stem>_tiles.gpkg``, in the frame the label's
    polygons are made in.

    * a layer without a CRS holds pixel boxes (an image without georeference, or a GCP-only
      scene's layer written before its windows were placed in the GCPs' CRS): read as y = -row
      when the whole layer lies at y <= 0 (QGIS's frame), else y = row, and placed with
      ``lab.transform`` (a GCP-only label's affine fit to its GCPs, as the windows are placed
      now);
    * a layer with a CRS: reprojected to ``lab.crs`` when that differs (a layer of a scene run
      with ``--warp-to`` for a label warped to another CRS); a warning, and no join, when the
      label has no CRS (nothing to place the layer on);
    * a layer that then does not overlap the label's footprint (another scene's, or written in
      another frame): a warning saying to re-run ``elnet scene --quality-gpkg``, and no join
      (before, such a layer gave polygons a wrong window's quality or none, silently);
    * a layer without a scene record (an older ``elnet scene``): joined, with a warning that
      nothing checked it was made for this label's scene (:func:`check_tile_layers` checks the
      recorded ones).

    Args:
        lab: the open label raster (its path, transform, CRS and size); its layer is looked up
            next to it. ``lab.transform`` maps pixel -> frame: the geotransform, a GCP-only
            label's affine fit, or for a label without a CRS the identity (x = column,
            y = row) or ``PIXEL_GRID`` (y = -row).
        quiet: no warnings (the export warned when it checked the labels as given, before
            their ``--warp-to`` copies were made).

    Returns:
        (window polygons, predicted IoUs, STRtree); None when the layer is absent, unreadable,
        cannot be placed on the label (a warning says so for both) or has no ``predicted_iou``
        (entropy-only layers are not a quality estimate and are not used).
    """
    import geopandas as gpd
    import shapely
    from shapely import STRtree
    from shapely.geometry import Polygon

    from sam2elnet.data.georef import crs_name
    from sam2elnet.data.scene_record import TILES_LAYER, SceneRecord

    warn = (lambda *a: None) if quiet else log.warning
    label = lab.path
    path = _layer_path(label)
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiles = gpd.read_file(path, layer=TILES_LAYER, engine="pyogrio")
            import pyogrio

            record = SceneRecord.from_metadata(
                pyogrio.read_info(path, layer=TILES_LAYER)["layer_metadata"]
            )
    except Exception:
        warn("%s: unreadable per-tile quality layer; ignored", path)
        return None
    if "predicted_iou" not in tiles.columns or not len(tiles):
        return None
    if tiles.crs is not None and lab.crs is None:
        warn(
            "%s: the per-tile quality layer is in %s but %s has no CRS: quality not joined; %s",
            path, crs_name(tiles.crs), label.name, _rerun(label),
        )  # fmt: skip
        return None
    try:
        geoms = _place(list(tiles.geometry.values), tiles.crs, lab, tiles.total_bounds[3] <= 0)
    except Exception as err:  # pyproj: no transformation between the two CRSs
        warn(
            "%s: the per-tile quality layer (%s) cannot be placed on %s (%s): quality not "
            "joined; %s",
            path, crs_name(tiles.crs), label.name, err, _rerun(label),
        )  # fmt: skip
        return None
    h, w = lab.height, lab.width
    xs, ys = lab.transform * (np.array([0, w, w, 0], float), np.array([0, 0, h, h], float))
    footprint = Polygon(np.column_stack([xs, ys]))
    if not shapely.intersects(np.asarray(geoms, dtype=object), footprint).any():
        warn(
            "%s: the per-tile quality layer does not overlap %s (another scene's, or written "
            "in another frame): quality not joined; %s",
            path, label.name, _rerun(label),
        )  # fmt: skip
        return None
    if record is None:
        warn(
            "%s: the per-tile quality layer records no scene (an older elnet scene wrote it), so "
            "nothing checks that it was made for %s's scene; joined where it overlaps. Re-run "
            "elnet scene --quality-gpkg for that scene to record it",
            path, label.name,
        )  # fmt: skip
    return geoms, tiles["predicted_iou"].to_numpy(dtype=float), STRtree(geoms)


def carry_layer(label: Path, warped: Path, method: str = DEFAULT_WARP_METHOD) -> None:
    """Put ``label``'s ``<stem>_tiles.gpkg`` next to ``warped`` (its copy warped to a map grid,
    ``elnet export --warp-to``), where :func:`tile_index` finds it and reprojects its windows to
    the warp CRS. Nothing without a layer.

    A layer with a CRS is copied as it is (its scene record too). A layer without a CRS holds
    pixel boxes of the unwarped label (an older ``elnet scene`` wrote a GCP-only scene's windows
    so; either ``--pixel-coords``): each box is placed through the GCP transformer of ``method``
    and reprojected to ``warped``'s CRS, its sides in
    :data:`~sam2elnet.data.warp.EDGE_STEPS` segments, as the label was warped and as
    ``elnet scene --warp-to`` places windows now (:func:`~sam2elnet.data.warp.pixels_to_map`),
    and written next to ``warped`` in that CRS. An unreadable layer is copied (:func:`tile_index`
    warns about it).
    """
    import shutil

    import geopandas as gpd
    import rasterio

    from sam2elnet.data.scene_record import TILES_LAYER
    from sam2elnet.data.warp import EDGE_STEPS, pixels_to_map, rect_polygons

    path = _layer_path(label)
    dst = _layer_path(warped)
    if not path.is_file():
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiles = gpd.read_file(path, layer=TILES_LAYER, engine="pyogrio")
    except Exception:  # noqa: BLE001 - tile_index reports an unreadable layer
        tiles = None
    if tiles is None or tiles.crs is not None or not len(tiles):
        shutil.copyfile(path, dst)
        return
    b = tiles.geometry.bounds
    rows0, rows1 = (-b.maxy, -b.miny) if tiles.total_bounds[3] <= 0 else (b.miny, b.maxy)
    rects = list(zip(rows0, b.minx, rows1 - rows0, b.maxx - b.minx, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(label) as ds, rasterio.open(warped) as out:
            crs = out.crs

            def xy(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return pixels_to_map(ds, rows, cols, crs, method)

            geoms = rect_polygons(rects, xy, EDGE_STEPS)
    placed = gpd.GeoDataFrame(tiles.drop(columns="geometry"), geometry=geoms, crs=crs)
    placed.to_file(dst, layer=TILES_LAYER, driver="GPKG", engine="pyogrio")


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
