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
  a colour photo into a one-band SAR model, is already refused by the band-count rule, whose
  message then names the modality.

Both are warnings, as the input range check is (the image may still be what the user means);
each is counted once per run (:func:`sam2elnet.utils.run_warnings.warn_once`, kinds
:data:`ZERO_BORDER_KIND`, :data:`MODALITY_KIND`), naming the file and what to do;
:func:`warn_input_kind` logs both for one image (the Predictor's images and a scene's overview).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sam2elnet.data.norm_fit import looks_like_db
from sam2elnet.data.normalize import stride_sample
from sam2elnet.data.zero_pixels import untagged_zero_advice
from sam2elnet.utils.advice import message, paragraph
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "MODALITY_KIND",
    "ZERO_BORDER_KIND",
    "ZERO_BORDER_MIN_FRACTION",
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
"""The kind :func:`check_modality`'s warning is counted by (once per run)."""
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


def check_zero_border(data: np.ndarray, valid: np.ndarray | None, cfg: Any) -> str | None:
    """A warning text when a multi-band image given to an optical model has an untagged no-data
    margin (module docstring).

    Args:
        data: (C, H, W) raw pixels of the bands read (after ``--bands``), file units.
        valid: (H, W) bool, pixels holding data (the file's nodata tag already applied); None:
            all.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (None: no
            check).

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
    from sam2elnet.data.band_match import COLOUR_BANDS

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


def warn_input_kind(
    source: Any,
    data: np.ndarray,
    valid: np.ndarray | None,
    values: np.ndarray,
    cfg: Any,
    in_bands: int | None,
) -> None:
    """Log :func:`check_zero_border`'s and :func:`check_modality`'s warnings about one image:
    each one ``warning:`` record of this module's logger, ``"SOURCE: text"``, once per run
    (:func:`~sam2elnet.utils.run_warnings.warn_once`, kinds :data:`ZERO_BORDER_KIND` and
    :data:`MODALITY_KIND`; outside a job's scope every time).

    Args:
        source: The file named first in each line (a path or a string; None: ``input``).
        data: Raw pixels (C, H, W) in the file's units.
        valid: (H, W) bool, True where not nodata, or None (no nodata tag).
        values: The valid pixels (C, n).
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig` (or None).
        in_bands: The model's input band count.
    """
    name = source or "input"
    if msg := check_zero_border(data, valid, cfg):
        warn_once(log, ZERO_BORDER_KIND, f"{name}: {msg}")
    if msg := check_modality(values, data.dtype, cfg, in_bands):
        warn_once(log, MODALITY_KIND, f"{name}: {msg}")
