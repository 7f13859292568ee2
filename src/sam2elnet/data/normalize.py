"""Turning raw pixel values into float32 in roughly [0, 1], the input the model expects.

Three methods, chosen per dataset and stored with a trained model (``NormalizationConfig`` is a
pydantic model so ``model_dump()`` / ``model_validate()`` round-trip it through a checkpoint):

- ``fixed``: divide by a fixed range (``low``/``high`` per band, default the dtype's range). Keeps
  absolute brightness, which is what makes a dark slick dark; the right choice for 8-bit SAR JPEGs.
- ``percentile``: per-image, per-band clip at ``p_low``/``p_high`` percentiles, then stretch.
  Robust for optical imagery with varying exposure.
- ``stats``: dataset statistics (per-band low/high percentiles over a sample of the training
  set, computed by :func:`sam2elnet.data.norm_fit.compute_stats` / ``elnet stats``). Same scale
  for every image.

SAR intensities in linear power (float or uint16) can be converted to decibels first (``to_db``)
because their dynamic range is otherwise dominated by a few bright targets.

This module applies a configuration (:func:`normalize`, :func:`normalize_for_model`) and
describes it; choosing one for a training set from its data, dataset statistics and reading
``elnet stats --out`` files back is :mod:`sam2elnet.data.norm_fit`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sam2elnet.data.images import RasterImage
from sam2elnet.errors import DataError


class NormalizationConfig(BaseModel):
    """How raw pixels become model input; stored with every trained model."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["fixed", "percentile", "stats"] = "percentile"
    sar: bool = False
    """SAR data: grey-as-RGB collapses to one band on reading."""
    to_db: bool = False
    """Convert linear intensity to 10*log10 before scaling (SAR power data)."""
    p_low: float = Field(1.0, ge=0.0, le=100.0)
    p_high: float = Field(99.0, ge=0.0, le=100.0)
    low: list[float] | None = None
    """Per-band lower bound (``fixed`` / ``stats``); one value broadcasts to all bands."""
    high: list[float] | None = None
    mean: list[float] | None = None
    """Per-band mean and std of the scaled data, informational (from ``compute_stats``)."""
    std: list[float] | None = None
    bands: int | None = None
    """Band count the statistics were computed for (None: any)."""
    db_floor: float = 1e-6
    data_dtype: str | None = None
    """dtype of the training images (``uint8``, ``uint16``, ``float32`` ...); None: not recorded."""
    data_low: list[float] | None = None
    """Per-band ``p_low`` percentile of the training data after dB conversion (when ``to_db``),
    in the data's own units; with ``data_high`` the range
    :func:`sam2elnet.data.input_range.check_input_range` compares to."""
    data_high: list[float] | None = None
    band_select: list[int] | None = None
    """File bands (1-based, e.g. ``[4, 3, 2]``) read before scaling (``--bands``); None: all."""
    band_names: list[str] | None = None
    """The training images' band descriptions, one per band used (e.g. ``["VV", "VH"]``), for
    messages (:mod:`sam2elnet.data.band_match`); None: the files had none."""

    @classmethod
    def for_modality(cls, modality: str) -> NormalizationConfig:
        """Sensible defaults: SAR keeps absolute brightness (fixed range), optical stretches."""
        if modality == "sar":
            return cls(method="fixed", sar=True)
        return cls(method="percentile", sar=False)


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == np.uint16:
        return 0.0, 65535.0
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def _per_band(values: list[float] | None, c: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float32)
    if arr.size == 1:
        return np.full(c, float(arr[0]), dtype=np.float32)
    if arr.size != c:
        raise DataError(
            f"normalisation has {arr.size} '{name}' values but the image has {c} bands; "
            "recompute statistics with `elnet stats` for this data"
        )
    return arr


def to_db(x: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Linear intensity -> decibels: ``10 * log10(max(x, floor))``, float32, same shape.

    The power-ratio decibel (ESA Sentinel-1 Level-1 product specification and SNAP's "Linear to/from
    dB" operator: sigma0_dB = 10 log10(sigma0)). Applied to amplitude DNs it gives half the
    amplitude decibel 20 log10(DN); the affine percentile stretch that follows removes that factor,
    so DN, linear power and dB versions of one scene normalise alike. ``floor`` keeps zeros finite.
    """
    return (10.0 * np.log10(np.maximum(x, floor))).astype(np.float32)


def prepare(data: np.ndarray, cfg: NormalizationConfig) -> np.ndarray:
    """A float32 copy of raw ``data`` (any shape), in dB (:func:`to_db`) when ``cfg.to_db``:
    the values every method scales (and :func:`~sam2elnet.data.norm_fit.compute_stats` counts)."""
    x = data.astype(np.float32, copy=True)
    if cfg.to_db:
        x = to_db(x, cfg.db_floor)
    return x


PERCENTILE_SAMPLE = 65536
"""At most this many pixels per image give the ``percentile`` method's range (a raster-order
stride sample: nearly the same percentiles as all pixels, faster)."""


def stride_sample(values: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` pixels of ``values`` (C, n): every k-th column in raster order,
    ``k = n // most + 1``; all of them when ``n <= most``. A view, no copy. The sampling rule of
    per-image statistics on an array in memory (:func:`image_percentiles`,
    :mod:`sam2elnet.data.input_range`); an image read in windows is first sampled while it is
    streamed, every ``ceil(n / STATS_SAMPLE)``-th pixel
    (:data:`sam2elnet.data.windowed_image.STATS_SAMPLE`), and this rule then applies to that
    sample."""
    if values.shape[1] > most:
        return values[:, :: values.shape[1] // most + 1]
    return values


def _band_percentiles(
    x: np.ndarray, valid: np.ndarray | None, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    c = x.shape[0]
    flat = x.reshape(c, -1)
    if valid is not None:
        flat = flat[:, valid.reshape(-1)]
    if flat.shape[1] == 0:
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    flat = stride_sample(flat, PERCENTILE_SAMPLE)
    q = np.percentile(flat, [lo, hi], axis=1).astype(np.float32)
    return q[0], q[1]


def image_percentiles(
    img: RasterImage, cfg: NormalizationConfig
) -> tuple[list[float], list[float]]:
    """Per-band ``p_low`` / ``p_high`` percentiles of an image's valid, finite pixels (after dB
    conversion when ``cfg.to_db``): the range the ``percentile`` method stretches to [0, 1], as
    :func:`normalize` computes it (:func:`stride_sample` of at most :data:`PERCENTILE_SAMPLE`
    pixels).

    A ``fixed`` config with these ``low`` / ``high`` normalises every window of the image
    exactly as :func:`normalize` normalises the whole image (the training dataset's windowed
    reads of large files use it with the sample of :func:`sam2elnet.data.windowed_image.sample_image`).
    """
    x = prepare(img.data, cfg)
    valid = None if img.nodata is None else ~img.nodata
    finite = np.all(np.isfinite(x), axis=0)
    if not finite.all():
        valid = finite if valid is None else (valid & finite)
        x = np.where(finite[None], x, 0.0).astype(np.float32)
    low, high = _band_percentiles(x, valid, cfg.p_low, cfg.p_high)
    return [float(v) for v in low], [float(v) for v in high]


def _fixed_dtype(cfg: NormalizationConfig, data: np.ndarray) -> np.dtype:
    """The dtype whose range a ``fixed`` config without ``low`` / ``high`` scales by: the training
    images' (``data_dtype``) when recorded, so a model of 8-bit images divides by 255 whatever
    container a new image comes in (8-bit values stored as uint16 or float32 reached it as
    0..0.004 or clipped to 1 before); else the image's own dtype (older model files)."""
    try:
        return np.dtype(cfg.data_dtype) if cfg.data_dtype else data.dtype
    except TypeError:
        return data.dtype


def normalize(
    img: RasterImage | np.ndarray,
    cfg: NormalizationConfig,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Scale an image to float32 (C, H, W) ~ [0, 1]; nodata pixels become 0.

    ``img`` may be a :class:`RasterImage` (its nodata mask is used) or a raw (C, H, W) array.
    A ``fixed`` config without ``low`` / ``high`` scales by the range of the training dtype
    (``data_dtype``: 0..255 for uint8, 0..65535 for uint16, 0..1 for float), or of the image's
    dtype when none is recorded; with ``to_db`` by -35..10 dB.

    Raises:
        DataError: per-band ``low`` / ``high`` of another band count than the image's, or a
            ``stats`` config without statistics.
    """
    if isinstance(img, RasterImage):
        data = img.data
        if valid is None and img.nodata is not None:
            valid = ~img.nodata
    else:
        data = np.asarray(img)
        if data.ndim == 2:
            data = data[None]
    x = prepare(data, cfg)
    c = x.shape[0]
    finite = np.all(np.isfinite(x), axis=0)
    if not finite.all():
        valid = finite if valid is None else (valid & finite)
        x = np.where(finite[None], x, 0.0).astype(np.float32)
    if cfg.method == "percentile":
        low, high = _band_percentiles(x, valid, cfg.p_low, cfg.p_high)
    else:
        low = _per_band(cfg.low, c, "low")
        high = _per_band(cfg.high, c, "high")
        if low is None or high is None:
            if cfg.method == "stats":
                raise DataError(
                    "normalisation method 'stats' has no statistics; run `elnet stats --data DIR` "
                    "or use method 'percentile'"
                )
            dlo, dhi = (-35.0, 10.0) if cfg.to_db else _dtype_range(_fixed_dtype(cfg, data))
            low = np.full(c, dlo, np.float32) if low is None else low
            high = np.full(c, dhi, np.float32) if high is None else high
    scale = np.maximum(high - low, 1e-6)
    out = (x - low[:, None, None]) / scale[:, None, None]
    np.clip(out, 0.0, 1.0, out=out)
    if valid is not None:
        out *= valid[None].astype(np.float32)
    return out.astype(np.float32, copy=False)


def normalize_for_model(
    img: RasterImage, cfg: NormalizationConfig, in_bands: int | None, path: Path | str | None
) -> np.ndarray:
    """The model input of an image: normalised (``in_bands``, H, W) float32 ~ [0, 1].

    The band count is matched first, by the one rule of every prediction path
    (:func:`sam2elnet.data.band_match.band_layout`), so a band count the model cannot take is
    that error (naming the file and ``--bands``), never a mismatch of the per-band statistics:
    a single band into a 3-band optical model is repeated *before* scaling (each copy gets that
    band's statistics), a grey image stored as identical bands gives a one-band model its first
    band.

    Args:
        img: the image as read (:func:`~sam2elnet.data.images.read_image`, ``--bands`` already
            applied).
        cfg: the model's normalisation.
        in_bands: bands the model takes; None accepts any count.
        path: the image, for messages.

    Raises:
        BandCountError: a band count the model cannot take.
        DataError: as :func:`normalize`.
    """
    from sam2elnet.data.band_match import band_layout, identical_bands

    done: list[np.ndarray] = []

    def scaled() -> np.ndarray:
        if not done:
            done.append(normalize(img, cfg))
        return done[0]

    layout = band_layout(
        img.bands,
        in_bands,
        lambda: identical_bands(scaled(), img.data),
        path,
        sar=cfg.sar,
        names=cfg.band_names,
        select=cfg.band_select,
        colour=img.bands == 3 and img.data.dtype == np.uint8,  # alpha already dropped
    )
    if layout == "repeat":
        return normalize(replace(img, data=np.repeat(img.data, int(in_bands or 1), axis=0)), cfg)
    x = scaled()
    return np.ascontiguousarray(x[:1]) if layout == "first" else x


def describe(cfg: NormalizationConfig) -> str:
    """One line for logs: what a normalisation config does to raw pixels."""
    parts = [f"{cfg.data_dtype or '?'} {'SAR' if cfg.sar else 'optical'}"]
    if cfg.band_select:
        parts.append(f"bands {','.join(map(str, cfg.band_select))}")
    if cfg.to_db:
        parts.append("linear -> dB (10*log10)")
    if cfg.method == "percentile":
        parts.append(f"per-image p{cfg.p_low:g}..p{cfg.p_high:g} stretch")
    elif cfg.method == "stats" and cfg.low is not None and cfg.high is not None:
        unit = " dB" if cfg.to_db else ""
        rng = ", ".join(f"{a:.4g}..{b:.4g}{unit}" for a, b in zip(cfg.low, cfg.high, strict=False))
        parts.append(f"dataset p{cfg.p_low:g}..p{cfg.p_high:g} range {rng} -> 0..1")
    else:
        dlo, dhi = (
            _dtype_range(np.dtype(cfg.data_dtype)) if cfg.data_dtype else ("dtype min", "dtype max")
        )
        lo = cfg.low if cfg.low is not None else dlo
        hi = cfg.high if cfg.high is not None else dhi
        parts.append(
            f"fixed {lo:g}..{hi:g} -> 0..1"
            if isinstance(lo, float)
            else f"fixed {lo}..{hi} -> 0..1"
        )
    return "normalisation: " + ", ".join(parts)
