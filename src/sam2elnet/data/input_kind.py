"""Is an image the kind of image a model was trained on? Two checks of prediction that the
value-range rule (:mod:`sam2elnet.data.input_range`) cannot see.

* :func:`check_zero_border`: a multi-band image given to an optical model with an untagged
  no-data margin, pixels of exactly 0 in every band forming a region that touches the image edge
  (a reprojected or clipped scene's fill). The model labels the margin like image content (a
  roads model found road on 6.6 % of such a margin). :func:`~sam2elnet.data.zero_pixels.
  check_zero_pixels` speaks for models that convert to dB; this one for the others.
* :func:`check_modality`: SAR backscatter in dB (one float band, median below 0) given to an
  optical 3-band model. The grey band is repeated to R, G and B
  (:func:`sam2elnet.data.band_match.band_layout`) and a percentile stretch adapts to any range,
  so nothing else objects (a roads model labelled 52 % of a dB scene as road). The other way,
  a colour photo into a one-band SAR model, is refused by the band-count rule, whose message
  then names the modality, unless ``--bands 1`` picks one of its colour bands: that is
  :func:`check_colour_into_sar`'s case.
* :func:`check_colour_into_sar`: an 8-bit image whose first three bands differ like a colour
  photo's (:func:`band_difference` above :data:`COLOUR_MIN_DIFFERENCE`) given to a SAR model of
  one or two bands, its bands picked with ``--bands`` (judged on all of the file's bands).
* :func:`check_grey_into_colour`: an 8-bit image of three identical bands (grey stored as RGB,
  as the SOS SAR JPEGs; :func:`band_difference` at most :data:`GREY_MAX_DIFFERENCE`) given to an
  optical 3-band (RGB) model. The stretch and the band count accept it, and the model learned
  colour images.

All are warnings, as the input range check is (the image may still be what the user means);
each is counted once per run (:func:`sam2elnet.utils.run_warnings.warn_once`, kinds
:data:`ZERO_BORDER_KIND`, :data:`MODALITY_KIND`, :data:`COLOUR_INTO_SAR_KIND`,
:data:`GREY_INTO_COLOUR_KIND`), naming the file and what to do; :func:`warn_input_kind` logs
them for one image (the Predictor's images and a scene's overview).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.band_match import COLOUR_BANDS, check_polarisation
from sam2elnet.data.norm_fit import looks_like_db
from sam2elnet.data.normalize import stride_sample
from sam2elnet.data.zero_pixels import untagged_zero_advice
from sam2elnet.errors import DataError
from sam2elnet.utils.advice import message, paragraph, plural
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "COLOUR_INTO_SAR_KIND",
    "COLOUR_MIN_DIFFERENCE",
    "GREY_INTO_COLOUR_KIND",
    "GREY_MAX_DIFFERENCE",
    "MODALITY_KIND",
    "POLARISATION_KIND",
    "ZERO_BORDER_KIND",
    "ZERO_BORDER_MIN_FRACTION",
    "band_difference",
    "check_colour_into_sar",
    "check_grey_into_colour",
    "check_modality",
    "check_zero_border",
    "warn_input_kind",
    "zero_border_share",
]

ZERO_BORDER_MIN_FRACTION = 0.05
""":func:`check_zero_border` speaks when at least this fraction of the valid pixels is exactly 0
in every band *and* connected to the image edge. A real dark area of a uint8 / uint16 optical
image (water, shadow) is rarely 0 in all bands at once, and when it is, it is a few pixels or
an inland patch; a no-data margin of a reprojected or clipped scene is a wedge along the edge,
typically 5-30 % of the scene (19 % in the trial that found the problem). 5 % keeps a thin
black frame of a few pixels (< 2 % of a 512 px image per 2-px side) silent."""
ZERO_BORDER_KIND = "an optical image with a margin of 0 in every band and no nodata tag"
"""The kind :func:`check_zero_border`'s warning is counted by (once per run)."""
MODALITY_KIND = "a SAR image given to an optical model"
POLARISATION_KIND = "a band of another polarisation than the model's"
"""The kind :func:`~sam2elnet.data.band_match.check_polarisation`'s warning is counted by."""
"""The kind :func:`check_modality`'s warning is counted by (once per run)."""
COLOUR_MIN_DIFFERENCE = 2.0
"""Grey levels: an 8-bit image is a colour image for :func:`check_colour_into_sar` when the
:func:`band_difference` of its first three bands is above this. Measured
(the command in docs/data.md, "Colour and grey images"): the 400 sos-dev and 2,000 sos-2k
SOS SAR JPEGs (grey stored as 3 identical channels) 0.000 each; the 60 roads-dev aerial RGB
tiles 5.24..21.84 (median 15.5). 2 leaves a factor 2.6 below the least colourful photo."""
GREY_MAX_DIFFERENCE = 0.5
"""Grey levels: an 8-bit 3-band image is grey stored as RGB for :func:`check_grey_into_colour`
when its :func:`band_difference` is at most this (the SOS JPEGs: 0.000; a grey image saved
through a colour JPEG encoder may differ by a grey level in some pixels), far below the 5.24
of the least colourful roads-dev photo."""
COLOUR_INTO_SAR_KIND = "a colour image given to a SAR model"
"""The kind :func:`check_colour_into_sar`'s warning is counted by (once per run)."""
GREY_INTO_COLOUR_KIND = "a grey image given to an optical model of colour images"
"""The kind :func:`check_grey_into_colour`'s warning is counted by (once per run)."""
_BAND_SAMPLE = 100_000
"""Pixels :func:`band_difference` compares at most (a raster-order stride sample)."""
_BORDER_GRID = 1024
"""The edge-connected region is found on a grid of at most this many pixels per side (strided)."""


def zero_border_share(data: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The fraction of the valid pixels that are exactly 0 in every band and 4-connected to the
    image edge through such pixels.

    Args:
        data: (C, H, W) raw pixels in the file's units (a (H, W) array is one band).
        valid: (H, W) bool, pixels holding data (a nodata tag or alpha already applied); None:
            all.

    Returns:
        0..1, counted on a stride of at most :data:`_BORDER_GRID` px per side (0 for no pixel).
    """
    from scipy import ndimage as ndi

    d = np.asarray(data)
    d = d[None] if d.ndim == 2 else d
    step = max(1, -(-max(d.shape[1:]) // _BORDER_GRID))
    d = d[:, ::step, ::step]
    ok = np.ones(d.shape[1:], bool) if valid is None else np.asarray(valid, bool)[::step, ::step]
    if not ok.any():
        return 0.0
    zero = np.all(d == 0, axis=0) & ok
    if not zero.any():
        return 0.0
    lab, _ = ndi.label(zero)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge = edge[edge > 0]
    return float(np.isin(lab, edge).sum() / ok.sum())


def check_zero_border(
    data: np.ndarray, valid: np.ndarray | None, cfg: Any, file: str | os.PathLike[str] | None = None
) -> str | None:
    """A warning text when a multi-band image given to an optical model has an untagged no-data
    margin (module docstring).

    Args:
        data: (C, H, W) raw pixels of the bands read (after ``--bands``), file units.
        valid: (H, W) bool, pixels holding data (the file's nodata tag already applied); None:
            all.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (None: no
            check).
        file: The image file, named in the advice's command (None: ``FILE``).

    Returns:
        None for a one-band image, a SAR model, a model that converts to dB (that is
        :func:`~sam2elnet.data.zero_pixels.check_zero_pixels`' case) or a share below
        :data:`ZERO_BORDER_MIN_FRACTION`; else the warning (the caller puts the file first).
    """
    if cfg is None or getattr(cfg, "sar", False) or getattr(cfg, "to_db", False):
        return None
    if np.ndim(data) != 3 or np.shape(data)[0] < 2:
        return None
    share = zero_border_share(data, valid)
    if share < ZERO_BORDER_MIN_FRACTION:
        return None
    return message(
        f"{share:.1%} of the pixels are 0 in every band, along the image edge, without a "
        "nodata tag",
        *untagged_zero_advice(
            "An optical image is rarely 0 in all bands at once: this is most likely the no-data "
            "fill of a reprojected or clipped scene, and the model labels it like image content.",
            "they become nodata (127) in the labels",
            file=file,
        ),
    )


def check_modality(values: np.ndarray, dtype: Any, cfg: Any, in_bands: int | None) -> str | None:
    """A warning text when an image looks like SAR backscatter in dB but the model is an optical
    3-band model (module docstring).

    Args:
        values: Raw valid pixels, (C, n) or (n,), in the file's units (after ``--bands``).
        dtype: The image's dtype.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (None: no
            check).
        in_bands: Bands the model takes.

    Returns:
        None unless the model is optical (``sar`` False) and takes 3 bands, and the image is one
        float band with a median below 0 (:func:`~sam2elnet.data.norm_fit.looks_like_db`);
        else the warning naming both kinds and what to do.
    """
    if cfg is None or getattr(cfg, "sar", False) or in_bands != COLOUR_BANDS:
        return None
    v = np.asarray(values)
    v = v[None] if v.ndim == 1 else v
    if v.shape[0] != 1 or not np.issubdtype(np.dtype(dtype), np.floating):
        return None
    v = stride_sample(v, 100_000)
    if not looks_like_db(v):
        return None
    fin = v[np.isfinite(v)]
    trained = cfg.data_dtype or "8-bit"
    return message(
        "a 1-band float image with negative values given to an optical (RGB) model",
        paragraph(
            f"Values {fin.min():.3g}..{fin.max():.3g} ({dtype}, median {np.median(fin):.3g}) "
            "look like SAR backscatter in dB, but the model was trained on optical 3-band "
            f"({trained}) images. Its one band is repeated to R, G and B and stretched, so "
            "the labels mean nothing. Use a SAR model (trained with elnet train --modality sar) "
            "for SAR scenes, or give this model the optical image it was trained for."
        ),
    )


def band_difference(values: np.ndarray) -> float | None:
    """How much the first three bands differ: the mean absolute difference of the pairs 1-2,
    1-3 and 2-3, averaged, in the data's units (grey levels for 8-bit images).

    Args:
        values: Raw valid pixels, (C, n), in the file's units (alpha left out).

    Returns:
        >= 0 (0 for a grey image stored as identical bands), on a raster-order stride sample of
        at most 100,000 pixels; None for fewer than 3 bands or no pixel.
    """
    v = np.asarray(values)
    if v.ndim != 2 or v.shape[0] < 3 or v.shape[1] == 0:
        return None
    a, b, c = stride_sample(v[:3], _BAND_SAMPLE).astype(np.float64)
    return float((np.abs(a - b).mean() + np.abs(a - c).mean() + np.abs(b - c).mean()) / 3)


def check_colour_into_sar(
    path: Any, dtype: Any, cfg: Any, in_bands: int | None, chosen: Any = None
) -> str | None:
    """A warning text when a colour photo is given to a SAR model of one or two bands, which
    ``--bands`` made possible (module docstring). Judged on all of the file's bands (alpha left
    out), a bounded sample (:func:`sam2elnet.data.pixel_sample.valid_pixels`), read only when
    the rule can apply, not for the bands ``--bands`` picked.

    Args:
        path: The image file (None: no check).
        dtype: The dtype of the bands read (only 8-bit images are looked at).
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (None: no
            check).
        in_bands: Bands the model takes.
        chosen: The file bands ``--bands`` picked when the caller keeps them apart from
            ``cfg.band_select`` (the scene path); None: ``cfg.band_select`` tells.

    Returns:
        None unless the model is SAR (``sar``), takes fewer than 3 bands picked from the file
        (``band_select`` / ``chosen``: the model's or ``--bands``), the file is 8-bit with 3 or more bands
        and their :func:`band_difference` is above :data:`COLOUR_MIN_DIFFERENCE` (None too
        when the sample cannot be read: the image reader reports the file); else the warning
        (the caller puts the file first).
    """
    from sam2elnet.data.pixel_sample import valid_pixels

    if cfg is None or not getattr(cfg, "sar", False):
        return None
    if not chosen and not getattr(cfg, "band_select", None):
        return None
    if path is None or not in_bands or in_bands >= COLOUR_BANDS or np.dtype(dtype) != np.uint8:
        return None
    try:
        v = valid_pixels(Path(path))
    except (DataError, OSError):
        return None
    diff = band_difference(v) if v.dtype == np.uint8 else None
    if diff is None or diff <= COLOUR_MIN_DIFFERENCE:
        return None
    return message(
        "a colour image given to a SAR model",
        paragraph(
            f"Its {v.shape[0]} bands differ like an optical photo's (mean difference "
            f"{diff:.1f} grey levels; a grey SAR tile stored as RGB: 0), but the model was "
            f"trained on {plural(in_bands, 'band')} of SAR backscatter and "
            "--bands gives it colour bands, so the labels mean nothing. Use an optical model "
            "(trained with elnet train --modality optical) for photos, or give this model the "
            "SAR image it was trained for."
        ),
    )


def trained_on_colour(cfg: Any) -> bool:
    """Whether a 3-band model's training images were colour, from the per-band 1..99 % range of
    its training data recorded in the model file (``data_low`` / ``data_high``).

    A model trained on grey images stored as 3 identical bands (``elnet train`` on SOS
    ``<id>_sat.jpg`` with the default optical modality) records the same range for every band;
    a colour training set records bands that differ by more than :data:`GREY_MAX_DIFFERENCE`
    grey levels at one end at least. Not recorded (older model files): False, so no warning
    is given on a guess.

    Args:
        cfg: A :class:`~sam2elnet.data.normalize.NormalizationConfig`.

    Returns:
        True when three per-band ranges are recorded and they differ.
    """
    lo, hi = getattr(cfg, "data_low", None), getattr(cfg, "data_high", None)
    if not lo or not hi or len(lo) != 3 or len(hi) != 3:
        return False
    return max(max(lo) - min(lo), max(hi) - min(hi)) > GREY_MAX_DIFFERENCE


def check_grey_into_colour(
    values: np.ndarray, dtype: Any, cfg: Any, in_bands: int | None
) -> str | None:
    """A warning text when a grey image stored as 3 identical bands (a SAR tile such as the SOS
    JPEGs) is given to an optical model of colour images (module docstring).

    Args:
        values: Raw valid pixels of the bands read, (C, n), in the file's units.
        dtype: The image's dtype.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (None: no
            check).
        in_bands: Bands the model takes.

    Returns:
        None unless the model is optical (``sar`` False), takes 3 bands and was trained on
        colour images (:func:`trained_on_colour`: a model trained on grey stored as RGB, such
        as the SOS JPEGs, is given its own kind of image), and the image is 8-bit with 3 bands whose
        :func:`band_difference` is at most :data:`GREY_MAX_DIFFERENCE` and whose values vary
        (a constant image is the constant-image rule's case); else the warning (the caller puts
        the file first).
    """
    if cfg is None or getattr(cfg, "sar", False) or in_bands != COLOUR_BANDS:
        return None
    if not trained_on_colour(cfg):
        return None  # trained on grey stored as RGB too (SOS JPEGs), or not recorded
    v = np.asarray(values)
    if np.dtype(dtype) != np.uint8 or v.ndim != 2 or v.shape[0] != COLOUR_BANDS:
        return None
    diff = band_difference(v)
    if diff is None or diff > GREY_MAX_DIFFERENCE or v.size == 0 or v.min() == v.max():
        return None  # colour, or a constant image (the constant-image rule's case)
    return message(
        "a grey image (3 identical bands) given to a model of colour images",
        paragraph(
            f"Its bands are one grey stored three times (mean difference {diff:.2f} grey "
            "levels), as a SAR tile saved as RGB (e.g. SOS <id>_sat.jpg), but the model is an "
            "optical model of colour (RGB) images whose bands differ, so predictions are "
            "unreliable. "
            "Use a SAR model (trained with elnet train --modality sar) for SAR tiles, or give "
            "this model the colour image it was trained for."
        ),
    )


def warn_input_kind(
    source: Any,
    data: np.ndarray,
    valid: np.ndarray | None,
    values: np.ndarray,
    cfg: Any,
    in_bands: int | None,
    chosen: Any = None,
) -> None:
    """Log the warnings of this module's checks about one image (:func:`check_zero_border`,
    :func:`check_modality`, :func:`check_colour_into_sar`, :func:`check_grey_into_colour`,
    :func:`~sam2elnet.data.band_match.check_polarisation`):
    each one ``warning:`` record of this module's logger, ``"SOURCE: text"``, once per run
    (:func:`~sam2elnet.utils.run_warnings.warn_once`, the kinds ``*_KIND`` above; outside a
    job's scope every time).

    Args:
        source: The file named first in each line (a path or a string; None: ``input``).
        data: Raw pixels (C, H, W) in the file's units.
        valid: (H, W) bool, True where not nodata, or None (no nodata tag).
        values: The valid pixels (C, n).
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (or None).
        in_bands: The model's input band count.
        chosen: ``--bands`` when the caller keeps it apart from ``cfg.band_select`` (the scene
            path), for :func:`check_colour_into_sar`.
    """
    name = source or "input"
    if msg := check_zero_border(data, valid, cfg, source):
        warn_once(log, ZERO_BORDER_KIND, f"{name}: {msg}")
    if msg := check_modality(values, data.dtype, cfg, in_bands):
        warn_once(log, MODALITY_KIND, f"{name}: {msg}")
    if msg := check_colour_into_sar(source, data.dtype, cfg, in_bands, chosen):
        warn_once(log, COLOUR_INTO_SAR_KIND, f"{name}: {msg}")
    if msg := check_grey_into_colour(values, data.dtype, cfg, in_bands):
        warn_once(log, GREY_INTO_COLOUR_KIND, f"{name}: {msg}")
    select = chosen or getattr(cfg, "band_select", None)
    if msg := check_polarisation(source, getattr(cfg, "band_names", None), select):
        warn_once(log, POLARISATION_KIND, f"{name}: {msg}")
