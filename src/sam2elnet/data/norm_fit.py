"""Choosing a normalisation for a training set from its data, and dataset statistics.

:func:`fit_normalization` chooses the configuration (:class:`~sam2elnet.data.normalize.NormalizationConfig`)
for a training set from its data: 8-bit products keep the modality default (fixed 0..255 for
SAR, per-image percentiles for optical), while SAR stored as uint16 DN, float linear sigma0 or
float dB gets dataset statistics (robust percentiles, :func:`compute_stats`), with linear values
converted to dB first (:func:`looks_like_db` tells dB from linear values). The training data's
robust range is recorded (``data_low``/``data_high``/``data_dtype``) so
:func:`sam2elnet.data.input_range.check_input_range` can warn when an image given to a model is far
from what it was trained on (e.g. a dB image to a DN model). :func:`load_norm_stats` reads the
statistics ``elnet stats --out`` wrote back. Applying a configuration to pixels is
:mod:`sam2elnet.data.normalize`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from sam2elnet.data.images import RasterImage, read_image
from sam2elnet.data.normalize import NormalizationConfig, prepare
from sam2elnet.data.validity import ALL_NODATA_FLAG, NO_VALID_PIXEL
from sam2elnet.errors import DataError
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.progress import Added, track

__all__ = [
    "compute_stats",
    "fit_normalization",
    "load_norm_stats",
    "looks_like_db",
    "read_image_or_sample",
    "sar_needs_db",
]


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
    on_image: Callable[[str, RasterImage], None] | None = None,
) -> NormalizationConfig:
    """Per-band dataset statistics over a random pixel sample of every image.

    Returns a copy of ``cfg`` with ``method="stats"`` and ``low``/``high`` (the ``p_low``/``p_high``
    percentiles), ``mean``/``std`` (of the data after optional dB conversion) and ``bands`` set.
    Memory stays bounded: at most ``max_pixels`` pixels per image are kept.

    ``skips``: the batch policy (``elnet stats``): an image that cannot be read, or has another
    band count than the first one read, is recorded there (a warning each) and left out; when
    none can be read, the DataError of :meth:`~sam2elnet.utils.batch.SkipLog.nothing_done`.
    Without it (training), or for a single image, such an image raises its own DataError.

    ``on_image``: called with each image's path (str) and the :class:`RasterImage` read, raw
    values before any dB step (``elnet stats`` counts the untagged zero border of each image
    there, without reading it again).

    Raises:
        DataError: no images given; every image all nodata (no valid pixel); without ``skips``
            an image that is missing, corrupt or has another band count than the first; with
            ``skips``, every image skipped (:class:`~sam2elnet.utils.batch.NothingDoneError`).
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
    # the images skipped here said in the closing line (stats: 3/3 img in ..., skipped 1); those
    # an earlier stage put in skips (elnet stats --check) are its line's
    new_skips = Added(skips) if skips is not None else 0
    for path in track(path_list, "stats", "img", progress, skipped=new_skips):
        try:
            img = read_image_or_sample(path, sar=base.sar, bands=base.band_select)
            if bands is not None and img.bands != bands:
                raise DataError(
                    f"image has {img.bands} bands but earlier images have {bands}; "
                    "all images of a dataset need the same band count: give elnet train "
                    "--bands with bands every image has (e.g. --bands 1,2,3 for RGB images "
                    "next to RGBN ones), or move this image out of the dataset",
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
        if on_image is not None:
            on_image(str(path), img)
        x = prepare(img.data, base).reshape(bands, -1)
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
        db = "; with to_db, zero / negative power counts as nodata" if base.to_db else ""
        raise DataError(
            f"every image is {ALL_NODATA_FLAG} ({NO_VALID_PIXEL}{db}); check the nodata value "
            "or mask of the files"
        )
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

    * 8-bit images: :meth:`sam2elnet.data.normalize.NormalizationConfig.for_modality` (SAR: fixed 0..255, which keeps the
      absolute brightness of display-scaled products such as the SOS JPEGs; optical: per-image
      percentile stretch).
    * SAR with more than 8 bits (uint16 DN, float32 linear sigma0, float32 dB): ``stats`` with the
      1st/99th percentiles of the training set; linear values (no negative value) are converted
      with :func:`sam2elnet.data.normalize.to_db` first, values already in dB are not. Without this, DNs of 9..2029 scaled
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
