"""An ``--images`` folder of label masks, refused before the model loads:
:func:`check_images_not_masks` (``elnet enhance`` / ``annotate``; annotating masks gave
confident labels of them, silently).

The rule that tells a mask from an image by its values is :func:`sam2elnet.data.masks.
mask_like_image`, beside its siblings (:func:`~sam2elnet.data.masks.image_like_label` for a
``--labels`` / ``--truth`` folder of images, :func:`~sam2elnet.data.masks.check_training_pair`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.masks import image_values, mask_like_image
from sam2elnet.errors import UserError

__all__ = ["IMAGES_EXPECTED", "check_images_not_masks"]

IMAGES_EXPECTED = (
    "--images expects the images to label (SAR or optical rasters, e.g. SOS <id>_sat.jpg), not "
    "their masks: give the images' folder"
)
"""What ``--images`` takes, in words, for the message of :func:`check_images_not_masks`."""


def check_images_not_masks(files: Sequence[Path], images: Any) -> None:
    """Refuse an ``--images`` folder of label masks, before the model loads (annotating masks
    gave confident labels of them, silently): every one of the first (at most three) files that
    are not constant is a mask by :func:`sam2elnet.data.masks.mask_like_image` (two values, the
    lower 0), each judged on a bounded sample whatever its size
    (:func:`sam2elnet.data.pixel_sample.valid_pixels`). One image among them, or only constant
    files (empty masks, blank tiles), refuses nothing.

    Raises:
        UserError: naming ``images`` (the argument; the first file's folder for a list), the
            first mask and what ``--images`` expects.
    """
    judged: list[tuple[Path, str]] = []
    for f in files[:12]:
        if len(judged) == 3:
            break
        values = image_values(f)
        if values is None or values.size < 2:  # unreadable (the reader says why) or constant
            continue
        why = mask_like_image(f, values)
        if not why:
            return  # an image: the folder holds images
        judged.append((f, why))
    if not judged:
        return
    root = Path(images) if isinstance(images, (str, Path)) else judged[0][0].parent
    first, why = judged[0]
    raise UserError(f"holds label masks, not images ({first.name}: {why}); {IMAGES_EXPECTED}", root)
