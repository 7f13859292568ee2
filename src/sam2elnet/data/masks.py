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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.georef import crs_name, georeference, same_crs
from sam2elnet.data.images import (
    CV2_SUFFIXES,
    RasterImage,
    check_file,
    identical_channels,
    read_pixels,
)
from sam2elnet.data.mask_values import (
    mask_encoding,
)
from sam2elnet.errors import DataError

log = logging.getLogger(__name__)


_LOSSY_SUFFIXES = (".jpg", ".jpeg")


def mask_size_error(
    path: Path,
    height: int,
    width: int,
    shape: tuple[int, int],
    image_path: str | Path | None = None,
) -> DataError:
    """The error for a mask of ``height`` x ``width`` px where ``shape`` (H, W) was expected: one
    message for whole reads (:func:`read_mask_valid`) and windowed ones
    (:mod:`sam2elnet.data.windowed_mask`), naming the image when there is one."""
    other = f" but image {image_path} is" if image_path is not None else ", expected"
    return DataError(
        f"mask size {width}x{height}{other} {shape[1]}x{shape[0]} (WxH); "
        "re-export the mask at the image's size or remove the pair",
        path,
    )


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
    lossy = p.suffix.lower() in _LOSSY_SUFFIXES
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
    if p.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        from sam2elnet.data.georef import dataset_georeference

        with warnings.catch_warnings(), rasterio.open(p) as ds:
            warnings.simplefilter("ignore")
            prof = dataset_georeference(ds)
        like = RasterImage(np.zeros((1, *mask.shape), np.uint8), profile=prof, path=p)
        out = out.with_name(out.name + ".tif")
    else:
        out = out.with_name(out.name + ".png")
    return write_mask(out, mask, like=like, nodata=None if valid is None else ~valid)


def _read_palette_indices(path: Path) -> np.ndarray | None:
    """Class indices of a palette ("P" mode) PNG (uint8 (H, W)); None for any other file.

    VOC-style masks store class 1 with a colour, so reading their RGB would see three differing
    channels; the indices are decoded by :func:`mask_encoding` like any other mask values.
    """
    if path.suffix.lower() != ".png":
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode != "P":
                return None
            idx = np.asarray(im)
    except OSError:
        return None  # let the regular reader report the damage
    return np.ascontiguousarray(idx.astype(np.uint8))


def read_mask_on_grid(
    path: str | Path,
    like: RasterImage,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a raster label onto the pixel grid of image ``like``.

    * Both georeferenced by CRS + transform: the label is placed by map position
      (``rasterio.warp.reproject``, nearest neighbour), whatever its extent, resolution, CRS or
      origin; image pixels the label does not cover are background and not valid.
    * Same size and the same grid, or either side without a georeference: used by pixel index;
      when only one side is georeferenced a one-line warning says so.
    * Different size without a common georeference: stretched over the image (nearest
      neighbour), assuming the same extent, with a warning.

    The values are decoded by :func:`~sam2elnet.data.mask_values.mask_encoding` before warping.

    Args:
        path: The label raster.
        like: The image whose grid the label is placed on (its ``profile`` and ``shape``).
        positive_values: Mask values that mean "object" (class-index masks).

    Returns:
        ``(object, valid)``: bool (H, W) on ``like``'s grid; ``valid`` None when every pixel is
        covered and valid.

    Raises:
        DataError: unreadable label, or a class-index mask without ``positive_values``.
    """
    p = Path(path)
    shape = like.shape
    lab_geo, lab_shape = _raster_header(p)
    if "gcps" in lab_geo:
        lab_geo = {}  # placed by pixel index, as before
    img_geo = georeference(like.profile)
    both = (
        lab_geo.get("crs") is not None
        and "transform" in lab_geo
        and img_geo.get("crs") is not None
        and "transform" in img_geo
    )
    if both:
        same = (
            lab_shape == shape
            and same_crs(lab_geo["crs"], img_geo["crs"])
            and lab_geo["transform"].almost_equals(img_geo["transform"])
        )
        if same:
            return read_mask_valid(p, shape, like.path, positive_values)
        return _warp_mask(p, lab_geo, img_geo, shape, positive_values)
    mask, valid = read_mask_valid(p, None, like.path, positive_values)
    one_sided = bool(lab_geo.get("crs")) != bool(img_geo.get("crs") or img_geo.get("gcps"))
    if mask.shape == shape:
        if one_sided:
            log.warning(
                "note: %s: %s has no georeference, so the label is used by pixel index",
                p.name,
                "the label" if not lab_geo.get("crs") else f"the image {like.path}",
            )
        return mask, valid
    log.warning(
        "note: %s is %dx%d px but image %s is %dx%d and they share no georeference: the label "
        "is stretched over the image (same extent assumed)",
        p.name,
        mask.shape[1],
        mask.shape[0],
        like.path,
        shape[1],
        shape[0],
    )
    code = mask.astype(np.uint8)
    if valid is not None:
        code[~valid] = 2
    code = cv2.resize(code, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return code == 1, (None if valid is None else code != 2)


def _raster_header(p: Path) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """(:func:`~sam2elnet.data.georef.dataset_georeference`, (H, W)) of a raster GDAL reads;
    ``({}, None)`` for PNG / JPEG (decoded by OpenCV, no georeference) and for a file GDAL cannot
    open (the reader that follows reports the damage)."""
    if p.suffix.lower() in CV2_SUFFIXES or not p.is_file():
        return {}, None
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    from sam2elnet.data.georef import dataset_georeference

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(p) as ds:
                return dataset_georeference(ds), (ds.height, ds.width)
    except RasterioError:
        return {}, None


@dataclass
class OtherGrid:
    """Two rasters on different map grids (:func:`other_grid`): the georeference
    (:func:`~sam2elnet.data.georef.georeference`: ``crs`` + ``transform``) and (H, W) of the
    raster to move (``src``) and of the grid to put it on (``dst``)."""

    src_geo: dict[str, Any]
    src_shape: tuple[int, int]
    dst_geo: dict[str, Any]
    dst_shape: tuple[int, int]

    def describe(self) -> str:
        """e.g. ``64x64 px of 20 x 20 map units in EPSG:32633 -> 128x128 px of 10 x 10 map
        units in EPSG:32633`` (W x H; pixel size in the CRS's units)."""

        def one(geo: dict[str, Any], shape: tuple[int, int]) -> str:
            t = geo["transform"]
            size = f"{abs(t.a):.6g} x {abs(t.e):.6g} map units"
            return f"{shape[1]}x{shape[0]} px of {size} in {crs_name(geo['crs'])}"

        return f"{one(self.src_geo, self.src_shape)} -> {one(self.dst_geo, self.dst_shape)}"


def _grid_tolerance(transform: Any) -> float:
    """How far two grids' transform coefficients may differ and still be the same grid: 1/1000 of
    the smaller pixel side of ``transform`` (CRS units). A fixed tolerance cannot serve every CRS:
    1e-5 is a whole pixel of a 1 m grid in degrees (EPSG:4326, ~9e-6 degree pixels) but a
    hundred-thousandth of a 1 m pixel in metres (UTM)."""
    side = min(abs(transform.a) + abs(transform.d), abs(transform.b) + abs(transform.e))
    return side / 1000 if side > 0 else 1e-5


def other_grid(path: str | Path, like: str | Path) -> OtherGrid | None:
    """Whether raster ``path`` lies on another map grid than raster ``like``.

    Args:
        path: The raster to place (e.g. a ground-truth mask).
        like: The raster whose grid counts (e.g. the prediction).

    Returns:
        :class:`OtherGrid` when both are georeferenced by CRS + transform and their size, CRS or
        transform differ (transform coefficients compared with ``Affine.almost_equals`` to
        1/1000 of ``like``'s pixel size, :func:`_grid_tolerance`); None when they share the grid, or when either has no CRS + transform
        (PNG / JPEG, a plain TIFF, ground control points only: such pairs can only be used by
        pixel index).
    """
    src_geo, src_shape = _raster_header(Path(path))
    dst_geo, dst_shape = _raster_header(Path(like))
    both = all(
        g.get("crs") is not None and "transform" in g and "gcps" not in g
        for g in (src_geo, dst_geo)
    )
    if not both or src_shape is None or dst_shape is None:
        return None
    same = (
        src_shape == dst_shape
        and same_crs(src_geo["crs"], dst_geo["crs"])
        and src_geo["transform"].almost_equals(
            dst_geo["transform"], precision=_grid_tolerance(dst_geo["transform"])
        )
    )
    return None if same else OtherGrid(src_geo, src_shape, dst_geo, dst_shape)


def place_on_grid(
    mask: np.ndarray, valid: np.ndarray | None, grid: OtherGrid
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Resample a decoded mask onto ``grid.dst`` by map position, nearest neighbour.

    ``rasterio.warp.reproject`` (GDAL's warper, ``Resampling.nearest``: each target pixel takes
    the value of the source pixel under its centre, so class values stay exact; see the
    rasterio docs, "Reprojection"). Object, background and ignored pixels are carried as the
    codes 1 / 0 / 2; target pixels outside the source's footprint are not valid.

    Args:
        mask: bool (H, W) on ``grid.src``, True = object.
        valid: bool (H, W) or None (all valid).
        grid: from :func:`other_grid`.

    Returns:
        ``(object, valid, outside)`` on ``grid.dst_shape``: bool arrays (``valid`` None when
        every pixel is covered and valid) and the number of target pixels outside the
        source's footprint (int, 0 ..  H*W).
    """
    from rasterio.warp import Resampling, reproject

    code = mask.astype(np.uint8)
    if valid is not None:
        code[~valid] = 2
    dst = np.full(grid.dst_shape, 3, np.uint8)  # 3: outside the footprint
    reproject(
        code,
        dst,
        src_transform=grid.src_geo["transform"],
        src_crs=grid.src_geo["crs"],
        dst_transform=grid.dst_geo["transform"],
        dst_crs=grid.dst_geo["crs"],
        src_nodata=3,
        dst_nodata=3,
        resampling=Resampling.nearest,
    )
    valid_out = dst < 2
    return dst == 1, (None if valid_out.all() else valid_out), int((dst == 3).sum())


def _warp_mask(
    path: Path,
    lab_geo: dict[str, Any],
    img_geo: dict[str, Any],
    shape: tuple[int, int],
    positive_values: tuple[float, ...] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a label and reproject it (nearest) onto the image grid; outside = not valid."""
    mask, valid = read_mask_valid(path, None, None, positive_values)
    grid = OtherGrid(lab_geo, mask.shape, img_geo, shape)
    mask, valid, _ = place_on_grid(mask, valid, grid)
    log.info("%s placed on the image grid by map position (reprojected)", path.name)
    return mask, valid
