"""How much of an image a raster label on another map grid covers, and what is said about it.

A label placed on its image by map position (:mod:`sam2elnet.data.grids`) fills the image pixels
outside its footprint with background. A label of another place (a CRS mix-up, the wrong file)
would so give an all-background coarse label, and the image would be enhanced from nothing:
:func:`footprint_share` measures the covered share cheaply, :func:`no_overlap_error` is the
refusal of a label covering none of its image and :func:`partial_cover_note` the warning of one
covering part of it; :func:`footprint_missed` is the one rule of a label that misses its image
(refused, or, one raster for several images, an empty label with the shared file's warning,
or, ``annotated``, no label at all for an ``enhance`` image or a scene, :class:`FootprintMissed`).
Used by ``elnet scene`` / large ``enhance`` images
(:class:`sam2elnet.engine.scene_coarse.CoarseSource`) and whole ``enhance`` images
(:func:`sam2elnet.data.masks.read_mask_on_grid`, with the exact count of its placement).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import crs_name, grid_kind
from sam2elnet.data.grids import OtherGrid, resample_nearest
from sam2elnet.data.vector_shared import warn_no_features
from sam2elnet.errors import DataError

__all__ = [
    "COARSE",
    "COVERAGE_SIDE",
    "FULL_COVER",
    "FootprintMissed",
    "PARTIAL_COVER_KIND",
    "check_shared_georef",
    "footprint_missed",
    "footprint_share",
    "no_overlap_error",
    "partial_cover_note",
]


COARSE = "coarse label"
"""The default ``label`` of the messages here: what ``elnet scene`` / ``enhance`` read. Another
reader names its own (``"label"``: :func:`sam2elnet.data.masks.read_mask_on_grid`'s default)."""


COVERAGE_SIDE = 1024
"""Long side, px, of the coarsened grids :func:`footprint_share` compares footprints on."""

FULL_COVER = 0.999
"""A label covering at least this share of its image counts as covering all of it: the uncovered
pixels are then edge slivers of a reprojection (a label warped from another CRS), not a part of
the image without a label, and :func:`partial_cover_note` is not said."""

PARTIAL_COVER_KIND = "coarse raster label covering only part of its image"
"""The :func:`~sam2elnet.utils.run_warnings.warn_once` kind of :func:`partial_cover_note`."""


def _coarsened(geo: dict[str, Any], shape: tuple[int, int], side: int) -> tuple[Any, Any]:
    """``geo`` / ``shape`` of the same footprint with at most ``side`` px on the long side (the
    pixels stretched, the extent kept: transform scaled, or the GCPs' pixel positions)."""
    from affine import Affine

    h, w = shape
    f = max(h, w) / side
    if f <= 1:
        return geo, shape
    nh, nw = max(1, round(h / f)), max(1, round(w / f))
    sy, sx = h / nh, w / nw
    if "transform" in geo:
        return {**geo, "transform": geo["transform"] * Affine.scale(sx, sy)}, (nh, nw)
    from rasterio.control import GroundControlPoint

    gcps = [
        GroundControlPoint(row=g.row / sy, col=g.col / sx, x=g.x, y=g.y, z=g.z, id=g.id)
        for g in geo["gcps"]
    ]
    return {**geo, "gcps": gcps}, (nh, nw)


def footprint_share(
    grid: OtherGrid,
    side: int = COVERAGE_SIDE,
    path: str | Path | None = None,
    like: str | Path | None = None,
) -> float:
    """Share of the target grid (``grid.dst``) that lies inside the footprint of the raster on
    ``grid.src``, whatever its pixels hold.

    Both grids are coarsened to at most ``side`` px on their long side (their extents kept) and
    a raster of ones is placed from the one onto the other as labels are placed
    (:func:`resample_nearest`, nearest neighbour; GCP grids through their GCPs): the share is
    that of the coarse target pixels whose centre falls inside the footprint. Cheap (about a
    megapixel warped) whatever the sizes; exact to about one coarse pixel at the footprint's
    edge. A footprint that holds no coarse target pixel's centre (a label much smaller than
    one coarse pixel of a large scene) is looked at the other way round, the target's
    footprint placed on the label's grid: when a label pixel's centre lies inside it, the share
    is half a coarse target pixel's (below the resolution, never 0). So only an overlap that
    neither way finds, a sliver narrower than ``1 / side`` of both grids along an edge, reads 0.

    Args:
        grid: from :func:`other_grid` (``src``: the label, ``dst``: the image).
        side: the coarsened grids' long side, px.
        path / like: the label and the image files, named in the error.

    Returns:
        The share in [0, 1] (float).

    Raises:
        DataError: GDAL cannot compute the transformation (:func:`resample_nearest`).
    """
    from sam2elnet.utils.run_warnings import quiet

    src_geo, src_shape = _coarsened(grid.src_geo, grid.src_shape, side)
    dst_geo, dst_shape = _coarsened(grid.dst_geo, grid.dst_shape, side)
    small = OtherGrid(src_geo, src_shape, dst_geo, dst_shape)
    with quiet():  # the GCPs were checked (and any warning said) with the files' own grids
        inside = resample_nearest(np.ones(src_shape, np.uint8), small, fill=0, path=path, like=like)
        assert inside is not None
        if inside.any():
            return float(inside.mean())
        # no target pixel centre inside: a footprint smaller than one coarse target pixel is
        # still found the other way round (a label pixel's centre inside the target)
        back = OtherGrid(dst_geo, dst_shape, src_geo, src_shape)
        hit = resample_nearest(np.ones(dst_shape, np.uint8), back, fill=0, path=like, like=path)
    assert hit is not None
    return 0.5 / inside.size if hit.any() else 0.0


def _percent(share: float) -> str:
    """``37.5 %``; ``< 0.1 %`` / ``> 99.9 %`` rather than a rounded 0.0 / 100.0 that is not so."""
    text = f"{100 * share:.1f}"
    if text == "0.0" and share > 0:
        return "< 0.1 %"
    if text == "100.0" and share < 1:
        return "> 99.9 %"
    return f"{text} %"


def _where(geo: dict[str, Any], shape: tuple[int, int]) -> str:
    """Where a grid lies, for messages: ``extent (xmin, ymin, xmax, ymax) in EPSG:32633``
    (rounded to 3 decimals), or ``placed by 12 ground control points in EPSG:4326``."""
    if "transform" not in geo:
        return f"placed by {len(geo['gcps'])} ground control points in {crs_name(geo['crs'])}"
    from rasterio.transform import array_bounds

    h, w = shape
    west, south, east, north = array_bounds(h, w, geo["transform"])
    ext = tuple(round(float(v), 3) for v in (west, south, east, north))
    return f"extent {ext} in {crs_name(geo['crs'])}"


def no_overlap_error(
    path: str | Path,
    like: str | Path,
    grid: OtherGrid,
    what: str = "image",
    label: str = COARSE,
) -> DataError:
    """The refusal of a raster label on another grid that covers no pixel of its image (almost
    always a CRS or georeference mix-up, or the label of another place): reading it would give
    an all-background label (enhancing from it, for a coarse label). One line naming both files,
    where each lies and what to check.

    Args:
        path: the label (named first); ``like``: the image (``what``: ``"image"``, ``"scene"``).
        grid: from :func:`other_grid` (``src``: the label, ``dst``: the image).
        label: what the label is, in the message: ``"coarse label"`` (:data:`COARSE`) says the
            image would be enhanced from an empty coarse label; any other (``"label"``,
            ``"truth label"``) that the image would be given an empty one.
    """
    then = "enhanced from an empty coarse label" if label == COARSE else f"given an empty {label}"
    return DataError(
        f"{label} raster does not overlap the {what} {like} at all ({what} "
        f"{_where(grid.dst_geo, grid.dst_shape)}, label {_where(grid.src_geo, grid.src_shape)}): "
        f"the {what} would be {then}; check the label's CRS and georeference (gdalinfo), or "
        f"that it is the label of this {what}",
        path,
    )


def footprint_missed(
    path: str | Path,
    like: str | Path,
    grid: OtherGrid,
    *,
    what: str = "image",
    label: str = COARSE,
    shared: bool = False,
    quiet: bool = False,
    annotated: bool = False,
) -> None:
    """The one rule for a raster label on another grid whose footprint misses its image
    (whole ``enhance`` images, :func:`~sam2elnet.data.masks.read_mask_on_grid`; scenes and
    windowed images, :class:`~sam2elnet.engine.scene_coarse.CoarseSource`).

    One image's own label is refused (:func:`no_overlap_error`). One raster file for several
    images (``shared``: a :class:`~sam2elnet.data.vector_shared.SharedRaster`, ``scene --labels
    region.tif`` with a folder of scenes, ``enhance --labels region.tif`` with a folder of
    images) is a regional label, not this image's own: the caller gives the image an empty
    label, and :func:`~sam2elnet.data.vector_shared.warn_no_features` says so once per run
    (unless ``quiet``), as for one vector file for several images. With ``annotated`` (an
    ``enhance`` image, whole or window by window, or a scene) the image gets no coarse label at
    all: the warning says it is predicted as ``elnet annotate`` predicts it, and
    :class:`FootprintMissed` tells the caller (``engine.folder_chunk``,
    ``engine.scene_inputs``), which predicts it so.

    Raises:
        DataError: not ``shared`` (:func:`no_overlap_error`, with ``what`` and ``label``).
        FootprintMissed: ``shared`` and ``annotated``, after the warning (not an error).
    """
    if not shared:
        raise no_overlap_error(path, like, grid, what, label)
    if not quiet:
        warn_no_features(like, path, by_name=False, raster=True, annotated=annotated)
    if annotated:
        raise FootprintMissed(path, like)


class FootprintMissed(Exception):  # a signal, not an error: no user sees it
    """Raised by :func:`footprint_missed` with ``annotated`` (through
    :func:`~sam2elnet.data.masks.read_mask_on_grid` for whole images,
    :class:`~sam2elnet.engine.scene_coarse.CoarseSource` for scenes and images predicted window
    by window): one raster label for several images
    misses this one, which gets no coarse label, not an empty one; it is predicted as ``elnet
    annotate`` predicts it (no coarse input, so ``quality.csv``'s ``has_coarse`` is 0 and its
    score an annotation's), where an all-background coarse label would tell the model, and
    the quality evaluator, that a person drew no object there. Not a
    :class:`~sam2elnet.errors.DataError`: the image is not skipped.

    Args:
        path: the label; ``like``: the image.
    """

    def __init__(self, path: str | Path, like: str | Path) -> None:
        super().__init__(f"{path} does not overlap {like}")
        self.path, self.like = path, like

    def __reduce__(self) -> tuple[type[FootprintMissed], tuple[str | Path, str | Path]]:
        # picklable (a worker process's exception): args holds the message, not (path, like)
        return type(self), (self.path, self.like)


def check_shared_georef(
    path: str | Path,
    like: str | Path,
    label_geo: dict[str, Any],
    image_geo: dict[str, Any],
    what: str = "image",
) -> None:
    """Refuse one raster label for several images (a
    :class:`~sam2elnet.data.vector_shared.SharedRaster`) on an image it cannot be placed on by
    map position: the image or the label has no georeference
    (:func:`~sam2elnet.data.georef.grid_kind` ``"none"``). Used by pixel index, the same
    regional mask would stand on every image of the folder (or be stretched over it).

    Args:
        path: the label; ``like``: the image (``what``: ``"image"``, ``"scene"``).
        label_geo / image_geo: their georeference (``RasterHeader.geo``).

    Raises:
        DataError: naming the image (it lacks georeference; a folder job skips it with this
            reason) or the label (it lacks one), and what to do.
    """
    if grid_kind(label_geo) == "none":
        raise DataError(
            f"has no georeference (CRS + transform, or ground control points) but is one label "
            f"file for all {what}s, so it cannot be placed on each {what} by map position; "
            f"georeference it, or give a folder of labels named like the {what}s",
            path,
        )
    if grid_kind(image_geo) == "none":
        raise DataError(
            f"has no georeference (CRS + transform, or ground control points), so {path} (one "
            f"label file for all {what}s) cannot be placed on it by map position; georeference "
            f"the {what}, or give a folder of labels named like the {what}s",
            like,
        )


def partial_cover_note(
    path: str | Path,
    like: str | Path,
    share: float,
    what: str = "image",
    label: str = COARSE,
) -> str:
    """The warning of a raster label on another grid that covers only ``share`` (0 < share <
    :data:`FULL_COVER`) of its image: the rest gets no label (background there).

    Args:
        path: the label (named first); ``like``: the image (``what``: ``"image"``, ``"scene"``).
        share: the covered share of the image, in (0, 1).
        label: what the label is, in the message (:data:`COARSE`, ``"label"``).
    """
    rest = _percent(1 - share)
    return (
        f"{path}: the {label} raster covers {_percent(share)} of the {what} {like}; the "
        f"other {rest} lies outside its footprint and gets no {label} (background there); "
        "check the label's georeference if it should cover the whole " + what
    )
