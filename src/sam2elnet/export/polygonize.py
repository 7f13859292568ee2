"""Label raster -> polygons, strip by strip: the polygonisation behind the vector export.

Each row strip of the label is polygonised with GDAL (``rasterio.features.shapes``,
4-connectivity); polygons cut by a strip border are merged (``shapely.union_all``) as soon as no
later strip can add to them, so memory holds one strip and the polygons crossing its border, and
the result equals a whole-raster polygonisation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import crs_name
from sam2elnet.errors import UserError
from sam2elnet.export.labels import LabelRaster

log = logging.getLogger(__name__)

__all__ = ["check_tolerances", "iter_polygons", "polygonize_label", "tolerance_problem"]


def _units(lab: LabelRaster) -> tuple[str, float]:
    """The unit of ``lab``'s map coordinates in words (``degrees of EPSG:4326``, ``metre of
    EPSG:32633``, ``pixels`` without a CRS) and the size of one pixel in them (the square root
    of the pixel area)."""
    px = float(lab.pixel_area or 1.0) ** 0.5
    if not lab.georef or lab.crs is None:
        return "pixels (the label has no CRS)", px
    unit = "degrees" if lab.crs.is_geographic else (lab.crs.linear_units or "map units")
    return f"{unit} of {crs_name(lab.crs)}", px


def tolerance_problem(lab: LabelRaster, simplify: float | None, smooth: float | None) -> str | None:
    """Why a ``--simplify`` / ``--smooth`` tolerance cannot be used on ``lab``, else None.

    Both are in the label's own map units, as GDAL's and QGIS's simplification tolerances
    (degrees for a label in a geographic CRS such as EPSG:4326, where ``--smooth 10`` meant as
    metres erased every polygon; not the units of ``--crs``). A tolerance at least the label's
    span (its larger side, ``max(width, height)`` pixels times the pixel size, in map units) can
    only collapse or erase its polygons. The text names the option, its units, the label's span
    and a value of about 2 px in those units.
    """
    unit, px = _units(lab)
    span = max(lab.width, lab.height) * px
    for name, value in (("--smooth", smooth), ("--simplify", simplify)):
        if value and value >= span:
            return (
                f"{name} {value:g} is in the label's map units ({unit}) and spans the whole "
                f"label ({span:.3g} across), so it would erase or collapse every polygon; "
                f"1 px = {px:.3g} there: give e.g. {name} {2 * px:.3g} (2 px), or warp the "
                "label to a projected CRS in metres first"
            )
    return None


def check_tolerances(lab: LabelRaster, simplify: float | None, smooth: float | None) -> None:
    """Refuse a ``--simplify`` / ``--smooth`` tolerance at least as large as the label itself
    (:func:`tolerance_problem`), taken for a unit mistake. ``elnet export`` of several labels
    judges it against them all first (:func:`~sam2elnet.export.label_screen.screen_labels`).

    Raises:
        UserError: one line naming the label and :func:`tolerance_problem`'s reason.
    """
    why = tolerance_problem(lab, simplify, smooth)
    if why is not None:
        raise UserError(why, lab.path)


def _shapes(mask: np.ndarray, transform: Any) -> Iterator[Any]:
    from rasterio import features
    from shapely.geometry import shape

    if not mask.any():
        return
    for geom, _val in features.shapes(
        mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4
    ):
        yield shape(geom)


def iter_polygons(
    lab: LabelRaster,
    *,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    strip_rows: int | None = None,
) -> Iterator[Any]:
    """Polygons of the foreground of an open label raster, yielded strip by strip.

    Reads ``strip_rows`` rows at a time (default: :data:`sam2elnet.data.windowed.STRIP_PIXELS`
    pixels per strip, so the strip buffer does not grow with the raster width). A polygon that
    touches no internal strip border is yielded as soon as its strip is read. The pieces of a
    polygon cut by strip borders are kept (grouped by which pieces touch across a border) only
    until a strip adds no piece to the group; then the group is merged (``shapely.union_all``)
    and its parts are yielded. So what is held is the polygons that cross the current strip
    border, not the whole raster's, and the result equals a whole-raster polygonisation (same
    polygons, tested).

    Order (the ``poly_id`` order of the export): strip by strip; within a strip first the
    polygons lying inside it (GDAL ``polygonize`` order), then the merged polygons whose last
    piece is in it, ordered by their first piece. With one strip (rasters up to 4 Mpx by
    default) this is the order of a whole-raster polygonisation.

    ``smooth`` (map units) rounds staircase edges with a buffer out/in; ``simplify`` (map units)
    is Douglas-Peucker with topology preserved; polygons under ``min_area_px`` pixels are dropped.
    A tolerance spanning the whole label is refused (:func:`check_tolerances`: UserError), and
    one that erases every polygon of a label with foreground is one warning naming the label,
    its units and a value of 1-2 px.
    An invalid polygon (GEOS ``is_valid``) is repaired with ``shapely.make_valid``. GEOS checks
    each polygon of a strip; a polygon merged across strips is not checked again when all its
    strip pieces were valid, since the merge keeps it valid (:func:`_merge_pieces`; checking
    the merged polygon of a 6.7 M-vertex region took 0.7 GB and a minute).

    Raises:
        UserError: ``simplify`` / ``smooth`` at least as large as the label
            (:func:`check_tolerances`), before any polygon is yielded.
        DataError: a strip of the label that cannot be read.
    """
    from sam2elnet.data.windowed import STRIP_PIXELS

    check_tolerances(lab, simplify, smooth)
    strip_rows = strip_rows or max(1, STRIP_PIXELS // max(1, lab.width))
    px = lab.pixel_area or 1.0
    n_raw = n_left = 0
    to_map = _pixel_to_map(lab.transform)
    for g, valid in _strip_polygons(lab, strip_rows):
        n_raw += 1
        g = to_map(g)
        if smooth:
            g = g.buffer(smooth, join_style="round").buffer(-smooth, join_style="round")
            valid = False
        if simplify:
            g = g.simplify(simplify, preserve_topology=True)
            valid = False
        if g.is_empty:
            continue
        n_left += 1
        if not valid and not g.is_valid:
            import shapely

            g = shapely.make_valid(g)
        if g.area / px < min_area_px:
            continue
        yield g
    if n_raw and not n_left:
        unit, size = _units(lab)
        said = " and ".join(
            f"{k} {v:g}" for k, v in (("--smooth", smooth), ("--simplify", simplify)) if v
        )
        log.warning(
            "%s: %s (%s; 1 px = %.3g) erased %s of this label; give a tolerance of about 1-2 px "
            "(%.3g-%.3g)",
            lab.path, said, unit, size,
            "the only polygon" if n_raw == 1 else f"all {n_raw} polygons", size, 2 * size,
        )  # fmt: skip


def _pixel_to_map(transform: Any) -> Any:
    """Geometry in pixel coordinates (x = column, y = row) -> the label's map coordinates, by
    its affine transform; the identity returns the geometry itself.

    The strips are polygonised and merged in pixel coordinates, where every vertex is an
    integer and a border vertex two strips share is the same point in both: in map coordinates
    each strip's window transform rounds it its own way when the transform is not north-up
    (a rotated grid, the affine fit to a GCP-only label's GCPs), so pieces that share a border
    missed each other by 1e-9 and a polygon came out cut at every strip border."""
    import shapely
    from affine import Affine

    if transform == Affine.identity():
        return lambda g: g
    m = np.array([[transform.a, transform.b], [transform.d, transform.e]], np.float64)
    off = np.array([transform.c, transform.f], np.float64)
    return lambda g: shapely.transform(g, lambda xy: xy @ m.T + off)


def _find(parent: list[int], i: int) -> int:
    """Root of ``i`` in a union-find forest (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _strip_polygons(lab: LabelRaster, strip_rows: int) -> Iterator[tuple[Any, bool]]:
    """Raw polygons of :func:`iter_polygons` (before smoothing / simplification / filtering) in
    pixel coordinates (x = column, y = row; :func:`_pixel_to_map` places them), each with
    whether it is known to be valid (True: merged from valid strip pieces; False: not checked
    yet)."""
    import shapely
    from affine import Affine
    from shapely.geometry import LineString

    # open groups: pieces of polygons that cross strip borders; "front" = the pieces of the last
    # strip that touch its bottom border (only those can continue in the next strip); "valid" =
    # every piece passed GEOS is_valid
    groups: list[dict[str, Any]] = []
    for row0 in range(0, lab.height, strip_rows):
        rows = min(strip_rows, lab.height - row0)
        m = lab.read_mask(row0, rows)
        t = Affine.translation(0, row0)  # pixel coordinates: shared border vertices exact
        top = LineString([t @ (0, 0), t @ (lab.width, 0)]) if row0 > 0 else None
        last = row0 + rows >= lab.height
        bottom = None if last else LineString([t @ (0, rows), t @ (lab.width, rows)])
        new: list[tuple[Any, bool, bool]] = []  # (piece, touches top, touches bottom)
        for g in _shapes(m, t):
            at_top = top is not None and g.intersects(top)
            at_bottom = bottom is not None and g.intersects(bottom)
            if at_top or at_bottom:
                new.append((g, at_top, at_bottom))
            else:
                yield g, False
        del m
        # join each new piece touching the top border with the open groups it touches
        fronts = [(gi, p) for gi, grp in enumerate(groups) for p in grp["front"]]
        parent = list(range(len(groups) + len(new)))
        if fronts and any(t_ for _g, t_, _b in new):
            tree = shapely.STRtree([p for _gi, p in fronts])
            for k, (g, at_top, _b) in enumerate(new):
                if not at_top:
                    continue
                for j in tree.query(g, predicate="intersects").tolist():
                    a, b = _find(parent, fronts[j][0]), _find(parent, len(groups) + k)
                    if a != b:
                        parent[max(a, b)] = min(a, b)  # the earlier group stays the root
            del tree
        del fronts
        merged: dict[int, dict[str, Any]] = {}
        for gi, grp in enumerate(groups):
            root = merged.setdefault(_find(parent, gi), _group())
            root["pieces"].extend(grp["pieces"])
            root["valid"] = root["valid"] and grp["valid"]
        for k, (g, _t, at_bottom) in enumerate(new):
            root = merged.setdefault(_find(parent, len(groups) + k), _group())
            root["pieces"].append(g)
            root["valid"] = root["valid"] and bool(g.is_valid)
            if at_bottom:
                root["front"].append(g)
        groups, new = [], []
        for root in sorted(merged):
            grp = merged.pop(root)  # the last reference to a completed group's pieces goes below
            if grp["front"]:
                groups.append(grp)
            else:  # nothing of it reaches the next strip: complete (pieces freed before yield)
                for part in _merge_pieces(grp.pop("pieces")):
                    yield part, grp["valid"]
    for grp in groups:  # pragma: no cover - the last strip has no bottom border
        for part in _merge_pieces(grp["pieces"]):
            yield part, grp["valid"]


def _group() -> dict[str, Any]:
    return {"pieces": [], "front": [], "valid": True}


def _merge_pieces(pieces: list[Any]) -> list[Any]:
    """The polygons of the union of the strip pieces of one region (``shapely.union_all``).

    Only the exterior rings go through the overlay: a hole of a piece lies inside its strip and
    touches no strip border (a background pixel on the border is outside the strip's piece), so
    it is a hole of the merged polygon unchanged. The holes are put back into the part whose
    shell holds them. Same point set as ``union_all(pieces)``; the overlay (GEOS OverlayNG, some
    hundred bytes per vertex) then sees the shells only, not the possibly 10^5 holes of a noisy
    region (measured on a 12,000^2 px label: 2.9 GB -> below 1.5 GB peak). ``pieces`` is
    emptied (its polygons freed) before the overlay.

    Valid pieces (4-connected GDAL polygons, checked by :func:`_strip_polygons`) give valid
    polygons, so :func:`iter_polygons` does not check them again: the union of the shells is
    valid (OverlayNG output); a hole keeps at least one pixel row from the strip borders, so
    near it the merged polygon is its piece unchanged, and it touches no other piece (a piece
    of the same strip that touched it would border its background pixels, i.e. lie inside the
    hole, which a piece reaching a strip border cannot). So every ring touch is one its valid
    piece had, and the rings still touch in a tree (connected interior); tested on random
    labels, ``tests/export/test_export_memory.py``.
    """
    import shapely

    rings, idx = shapely.get_rings(np.asarray(pieces, dtype=object), return_index=True)
    pieces.clear()  # the rings share nothing with the pieces: free them before the overlay
    first = np.r_[True, idx[1:] != idx[:-1]]  # get_rings lists each exterior first
    holes = rings[~first]
    shells = shapely.polygons(rings[first])
    del rings, idx, first
    parts = shapely.get_parts(shapely.union_all(shells))
    del shells
    if holes.size == 0:
        return parts.tolist()
    if len(parts) == 1:
        owner = np.zeros(len(holes), dtype=np.int64)
    else:  # a point inside a hole lies inside the shell of the piece that had the hole
        pts = shapely.point_on_surface(shapely.polygons(holes))
        # parts as the (prepared) query geometries: one prepared polygon per part, not a
        # point-in-polygon walk over a whole part per hole (20 s -> 0.8 s for 63,000 holes)
        owner_of, hit = shapely.STRtree(pts).query(parts, predicate="contains")
        owner = np.full(len(holes), -1, dtype=np.int64)
        owner[hit] = owner_of
        del pts
    out = []
    for k in range(len(parts)):
        part = parts[k]
        mine = holes[owner == k]
        if mine.size:
            own = shapely.get_rings(part)
            part = shapely.polygons(own[0], holes=np.concatenate([own[1:], mine]))
            del own, mine
            parts[k] = None  # the part without its holes is freed as soon as it is replaced
        out.append(part)
    return out


def polygonize_label(
    path: str | Path,
    *,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    strip_rows: int | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[list[Any], LabelRaster]:
    """All polygons of one label raster as a list (:func:`iter_polygons` on the opened file).

    Holds every polygon; :func:`write_polygons` streams them instead. Returns the polygons and
    the (closed) :class:`~sam2elnet.export.labels.LabelRaster` with the georeference.

    Raises:
        DataError: ``path`` is missing, truncated or not a raster GDAL reads.
        UserError: a tolerance spanning the whole label, as :func:`iter_polygons`.
    """
    lab = LabelRaster(Path(path), positive_values)
    try:
        polys = list(
            iter_polygons(
                lab,
                simplify=simplify,
                smooth=smooth,
                min_area_px=min_area_px,
                strip_rows=strip_rows,
            )
        )
    finally:
        lab.close()
    return polys, lab
