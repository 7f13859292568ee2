"""What a mask file's values mean: the one documented rule (object / background / ignore).

:func:`mask_encoding` decides from the values of a mask band (0/1, 0/255, 0/1 + 255 void, this
project's 0/127/255, palette PNGs, single class values, greys, GeoTIFF nodata; class-index masks
need ``--positive-values``); :func:`value_counts` / :func:`merge_counts` /
:func:`encoding_from_counts` make the same decision from value histograms streamed over a large
file. The label convention this project writes (:data:`LABEL_OBJECT`, :data:`LABEL_NODATA`) is
declared here. Files are read by :mod:`sam2elnet.data.masks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError

LABEL_BACKGROUND = 0
LABEL_OBJECT = 255
LABEL_NODATA = 127
"""Label raster convention of every label this project writes (PNG and GeoTIFF): uint8,
0 = background, 255 = object, 127 = nodata (no measurement in the image; GeoTIFFs carry the
``nodata=127`` tag, PNGs a ``tRNS`` chunk for grey 127, which GDAL reads as nodata).
:func:`read_mask` reads 127 back as "ignore" where the file says so (tag / ``tRNS``) or holds
0 / 127 / 255 together; a {0, 127} file without either is a binary mask (127 = object)."""
_MAX_LISTED_VALUES = 8
_MAX_CLASS_ID = 32
"""Masks whose values other than 0 / 255 are all small integers (<= 32) are class-index maps."""


def parse_positive_values(text: str | None) -> tuple[float, ...] | None:
    """Parse a ``--positive-values`` option.

    Args:
        text: Comma-separated numbers (``"1"``, ``"2,3"``, ``"100"``), or None / "".

    Returns:
        The values as floats, or None when nothing was given.

    Raises:
        UserError: a part is not a number.
    """
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
        """Apply the encoding to mask values.

        Args:
            values: (H, W) mask values, any dtype.

        Returns:
            ``(object, ignore)``: bool (H, W) object mask (ignored pixels False) and bool (H, W)
            ignore mask, or None when nothing is ignored.
        """
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

    Args:
        values: The mask band (or a decimated sample of it), any dtype, any shape.
        nodata: The file's nodata tag (ignored pixels), or None.
        positive_values: Values that mean "object" (``--positive-values``), or None.
        lossy: The file is JPEG (its values are noisy greys).
        palette: The values are palette indices (named so in messages).
        path: The file, named in messages.

    Returns:
        The :class:`MaskEncoding` (apply it with :meth:`MaskEncoding.apply`).

    Raises:
        DataError: a class-index mask without ``positive_values`` (rule 7).
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
    """Distinct values of a mask band and their pixel counts.

    NaN / +-inf and the ``nodata`` value are left out: what :func:`encoding_from_counts`
    decides from. Streamed readers add the counts of several strips with :func:`merge_counts`.

    Args:
        values: Mask values, any shape and dtype.
        nodata: The nodata tag to leave out, or None.

    Returns:
        ``(values, counts)``: sorted distinct values (the band's dtype) and int counts.
    """
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
    """Sum two :func:`value_counts` results.

    Args:
        a, b: ``(values, counts)`` pairs.

    Returns:
        ``(values, counts)`` over both, values sorted, counts int64.
    """
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
    """:func:`mask_encoding` from a mask's distinct values and their pixel counts.

    The same rule, so a label read strip by strip is decoded exactly as if it were read whole.

    Args:
        uniq: Sorted distinct values (:func:`value_counts`; NaN and ``nodata`` left out).
        counts: Their pixel counts.
        dtype: The mask band's dtype.
        nodata, positive_values, lossy, palette, path: As :func:`mask_encoding`.

    Returns:
        The :class:`MaskEncoding`.

    Raises:
        DataError: as :func:`mask_encoding`.
    """
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


MASK_END_TOL = 0.03
"""Share of a band's range [min(0, p0.1), p99.9] within which a value counts as at an end of it:
at a mask's background (0) or object value (its top). 3 % of 0..255 is the 8 grey levels of
JPEG noise around 0 and 255; 0..7 noise on a 0..237 road mask stays within it too."""
MASK_END_SHARE_MIN = 0.5
"""A band with fewer of its pixels at the ends of its range is continuous: an image, not a mask."""
_MAX_MASK_LEVELS = 8


def continuous_share(values: np.ndarray) -> float | None:
    """How far a band is from a mask: the share of its pixels away from both ends of its range,
    when that makes it an image; None when the band can be a mask.

    A mask's pixels sit at its background (0) and object value, give or take JPEG noise or
    anti-aliased edges; an image's pixels (grey, SAR, one band of a photo, uint16 DNs, float dB)
    spread over their range. The band can be a mask when it holds at most 8 distinct values
    (binary, ``{0,127,255}``, ``{0,40,100,200}``, ``{0,1000}``), or only integers within
    0..32 besides 255 (class ids, :data:`_MAX_CLASS_ID`), or when at least
    :data:`MASK_END_SHARE_MIN` of its pixels lie within :data:`MASK_END_TOL` of the range
    ``[min(0, p0.1), p99.9]`` from either end (robust percentiles: one bright outlier pixel of a
    uint16 scene does not make its DNs "near 0"). Calibration: the 400 sos-dev masks and 60
    roads-dev masks can be masks; the 400 sos-dev SAR JPEGs (one of them, 20919, with only 61
    grey levels 28..60) and the 60 roads-dev photos are images (tests/engine/test_labels_check.py).

    Args:
        values: The band's valid pixels (nodata left out), any shape, any real dtype.

    Returns:
        The share (0..1) of pixels away from both ends for a continuous band, else None.
    """
    a = np.asarray(values).ravel()
    if np.issubdtype(a.dtype, np.floating):
        a = a[np.isfinite(a)]
    if a.size == 0:
        return None
    uniq, _ = value_counts(a)
    if len(uniq) <= _MAX_MASK_LEVELS:
        return None
    u = uniq.astype(np.float64)
    small_ints = (u >= 0) & (u <= _MAX_CLASS_ID) & (np.mod(u, 1) == 0)
    if np.all(small_ints | (u == 255)):
        return None
    lo_p, hi = (float(v) for v in np.percentile(a, [0.1, 99.9]))
    lo = min(0.0, lo_p)
    tol = MASK_END_TOL * (hi - lo)
    x = a.astype(np.float64)
    at_ends = float(np.mean((x <= lo + tol) | (x >= hi - tol)))
    return None if at_ends >= MASK_END_SHARE_MIN else 1.0 - at_ends


def binarize(values: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Binarise one mask band with :func:`mask_encoding`'s rule.

    Args:
        values: (H, W) mask values, any dtype.
        path: The file, named in messages.

    Returns:
        bool (H, W), True = object; ignored pixels are False.

    Raises:
        DataError: as :func:`mask_encoding`.
    """
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return mask_encoding(values, path=path).apply(values)[0]
