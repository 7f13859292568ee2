"""Is an image like the data a model was trained on? The input range check of prediction.

A model learns its input scaling from its training images (:mod:`sam2elnet.data.normalize`
records their dtype and per-band 1..99 % range in the model file: ``data_dtype``, ``data_low``,
``data_high``). A model of 8-bit images given a uint16 GRD, or a model of dB backscatter given
linear sigma0, runs without error and labels garbage, so ``annotate``, ``enhance``, ``scene`` and
``serve`` compare every image with that record (:func:`check_input_range`) and warn once per run
(:func:`sam2elnet.utils.run_warnings.warn_once`, kind :data:`INPUT_RANGE_KIND`).

The rule (docs/data.md, "Input range check"), its thresholds written once below:

* an image that already looks like dB (float, median < 0) given to a model that converts linear
  values to dB itself (``to_db``): every model, recorded range or not;
* an image that does not look like dB (median >= 0) given to a model trained on dB values
  (float training data, no conversion, recorded training range centred below 0): linear sigma0
  of 0..0.5 lies inside a widened dB range such as -36..9 dB, so the range rule alone would miss
  it; every model with a recorded range, the per-image ``percentile`` stretch included (a stretch
  of linear values is not a stretch of dB values);
* a *far* image, for models with a global scaling (``fixed`` / ``stats``) that recorded their
  training range (a per-image percentile stretch adapts to any range or dtype): a band is far
  when fewer than :data:`RANGE_MIN_NEAR` of its valid pixels (after dB conversion when the model
  converts) lie within that band's training range widened by :data:`RANGE_WIDEN` of its width on
  each side (never below 0 for unsigned-integer training data, so negative dB values never count
  as near an 8-bit model); one far band makes the image far (each band is judged on its own, so
  a near-infrared band scaled unlike its training data is not hidden by three fitting bands);
  a band is far too when its values are squeezed into a sliver of the training range: its
  1..99 % spread is above 0 but below :data:`RANGE_MIN_SPREAD` of the training range's width
  (float linear sigma0 of 0.002..0.13 given to a model of 8-bit images trained on 6..247: every
  value is "near" 0..367, yet the fixed scaling makes the whole image 0..0.0005, black to the
  model). A constant band (spread 0) is left to the quality evaluator's constant-image rule.

A band count the model cannot take is not a warning but an error
(:class:`~sam2elnet.errors.BandCountError`, :func:`sam2elnet.data.images.match_bands`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2elnet.data.normalize import looks_like_db, to_db

__all__ = [
    "INPUT_RANGE_KIND",
    "RANGE_MIN_NEAR",
    "RANGE_MIN_SPREAD",
    "RANGE_SAMPLE",
    "RANGE_WIDEN",
    "ZERO_MIN_FRACTION",
    "ZERO_PIXELS_KIND",
    "check_input_range",
    "check_zero_pixels",
]

RANGE_WIDEN = 0.5
"""The training 1..99 % range is widened by this fraction of its width on each side."""
RANGE_MIN_NEAR = 0.5
"""An image is far when fewer than this fraction of its valid pixels lie in the widened range."""
RANGE_MIN_SPREAD = 0.02
"""A band is far when its 1..99 % spread (> 0) is below this fraction of the training range's
width: the model would see an almost constant image. 2 %: 8-bit SAR scenes span tens of grey
levels of a 0..255 training range (a calm sea in sos-dev 10-30 %), dB scenes several dB of a
~20 dB range; float linear sigma0 (0..0.2) against an 8-bit range spans < 0.1 %."""
RANGE_SAMPLE = 100_000
"""At most this many pixels per image are compared (a raster-order stride sample)."""
ZERO_MIN_FRACTION = 0.01
""":func:`check_zero_pixels` speaks when at least this fraction of the valid pixels is <= 0 in
every band: a no-data border, not the odd noise-floor zero inside a swath."""
ZERO_PIXELS_KIND = "pixels of 0 without a nodata tag, given to a model that converts to dB"
"""The kind :func:`check_zero_pixels`' warning is counted by (once per run)."""
INPUT_RANGE_KIND = "pixel values unlike the model's training data"
"""The kind the warning is counted by (once per run, :mod:`sam2elnet.utils.run_warnings`)."""


def _unsigned(dtype: str | None) -> bool:
    try:
        return dtype is not None and np.issubdtype(np.dtype(dtype), np.unsignedinteger)
    except TypeError:
        return False


def _trained_on_db(cfg: Any) -> bool:
    """The model's training images were already in dB: float data, no conversion by the model,
    and a training range centred below 0 (sea about -30..-10 dB, land up to a few dB above 0)."""
    try:
        floating = np.issubdtype(np.dtype(cfg.data_dtype), np.floating)
    except TypeError:
        return False
    mid = (np.asarray(cfg.data_low, np.float64) + np.asarray(cfg.data_high, np.float64)) / 2
    return bool(floating and not cfg.to_db and float(np.mean(mid)) < 0)


def _what_to_do(dtype: Any, cfg: Any) -> str:
    """The advice of a far image: the conversion that makes it like the training data."""
    if _trained_on_db(cfg):
        return (
            "the model was trained on dB values: convert the image to dB (10*log10 of linear "
            "sigma0) first, or train a model on this kind of data"
        )
    if cfg.data_dtype == "uint8" and np.dtype(dtype) != np.uint8:
        return (
            "the model was trained on 8-bit images: scale the image to 0..255 as its training "
            "images were (e.g. gdal_translate -ot Byte -scale MIN MAX 0 255), or train a model "
            "on this kind of data"
        )
    return (
        "convert the image like the training data (same dtype and units) or train a model on "
        "this kind of data"
    )


def _band_names(cfg: Any, n: int) -> list[str]:
    """How the warning names the ``n`` bands compared: file band numbers (``band_select``)."""
    sel = list(cfg.band_select or [])
    return [str(sel[i]) if len(sel) == n else str(i + 1) for i in range(n)]


def check_input_range(values: np.ndarray, dtype: np.dtype | str, cfg: Any) -> str | None:
    """A warning text when raw pixel ``values`` are far from the model's training range.

    Args:
        values: Raw valid pixels of one image, (C, n) or (n,), in the file's units (before any
            dB conversion); non-finite values are ignored.
        dtype: The image's dtype (``uint8``, ``uint16``, ``float32`` ...), for the message.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig`.

    Returns:
        None when the image fits (or the rule does not apply: the module docstring); else one
        sentence: the ranges (1..99 %, in the data's units, dB when the model converts; per far
        band for a multiband image), the dtypes, the fraction of pixels near the training range
        and what to do. The caller adds the file name.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    v = v[:, np.all(np.isfinite(v), axis=0)]
    if v.shape[1] == 0:
        return None
    if v.shape[1] > RANGE_SAMPLE:
        v = v[:, :: v.shape[1] // RANGE_SAMPLE + 1]
    trained = f"{cfg.data_dtype or 'unknown dtype'}"
    if cfg.to_db and np.issubdtype(np.dtype(dtype), np.floating) and looks_like_db(v):
        return (
            f"pixel values {v.min():.3g}..{v.max():.3g} ({dtype}) look like dB already, but the "
            f"model was trained on linear {trained} data that it converts to dB itself; give it "
            "linear values (10**(dB/10)) or train a model on dB data"
        )
    if cfg.data_low is None or cfg.data_high is None:
        return None  # an older model file: no training range recorded
    if _trained_on_db(cfg) and not looks_like_db(v):
        q = np.percentile(v, [1, 99])
        return (
            f"pixel values 1..99 % {q[0]:.4g}..{q[1]:.4g} ({dtype}) are not in dB (median >= 0), "
            f"but the model was trained on dB values ({min(cfg.data_low):.4g}.."
            f"{max(cfg.data_high):.4g} dB, {cfg.data_dtype}); convert the image to dB (10*log10 "
            "of linear sigma0) first, or train a model on this kind of data"
        )
    if cfg.method == "percentile":
        return None  # the per-image stretch adapts to any range and dtype
    x = to_db(v, cfg.db_floor).astype(np.float64) if cfg.to_db else v
    lo = np.asarray(cfg.data_low, np.float64)
    hi = np.asarray(cfg.data_high, np.float64)
    names = _band_names(cfg, x.shape[0])
    if lo.size != x.shape[0]:  # grey vs grey-as-RGB and the like: compare the overall range
        lo, hi = np.array([lo.min()]), np.array([hi.max()])
        x, names = x.reshape(1, -1), []
    lo, hi = np.broadcast_to(lo, x.shape[0]), np.broadcast_to(hi, x.shape[0])
    span = np.maximum(hi - lo, 1e-6)
    near_lo = lo - RANGE_WIDEN * span
    if not cfg.to_db and _unsigned(cfg.data_dtype):  # no negative value (dB) is near uint data
        near_lo = np.maximum(near_lo, 0.0)
    inside = (x >= near_lo[:, None]) & (x <= (hi + RANGE_WIDEN * span)[:, None])
    frac = inside.mean(axis=1)
    q1, q99 = np.percentile(x, [1, 99], axis=1)
    spread = (q99 - q1) / span  # the band's 1..99 % spread as a fraction of the training width
    squeezed = (spread > 0) & (spread < RANGE_MIN_SPREAD)
    far = np.flatnonzero((frac < RANGE_MIN_NEAR) | squeezed)
    if far.size == 0:
        return None
    unit = " dB" if cfg.to_db else ""

    def how_far(b: int, pixels: str) -> str:
        if frac[b] < RANGE_MIN_NEAR:
            return f"only {float(frac[b]):.0%} of {pixels} fall near it"
        return (
            f"{pixels} span only {float(spread[b]):.2%} of its width (an almost constant image "
            "to the model)"
        )

    if x.shape[0] == 1:
        return (
            f"pixel values are far from the model's training range: 1..99 % {q1[0]:.4g}.."
            f"{q99[0]:.4g}{unit} ({dtype}) vs {float(lo.min()):.4g}..{float(hi.max()):.4g}{unit} "
            f"({trained}); {how_far(0, 'the pixels')}, so predictions are unreliable; "
            + _what_to_do(dtype, cfg)
        )
    parts = []
    for b in far:
        near = (
            f"{float(frac[b]):.0%} of its pixels near it"
            if frac[b] < RANGE_MIN_NEAR
            else how_far(b, "its pixels")
        )
        parts.append(
            f"band {names[b]} 1..99 % {q1[b]:.4g}..{q99[b]:.4g}{unit} vs {lo[b]:.4g}.."
            f"{hi[b]:.4g}{unit}, {near}"
        )
    which = ", ".join(names[b] for b in far)
    return (
        f"pixel values of band{'s' if far.size > 1 else ''} {which} (of {x.shape[0]}) are far "
        f"from the model's training range ({dtype} vs {trained}): "
        + "; ".join(parts)
        + ", so predictions are unreliable; "
        + _what_to_do(dtype, cfg)
    )


def check_zero_pixels(values: np.ndarray, cfg: Any) -> str | None:
    """A warning text when many valid pixels are 0 (or below) in every band and the model
    converts linear values to dB (``to_db``: trained on uint16 DN or float linear sigma0).

    Sentinel-1 GRD measurement GeoTIFFs (and many SNAP / GDAL exports of linear sigma0) fill the
    no-data border of the swath with 0 without a nodata tag. Such a 0 has no decibel value
    (``10 log10(0) = -inf``; :func:`~sam2elnet.data.normalize.to_db` floors it at
    ``10 log10(db_floor)`` = -60 dB), so the model sees the darkest possible sea there and labels
    the whole border as oil (measured: a tiny model trained on linear sigma0 labelled 97 % of
    an untagged zero border as foreground; tagged, the border is 127). The pixels are not made
    nodata here: exact zeros also occur inside a swath after thermal noise removal (calm water,
    slicks), where they are measurements. The warning says how to tag a border.

    Args:
        values: Raw valid pixels of one image, (C, n) or (n,), in the file's units (pixels
            under the file's nodata tag already left out).
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig`.

    Returns:
        None when the model does not convert to dB or fewer than :data:`ZERO_MIN_FRACTION` of
        the pixels are <= 0 in every band; else one sentence (the caller adds the file name).
    """
    if not getattr(cfg, "to_db", False):
        return None
    v = np.asarray(values)
    if v.ndim == 1:
        v = v[None]
    if v.shape[1] == 0:
        return None
    if v.shape[1] > RANGE_SAMPLE:
        v = v[:, :: v.shape[1] // RANGE_SAMPLE + 1]
    share = float(np.mean(np.all(v <= 0, axis=0)))
    if share < ZERO_MIN_FRACTION:
        return None
    return (
        f"{share:.1%} of the pixels are 0 (or below) and the file does not tag them as nodata; "
        "the model converts to dB, where 0 has no value (floored to the darkest sea, so they are "
        "labelled like oil). Sentinel-1 GRD and many SNAP exports fill the no-data border "
        "with 0: if these pixels are no data, tag them (gdal_edit.py -a_nodata 0 FILE, or "
        "gdal_translate -a_nodata 0) and they become nodata (127) in the labels"
    )
