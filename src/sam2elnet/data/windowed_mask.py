"""Windowed reads of large label files: :class:`MaskPlan` and crops.

One streamed pass (:func:`scan_mask`, cached per file by :func:`mask_plan`) decides what a whole
:func:`sam2elnet.data.raster.read_mask_valid` decides from all pixels: the value histogram of
every band, hence the same :class:`~sam2elnet.data.mask_values.MaskEncoding` as a whole read
(:func:`~sam2elnet.data.mask_values.encoding_from_counts`), alpha, identical-channel collapse and
the multi-channel agreement check. A crop read with :func:`read_mask_window` is then identical,
value for value, to the same rows and columns of a whole read; :func:`place_footprint_window`
places the window under an image's footprint on that image's grid (a whole image's label on
another grid, :func:`sam2elnet.data.masks.read_mask_on_grid`). Routing, strips and the cache:
:mod:`sam2elnet.data.windowed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2elnet.data import windowed
from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.grids import OtherGrid, footprint_window, place_on_grid
from sam2elnet.data.images import check_file
from sam2elnet.data.mask_values import (
    MaskEncoding,
    encoding_from_counts,
    merge_counts,
    value_counts,
)
from sam2elnet.data.naming import LOSSY_SUFFIXES
from sam2elnet.data.pair_sizes import mask_size_error
from sam2elnet.data.validity import alpha_tagged
from sam2elnet.errors import DataError

__all__ = [
    "FOOTPRINT_MIN_PIXELS",
    "FOOTPRINT_READ_SHARE",
    "MaskPlan",
    "mask_plan",
    "place_footprint_window",
    "read_mask_decimated",
    "read_mask_window",
    "scan_mask",
]


_MAX_DISTINCT = 65_536
"""Distinct values a streamed mask histogram keeps (more only happen in probability-like float
masks, decided by their range: the smallest values and the largest one are kept)."""


@dataclass(frozen=True)
class MaskPlan:
    """How each pixel of a label file decodes, decided from all its pixels (module docstring).

    ``keep``: 0-based bands decoded (more than one: a per-pixel majority vote, as the whole
    reader does); ``encodings``: one :class:`MaskEncoding` per kept band; ``object_px`` /
    ``background_px``: pixel counts over the file (from band 1 of ``keep``).
    """

    path: Path
    height: int
    width: int
    keep: tuple[int, ...]
    encodings: tuple[MaskEncoding, ...]
    object_px: int = 0
    background_px: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the label."""
        return self.height, self.width

    def apply(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(count, h, w) raw bands -> (object, valid) bool (h, w) as :func:`read_mask_valid`
        decodes them (valid None when no pixel is ignored)."""
        decoded = [enc.apply(raw[b]) for b, enc in zip(self.keep, self.encodings, strict=True)]
        mask, ignore = decoded[0]
        if len(decoded) > 1:
            votes = np.sum([d[0] for d in decoded], axis=0)
            mask = votes * 2 > len(decoded)
            igns = [d[1] for d in decoded if d[1] is not None]
            ignore = np.logical_or.reduce(igns) if igns else None
            if ignore is not None:
                mask &= ~ignore
        return np.ascontiguousarray(mask), (None if ignore is None else ~ignore)


def _cap(counts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    u, n = counts
    if len(u) <= _MAX_DISTINCT:
        return counts
    keep = np.r_[np.arange(_MAX_DISTINCT - 1), len(u) - 1]
    return u[keep], n[keep]


def scan_mask(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> MaskPlan:
    """One streamed pass over a label file (two for a multi-channel label whose channels
    differ): the decisions of :func:`read_mask_valid`. Raises DataError like it (missing,
    corrupt, class-index values without ``positive_values``, size different from ``shape``,
    disagreeing channels)."""
    import rasterio
    from rasterio.windows import Window

    p = Path(path)
    check_file(p, "mask")
    try:
        with rasterio.Env(**windowed.GDAL_ENV), windowed.open_raster(p) as src:
            h, w, c = src.height, src.width, src.count
            if shape is not None and (h, w) != tuple(shape):
                raise mask_size_error(p, h, w, shape, image_path)
            dtype = np.dtype(src.dtypes[0])
            nodata = src.nodata
            integer = np.issubdtype(dtype, np.integer)
            alpha = alpha_tagged(src)
            top = np.iinfo(dtype).max if integer else None
            same = [True] * c
            hists: list[tuple[np.ndarray, np.ndarray]] = [
                (np.zeros(0, dtype), np.zeros(0, np.int64)) for _ in range(c)
            ]
            block = src.block_shapes[0][0] if src.block_shapes else 1
            strips = list(windowed.strips(h, w, block))
            for r0, rows in strips:
                raw = windowed.read_raw(src, p, Window(0, r0, w, rows), "mask")
                if alpha and integer:
                    alpha = bool(np.all((raw[-1] == 0) | (raw[-1] == top)))
                for b in range(c):
                    if b and same[b]:
                        same[b] = bool(np.array_equal(raw[b], raw[0]))
                    hists[b] = _cap(merge_counts(hists[b], value_counts(raw[b], nodata)))
            keep = tuple(range(c - 1 if alpha else c))
            if not keep:
                raise DataError("mask has no bands; re-export it as a single-band PNG", p)
            if len(keep) > 1 and all(same[b] for b in keep[1:]):
                keep = keep[:1]
            encodings = tuple(
                encoding_from_counts(
                    *hists[b],
                    dtype=dtype,
                    nodata=nodata,
                    positive_values=positive_values,
                    lossy=p.suffix.lower() in LOSSY_SUFFIXES,
                    path=p,
                )
                for b in keep
            )
            if len(keep) > 1:  # the channels must agree on (nearly) every pixel
                differ = 0
                for r0, rows in strips:
                    raw = windowed.read_raw(src, p, Window(0, r0, w, rows), "mask")
                    fg = np.sum(
                        [e.apply(raw[b])[0] for b, e in zip(keep, encodings, strict=True)], axis=0
                    )
                    differ += int(np.count_nonzero((fg > 0) & (fg < len(keep))))
                if differ / float(h * w) > 0.01:
                    raise DataError(
                        f"mask has {len(keep)} channels that differ ({differ / (h * w):.1%} of "
                        "pixels); save it as a single-band mask (0 = background, 255 = object)",
                        p,
                    )
    except rasterio.errors.RasterioError as err:
        raise DataError(raster_error_text("mask", err), p) from None
    # object / background pixel counts (band of the first kept channel)
    u, n = hists[keep[0]]
    if len(u) and positive_values is None:
        fg, ign = encodings[0].apply(u)
        ign = np.zeros(len(u), bool) if ign is None else ign
        obj, bg = int(n[fg].sum()), int(n[~fg & ~ign].sum())
    else:  # --positive-values: counts not kept; assume both (checked on crops)
        obj = bg = 1
    return MaskPlan(p, h, w, keep, encodings, obj, bg)


def read_mask_window(
    plan: MaskPlan, row0: int, col0: int, rows: int, cols: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(object, valid) of a window (clipped to the label), exactly as the same rows and columns
    of a whole :func:`read_mask_valid`; valid None when the window holds no ignored pixel."""
    import rasterio
    from rasterio.windows import Window

    rows = max(0, min(rows, plan.height - row0))
    cols = max(0, min(cols, plan.width - col0))
    with rasterio.Env(**windowed.GDAL_ENV), windowed.open_raster(plan.path) as src:
        raw = windowed.read_raw(src, plan.path, Window(col0, row0, cols, rows), "mask")
    return plan.apply(raw)


def read_mask_decimated(plan: MaskPlan, step: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(object, valid) of every ``step``-th row and column (nearest), read strip by strip."""
    return plan.apply(windowed.decimated_raw(plan.path, max(1, int(step)), "mask"))


def mask_plan(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> MaskPlan:
    """:func:`scan_mask`, cached like :func:`image_plan` (the shape check runs every call)."""
    p = Path(path)
    key = ("mask", *windowed.file_key(p), tuple(positive_values or ()))
    plan = windowed.cached(key, lambda: scan_mask(p, None, image_path, positive_values))
    if shape is not None and plan.shape != tuple(shape):
        raise mask_size_error(p, plan.height, plan.width, shape, image_path)
    return plan


FOOTPRINT_READ_SHARE = 0.5
"""A label on another grid is read by the window under its image's footprint
(:func:`place_footprint_window`) when that window holds at most this share of its pixels; a
larger one is read whole, in one read (no separate pass deciding the values' encoding)."""

FOOTPRINT_MIN_PIXELS = 4_000_000
"""An image's own label on another grid (not one file shared by many images) is read by its
footprint's window only from this many pixels on (2000 x 2000): below, its one whole read costs
less than the window's, which first decodes the file once more in strips to decide how its
values read (:func:`mask_plan`); a shared file pays that pass once per run."""


def place_footprint_window(
    path: Path,
    image: str | Path,
    grid: OtherGrid,
    positive_values: tuple[float, ...] | None,
    shared: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """A label on another grid placed on its image's grid from the window under the image's
    footprint only (:func:`~sam2elnet.data.grids.footprint_window`), the whole-image path of
    :func:`sam2elnet.data.masks.read_mask_on_grid`: a regional label shared by many images is
    not decoded whole for each.

    The values are decoded as a whole read decodes them (:func:`mask_plan`: one streamed pass
    over the file, kept for the run), and each image pixel takes the label pixel under its
    centre (:func:`~sam2elnet.data.grids.place_on_grid`), so the result is the whole read's,
    pixel for pixel. An image the label's footprint misses reads no pixel.

    Args:
        path: The label raster.
        image: The image, named in messages.
        grid: :func:`~sam2elnet.data.grids.other_grid` of the label and the image.
        positive_values: Mask values that mean "object" (class-index masks).
        shared: ``path`` is one label for many images (else: this image's own).

    Returns:
        ``(object, valid, outside)`` as :func:`~sam2elnet.data.grids.place_on_grid` (bool
        (H, W) on ``grid.dst_shape``, ``valid`` None when all valid; int), or None when the
        whole label is to be read instead: a PNG / JPEG label, an own label of fewer than
        :data:`FOOTPRINT_MIN_PIXELS`, a GCP-only side, a footprint PROJ cannot move, or a
        window of more than :data:`FOOTPRINT_READ_SHARE` of the label.

    Raises:
        DataError: as :func:`sam2elnet.data.masks.read_mask_valid` (unreadable label,
            class-index values without ``positive_values``, ...) or
            :func:`~sam2elnet.data.grids.place_on_grid`.
    """
    from rasterio.windows import Window, transform

    if not windowed.windowable(path):
        return None
    if not shared and grid.src_shape[0] * grid.src_shape[1] < FOOTPRINT_MIN_PIXELS:
        return None  # one whole read is the cheaper
    win = footprint_window(grid)
    if win is None:
        return None
    row0, col0, rows, cols = win
    sh, sw = grid.src_shape
    if rows * cols > FOOTPRINT_READ_SHARE * sh * sw:
        return None
    plan = mask_plan(path, None, image, positive_values)  # errors as a whole read's
    h, w = grid.dst_shape
    if rows == 0 or cols == 0:  # the footprint misses the label: every pixel outside
        return np.zeros((h, w), bool), np.zeros((h, w), bool), h * w
    mask, valid = read_mask_window(plan, row0, col0, rows, cols)
    src = {
        **grid.src_geo,
        "transform": transform(Window(col0, row0, cols, rows), grid.src_geo["transform"]),
    }
    part = OtherGrid(src, (rows, cols), grid.dst_geo, grid.dst_shape)
    return place_on_grid(mask, valid, part, path, image)
