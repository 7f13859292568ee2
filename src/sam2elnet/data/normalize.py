"""Turning raw pixel values into float32 in roughly [0, 1], the input the model expects.

Three methods, chosen per dataset and stored with a trained model (``NormalizationConfig`` is a
pydantic model so ``model_dump()`` / ``model_validate()`` round-trip it through a checkpoint):

- ``fixed``: divide by a fixed range (``low``/``high`` per band, default the dtype's range). Keeps
  absolute brightness, which is what makes a dark slick dark; the right choice for 8-bit SAR JPEGs.
- ``percentile``: per-image, per-band clip at ``p_low``/``p_high`` percentiles, then stretch.
  Robust for optical imagery with varying exposure.
- ``stats``: dataset statistics (per-band low/high percentiles over a sample of the training
  set, computed by :func:`compute_stats` / ``elnet stats``). Same scale for every image.

SAR intensities in linear power (float or uint16) can be converted to decibels first (``to_db``)
because their dynamic range is otherwise dominated by a few bright targets.

:func:`fit_normalization` chooses the configuration for a training set from its data: 8-bit
products keep the modality default (fixed 0..255 for SAR, per-image percentiles for optical), while
SAR stored as uint16 DN, float linear sigma0 or float dB gets dataset statistics (robust
percentiles), with linear values converted to dB first. The training data's robust range is
recorded (``data_low``/``data_high``/``data_dtype``) so
:func:`sam2elnet.data.input_range.check_input_range` can warn when an image given to a model is far
from what it was trained on (e.g. a dB image to a DN model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sam2elnet.data.images import RasterImage, read_image
from sam2elnet.errors import DataError
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.progress import track


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


def _prepare(data: np.ndarray, cfg: NormalizationConfig) -> np.ndarray:
    x = data.astype(np.float32, copy=True)
    if cfg.to_db:
        x = to_db(x, cfg.db_floor)
    return x


def _band_percentiles(
    x: np.ndarray, valid: np.ndarray | None, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    c = x.shape[0]
    flat = x.reshape(c, -1)
    if valid is not None:
        flat = flat[:, valid.reshape(-1)]
    if flat.shape[1] == 0:
        return np.zeros(c, np.float32), np.ones(c, np.float32)
    if flat.shape[1] > 65536:  # a strided subsample gives nearly the same percentiles, faster
        flat = flat[:, :: flat.shape[1] // 65536 + 1]
    q = np.percentile(flat, [lo, hi], axis=1).astype(np.float32)
    return q[0], q[1]


def image_percentiles(
    img: RasterImage, cfg: NormalizationConfig
) -> tuple[list[float], list[float]]:
    """Per-band ``p_low`` / ``p_high`` percentiles of an image's valid, finite pixels (after dB
    conversion when ``cfg.to_db``): the range the ``percentile`` method stretches to [0, 1], as
    :func:`normalize` computes it (a raster-order stride sample of at most 65,536 pixels).

    A ``fixed`` config with these ``low`` / ``high`` normalises every window of the image
    exactly as :func:`normalize` normalises the whole image (the training dataset's windowed
    reads of large files use it with the sample of :func:`sam2elnet.data.windowed_image.sample_image`).
    """
    x = _prepare(img.data, cfg)
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
    x = _prepare(data, cfg)
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
        img: the image as read (:func:`read_image`, ``--bands`` already applied).
        cfg: the model's normalisation.
        in_bands: bands the model takes; None accepts any count.
        path: the image, for messages.

    Raises:
        BandCountError: a band count the model cannot take.
        DataError: as :func:`normalize`.
    """
    from dataclasses import replace

    from sam2elnet.data.band_match import IDENTICAL_NORMALISED_ATOL, band_layout

    done: list[np.ndarray] = []

    def scaled() -> np.ndarray:
        if not done:
            done.append(normalize(img, cfg))
        return done[0]

    layout = band_layout(
        img.bands,
        in_bands,
        lambda: bool(np.allclose(scaled(), scaled()[:1], atol=IDENTICAL_NORMALISED_ATOL)),
        path,
        sar=cfg.sar,
        names=cfg.band_names,
        select=cfg.band_select,
    )
    if layout == "repeat":
        return normalize(replace(img, data=np.repeat(img.data, int(in_bands or 1), axis=0)), cfg)
    x = scaled()
    return np.ascontiguousarray(x[:1]) if layout == "first" else x


def read_image_or_sample(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> RasterImage:
    """The whole image (:func:`read_image`), or for a file above the windowed-read threshold
    (:func:`sam2elnet.data.windowed.use_windows`) its statistics sample as a (C, 1, n) image
    (:func:`sam2elnet.data.windowed_image.sample_image`, read in one streamed pass): what statistics
    over an image need, without holding a large file in memory."""
    from sam2elnet.data import windowed, windowed_image

    if windowed.use_windows(path):
        return windowed_image.sample_image(windowed_image.image_plan(path, sar, bands))
    return read_image(path, sar=sar, bands=bands)


def compute_stats(
    paths: Iterable[str | Path],
    cfg: NormalizationConfig | None = None,
    max_pixels: int = 20000,
    seed: int = 0,
    progress: bool = True,
    skips: SkipLog | None = None,
) -> NormalizationConfig:
    """Per-band dataset statistics over a random pixel sample of every image.

    Returns a copy of ``cfg`` with ``method="stats"`` and ``low``/``high`` (the ``p_low``/``p_high``
    percentiles), ``mean``/``std`` (of the data after optional dB conversion) and ``bands`` set.
    Memory stays bounded: at most ``max_pixels`` pixels per image are kept.

    ``skips``: the batch policy (``elnet stats``): an image that cannot be read, or has another
    band count than the first one read, is recorded there (a warning each) and left out; when
    none can be read, the DataError of :meth:`~sam2elnet.utils.batch.SkipLog.nothing_done`.
    Without it (training), or for a single image, such an image raises its own DataError.
    """
    base = cfg or NormalizationConfig()
    rng = np.random.default_rng(seed)
    samples: list[np.ndarray] = []
    bands: int | None = None
    dtype: str | None = None
    total = np.zeros(0)
    total_sq = np.zeros(0)
    count = 0
    path_list: Sequence[str | Path] = list(paths)
    if not path_list:
        raise DataError("no images to compute statistics from; check the dataset folder")
    for path in track(path_list, "stats", "img", progress):
        try:
            img = read_image_or_sample(path, sar=base.sar, bands=base.band_select)
            if bands is not None and img.bands != bands:
                raise DataError(
                    f"image has {img.bands} bands but earlier images have {bands}; "
                    "all images of a dataset need the same band count",
                    path,
                )
        except DataError as err:
            if skips is None or len(path_list) == 1:  # one image: its own error
                raise
            skips.add(path, err)
            continue
        if bands is None:
            bands = img.bands
            dtype = str(img.data.dtype)
            total = np.zeros(bands)
            total_sq = np.zeros(bands)
        x = _prepare(img.data, base).reshape(bands, -1)
        keep = img.valid.reshape(-1) & np.all(np.isfinite(x), axis=0)
        if base.to_db:  # zero / negative "power" is nodata or no signal, not -60 dB of sea
            keep &= np.all(img.data.reshape(bands, -1) > 0, axis=0)
        x = x[:, keep]
        if x.shape[1] == 0:
            continue
        total += x.sum(axis=1, dtype=np.float64)
        total_sq += (x.astype(np.float64) ** 2).sum(axis=1)
        count += x.shape[1]
        if x.shape[1] > max_pixels:
            x = x[:, rng.choice(x.shape[1], max_pixels, replace=False)]
        samples.append(x)
    if bands is None and skips:
        raise skips.nothing_done(len(path_list))
    if count == 0 or bands is None:
        raise DataError("every image is entirely nodata; check the nodata value of the files")
    allpix = np.concatenate(samples, axis=1)
    q = np.percentile(allpix, [base.p_low, base.p_high], axis=1)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return base.model_copy(
        update={
            "method": "stats",
            "low": [float(v) for v in q[0]],
            "high": [float(v) for v in q[1]],
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "bands": bands,
            "data_dtype": dtype,
            "data_low": [float(v) for v in q[0]],
            "data_high": [float(v) for v in q[1]],
        }
    )


# --------------------------------------------------------------------------- data-driven choice
def looks_like_db(values: np.ndarray) -> bool:
    """True when SAR values are already in decibels: floating point with a negative median.

    Linear sigma0/gamma0 and DNs are powers or amplitudes, >= 0 apart from a few noise-subtracted
    pixels; calibrated backscatter in dB is mostly negative (sea about -30..-10 dB, land up to a
    few dB above 0), so its median is below 0.
    """
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.floating):
        return False
    v = v[np.isfinite(v)]
    return bool(v.size) and float(np.median(v)) < 0.0


def sar_needs_db(img: RasterImage) -> bool:
    """Whether a SAR image holds linear values (DN, sigma0) that should be converted to dB: any
    dtype other than uint8 whose valid pixels do not already look like dB (:func:`looks_like_db`)."""
    if img.data.dtype == np.uint8:
        return False
    return not looks_like_db(img.data[:, img.valid])


def fit_normalization(
    paths: Sequence[str | Path],
    modality: str,
    *,
    bands: Sequence[int] | None = None,
    max_images: int = 32,
    progress: bool = False,
) -> NormalizationConfig:
    """The normalisation a model trained on ``paths`` should use, chosen from the data.

    * 8-bit images: :meth:`NormalizationConfig.for_modality` (SAR: fixed 0..255, which keeps the
      absolute brightness of display-scaled products such as the SOS JPEGs; optical: per-image
      percentile stretch).
    * SAR with more than 8 bits (uint16 DN, float32 linear sigma0, float32 dB): ``stats`` with the
      1st/99th percentiles of the training set; linear values (no negative value) are converted
      with :func:`to_db` first, values already in dB are not. Without this, DNs of 9..2029 scaled
      by the uint16 range reach the model as 0..0.03 and dB values (all negative) as zeros.
    * Optical with more than 8 bits keeps the per-image percentile stretch.

    At most ``max_images`` evenly spaced images are read. Every returned config records the
    training data's dtype and robust range (``data_dtype``/``data_low``/``data_high``) and the
    file bands used (``band_select``, from ``bands``; None = all).
    Raises DataError for an empty list, mixed band counts or all-nodata images.
    """
    plist = list(paths)
    if not plist:
        raise DataError("no training images to choose a normalisation from")
    if len(plist) > max_images:
        step = len(plist) / max_images
        plist = [plist[int(i * step)] for i in range(max_images)]
    base = NormalizationConfig.for_modality(modality)
    if bands:
        base = base.model_copy(update={"band_select": [int(b) for b in bands]})
    first = read_image_or_sample(plist[0], sar=base.sar, bands=base.band_select)
    if base.sar and first.data.dtype != np.uint8:
        base = base.model_copy(update={"to_db": sar_needs_db(first)})
        return compute_stats(plist, base, progress=progress)
    # keep the method; record the data's range for the input range check
    probe = compute_stats(plist, base.model_copy(update={"method": "stats"}), progress=progress)
    return base.model_copy(
        update={
            "data_dtype": probe.data_dtype,
            "data_low": probe.data_low,
            "data_high": probe.data_high,
        }
    )


def load_norm_stats(path: str | Path) -> NormalizationConfig:
    """A NormalizationConfig from ``elnet stats --out`` JSON (``{"normalization": {...}, ...}``)
    or from a bare config dict; DataError naming the file when it is neither."""
    import json

    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("normalisation statistics file does not exist; check the path", p) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"cannot read normalisation statistics ({err.__class__.__name__}); pass the JSON "
            "written by `elnet stats --out`",
            p,
        ) from None
    cfg = obj.get("normalization", obj) if isinstance(obj, dict) else None
    try:
        return NormalizationConfig.model_validate(cfg)
    except Exception as err:
        raise DataError(
            f"not a normalisation config ({str(err).splitlines()[0]}); pass the JSON written by "
            "`elnet stats --out`",
            p,
        ) from None


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
