"""Reading label masks: a mask file -> bool (H, W) object and valid arrays.

:func:`read_mask_valid` decodes a file's values with the documented rule
(:func:`sam2elnet.data.mask_values.mask_encoding`: 0/1, 0/255, 0/1 + 255 void, this project's
0/127/255, palette PNGs, single class values, greys, GeoTIFF nodata; class-index masks need
``--positive-values``); :func:`read_mask_on_grid` places a label on an image's pixel grid by map
position. The pixels themselves are decoded by :mod:`sam2elnet.data.images`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data import pixel_sample
from sam2elnet.data.georef import dataset_georeference, grid_kind
from sam2elnet.data.grid_cover import (
    FULL_COVER,
    PARTIAL_COVER_KIND,
    check_shared_georef,
    footprint_missed,
    partial_cover_note,
)
from sam2elnet.data.grids import (
    OtherGrid,
    image_header,
    other_grid,
    place_on_grid,
    raster_header,
)
from sam2elnet.data.images import (
    RasterImage,
    check_file,
    identical_channels,
    read_pixels,
)
from sam2elnet.data.mask_values import (
    continuous_share,
    mask_encoding,
)
from sam2elnet.data.naming import GEO_SUFFIXES, LOSSY_SUFFIXES
from sam2elnet.data.pair_sizes import mask_size_error
from sam2elnet.data.pixel_sample import valid_pixels
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "OtherGrid",
    "mask_size_error",
    "other_grid",
    "place_on_grid",
    "read_mask",
    "read_mask_on_grid",
    "image_like_label",
    "check_training_pair",
    "pixel_index_note",
    "image_values",
    "mask_like_image",
    "read_mask_valid",
    "write_decoded_mask",
]

KIND_NO_GEOREF_LABEL = "a label or its image without georeference, used by pixel index"
"""The kind a one-sided georeference warning is counted by (once per run,
:mod:`sam2elnet.utils.run_warnings`): the folder jobs' labels and the scene path's."""


def pixel_index_note(
    label: Path, label_geo: dict[str, Any], image_geo: dict[str, Any], image: str
) -> str | None:
    """The warning for a label and its image of one size where only one side is georeferenced
    (:func:`~sam2elnet.data.georef.grid_kind` ``"none"`` on the other): the pair is used by
    pixel index. ``label_geo`` / ``image_geo``: their ``RasterHeader.geo``; ``image``: the image
    as the message names it (e.g. ``"the scene"``). None when both or neither are
    georeferenced. Counted by :data:`KIND_NO_GEOREF_LABEL`."""
    label_none, image_none = grid_kind(label_geo) == "none", grid_kind(image_geo) == "none"
    if label_none == image_none:
        return None
    which = "the label" if label_none else image
    return f"{label.name}: {which} has no georeference, so the label is used by pixel index"


def read_mask(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Read a label as bool (H, W): True = object; ignored / nodata pixels are False.

    The values are decoded by :func:`~sam2elnet.data.mask_values.mask_encoding` (0/1, 0/255,
    0/1 + 255 ignore, palette, single class value, greys, GeoTIFF nodata; class-index masks need
    ``positive_values``). Multi-channel masks must have agreeing channels. Use
    :func:`read_mask_valid` when ignored pixels must be left out of a measure.

    Args:
        path: The mask file (PNG, JPEG, GeoTIFF, ...).
        shape: The image's (H, W); a different mask size is an error. None skips the check.
        image_path: The image file, named in the size-mismatch message.
        positive_values: Mask values that mean "object" (class-index masks).

    Returns:
        bool (H, W) array, True = object.

    Raises:
        DataError: missing or unreadable file, size mismatch (naming both files), channels that
            disagree, or a class-index mask without ``positive_values``.
    """
    return read_mask_valid(path, shape, image_path, positive_values)[0]


def read_mask_valid(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a label as (object, valid): two bool (H, W) arrays.

    ``valid`` is False where the mask says "ignore": the nodata tag, 255 in a 0/1 mask, 127 in
    this project's labels (tag or ``tRNS``), NaN.

    Args:
        path: The mask file.
        shape: The image's (H, W) (None skips the size check).
        image_path: The image file, named in the size-mismatch message.
        positive_values: Mask values that mean "object" (class-index masks).

    Returns:
        ``(object, valid)``: bool (H, W) with ignored pixels False in ``object``; ``valid`` bool
        (H, W), or None when every pixel is valid.

    Raises:
        DataError: as :func:`read_mask`.
    """
    p = Path(path)
    check_file(p, "mask")
    palette = _read_palette_indices(p)
    nodata_value = None
    if palette is not None:
        data, alpha = palette[None], False
    else:
        data, profile, alpha, _nodata = read_pixels(p)
        nodata_value = profile.get("nodata")
    if alpha:
        data = data[:-1]
    if data.ndim != 3 or data.shape[0] == 0:
        raise DataError("mask has no bands; re-export it as a single-band PNG", p)
    if shape is not None and tuple(data.shape[1:]) != tuple(shape):
        raise mask_size_error(p, data.shape[1], data.shape[2], shape, image_path)
    lossy = p.suffix.lower() in LOSSY_SUFFIXES
    if len(data) > 1 and identical_channels(data):
        data = data[:1]
    decoded = [
        mask_encoding(
            b,
            nodata=nodata_value,
            positive_values=positive_values,
            lossy=lossy,
            palette=palette is not None,
            path=p,
        ).apply(b)
        for b in data
    ]
    mask, ignore = decoded[0]
    if len(decoded) > 1:
        bands = [d[0] for d in decoded]
        votes = np.sum(bands, axis=0)
        disagree = float(np.mean((votes > 0) & (votes < len(bands))))
        if disagree > 0.01:
            raise DataError(
                f"mask has {len(bands)} channels that differ ({disagree:.1%} of pixels); "
                "save it as a single-band mask (0 = background, 255 = object)",
                p,
            )
        mask = votes * 2 > len(bands)
        igns = [d[1] for d in decoded if d[1] is not None]
        ignore = np.logical_or.reduce(igns) if igns else None
        if ignore is not None:
            mask &= ~ignore
    valid = None if ignore is None else ~ignore
    return np.ascontiguousarray(mask), valid


def write_decoded_mask(
    src: str | Path, dst: str | Path, positive_values: tuple[float, ...] | None = None
) -> Path:
    """Decode a mask once and write it in this project's label convention (0 / 255, 127 ignore).

    For pipelines that mix the dataset's own masks with labels this project wrote (``elnet
    experiment`` trains on truth masks plus auto-labels): after this, every reader reads every label
    with the default rule, and ``positive_values`` is applied to the dataset's masks only.

    Args:
        src: The mask file (any encoding :func:`read_mask_valid` reads).
        dst: Output path without suffix; ``.tif`` (keeping ``src``'s georeference) is appended
            when ``src`` is a TIFF, else ``.png``.
        positive_values: Mask values that mean "object" (class-index masks), as ``--positive-values``.

    Returns:
        The written file's path.

    Raises:
        DataError: as :func:`read_mask_valid` (e.g. a class-index mask without ``positive_values``),
            or the file cannot be written.
    """
    from sam2elnet.data.writers import write_mask

    p = Path(src)
    mask, valid = read_mask_valid(p, positive_values=positive_values)
    like = None
    out = Path(dst)
    if p.suffix.lower() in GEO_SUFFIXES:
        import rasterio

        with warnings.catch_warnings(), rasterio.open(p) as ds:
            warnings.simplefilter("ignore")
            prof = dataset_georeference(ds)
        like = RasterImage(np.zeros((1, *mask.shape), np.uint8), profile=prof, path=p)
        out = out.with_name(out.name + ".tif")
    else:
        out = out.with_name(out.name + ".png")
    return write_mask(out, mask, like=like, nodata=None if valid is None else ~valid)


def image_like_label(path: str | Path, probability_ok: bool = False) -> str:
    """Why a file given as a label looks like an image rather than a mask; "" when it can be a
    mask (or cannot be read: the label reader then says why).

    Palette PNGs are judged on their class indices (as :func:`read_mask_valid` reads them);
    other files on their valid pixels (nodata, NaN and alpha left out,
    :func:`sam2elnet.data.images.read_image`), band by band (at most 4): a file is an image when
    a band is continuous (:func:`sam2elnet.data.mask_values.continuous_share`). A colour-coded
    mask (each band 0/255) is not an image here; the label reader refuses its disagreeing
    channels with its own message.

    Args:
        path: The label file.
        probability_ok: The file may also be a probability map as ``--save-prob`` writes them
            (``elnet evaluate --pred``): "" as well for one band of uint8 greys or of valid
            values within 0..1 (floats), which look like an image (continuous values) yet are
            a prediction. Judged on the same sample (one read).

    Returns:
        ``""`` or one phrase, e.g. ``"3 bands that differ, a colour image"`` or ``"continuous
        greys, 97 % of the pixels away from 0 and the top value"``.
    """
    from sam2elnet.data.band_match import IDENTICAL_NORMALISED_ATOL

    p = Path(path)
    if _is_palette(p):
        return ""
    try:
        x = valid_pixels(p)
    except (DataError, OSError):
        return ""
    if probability_ok and x.shape[0] == 1:  # a probability map: uint8 greys or 0..1
        if x.dtype.name == "uint8" or bool(x.size and 0 <= x.min() and x.max() <= 1):
            return ""
    shares = [continuous_share(b) for b in x[:4]]
    share = max((v for v in shares if v is not None), default=None)
    if share is None:
        return ""
    if x.shape[0] >= 3:
        if np.issubdtype(x.dtype, np.integer):
            span = float(np.iinfo(x.dtype).max) - float(np.iinfo(x.dtype).min)
        else:
            span = float(np.ptp(x[np.isfinite(x)])) if np.isfinite(x).any() else 0.0
        if not identical_channels(x[:3, None, :], tol=IDENTICAL_NORMALISED_ATOL * span):
            return f"{x.shape[0]} bands that differ, a colour image"
    kind = "greys" if x.dtype == np.uint8 else f"{x.dtype} values"
    return f"continuous {kind}, {100 * share:.0f} % of the pixels away from 0 and the top value"


def image_values(path: str | Path) -> np.ndarray | None:
    """The distinct values of a file's valid pixels (nodata, NaN and alpha left out,
    :func:`sam2elnet.data.images.read_image`; a palette PNG's indices), all bands together,
    sorted; at most 3 (a sample of the pixels that holds more stops the count: an image). A
    raster (a palette PNG included) of more than
    :data:`~sam2elnet.data.pixel_sample.SAMPLE_PIXELS` pixels is judged on a decimated read
    (nearest: a mask's sample holds only its values). None when the file cannot be read (the
    image reader then says why)."""
    p = Path(path)
    idx = _read_palette_indices(p, sample=True)
    if idx is not None:
        x = idx.reshape(-1)
    else:
        try:
            x = valid_pixels(p)
        except (DataError, OSError):
            return None
        x = x[np.isfinite(x)] if np.issubdtype(x.dtype, np.floating) else x.reshape(-1)
    head = np.unique(x[:65536])
    if head.size > 2:
        return head[:3]
    return np.unique(x)[:3]


def mask_like_image(path: str | Path, values: np.ndarray | None = None) -> str:
    """Why a file given as an image looks like a label mask rather than an image; "" when it can
    be an image (or cannot be read).

    The rule is strict, so that no real image is refused: the valid pixels of all bands together
    take exactly two values, the lower one 0 (:func:`image_values`: a 0/255 or 0/1 mask, or a
    palette mask of background + one class). A constant file (an empty mask, or a blank tile) is
    not judged here: one value says nothing, the caller looks at other files.

    Args:
        path: The file given as an image.
        values: Its :func:`image_values`, when already read.

    Returns:
        ``""``, or one phrase such as ``"only the values 0 and 255, a mask"``.
    """
    v = image_values(path) if values is None else values
    if v is None or v.size != 2 or v[0] != 0:
        return ""
    return f"only the values 0 and {v[1]:g}, a mask"


def check_training_pair(image: str | Path, mask: str | Path) -> None:
    """Refuse a training pair whose label is an image (:func:`image_like_label`), e.g. a
    dataset with ``images/`` and ``masks/`` swapped, which trained without a word (the greys
    thresholded at 128 as the labels). Checked by ``elnet train`` on its first readable pair.

    Raises:
        UserError: naming the mask, what it looks like, and (when the image is a mask by
            :func:`mask_like_image`) that the two folders look swapped.
    """
    kind = image_like_label(mask)
    if not kind:
        return
    swapped = mask_like_image(image)
    if swapped:
        raise UserError(
            f"the dataset's images and masks look swapped: this label is an image ({kind}) "
            f"and its image {Path(image).name} is a mask ({swapped}); put the images in the "
            "image folder and the labels in the mask folder",
            mask,
        )
    raise UserError(
        f"a label that looks like an image ({kind}); training labels are masks (0/255, 0/1 or "
        "class values) named like their images: check the dataset's mask folder",
        mask,
    )


def _is_palette(path: Path) -> bool:
    """Whether ``path`` is a palette ("P" mode) PNG, from its header (no pixel decoded)."""
    if path.suffix.lower() != ".png":
        return False
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode == "P"
    except OSError:
        return False  # let the regular reader report the damage


def _read_palette_indices(path: Path, sample: bool = False) -> np.ndarray | None:
    """Class indices of a palette ("P" mode) PNG (uint8 (H, W)); None for any other file.

    VOC-style masks store class 1 with a colour, so reading their RGB would see three differing
    channels; the indices are decoded by :func:`mask_encoding` like any other mask values.
    With ``sample``, a PNG of more than :data:`~sam2elnet.data.pixel_sample.SAMPLE_PIXELS`
    pixels gives the (1, n) indices of GDAL's decimated read instead
    (:func:`~sam2elnet.data.pixel_sample.valid_pixels`, a palette band reads as its indices;
    None when it fails), never the whole file.
    """
    if not _is_palette(path):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            large = im.width * im.height > pixel_sample.SAMPLE_PIXELS
            idx = None if sample and large else np.asarray(im)
        if idx is None:
            idx = valid_pixels(path)[:1]
    except (DataError, OSError):
        return None  # let the regular reader report the damage
    return np.ascontiguousarray(idx.astype(np.uint8))


def read_mask_on_grid(
    path: str | Path,
    like: RasterImage | str | Path,
    positive_values: tuple[float, ...] | None = None,
    *,
    label: str = "label",
    shared: bool = False,
    annotated: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a raster label onto the pixel grid of image ``like``.

    The rule of :mod:`sam2elnet.data.grids` (the one ``elnet evaluate`` and ``elnet scene`` use):

    * Both georeferenced (CRS + transform, or GCP-only: >= 3 GCPs with a CRS) and on different
      grids (:func:`~sam2elnet.data.grids.other_grid`: another size, CRS, transform or GCPs):
      the label is placed by map position (:func:`~sam2elnet.data.grids.place_on_grid`, nearest
      neighbour; a GCP-only side through its GCPs with GDAL's thin plate spline,
      :data:`~sam2elnet.data.grids.GCP_METHOD`), whatever its extent, resolution, CRS or origin;
      image pixels the label does not cover are background and not valid. A label covering
      no pixel of the image is refused (:func:`~sam2elnet.data.grid_cover.no_overlap_error`),
      unless ``shared`` (:func:`~sam2elnet.data.grid_cover.footprint_missed`); one
      covering less than :data:`~sam2elnet.data.grid_cover.FULL_COVER` of it is warned about, once
      per run (:func:`~sam2elnet.data.grid_cover.partial_cover_note`, the share it covers).
      Only the label's window under the image's footprint is read (a regional label shared by
      many images, or a large one; :func:`~sam2elnet.data.windowed_mask.place_footprint_window`,
      the same pixels as the whole label's).
    * The same grid, or either side without a georeference: used by pixel index; when only one
      side is georeferenced a one-line warning says so.
    * Different size without a common georeference: stretched over the image (nearest
      neighbour), assuming the same extent, with a warning.

    The values are decoded by :func:`~sam2elnet.data.mask_values.mask_encoding` before warping.

    Args:
        path: The label raster.
        like: The image whose grid the label is placed on, read or a path (header only:
            :func:`~sam2elnet.data.grids.image_header`; the report's input-label cards).
        positive_values: Mask values that mean "object" (class-index masks).
        label: What the caller reads, in the messages of a label on another grid
            (``"label raster does not overlap the image ..."``; ``"coarse label"``: enhance).
        shared: ``path`` is one raster label for several images (a
            :class:`~sam2elnet.data.vector_shared.SharedRaster`): an image its footprint misses
            is an empty label (all background, not valid), said once per run
            (:func:`~sam2elnet.data.vector_shared.warn_no_features`), or with ``annotated`` none
            (:class:`~sam2elnet.data.grid_cover.FootprintMissed`); an image or label without
            georeference is refused (:func:`~sam2elnet.data.grid_cover.check_shared_georef`).

    Returns:
        ``(object, valid)``: bool (H, W) on ``like``'s grid; ``valid`` None when every pixel is
        covered and valid.

    Raises:
        DataError: unreadable label, a class-index mask without ``positive_values``, a label
            on another grid that does not overlap the image (not ``shared``), a ``shared``
            label or image without georeference, GCPs GDAL cannot place the label with, or
            (``like`` a path) an image file that cannot be read.
    """
    p, img = Path(path), image_header(like)
    shape: tuple[int, int] = img.shape  # type: ignore[assignment]  # image_header: never None
    image = img.path
    head = raster_header(p)
    if shared:  # a regional label is placed by map position, or not at all
        check_shared_georef(p, image, head.geo, img.geo)
    grid = other_grid(head, img)
    if grid is not None:
        from sam2elnet.data.windowed_mask import place_footprint_window

        placed = place_footprint_window(p, image, grid, positive_values, shared)
        if placed is None:  # the whole label, read and placed at once
            mask, valid = read_mask_valid(p, None, None, positive_values)
            grid = OtherGrid(grid.src_geo, mask.shape, grid.dst_geo, grid.dst_shape)
            placed = place_on_grid(mask, valid, grid, p, image)
        mask, valid, outside = placed
        if outside >= mask.size:  # refused, or (shared) an empty label, said once per run
            footprint_missed(p, image, grid, label=label, shared=shared, annotated=annotated)
            return mask, valid
        log.info("%s placed on the image grid by map position (%s)", p.name, grid.describe())
        if (share := 1 - outside / mask.size) < FULL_COVER:
            note = partial_cover_note(p, image, share, label=label)
            warn_once(log, PARTIAL_COVER_KIND, note)
        return mask, valid
    mask, valid = read_mask_valid(p, None, image, positive_values)
    if mask.shape == shape:
        note = pixel_index_note(p, head.geo, img.geo, f"the image {image}")
        if note is not None:
            warn_once(log, KIND_NO_GEOREF_LABEL, note)
        return mask, valid
    warn_once(
        log,
        "labels of another size without shared georeference, stretched over their images",
        f"{p.name} is {mask.shape[1]}x{mask.shape[0]} px but image {image} is "
        f"{shape[1]}x{shape[0]} and they share no georeference: the label is stretched over "
        "the image (same extent assumed)",
    )
    code = mask.astype(np.uint8)
    if valid is not None:
        code[~valid] = 2
    code = cv2.resize(code, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return code == 1, (None if valid is None else code != 2)
