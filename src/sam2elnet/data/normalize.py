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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from sam2elnet.data.raster import RasterImage, read_image
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
    """Linear intensity -> decibels, with a floor so zeros do not become -inf."""
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


def normalize(
    img: RasterImage | np.ndarray,
    cfg: NormalizationConfig,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Scale an image to float32 (C, H, W) ~ [0, 1]; nodata pixels become 0.

    ``img`` may be a :class:`RasterImage` (its nodata mask is used) or a raw (C, H, W) array.
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
            dlo, dhi = (-35.0, 10.0) if cfg.to_db else _dtype_range(data.dtype)
            low = np.full(c, dlo, np.float32) if low is None else low
            high = np.full(c, dhi, np.float32) if high is None else high
    scale = np.maximum(high - low, 1e-6)
    out = (x - low[:, None, None]) / scale[:, None, None]
    np.clip(out, 0.0, 1.0, out=out)
    if valid is not None:
        out *= valid[None].astype(np.float32)
    return out.astype(np.float32, copy=False)


def compute_stats(
    paths: Iterable[str | Path],
    cfg: NormalizationConfig | None = None,
    max_pixels: int = 20000,
    seed: int = 0,
    progress: bool = True,
) -> NormalizationConfig:
    """Per-band dataset statistics over a random pixel sample of every image.

    Returns a copy of ``cfg`` with ``method="stats"`` and ``low``/``high`` (the ``p_low``/``p_high``
    percentiles), ``mean``/``std`` (of the data after optional dB conversion) and ``bands`` set.
    Memory stays bounded: at most ``max_pixels`` pixels per image are kept.
    """
    base = cfg or NormalizationConfig()
    rng = np.random.default_rng(seed)
    samples: list[np.ndarray] = []
    bands: int | None = None
    total = np.zeros(0)
    total_sq = np.zeros(0)
    count = 0
    path_list: Sequence[str | Path] = list(paths)
    if not path_list:
        raise DataError("no images to compute statistics from; check the dataset folder")
    for path in tqdm(path_list, desc="stats", disable=not progress, leave=False):
        img = read_image(path, sar=base.sar)
        if bands is None:
            bands = img.bands
            total = np.zeros(bands)
            total_sq = np.zeros(bands)
        elif img.bands != bands:
            raise DataError(
                f"image has {img.bands} bands but earlier images have {bands}; "
                "all images of a dataset need the same band count",
                path,
            )
        x = _prepare(img.data, base).reshape(bands, -1)
        keep = img.valid.reshape(-1) & np.all(np.isfinite(x), axis=0)
        x = x[:, keep]
        if x.shape[1] == 0:
            continue
        total += x.sum(axis=1, dtype=np.float64)
        total_sq += (x.astype(np.float64) ** 2).sum(axis=1)
        count += x.shape[1]
        if x.shape[1] > max_pixels:
            x = x[:, rng.choice(x.shape[1], max_pixels, replace=False)]
        samples.append(x)
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
        }
    )
