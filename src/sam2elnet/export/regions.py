"""The 4-connected foreground regions of a label raster, found strip by strip, as column runs.

Behind the COCO export of label rasters: each row strip is labelled with ``scipy.ndimage.label``
(4-connectivity, as the polygon export), regions meeting across a strip border are joined, and a
region is handed on (:func:`label_objects`) once no later strip can add to it. A region is kept
as its vertical runs (column, first row, end row), from which its COCO run lengths
(:func:`object_counts`) and its bounding-box mask (:func:`object_crop`) are rebuilt, so memory
holds one strip and the regions crossing its border, not the raster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sam2elnet.export.labels import LabelRaster

__all__ = ["Region", "label_objects", "object_counts", "object_crop"]


@dataclass
class Region:
    """One 4-connected foreground region of a label raster, as its column runs."""

    first: int  # row-major index of its first pixel (the whole-raster ``ndimage.label`` order)
    area: int
    box: list[int]  # [row0, col0, row1, col1], end exclusive
    runs: list[np.ndarray] = field(default_factory=list)  # (k, 3) int64: col, row0, row1
    shape: dict | None = None  # GDAL polygon (GeoJSON dict, pixel corners) if in one strip

    def absorb(self, other: Region) -> None:
        self.shape = None  # a joined region's polygon is not one strip's
        self.first = min(self.first, other.first)
        self.area += other.area
        b, o = self.box, other.box
        self.box = [min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3])]
        self.runs.extend(other.runs)


def _strip_objects(lab: np.ndarray, n: int, row0: int, width: int, base: int) -> dict[int, Region]:
    """Objects of one labelled strip (``ndimage.label`` ids 1..n), keyed ``base + id``."""
    from scipy import ndimage

    rows = lab.shape[0]
    flat = lab.ravel()
    fg = np.flatnonzero(flat)
    _ids, first = np.unique(flat[fg], return_index=True)
    area = np.bincount(flat[fg], minlength=n + 1)
    # column runs: the strip transposed (column-major), split where the id or the column changes
    col_major = np.ascontiguousarray(lab.T).ravel()
    cuts = np.union1d(np.flatnonzero(np.diff(col_major)) + 1, np.arange(rows, col_major.size, rows))
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [col_major.size]))
    vals = col_major[starts]
    keep = vals > 0
    starts, ends, vals = starts[keep], ends[keep], vals[keep]
    runs = np.stack([starts // rows, starts % rows + row0, ends - starts], axis=1).astype(np.int64)
    runs[:, 2] += runs[:, 1]
    order = np.argsort(vals, kind="stable")
    split = np.searchsorted(vals[order], np.arange(1, n + 2))
    out: dict[int, Region] = {}
    for k, sl in enumerate(ndimage.find_objects(lab), 1):
        if sl is None:
            continue
        p = int(fg[first[k - 1]])  # ndimage.label ids are 1..n, all present: ids[k - 1] == k
        out[base + k] = Region(
            first=(row0 + p // width) * width + p % width,
            area=int(area[k]),
            box=[sl[0].start + row0, sl[1].start, sl[0].stop + row0, sl[1].stop],
            runs=[runs[order[split[k - 1] : split[k]]]],
        )
    return out


def label_objects(
    lab: LabelRaster, strip_rows: int | None = None, shapes: bool = False
) -> Iterator[Region]:
    """The 4-connected foreground regions of an open label raster, read in row strips.

    Each strip is labelled (``scipy.ndimage.label``, 4-connectivity); regions of adjacent strips
    that share a column across the border are joined. A region is yielded once a strip adds
    nothing to it, so only the regions touching the current strip border are held (as column
    runs: memory grows with their outline, not with the raster). Order: strip by strip, within a
    strip by first pixel (row-major); with one strip (default: rasters up to
    :data:`~sam2elnet.data.windowed.STRIP_PIXELS`) that is the whole-raster ``ndimage.label``
    order.

    Args:
        lab: the label raster.
        strip_rows: rows per strip (default: 4 Mpx per strip).
        shapes: also polygonise each strip once (``rasterio.features.shapes`` of the labelled
            strip, 4-connectivity) and give every region that lies in one strip its polygon
            (``shape``, GeoJSON dict in pixel-corner coordinates); one GDAL call per strip
            instead of one per region.

    Yields:
        Objects with ``first`` (row-major index of the first pixel), ``area`` (px), ``box``
        ([row0, col0, row1, col1], px, end exclusive) and ``runs`` (arrays of column, first
        row, end row).
    """
    from scipy import ndimage

    from sam2elnet.data.windowed import STRIP_PIXELS

    h, w = lab.height, lab.width
    strip_rows = strip_rows or max(1, STRIP_PIXELS // max(1, w))
    alive: dict[int, Region] = {}  # objects touching the last strip's bottom row
    prev_row: np.ndarray | None = None  # their ids along that row (0: background)
    next_id = 1
    for row0 in range(0, h, strip_rows):
        rows = min(strip_rows, h - row0)
        m = lab.read_mask(row0, rows)
        labelled, n = ndimage.label(m)
        objs = _strip_objects(labelled, n, row0, w, next_id - 1) if n else {}
        if shapes and n:
            from affine import Affine
            from rasterio import features

            tr = Affine.translation(0, row0)
            for geom, v in features.shapes(
                labelled, mask=labelled > 0, transform=tr, connectivity=4
            ):
                objs[next_id - 1 + int(v)].shape = geom
        parent: dict[int, int] = {}

        def root(i: int, parent: dict[int, int] = parent) -> int:
            while i in parent:
                i = parent[i]
            return i

        if prev_row is not None and n:
            both = (prev_row > 0) & (labelled[0] > 0)
            pairs = np.unique(np.stack([prev_row[both], labelled[0][both] + next_id - 1]), axis=1)
            for a, b in pairs.T.tolist():
                ra, rb = root(a), root(b)
                if ra == rb:
                    continue
                keep, drop = min(ra, rb), max(ra, rb)  # the older id stays
                pool_k = alive if keep in alive else objs
                pool_d = alive if drop in alive else objs
                pool_k[keep].absorb(pool_d.pop(drop))
                parent[drop] = keep
        alive.update(objs)
        last = row0 + rows >= h
        if last:
            cont: set[int] = set()
            prev_row = None
        else:
            edge = labelled[-1]
            ids = np.unique(edge[edge > 0]) + next_id - 1
            lut = {int(i): root(int(i)) for i in ids.tolist()}
            cont = set(lut.values())
            prev_row = np.zeros(w, np.int64)
            sel = edge > 0
            prev_row[sel] = [lut[int(i)] for i in (edge[sel] + next_id - 1).tolist()]
        done = sorted((o for k, o in alive.items() if k not in cont), key=lambda o: o.first)
        alive = {k: o for k, o in alive.items() if k in cont}
        next_id += n
        yield from done


def object_counts(obj: Region, height: int, width: int) -> list[int]:
    """Uncompressed column-major COCO run lengths of one object from its column runs."""
    runs = np.concatenate(obj.runs) if len(obj.runs) > 1 else obj.runs[0]
    start = runs[:, 0] * height + runs[:, 1]
    end = runs[:, 0] * height + runs[:, 2]
    order = np.argsort(start)
    start, end = start[order], end[order]
    joined = np.flatnonzero(start[1:] != end[:-1]) + 1  # runs meeting at a strip border join
    s = start[np.concatenate(([0], joined))]
    e = end[np.concatenate((joined - 1, [len(end) - 1]))]
    bounds = np.empty(2 * len(s) + 2, np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = s, e
    counts = np.diff(bounds)
    if counts[-1] == 0:
        counts = counts[:-1]
    return counts.tolist()


def object_crop(obj: Region) -> np.ndarray:
    """Bool crop of the object's bounding box."""
    r0, c0, r1, c1 = obj.box
    edges = np.zeros((r1 - r0 + 1, c1 - c0), np.int8)  # +1 where a run starts, -1 past its end
    for runs in obj.runs:
        np.add.at(edges, (runs[:, 1] - r0, runs[:, 0] - c0), 1)
        np.add.at(edges, (runs[:, 2] - r0, runs[:, 0] - c0), -1)
    return np.cumsum(edges[:-1], axis=0, dtype=np.int8) > 0
