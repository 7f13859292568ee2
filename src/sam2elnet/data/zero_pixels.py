"""Pixels of 0 without a nodata tag: the untagged-zero check of prediction and training.

Sentinel-1 GRD measurement GeoTIFFs (and many SNAP / GDAL exports of linear sigma0) fill the
no-data border of the swath with 0 without a nodata tag. A model that converts linear values to
dB (``to_db``) sees such a 0 as the darkest possible sea and labels the border like oil, so
``annotate``, ``enhance``, ``scene`` and ``serve`` warn once per run (:func:`check_zero_pixels`,
kind :data:`ZERO_PIXELS_KIND`), training warns once for all its images
(:func:`check_zero_training`), and both give the same advice (:func:`untagged_zero_advice`:
tag 0 as nodata, :data:`TAG_ZERO_NODATA`). The pixels are never made nodata here: exact zeros
also occur inside a swath after thermal noise removal, where they are measurements.

The rule is docs/data.md's "Input range check" (its untagged-zero row); the range check beside it
is :mod:`sam2elnet.data.input_range`. :func:`warn_pixel_values` issues both warnings for one
image (the prediction side: ``annotate`` / ``enhance`` / ``serve`` through the Predictor,
``scene`` from the scene's overview), so the wording and the once-per-run rule are the same.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.input_range import (
    INPUT_RANGE_KIND,
    RANGE_SAMPLE,
    bands_by_pixel,
    check_input_range,
)
from sam2elnet.data.norm_fit import looks_like_db
from sam2elnet.data.normalize import stride_sample
from sam2elnet.utils.advice import CMD, command, message, paragraph
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "TAG_ZERO_NODATA",
    "ZERO_MIN_FRACTION",
    "ZERO_PIXELS_KIND",
    "check_zero_pixels",
    "check_zero_training",
    "tag_zero_command",
    "untagged_zero_advice",
    "warn_pixel_values",
    "zero_share",
]

ZERO_MIN_FRACTION = 0.01
""":func:`check_zero_pixels` speaks when at least this fraction of the valid pixels is <= 0 in
every band: a no-data border, not the odd noise-floor zero inside a swath."""
ZERO_PIXELS_KIND = "pixels of 0 without a nodata tag, given to a model that converts to dB"
"""The kind :func:`check_zero_pixels`' warning is counted by (once per run)."""


def check_zero_pixels(
    values: np.ndarray, cfg: Any, file: str | os.PathLike[str] | None = None
) -> str | None:
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
        file: The image file, named in the advice's command (None: ``FILE``).

    Returns:
        None when the model does not convert to dB, the image is in dB already (float, median
        below 0: :func:`~sam2elnet.data.norm_fit.looks_like_db`; its negative values are no
        zero border, and the input range check says "pixel values look like dB already") or
        fewer than :data:`ZERO_MIN_FRACTION` of the pixels are <= 0 in every band; else one
        sentence (the caller adds the file name).
    """
    if not getattr(cfg, "to_db", False):
        return None
    if looks_like_db(stride_sample(bands_by_pixel(values), RANGE_SAMPLE)):
        return None  # before: "100.0% of the pixels are 0 (or below)" for a dB scene
    share = zero_share(values)
    if share < ZERO_MIN_FRACTION:
        return None
    return message(
        f"{share:.1%} of the pixels are 0 (or below) without a nodata tag",
        *untagged_zero_advice(
            "The model converts to dB, where 0 has no value (floored to the darkest sea, so they "
            "are labelled like oil). Sentinel-1 GRD and many SNAP exports fill the no-data "
            "border with 0.",
            "they become nodata (127) in the labels",
            file=file,
        ),
    )


def warn_pixel_values(source: Any, values: np.ndarray, dtype: Any, cfg: Any) -> str | None:
    """Log the prediction side's two warnings about one image's raw values: many untagged zeros
    for a model that converts to dB (:func:`check_zero_pixels`, kind :data:`ZERO_PIXELS_KIND`),
    then values far from the model's training range
    (:func:`~sam2elnet.data.input_range.check_input_range`, kind
    :data:`~sam2elnet.data.input_range.INPUT_RANGE_KIND`). Each is one ``warning:`` record of
    this module's logger, ``"SOURCE: text"``, once per run
    (:func:`~sam2elnet.utils.run_warnings.warn_once`; outside a job's scope every time).

    Args:
        source: The file named first in each line (a path or a string; None: ``input``).
        values: Raw valid pixels, (C, n) or (n,), in the file's units (nodata left out).
        dtype: The image's dtype, for the range message.
        cfg: The model's :class:`~sam2elnet.data.normalize.NormalizationConfig`.

    Returns:
        The range warning's text (without the file name), or None when the image fits.
    """
    name = source if source is not None else "input"
    if zeros := check_zero_pixels(values, cfg, source):
        warn_once(log, ZERO_PIXELS_KIND, f"{name}: {zeros}")
    msg = check_input_range(values, dtype, cfg)
    if msg is not None:
        warn_once(log, INPUT_RANGE_KIND, f"{name}: {msg}")
    return msg


TAG_ZERO_NODATA = "gdal_edit.py -a_nodata 0 FILE"
"""The command every untagged-zero warning gives: tag 0 as the file's nodata value (``FILE``: the
file's name where the warning is about one file, :func:`tag_zero_command`)."""

NO_TAG_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Formats that hold no nodata tag: the advice makes a tagged GeoTIFF copy of them."""


def tag_zero_command(file: str | os.PathLike[str] | None) -> tuple[str, str | None]:
    """The command that tags 0 as nodata in ``file`` (shell-quoted), and for a PNG / JPEG (no
    tag: a GeoTIFF copy beside it) the note of which file to use then; ``file`` None:
    :data:`TAG_ZERO_NODATA` with the ``FILE`` placeholder and the note for PNG / JPEG files.

    >>> tag_zero_command("scenes/s1 a.tif")
    ("gdal_edit.py -a_nodata 0 'scenes/s1 a.tif'", None)
    >>> tag_zero_command("tiles/t1.png")
    ('gdal_translate -a_nodata 0 tiles/t1.png tiles/t1.tif', '(then use tiles/t1.tif: a PNG / JPEG holds no nodata tag)')
    """
    if file is None:
        return (
            TAG_ZERO_NODATA,
            "(PNG / JPEG: gdal_translate -a_nodata 0 FILE OUT.tif, then use OUT.tif.)",
        )
    path = Path(file)
    if path.suffix.lower() in NO_TAG_SUFFIXES:
        copy = shlex.quote(str(path.with_suffix(".tif")))
        return (
            f"gdal_translate -a_nodata 0 {shlex.quote(str(path))} {copy}",
            f"(then use {copy}: a PNG / JPEG holds no nodata tag)",
        )
    return f"gdal_edit.py -a_nodata 0 {shlex.quote(str(path))}", None


def untagged_zero_advice(
    why: str, effect: str, png_note: bool = True, file: str | os.PathLike[str] | None = None
) -> list[list[str]]:
    """The text of an untagged-zero warning after its first line (:func:`check_zero_pixels`,
    :func:`check_zero_training`, :func:`~sam2elnet.data.input_kind.check_zero_border`), as
    :func:`~sam2elnet.utils.advice.message` blocks: ``why`` (what the zeros do to this model)
    and the one advice, "if these pixels are no data, tag them ... and ``effect``", then the
    command (:func:`tag_zero_command`: for ``file`` when the warning is about one file, else
    :data:`TAG_ZERO_NODATA`) indented as every advice command
    (:data:`~sam2elnet.utils.advice.CMD`) and, with ``png_note``, its note on PNG / JPEG
    files (which hold no tag: a GeoTIFF copy)."""
    cmd, note = tag_zero_command(file)
    blocks = [
        paragraph(
            f"{why} If these pixels are no data, tag them (elnet has no nodata option; it reads "
            f"the file's tag) and {effect}:"
        ),
        command(cmd, CMD),
    ]
    if png_note and note is not None:
        blocks.append(paragraph(note))
    return blocks


def zero_share(values: np.ndarray) -> float:
    """The fraction of pixels that are 0 (or below) in every band: the quantity of
    :func:`check_zero_pixels` and :func:`check_zero_training`.

    Args:
        values: Raw valid pixels of one image, (C, n) or (n,), in the file's units (a
            raster-order stride sample of at most :data:`RANGE_SAMPLE` is counted).

    Returns:
        0..1 (0 for no pixel).
    """
    v = stride_sample(bands_by_pixel(values), RANGE_SAMPLE)
    if v.shape[1] == 0:
        return 0.0
    return float(np.mean(np.all(v <= 0, axis=0)))


def check_zero_training(
    shares: Mapping[str, float],
    cfg: Any,
    top: int = 3,
    *,
    images: str = "training and validation images",
    effect: str = "train again; tagged pixels are left out of training and validation",
) -> str | None:
    """The training run's warning of :func:`check_zero_pixels`' rule, once for all its images.

    Training takes untagged zeros as data too: with a model that converts to dB they become the
    darkest sea (-60 dB), so the network learns a no-data border as sea under a background
    label, next to dark slicks labelled oil, and validation scores count the border. As on the
    prediction side the pixels are not made nodata (exact zeros inside a swath are
    measurements); the warning names the images and how to tag the border, after which
    training leaves it out (tagged nodata is out of the loss and the metrics).

    Args:
        shares: image path -> :func:`zero_share` of its valid pixels (training and validation).
        cfg: the run's :class:`~sam2elnet.data.normalize.NormalizationConfig`.
        top: images named (those with the largest share; the rest are counted).
        images: what the images are, for the first line (``elnet stats``: "images").
        effect: what tagging does, for the advice (``elnet stats``: the run to come).

    Returns:
        None when the model does not convert to dB or no image has at least
        :data:`ZERO_MIN_FRACTION` of such pixels; else one sentence naming the images.
    """
    if not getattr(cfg, "to_db", False):
        return None
    hit = sorted(
        ((share, path) for path, share in shares.items() if share >= ZERO_MIN_FRACTION),
        key=lambda t: (-t[0], t[1]),
    )
    if not hit:
        return None
    named = ", ".join(f"{path} ({share:.1%})" for share, path in hit[:top])
    more = f" and {len(hit) - top} more" if len(hit) > top else ""
    return message(
        f"{len(hit)} of {len(shares)} {images} have untagged pixels of 0",
        *untagged_zero_advice(
            f"Pixels of 0 (or below) without a nodata tag: {named}{more}. The model converts to "
            "dB, where 0 has no value (floored to the darkest sea), so training learns them as "
            "sea and predictions label them like oil. Sentinel-1 GRD and many SNAP exports fill "
            "the no-data border with 0.",
            effect,
            png_note=False,
        ),
    )
