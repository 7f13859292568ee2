"""Arrays given to :meth:`~sam2elnet.engine.predictor.Predictor.predict` checked before any forward.

A notebook hands ``predict`` arrays it made itself: a raw uint8 image never normalised, a coarse
label read with PIL as 0/255, a mask of another image's size. Each of these is a
:class:`~sam2elnet.errors.DataError` naming the image (by its index) and what to give, instead
of numpy's ``ValueError`` from deep inside or, worse, a label and a score made from wrong input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.utils.advice import plural

__all__ = ["check_batch_coarse", "check_predict_inputs", "mask_hw", "predictor_repr"]

NORMALISE_ADVICE = (
    "read files with Predictor.read, or normalise a RasterImage with Predictor.prepare"
)


def mask_hw(mask: Any, hw: tuple[int, int], what: str, i: int) -> np.ndarray:
    """One (H, W) or (1, H, W) mask as an (H, W) array of its own dtype.

    Args:
        mask: The mask (any array-like).
        hw: The image's (H, W) in px.
        what: ``"coarse label"`` or ``"valid mask"``, for the message.
        i: The image's index in the call, for the message.

    Returns:
        The mask as an (H, W) ndarray (a view where possible).

    Raises:
        DataError: the mask is neither (H, W) nor (1, H, W).
    """
    a = np.asarray(mask)
    if a.shape == (1, *hw):
        a = a[0]
    if a.shape != hw:
        raise DataError(
            f"{what} {i} is {a.shape} but image {i} is {hw[0]} x {hw[1]} px; "
            f"give an (H, W) {what} of its image's size"
        )
    return a


def check_predict_inputs(
    images: Sequence[Any],
    coarse: Sequence[Any] | None,
    valid: Sequence[Any] | None,
) -> None:
    """Check what :meth:`Predictor.predict` was given; returns nothing when it is usable.

    Args:
        images: Normalised images, each (C, H, W) of a float dtype.
        coarse: None, or one coarse label (or None) per image: (H, W) or (1, H, W), bool or
            numbers in [0, 1].
        valid: None, or one valid mask (or None) per image: (H, W) or (1, H, W), bool or
            numbers (1 = measured).

    Raises:
        DataError: ``coarse`` / ``valid`` of another length than ``images``; an image that is
            not (C, H, W) or of an integer / bool dtype (not normalised); a coarse label or
            valid mask of another size than its image; a coarse label with values outside
            [0, 1] (e.g. 0/255 as read with PIL).
    """
    n = len(images)
    for name, seq in (("coarse label", coarse), ("valid mask", valid)):
        if seq is not None and len(seq) != n:
            raise DataError(
                f"{plural(len(seq), name)} for {plural(n, 'image')}; "
                f"give one {name} (or None) per image"
            )
    for i, im in enumerate(images):
        a = np.asarray(im)
        if a.ndim != 3:
            raise DataError(f"image {i} must be (C, H, W), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise DataError(
                f"image {i} is {a.dtype}: predict takes normalised float images (C, H, W), "
                f"about 0..1; {NORMALISE_ADVICE}"
            )
        hw = (int(a.shape[1]), int(a.shape[2]))
        if valid is not None and valid[i] is not None:
            mask_hw(valid[i], hw, "valid mask", i)
        if coarse is None or coarse[i] is None:
            continue
        c = mask_hw(coarse[i], hw, "coarse label", i)
        if c.dtype != bool and c.size:
            lo, hi = float(np.nanmin(c)), float(np.nanmax(c))
            if lo < 0 or hi > 1:
                values = f"all values {hi:g}" if lo == hi else f"values from {lo:g} to {hi:g}"
                raise DataError(
                    f"coarse label {i} has {values}; give a bool "
                    "(H, W) mask or 0/1 (sam2elnet.data.raster.read_mask reads 0/255 files as bool)"
                )


def check_batch_coarse(shape: tuple[int, ...], coarse: Any) -> None:
    """Check the ``coarse`` of :meth:`Predictor.predict_arrays` against its batch.

    Args:
        shape: The batch's shape (B, C, h, w).
        coarse: None, or coarse labels (B, h, w) or (B, 1, h, w).

    Raises:
        DataError: ``coarse`` has another shape.
    """
    if coarse is None:
        return
    b, _, h, w = shape
    cs = tuple(np.shape(coarse))
    if cs not in ((b, h, w), (b, 1, h, w)):
        raise DataError(
            f"coarse {cs} does not match the batch {tuple(shape)}; give (B, h, w) or "
            "(B, 1, h, w) masks of the windows' size"
        )


def predictor_repr(pred: Any) -> str:
    """``repr`` of a :class:`Predictor`, one line: the model file (None: a model in memory),
    size, bands, device, precision, batch size, TTA views and the quality evaluator's status.

    Args:
        pred: The predictor.

    Returns:
        ``Predictor(path=..., size='micro', in_bands=1, device='cpu', precision='32', ...)``.
    """
    size = getattr(getattr(pred.model, "config", None), "size", None)
    path = None if pred.path is None else str(pred.path)
    return (
        f"Predictor(path={path!r}, size={size!r}, in_bands={pred.in_bands}, "
        f"device={str(pred.device)!r}, precision={pred.precision!r}, "
        f"batch_size={pred.batch_size}, tta={pred.tta}, evaluator={pred.evaluator.status!r})"
    )
