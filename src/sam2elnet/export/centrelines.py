"""Road centre lines: a binary road mask -> LineStrings, and the ``centre_lines`` export layer.

Why: a road mapper (OpenStreetMap editing, network analysis, QGIS) works with road axes and road
length, not with road area polygons. :func:`mask_lines` vectorises the centre lines of a mask:

1. the skeleton: :func:`sam2elnet.data.skeleton.centre_lines` (Guo-Hall thinning; the skeleton
   the road measures of ``elnet evaluate`` count, so the two agree on what a road's length is);
2. every pair of 8-neighbour skeleton pixels becomes a two-point segment between the pixel
   centres; a diagonal step is left out where the two pixels also meet through a 4-neighbour
   (the corner pixel is on the skeleton), so an L-shaped corner gives no small triangle;
3. the segments are merged into polylines (``shapely.line_merge``): one line per stretch between
   ends and junctions (skeleton pixels with three or more neighbours);
4. spurs, end branches shorter than ``min_length_px`` that hang off a junction (thinning leaves
   them at road ends and corners of the mask), are dropped once and the rest merged again; then
   isolated pieces shorter than ``min_length_px`` (specks) are dropped
   (:data:`MIN_LENGTH_PX`);
5. free ends (line ends no other line shares), which thinning leaves about half a road width
   short of the road's end, are carried out along the line's last direction by the local
   half-width from the distance transform, clipped to the road mask
   (:func:`sam2elnet.export.line_ends.extend_free_ends`);
6. each line is simplified (Douglas-Peucker, ``simplify_px`` pixels, :data:`SIMPLIFY_PX`; ends
   kept, so lines still meet at junctions).

Coordinates: pixel centres, ``(col + 0.5, row + 0.5)`` through the label's affine transform,
the convention of the polygon export (GDAL's: pixel corners at integers, so a polygon edge lies
half a pixel from the centre line of a one-pixel road). Without a CRS that is pixel coordinates
(x = column, y = row; ``--pixel-coords qgis`` y = -row), as the polygons.

Large labels (:class:`CentreLineLayer`): a label whose thinning would hold more than
:data:`MEMORY_BUDGET_BYTES` is read in row strips by windows (``LabelRaster.read_mask`` of the
strip's rows plus a halo; never the whole array) and thinned strip by strip with
:func:`sam2elnet.data.skeleton.strip_centre_lines`, whose halo rule makes the stitched skeleton
that of the whole label, bit for bit. Each strip's skeleton is read with one row more than its
core, so the skeleton steps from a strip's last row into the next strip are found too (step 2
keeps a segment in the strip of its upper pixel); the strips' segments are merged per strip and
then all together (step 3), so a road crossing strip borders is one line, as on the whole label.
Memory: one strip window (:data:`~sam2elnet.data.skeleton.THIN_BYTES_PER_PX` bytes per pixel)
plus the unsimplified lines (16 bytes per skeleton pixel). A label of more than one strip shows
a progress bar over its strips (``--no-progress``: one log line when done).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.skeleton import (
    DEFAULT_HALO_ROWS,
    MIN_ROAD_PIECE_PX,
    strip_centre_lines,
    strip_rows_for,
)
from sam2elnet.data.vector_names import image_name_attributes
from sam2elnet.export.line_ends import extend_free_ends
from sam2elnet.export.line_graph import (
    canonical,
    degrees,
    isolated,
    line_ends,
    merge,
    split_at_rows,
)

__all__ = [
    "LAYER",
    "MEMORY_BUDGET_BYTES",
    "MIN_LENGTH_PX",
    "SIMPLIFY_PX",
    "CentreLineLayer",
    "centre_lines_path",
    "finish_lines",
    "lengths_m",
    "mask_lines",
    "place_lines",
    "skeleton_lines",
    "skeleton_segments",
    "wants_centre_lines",
]

LAYER = "centre_lines"
"""GeoPackage layer name of the centre lines (the polygons are layer ``labels``); for GeoJSON /
Shapefile the sibling file ``<out stem>_centre_lines<suffix>`` (:func:`centre_lines_path`)."""

SIMPLIFY_PX = 1.0
"""Default Douglas-Peucker tolerance of the centre lines, in pixels. The skeleton of a digitised
band zigzags by one pixel (its pixels sit on the grid, a line at an angle becomes a staircase);
a one-pixel tolerance straightens the staircase and keeps every line within one pixel of the
skeleton, i.e. inside any road at least two pixels wide."""

MIN_LENGTH_PX = float(MIN_ROAD_PIECE_PX)
"""Default shortest spur / isolated piece kept, in pixels (:data:`sam2elnet.data.skeleton.
MIN_ROAD_PIECE_PX`: the road connectivity measure ignores skeleton components under this size
too). Thinning a road end or a mask corner leaves spurs about half the road width long; a side
road shorter than this that ends in the open is dropped as well."""

MEMORY_BUDGET_BYTES = 256_000_000
"""Most bytes one label's thinning may hold (256 MB): labels whose whole thinning would hold more
(:data:`~sam2elnet.data.skeleton.THIN_BYTES_PER_PX` per pixel: above 36 Mpx, e.g. 6,100^2 px)
are thinned in row strips of :func:`~sam2elnet.data.skeleton.strip_rows_for` rows (a 20,000 px
wide label: 1,700 rows per strip, 12 strips). Read at call time, so a test may lower it."""

_COLUMNS = (
    "source",
    "label",
    "category",
    "quality",
    "status",
    "length_px",
    "length_m",
    "model_id",
)


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


def skeleton_segments(skel: np.ndarray) -> np.ndarray:
    """Two-point segments between 8-neighbour pixels of a one-pixel-wide skeleton.

    Args:
        skel: bool ``(H, W)``.

    Returns:
        float64 ``(N, 2, 2)``: segment, end, ``(x, y)`` = ``(col + 0.5, row + 0.5)`` (pixel
        centres). Each neighbour pair once; a diagonal pair is left out when a pixel on the
        skeleton joins the two through 4-neighbours (no triangles at corners).
    """
    s = np.pad(np.asarray(skel, dtype=bool), 1)
    r, k = np.nonzero(s)  # skeleton pixels (row-major), padded coordinates: no dense temporaries
    right, down = s[r, k + 1], s[r + 1, k]
    down_right, down_left, left = s[r + 1, k + 1], s[r + 1, k - 1], s[r, k - 1]
    pairs = (
        (right, (0, 1)),
        (down, (1, 0)),
        (down_right & ~right & ~down, (1, 1)),
        (down_left & ~left & ~down, (1, -1)),
    )
    out = []
    for hit, (dr, dc) in pairs:
        rr, kk = r[hit] - 1, k[hit] - 1
        a = np.stack([kk + 0.5, rr + 0.5], axis=1)
        b = np.stack([kk + dc + 0.5, rr + dr + 0.5], axis=1)
        out.append(np.stack([a, b], axis=1))
    return np.concatenate(out)


def _core_segments(skel: np.ndarray, row0: int, core_rows: int) -> np.ndarray:
    """:func:`skeleton_segments` of a strip's skeleton rows (its core plus the first row of the
    next strip) whose upper pixel is in the core, in the label's pixel coordinates."""
    segs = skeleton_segments(skel)
    segs = segs[segs[:, 0, 1] < core_rows]
    segs[:, :, 1] += row0
    return segs


def skeleton_lines(
    read: Callable[[int, int], np.ndarray],
    height: int,
    strip_rows: int | None = None,
    halo_rows: int = DEFAULT_HALO_ROWS,
    bar: Any = None,
) -> list[Any]:
    """Steps 1-3 of the module docstring: the merged, unsimplified skeleton lines of a mask read
    by rows, strip by strip.

    Args:
        read: ``read(row0, row1)`` -> bool rows ``[row0, row1)`` of the mask, full width.
        height: rows of the mask.
        strip_rows: core rows per strip (None: all rows, one whole thinning).
        halo_rows: first thinning halo (:func:`~sam2elnet.data.skeleton.strip_centre_lines`).
        bar: a progress bar (``update(1)`` per strip) or None.

    Returns:
        LineStrings in pixel coordinates (pixel centres), one per stretch between ends and
        junctions; the same lines as one whole thinning (the skeleton is the same, bit for bit;
        a ring may start at another vertex, a line may run the other way).
    """
    import shapely

    rows = height if strip_rows is None else max(1, int(strip_rows))
    lines: list[Any] = []
    for s in strip_centre_lines(lambda r0, r1: (read(r0, r1),), height, rows, halo_rows, 1):
        segs = _core_segments(s.skeletons[0], s.row0, s.row1 - s.row0)
        if len(segs):
            cut = [r + 0.5 for r in (s.row0, s.row1) if 0 < r < height]
            lines.extend(split_at_rows(merge(list(shapely.linestrings(segs))), cut))
        if bar is not None:
            bar.update(1)
    return merge(lines) if rows < height else lines


def mask_lines(
    mask: np.ndarray,
    *,
    simplify_px: float = SIMPLIFY_PX,
    min_length_px: float = MIN_LENGTH_PX,
    strip_rows: int | None = None,
    halo_rows: int = DEFAULT_HALO_ROWS,
    extend_ends: bool = True,
) -> list[Any]:
    """Centre lines of a bool road mask as shapely LineStrings in pixel coordinates.

    Steps and conventions: the module docstring (skeleton, 8-neighbour segments, merge, spur
    and speck removal, simplification).

    Args:
        mask: bool ``(H, W)`` (True = road).
        simplify_px: Douglas-Peucker tolerance in pixels (0: none); default :data:`SIMPLIFY_PX`.
        min_length_px: spurs and isolated pieces shorter than this many pixels are dropped
            (0: none); default :data:`MIN_LENGTH_PX`.
        strip_rows: thin in row strips of this many rows (with ``halo_rows`` halo rows first;
            :func:`skeleton_lines`); None: the whole mask at once. Same lines either way.
        halo_rows: first halo of the strips.
        extend_ends: carry free line ends out to the road's end (step 5; False: where the
            thinning left them, about half a road width short).

    Returns:
        LineStrings, ``x = col + 0.5``, ``y = row + 0.5``, lengths in pixels; ``[]`` for a mask
        without road (or only specks).

    Raises:
        ValueError: ``mask`` not 2-D, or a negative tolerance / length.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask_lines needs a 2-D mask, got shape {m.shape}")
    if simplify_px < 0 or min_length_px < 0:
        raise ValueError("simplify_px and min_length_px must be >= 0")
    lines = skeleton_lines(lambda r0, r1: m[r0:r1], m.shape[0], strip_rows, halo_rows)
    ends = None
    if extend_ends:

        def ends(found: list[Any]) -> list[Any]:
            return extend_free_ends(found, lambda r0, r1, c0, c1: m[r0:r1, c0:c1], *m.shape)

    return finish_lines(lines, simplify_px=simplify_px, min_length_px=min_length_px, ends=ends)


def finish_lines(
    lines: list[Any],
    *,
    simplify_px: float,
    min_length_px: float,
    ends: Callable[[list[Any]], list[Any]] | None = None,
) -> list[Any]:
    """Steps 4-6 of the module docstring on merged skeleton lines (:func:`skeleton_lines`):
    spurs and specks under ``min_length_px`` dropped, free ends extended by ``ends``
    (:func:`~sam2elnet.export.line_ends.extend_free_ends` on the mask; None: as thinned),
    Douglas-Peucker at ``simplify_px``."""
    import shapely

    if not lines:
        return []
    if min_length_px > 0:
        deg = degrees(lines)
        keep = []
        for g in lines:
            a, b = (deg[e] for e in line_ends(g))
            spur = min(a, b) == 1 and max(a, b) >= 3 and g.length < min_length_px
            if not spur:
                keep.append(g)
        lines = merge(keep) if len(keep) < len(lines) else lines
        deg = degrees(lines)
        lines = [g for g in lines if g.length >= min_length_px or not isolated(g, deg)]
    if ends is not None:
        lines = ends(lines)
    lines = canonical(lines)
    if simplify_px > 0:
        lines = list(
            shapely.simplify(np.asarray(lines, dtype=object), simplify_px, preserve_topology=True)
        )
    return [g for g in lines if not g.is_empty and g.length > 0]


def place_lines(lines: list[Any], transform: Any) -> list[Any]:
    """Pixel-coordinate lines (:func:`mask_lines`) through an affine ``transform`` (map x =
    a * x + b * y + c, map y = d * x + e * y + f; rasterio's / affine's). Identity: as given."""
    from shapely.affinity import affine_transform

    from sam2elnet.data.georef import shapely_coefficients

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

    from sam2elnet.data.georef import crs_name, lonlat_route, metres_per_unit

    xy, which = shapely.get_coordinates(np.asarray(lines, dtype=object), return_index=True)
    try:
        to_lonlat, geod = lonlat_route(crs)
        lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
        steps = np.asarray(geod.line_lengths(lon, lat), dtype=float)
    except Exception as err:  # noqa: BLE001 - PROJ raises several error types
        import logging

        from sam2elnet.utils.run_warnings import warn_once

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
        ``centre_lines`` (count), ``road_length_px``, ``road_length_m`` (None without a CRS)."""
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
                    **image_name_attributes(lab.source, attrs.name),
                    "category": attrs.category,
                    "quality": q,
                    "status": attrs.status,
                    "length_px": round(float(p.length), 3),
                    "length_m": round(m, 3),
                    "model_id": model_id,
                }
            )
        total_m = float(sum(metres)) if lab.georef else None
        return {
            "centre_lines": len(lines),
            "road_length_px": round(float(sum(g.length for g in pix)), 3),
            "road_length_m": None if total_m is None else round(total_m, 3),
        }

    def frame(self, crs: Any) -> Any:
        """The layer as a GeoDataFrame (``line_id`` first; ``quality`` / ``length_m`` float64,
        NaN for none), in ``crs``."""
        import geopandas as gpd

        if self.rows:
            gdf = gpd.GeoDataFrame(self.rows, geometry=self.geoms, crs=crs)
        else:
            gdf = gpd.GeoDataFrame({k: [] for k in _COLUMNS}, geometry=[], crs=crs)
        gdf.insert(0, "line_id", np.arange(1, len(gdf) + 1))
        for col in ("quality", "length_px", "length_m"):
            gdf[col] = gdf[col].astype("float64")
        if gdf["model_id"].isna().all():
            gdf["model_id"] = gdf["model_id"].astype("object")
        return gdf

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
