"""Reading and writing rasters: images (C, H, W) and binary masks (H, W).

PNG and JPEG are decoded with OpenCV (fast, which matters in a training loop); TIFF / GeoTIFF and
anything else go through rasterio so georeference, nodata and odd dtypes survive. Every problem the
user can fix (missing file, corrupt file, wrong size, unsupported band count) becomes a
:class:`~sam2elnet.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import errno
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.naming import IMAGE_SUFFIXES  # noqa: F401  (re-exported; defined in data.naming)
from sam2elnet.errors import DataError
from sam2elnet.utils.atomic import atomic_path
from sam2elnet.utils.quiet import mentions_truncation, quiet_native_stderr

log = logging.getLogger(__name__)

_CV2_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_BANDS = 16
"""More bands than this is almost certainly a hyperspectral cube or a wrongly read file."""


@dataclass
class RasterImage:
    """An image as read from disk.

    ``data`` keeps the file's dtype (uint8, uint16, float32 ...) so normalisation can decide how to
    scale it; ``nodata`` is True where a pixel carries no measurement (None when the file has none).
    """

    data: np.ndarray
    nodata: np.ndarray | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return int(self.data.shape[1]), int(self.data.shape[2])

    @property
    def bands(self) -> int:
        """Number of bands C."""
        return int(self.data.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """Bool (H, W): True where the pixel holds data (the complement of ``nodata``)."""
        if self.nodata is None:
            return np.ones(self.shape, dtype=bool)
        return ~self.nodata


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{what} does not exist; check the path", path)
    if path.is_dir():
        raise DataError(f"expected a {what} file but found a folder; pass the file itself", path)


def _read_cv2(path: Path) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Decode PNG/JPEG to (C, H, W); return (data, profile, last_band_is_alpha)."""
    buf = np.fromfile(str(path), dtype=np.uint8)
    with quiet_native_stderr() as native:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if arr is not None and mentions_truncation(native.text):
        raise DataError(
            "image is truncated or damaged (the decoder reported: "
            f"{native.text.strip().splitlines()[-1][:120]}); re-export it or remove it",
            path,
        )
    if arr is None:
        raise DataError(
            "cannot decode image (corrupt, truncated or not an image); re-export it or remove it",
            path,
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    if c == 3:
        arr = arr[:, :, ::-1]  # BGR -> RGB
    elif c == 4:
        arr = arr[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    data = np.ascontiguousarray(np.moveaxis(arr, 2, 0))
    alpha = c in (2, 4)
    png = path.suffix.lower() == ".png"
    profile = {
        "driver": "PNG" if png else "JPEG",
        "width": int(data.shape[2]),
        "height": int(data.shape[1]),
        "count": int(data.shape[0]),
        "dtype": str(data.dtype),
        "crs": None,
        "transform": None,
        "nodata": _png_grey_nodata(buf) if png and c == 1 else None,
    }
    return data, profile, alpha


def _png_grey_nodata(buf: np.ndarray) -> float | None:
    """The grey value a single-band PNG marks transparent (its ``tRNS`` chunk), or None.

    GDAL's PNG driver reads and writes this chunk as the band's nodata value; label PNGs of this
    project carry ``tRNS`` = :data:`LABEL_NODATA` (:func:`write_mask`)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(buf.tobytes())) as im:
            t = im.info.get("transparency")
    except OSError:
        return None
    return float(t) if isinstance(t, int) else None


def check_complete(path: str | Path) -> None:
    """Raise :class:`DataError` when a PNG/JPEG file is truncated or damaged (GDAL reads such
    files without complaint, returning the missing rows as zeros); other formats pass."""
    p = Path(path)
    if p.suffix.lower() in _CV2_SUFFIXES:
        _check_file(p, "image")
        _read_cv2(p)


def _read_rasterio(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    """Read any GDAL raster; return (data, profile, last_band_is_alpha, nodata_mask)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
                data = src.read()
                profile = dict(src.profile)
                gcps, gcp_crs = src.gcps
                if gcps and src.crs is None:
                    # GCP-only georeference (Sentinel-1 GRD): kept for every output
                    profile["gcps"] = list(gcps)
                    profile["gcp_crs"] = gcp_crs
                alpha = src.count > 1 and src.colorinterp[-1] == ColorInterp.alpha
                if alpha and np.issubdtype(data.dtype, np.integer):
                    # GDAL tags the 4th band of any 4-band uint8 TIFF as alpha; a real alpha band
                    # only holds "transparent" and "opaque", a NIR band holds measurements.
                    top = np.iinfo(data.dtype).max
                    alpha = bool(np.all((data[-1] == 0) | (data[-1] == top)))
                nodata = None
                nd = src.nodata
                if nd is not None:
                    nodata = np.all(data == np.asarray(nd, dtype=data.dtype), axis=0)
                    if np.isnan(nd):
                        nodata = np.all(np.isnan(data), axis=0)
    except RasterioError as err:
        raise DataError(
            f"cannot read raster ({err.__class__.__name__}: corrupt, truncated or unsupported "
            "format); re-export it as GeoTIFF/PNG or remove it",
            path,
        ) from None
    return data, profile, alpha, nodata


def _read_any(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    if path.suffix.lower() in _CV2_SUFFIXES:
        data, profile, alpha = _read_cv2(path)
        return data, profile, alpha, None
    return _read_rasterio(path)


def _identical_channels(data: np.ndarray, tol: float = 0.0) -> bool:
    """True when all bands are (nearly) equal: a grey image stored as RGB."""
    if data.shape[0] < 2:
        return False
    ref = data[0].astype(np.float32)
    return all(
        float(np.max(np.abs(data[i].astype(np.float32) - ref))) <= tol
        for i in range(1, data.shape[0])
    )


def parse_bands(text: str | Sequence[int] | None) -> list[int] | None:
    """``--bands`` text (``"4,3,2"``, 1-based file band numbers) -> list; None/"" -> None.

    Raises :class:`~sam2elnet.errors.UserError` for anything but positive integers."""
    from sam2elnet.errors import UserError

    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    msg = f"--bands must be comma-separated band numbers (1-based, e.g. 4,3,2), got {text!r}"
    try:
        out = (
            [int(b) for b in text.split(",") if b.strip()]
            if isinstance(text, str)
            else [int(b) for b in text]
        )
    except (TypeError, ValueError):
        raise UserError(msg) from None
    if not out or min(out) < 1:
        raise UserError(msg)
    return out


def select_bands(data: np.ndarray, bands: Sequence[int] | None, path: Path | None) -> np.ndarray:
    """Bands ``bands`` (1-based) of (C, H, W) ``data``; DataError naming the file when one is
    missing."""
    if not bands:
        return data
    if max(bands) > data.shape[0]:
        raise DataError(
            f"--bands {','.join(map(str, bands))} asks for band {max(bands)} but the image has "
            f"{data.shape[0]} band(s) (alpha excluded); choose bands 1..{data.shape[0]}",
            path,
        )
    return data[[b - 1 for b in bands]]


def read_image(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> RasterImage:
    """Read an image as (C, H, W) in its native dtype.

    Alpha bands are dropped (alpha == 0 becomes nodata). With ``sar=True`` a grey image stored as
    3 identical channels (as in the SOS JPEGs) collapses to one band; other values keep all bands.
    ``bands`` (1-based numbers of the file's non-alpha bands, e.g. ``[4, 3, 2]``) keeps only those,
    in that order, before the band-count check.
    Float NaN / +-inf, the file's nodata value and transparent alpha become ``nodata`` (a pixel
    is nodata when it is nodata in every band for the tag, in any band for NaN / inf). A GCP-only
    georeference (Sentinel-1 GRD) is kept in ``profile["gcps"]`` / ``profile["gcp_crs"]``.
    """
    p = Path(path)
    _check_file(p, "image")
    data, profile, alpha, nodata = _read_any(p)
    if data.ndim != 3 or data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
        raise DataError("image has no pixels or no bands; re-export it", p)
    if alpha:
        a = data[-1]
        data = data[:-1]
        transparent = a == 0
        if transparent.any():
            nodata = transparent if nodata is None else (nodata | transparent)
    data = select_bands(data, bands, p)
    if data.shape[0] > MAX_BANDS:
        raise DataError(
            f"unsupported band count {data.shape[0]} (at most {MAX_BANDS}); "
            "select the bands you need into a new file",
            p,
        )
    if sar and data.shape[0] in (3, 4) and _identical_channels(data, tol=2.0):
        data = data[:1]
    if np.issubdtype(data.dtype, np.floating):
        bad = np.any(~np.isfinite(data), axis=0)  # NaN, +inf, -inf: no measurement
        if bad.any():
            nodata = bad if nodata is None else (nodata | bad)
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    if nodata is not None and not nodata.any():
        nodata = None
    profile.update(count=int(data.shape[0]), dtype=str(data.dtype))
    return RasterImage(data=np.ascontiguousarray(data), nodata=nodata, profile=profile, path=p)


LABEL_BACKGROUND = 0
LABEL_OBJECT = 255
LABEL_NODATA = 127
"""Label raster convention of every label this project writes (PNG and GeoTIFF): uint8,
0 = background, 255 = object, 127 = nodata (no measurement in the image; GeoTIFFs carry the
``nodata=127`` tag, PNGs a ``tRNS`` chunk for grey 127, which GDAL reads as nodata).
:func:`read_mask` reads 127 back as "ignore" where the file says so (tag / ``tRNS``) or holds
0 / 127 / 255 together; a {0, 127} file without either is a binary mask (127 = object)."""

_LOSSY_SUFFIXES = (".jpg", ".jpeg")
_MAX_LISTED_VALUES = 8
_MAX_CLASS_ID = 32
"""Masks whose values other than 0 / 255 are all small integers (<= 32) are class-index maps."""


def parse_positive_values(text: str | None) -> tuple[float, ...] | None:
    """Parse a ``--positive-values`` option: comma-separated numbers (``"1"``, ``"2,3"``,
    ``"100"``). None or "" -> None. Raises :class:`~sam2elnet.errors.UserError` on anything else."""
    from sam2elnet.errors import UserError

    if text is None or not str(text).strip():
        return None
    vals = []
    for part in str(text).split(","):
        try:
            vals.append(float(part.strip()))
        except ValueError:
            raise UserError(
                f"--positive-values: {part.strip()!r} is not a number; "
                "give the mask values that mean 'object', e.g. --positive-values 1 or 2,3"
            ) from None
    return tuple(vals)


@dataclass(frozen=True)
class MaskEncoding:
    """How the values of one mask file map to object / background / ignore.

    ``positive``: values that are object (exact match), or None to use ``threshold``;
    ``threshold``: object where ``value > threshold``; ``ignore``: values excluded from every
    measure (nodata tag, 255 "void" of 0/1 masks, 127 of this project's labels, NaN);
    ``rule``: one line describing the decision (shown in messages and docs).
    """

    rule: str
    positive: tuple[float, ...] | None = None
    threshold: float | None = None
    ignore: tuple[float, ...] = ()
    ignore_nan: bool = False

    def apply(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Bool (H, W) object mask and bool (H, W) ignore mask (None when nothing is ignored)."""
        a = np.asarray(values)
        ign = np.zeros(a.shape, dtype=bool)
        for v in self.ignore:
            ign |= (
                a == np.asarray(v).astype(a.dtype)
                if np.issubdtype(a.dtype, np.integer)
                else (a == v)
            )
        if self.ignore_nan and np.issubdtype(a.dtype, np.floating):
            ign |= np.isnan(a)
        if self.positive is not None:
            fg = np.isin(a, np.asarray(self.positive, dtype=np.float64).astype(a.dtype))
        else:
            with np.errstate(invalid="ignore"):
                fg = a > (self.threshold if self.threshold is not None else 0.5)
        fg &= ~ign
        return fg, (ign if ign.any() else None)


def _value_list(values: np.ndarray, counts: np.ndarray) -> str:
    order = np.argsort(-counts)[:_MAX_LISTED_VALUES]
    shown = ", ".join(
        f"{_fmt(values[i])} ({counts[i]} px)" for i in sorted(order, key=lambda i: values[i])
    )
    more = f" and {len(values) - len(order)} more" if len(values) > len(order) else ""
    return shown + more


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def mask_encoding(
    values: np.ndarray,
    *,
    nodata: float | None = None,
    positive_values: tuple[float, ...] | None = None,
    lossy: bool = False,
    palette: bool = False,
    path: str | Path | None = None,
) -> MaskEncoding:
    """Decide how a mask's values map to object / background / ignore (the documented rule).

    ``values`` is the mask band (or a decimated sample of it), any dtype. In order:

    1. ``nodata`` (the GeoTIFF tag) and NaN are *ignore*.
    2. ``positive_values`` given: exactly those values are object, the rest background.
    3. Floats within [0, 1] (probabilities): object where > 0.5.
    4. Values within {0, 1}: 1 is object. {0, 1, 255}: 1 object, 255 ignore ("void").
       Within {0, 255}: 255 object. {0, 127, 255} with both 127 and 255 present: this project's
       label convention (127 = nodata, ignored; the project's own files also carry the nodata
       tag / PNG ``tRNS``, so rule 1 already applies to them). Exactly one non-zero value (e.g.
       {0, 2}, {0, 100}, {0, 127} - a binary mask saved at half intensity -, {0, 1000} in 16
       bit): that value is object, unless it covers at most 0.05 % of the pixels and is below
       128 (a few faint pixels in an empty mask: rule 6). Palette PNGs follow the same rules on
       their class indices.
    5. Several class ids: values other than 0 / 255 all integers <= 32 (e.g. {0, 1, 2} or
       {0, 1, 2, 255}) in a lossless file are refused (rule 7).
    6. Greys (JPEG noise, anti-aliased edges, faint noise in an empty mask; any other 8-bit
       mask, or any lossy file): object where > 127 (> max/2 for a lossy file whose maximum is
       below 128).
    7. Anything else (class ids, or 16-bit values of several kinds) is
       refused: :class:`~sam2elnet.errors.DataError` listing the values found and how to map
       them with ``--positive-values``.
    """
    a = np.asarray(values)
    if positive_values is not None:  # no need to count values
        uniq, counts = a.ravel()[:0], np.zeros(0, dtype=np.int64)
    else:
        uniq, counts = value_counts(a, nodata)
    return encoding_from_counts(
        uniq,
        counts,
        dtype=a.dtype,
        nodata=nodata,
        positive_values=positive_values,
        lossy=lossy,
        palette=palette,
        path=path,
    )


def value_counts(values: np.ndarray, nodata: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, their pixel counts) of a mask band, without NaN / +-inf and
    the ``nodata`` value: what :func:`encoding_from_counts` decides from. Streamed readers add
    the counts of several strips with :func:`merge_counts`."""
    a = np.asarray(values).ravel()
    if np.issubdtype(a.dtype, np.floating):
        a = a[np.isfinite(a)]
    if nodata is not None and not np.isnan(nodata):
        a = a[a != np.asarray(float(nodata)).astype(a.dtype)]
    if a.dtype in (np.uint8, np.uint16):
        hist = np.bincount(a, minlength=1)
        uniq = np.flatnonzero(hist).astype(a.dtype)
        return uniq, hist[uniq.astype(np.intp)]
    return np.unique(a, return_counts=True)


def merge_counts(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Sum two :func:`value_counts` results (distinct values stay sorted)."""
    values = np.concatenate([a[0], b[0]])
    uniq, inv = np.unique(values, return_inverse=True)
    counts = np.bincount(inv, weights=np.concatenate([a[1], b[1]]), minlength=len(uniq))
    return uniq, counts.astype(np.int64)


def encoding_from_counts(
    uniq: np.ndarray,
    counts: np.ndarray,
    *,
    dtype: Any,
    nodata: float | None = None,
    positive_values: tuple[float, ...] | None = None,
    lossy: bool = False,
    palette: bool = False,
    path: str | Path | None = None,
) -> MaskEncoding:
    """:func:`mask_encoding` from the mask's distinct values and their pixel counts
    (:func:`value_counts`, NaN and ``nodata`` already left out) and its ``dtype``: the same rule,
    so a label read strip by strip is decoded exactly as if it were read whole."""
    ignore: list[float] = []
    if nodata is not None and not np.isnan(nodata):
        ignore.append(float(nodata))
    is_float = np.issubdtype(np.dtype(dtype), np.floating)
    uniq = np.asarray(uniq)
    counts = np.asarray(counts)
    total = int(counts.sum())
    nan = bool(is_float)
    if positive_values is not None:
        shown = ",".join(_fmt(v) for v in positive_values)
        return MaskEncoding(
            f"values {shown} are object (--positive-values)",
            positive=tuple(positive_values),
            ignore=tuple(ignore),
            ignore_nan=nan,
        )
    if total == 0:
        return MaskEncoding("no valid pixel", threshold=0.5, ignore=tuple(ignore), ignore_nan=nan)
    vmin, vmax = float(uniq[0]), float(uniq[-1])
    integral = bool(np.all(np.mod(uniq, 1) == 0)) if is_float else True
    if is_float and vmin >= 0 and vmax <= 1 and not (integral and len(uniq) <= 2):
        return MaskEncoding(
            "probabilities: > 0.5 is object", threshold=0.5, ignore=tuple(ignore), ignore_nan=nan
        )
    vals = set(float(u) for u in uniq)
    faint = False
    if integral and vmin >= 0:
        if vals <= {0.0, 1.0}:
            return MaskEncoding(
                "0/1: 1 is object", positive=(1.0,), ignore=tuple(ignore), ignore_nan=nan
            )
        if vals <= {0.0, 1.0, 255.0} and {1.0, 255.0} <= vals:
            return MaskEncoding(
                "0/1 + 255: 1 is object, 255 is ignored",
                positive=(1.0,),
                ignore=(*ignore, 255.0),
                ignore_nan=nan,
            )
        if vals <= {0.0, 255.0}:
            return MaskEncoding(
                "0/255: 255 is object", positive=(255.0,), ignore=tuple(ignore), ignore_nan=nan
            )
        if vals <= {0.0, 127.0, 255.0} and {127.0, 255.0} <= vals and not lossy:
            return MaskEncoding(
                "0/255 + 127: 255 is object, 127 (nodata) is ignored",
                positive=(255.0,),
                ignore=(*ignore, 127.0),
                ignore_nan=nan,
            )
        nonzero = sorted(vals - {0.0})
        faint = (
            len(nonzero) == 1 and nonzero[0] < 128 and int(counts[-1]) <= 5e-4 * total
        )  # a few faint pixels in an empty 0/255 mask (re-saved PNGs): greys, not a class
        if len(nonzero) == 1 and not lossy and not faint:
            v = nonzero[0]
            return MaskEncoding(
                f"single class value {_fmt(v)} is object",
                positive=(v,),
                ignore=tuple(ignore),
                ignore_nan=nan,
            )
    levels = vals - {0.0, 255.0}
    class_ids = integral and vmin >= 0 and max(levels, default=0) <= _MAX_CLASS_ID and not faint
    greys = vmax <= 255 and not class_ids
    if lossy or greys:
        thr = 127.0 if vmax >= 128 or not lossy else vmax / 2.0
        return MaskEncoding(
            f"greys: > {_fmt(thr)} is object", threshold=thr, ignore=tuple(ignore), ignore_nan=nan
        )
    what = "palette indices" if palette else "values"
    rule = (
        f"several class ids (integers 1-{_MAX_CLASS_ID} besides 0/255) are never guessed"
        if class_ids
        else "several kinds of values above 255 (16-bit class ids) are never guessed"
    )
    raise DataError(
        f"mask holds {len(uniq)} different {what}: {_value_list(uniq, counts)}; "
        f"this looks like a class-index mask (rule: {rule}; docs/data.md, mask values). "
        "Pass --positive-values with the value(s) that mean "
        "'object' (e.g. --positive-values 1 or 2,3; the rest becomes background), or re-export "
        "it as 0 = background, 255 = object",
        path,
    )


def binarize(values: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Binarise one mask band with :func:`mask_encoding`'s rule; ignored pixels are False."""
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return mask_encoding(values, path=path).apply(values)[0]


def read_mask(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Read a label as bool (H, W): True = object; ignored / nodata pixels are False.

    The values are decoded by :func:`mask_encoding` (0/1, 0/255, 0/1 + 255 ignore, palette,
    single class value, greys, GeoTIFF nodata; class-index masks need ``positive_values``).
    Multi-channel masks must have agreeing channels. ``shape`` is the image's (H, W): a
    different size is a DataError naming both files. Use :func:`read_mask_valid` when ignored
    pixels must be left out of a measure.
    """
    return read_mask_valid(path, shape, image_path, positive_values)[0]


def read_mask_valid(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a label as (object, valid): two bool (H, W) arrays; ``valid`` is False where the
    mask says "ignore" (nodata tag, 255 in a 0/1 mask, 127 in this project's labels, NaN), or
    None when every pixel is valid. Raises DataError like :func:`read_mask`."""
    p = Path(path)
    _check_file(p, "mask")
    palette = _read_palette_indices(p)
    nodata_value = None
    if palette is not None:
        data, alpha = palette[None], False
    else:
        data, profile, alpha, _nodata = _read_any(p)
        nodata_value = profile.get("nodata")
    if alpha:
        data = data[:-1]
    if data.ndim != 3 or data.shape[0] == 0:
        raise DataError("mask has no bands; re-export it as a single-band PNG", p)
    if shape is not None and tuple(data.shape[1:]) != tuple(shape):
        other = f" but image {image_path} is" if image_path is not None else ", expected"
        raise DataError(
            f"mask size {data.shape[2]}x{data.shape[1]}{other} {shape[1]}x{shape[0]} (WxH); "
            "re-export the mask at the image's size or remove the pair",
            p,
        )
    lossy = p.suffix.lower() in _LOSSY_SUFFIXES
    if len(data) > 1 and _identical_channels(data):
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


def verify_written(path: str | Path) -> bool:
    """True when an image file just written decodes again (PNG/JPEG) or opens with its last
    pixel readable (GeoTIFF): the check :func:`~sam2elnet.utils.atomic.atomic_path` runs before
    renaming into place, because ``cv2.imwrite`` and GDAL can report success on a full disk."""
    p = Path(path)
    if p.suffix.lower() in _CV2_SUFFIXES:
        buf = np.fromfile(str(p), dtype=np.uint8)
        with quiet_native_stderr():
            return buf.size > 0 and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) is not None
    import rasterio
    from rasterio.windows import Window

    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore")
        with rasterio.open(p) as src:
            src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
    return True


def _write_label_png(path: Path, arr: np.ndarray) -> None:
    """Write a uint8 (H, W) label (0 / 255 / :data:`LABEL_NODATA`) as a grey PNG whose ``tRNS``
    chunk marks :data:`LABEL_NODATA` transparent: GDAL (QGIS, rasterio) reads it as nodata = 127,
    as for the GeoTIFF labels, and :func:`read_mask` tells it from a {0, 127} binary mask."""
    from PIL import Image

    with atomic_path(path, verify=verify_written) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "L").save(
                tmp, format="PNG", transparency=LABEL_NODATA, compress_level=6
            )
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # atomic_path reports it as "disk full"
            raise DataError(
                f"cannot write PNG ({err}); check the folder is writable", path
            ) from None


def _write_png(path: Path, arr: np.ndarray) -> None:
    """Write (H, W) or (H, W, C RGB) uint8 as PNG atomically (deterministic bytes)."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    with atomic_path(path, verify=verify_written) as tmp, quiet_native_stderr():
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 6]):
            raise DataError("cannot write PNG; check the folder is writable", path)


def georeference(profile: dict[str, Any] | None) -> dict[str, Any]:
    """The georeferencing entries of a raster profile, ready for ``rasterio.open(..., "w")``.

    CRS + affine transform (EPSG or custom WKT CRS, kept as is), or, for a GCP-only raster
    (Sentinel-1 GRD), its ground control points and their CRS (``gcps``, ``crs``). Empty for an
    image without georeference (PNG/JPEG, plain TIFF).
    """
    out: dict[str, Any] = {}
    if not profile:
        return out
    if profile.get("crs") is not None:
        out["crs"] = profile["crs"]
        if profile.get("transform") is not None:
            out["transform"] = profile["transform"]
    elif profile.get("gcps"):
        out["gcps"] = profile["gcps"]
        out["crs"] = profile.get("gcp_crs")
    elif profile.get("transform") is not None and not _is_identity(profile["transform"]):
        out["transform"] = profile["transform"]
    return out


def dataset_georeference(ds: Any) -> dict[str, Any]:
    """:func:`georeference` of an open rasterio dataset (its GCPs included when it has no CRS):
    ``rasterio.open(path, "w", **profile, **dataset_georeference(ds))`` keeps it."""
    profile: dict[str, Any] = {"crs": ds.crs, "transform": ds.transform}
    if ds.crs is None:
        gcps, gcp_crs = ds.gcps
        if gcps:
            profile.update(gcps=list(gcps), gcp_crs=gcp_crs)
    return georeference(profile)


def georeference_kind(profile: dict[str, Any] | None) -> str:
    """ "crs" (CRS + transform), "gcps" (ground control points only) or "none"."""
    g = georeference(profile)
    if "gcps" in g:
        return "gcps"
    return "crs" if g.get("crs") is not None else "none"


def _is_identity(transform: Any) -> bool:
    try:
        return tuple(transform)[:6] == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    except TypeError:
        return False


def write_georeference(dst: Any, profile: dict[str, Any] | None) -> None:
    """Attach ``profile``'s GCPs to an open rasterio dataset (CRS and transform go in the creation
    profile via :func:`georeference`; GCPs are set here, which every GDAL version accepts)."""
    g = georeference(profile)
    if "gcps" in g:
        dst.gcps = (g["gcps"], g.get("crs"))


def _geotiff_profile(
    like: RasterImage | None, shape: tuple[int, int], dtype: str
) -> dict[str, Any]:
    profile: dict[str, Any] = {"driver": "GTiff", "compress": "deflate"}
    if like is not None:
        profile.update({k: v for k, v in georeference(like.profile).items() if k != "gcps"})
        if "gcps" in georeference(like.profile):
            profile.pop("crs", None)
    profile.update(height=shape[0], width=shape[1], count=1, dtype=dtype)
    return profile


def _write_tif(path: Path, arr: np.ndarray, like: RasterImage | None, nodata: float | None) -> None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    profile = _geotiff_profile(like, arr.shape, str(arr.dtype))
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings(), atomic_path(path, verify=verify_written) as tmp:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr[None])
            write_georeference(dst, like.profile if like is not None else None)


def write_mask(
    path: str | Path,
    mask: np.ndarray,
    like: RasterImage | None = None,
    nodata: np.ndarray | None = None,
) -> Path:
    """Write a bool (H, W) mask in the project's label convention (uint8, 0 = background,
    255 = object, 127 = nodata): PNG with a ``tRNS`` chunk marking 127 transparent (GDAL's PNG
    nodata), or GeoTIFF (``.tif``) keeping ``like``'s georeference (CRS + transform, or its
    ground control points) with the ``nodata=127`` tag.

    ``nodata`` (bool (H, W), optional) marks pixels without a measurement; when None, ``like``'s
    nodata mask is used. A GeoTIFF label always carries the tag, so GIS tools show nodata as
    transparent; :func:`read_mask` reads 127 back as "ignore".
    """
    p = Path(path)
    arr = (np.asarray(mask) > 0).astype(np.uint8) * LABEL_OBJECT
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {arr.shape}")
    if nodata is None and like is not None and like.nodata is not None:
        if like.nodata.shape == arr.shape:
            nodata = like.nodata
    if nodata is not None:
        arr[np.asarray(nodata, dtype=bool)] = LABEL_NODATA
    if p.suffix.lower() in (".tif", ".tiff"):
        _write_tif(p, arr, like, LABEL_NODATA)
    else:
        _write_label_png(p, arr)
    return p


def write_probability(path: str | Path, prob: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a probability map in [0, 1]: float32 GeoTIFF for ``.tif``, else 8-bit PNG (x255)."""
    p = Path(path)
    arr = np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)
    if arr.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {arr.shape}")
    if p.suffix.lower() in (".tif", ".tiff"):
        _write_tif(p, arr, like, None)
    else:
        _write_png(p, np.round(arr * 255).astype(np.uint8))
    return p


def write_image(path: str | Path, data: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a (C, H, W) image: PNG/JPEG for uint8 with 1 or 3 bands, GeoTIFF otherwise."""
    p = Path(path)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if p.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        profile = _geotiff_profile(like, arr.shape[1:], str(arr.dtype))
        profile["count"] = arr.shape[0]
        with atomic_path(p, verify=verify_written) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(tmp, "w", **profile) as dst:
                    dst.write(arr)
                    write_georeference(dst, like.profile if like is not None else None)
        return p
    if arr.dtype != np.uint8 or arr.shape[0] not in (1, 3):
        raise DataError("PNG/JPEG output needs uint8 with 1 or 3 bands; use a .tif name", p)
    hwc = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, 2)
    if p.suffix.lower() == ".png":
        _write_png(p, hwc)
    else:
        if hwc.ndim == 3:
            hwc = hwc[:, :, ::-1]
        with atomic_path(p, verify=verify_written) as tmp, quiet_native_stderr():
            cv2.imwrite(str(tmp), np.ascontiguousarray(hwc), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return p


def read_mask_on_grid(
    path: str | Path,
    like: RasterImage,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a raster label onto the pixel grid of image ``like``: (object, valid) bool (H, W).

    * Both georeferenced by CRS + transform: the label is placed by map position
      (``rasterio.warp.reproject``, nearest neighbour), whatever its extent, resolution, CRS or
      origin; image pixels the label does not cover are background and not valid.
    * Same size and the same grid, or either side without a georeference: used by pixel index;
      when only one side is georeferenced a one-line warning says so.
    * Different size without a common georeference: stretched over the image (nearest
      neighbour), assuming the same extent, with a warning.

    The values are decoded by :func:`mask_encoding` before warping. Raises DataError for
    unreadable labels and class-index masks without ``positive_values``.
    """
    p = Path(path)
    shape = like.shape
    lab_geo: dict[str, Any] = {}
    if p.suffix.lower() not in _CV2_SUFFIXES:
        _check_file(p, "mask")
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(p) as ds:
                    lab_geo = georeference(dict(ds.profile))
                    lab_shape = (ds.height, ds.width)
        except RasterioError:
            lab_geo = {}  # read_mask_valid reports the damage
            lab_shape = None
    else:
        lab_shape = None
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
            and _same_crs(lab_geo["crs"], img_geo["crs"])
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


def _same_crs(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - CRS comparison of odd WKT can raise in PROJ
        return str(a) == str(b)


def _warp_mask(
    path: Path,
    lab_geo: dict[str, Any],
    img_geo: dict[str, Any],
    shape: tuple[int, int],
    positive_values: tuple[float, ...] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a label and reproject it (nearest) onto the image grid; outside = not valid."""
    from rasterio.warp import Resampling, reproject

    mask, valid = read_mask_valid(path, None, None, positive_values)
    code = mask.astype(np.uint8)
    if valid is not None:
        code[~valid] = 2
    dst = np.full(shape, 2, np.uint8)
    reproject(
        code,
        dst,
        src_transform=lab_geo["transform"],
        src_crs=lab_geo["crs"],
        dst_transform=img_geo["transform"],
        dst_crs=img_geo["crs"],
        src_nodata=2,
        dst_nodata=2,
        resampling=Resampling.nearest,
    )
    valid_out = dst != 2
    log.info("%s placed on the image grid by map position (reprojected)", path.name)
    return dst == 1, (None if valid_out.all() else valid_out)
