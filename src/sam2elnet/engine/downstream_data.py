"""What the downstream model reads (part of :mod:`sam2elnet.engine.downstream`): (image, label)
pairs, decoded and normalised, and the training dataset over them (the data layer's random crops,
with an in-memory cache shared by the settings of one experiment).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2elnet.errors import UserError

if TYPE_CHECKING:  # torch only for a type: load_pair (elnet refine) imports no torch
    import torch

    from sam2elnet.data.load_cache import LoadCache

Pair = tuple[Path, Path]
"""(image path, label path); the label may be an original, automatic or enhanced label."""


def normalization(norm_cfg: Any | None, modality: str = "sar") -> Any:
    """``norm_cfg``, or the default :class:`~sam2elnet.data.normalize.NormalizationConfig` of
    ``modality`` when it is None."""
    from sam2elnet.data.normalize import NormalizationConfig

    return norm_cfg if norm_cfg is not None else NormalizationConfig.for_modality(modality)


def load_pair(
    image_path: Path, label_path: Path | None, norm_cfg: Any, in_bands: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read one pair: normalised image (C,H,W) f32, label bool (H,W) or None, valid bool (H,W).

    The image's band count is matched to ``in_bands`` (the downstream model's bands; None
    accepts any count) by the band rule of every prediction path
    (:func:`~sam2elnet.data.normalize.normalize_for_model`,
    :func:`~sam2elnet.data.band_match.band_layout`): one band into a 3-band optical model is
    repeated to R, G, B, and C = ``in_bands`` then.

    Raises:
        BandCountError: a band count the model cannot take (e.g. one band into a VV+VH model),
            naming the image, as ``elnet annotate`` does.
        DataError: an unreadable image or label, or a label of another size.
    """
    from sam2elnet.data.images import read_image
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.data.normalize import normalize_for_model

    img = read_image(image_path, sar=norm_cfg.sar, bands=norm_cfg.band_select)
    x = normalize_for_model(img, norm_cfg, in_bands, image_path)
    mask = None
    valid = img.valid
    if label_path is not None:
        mask, mask_valid = read_mask_valid(label_path, shape=img.shape, image_path=image_path)
        if mask_valid is not None:  # the label's ignore / nodata pixels: out of the loss
            valid = valid & mask_valid
    return x, mask, valid


def make_train_dataset(
    pairs: Sequence[Pair],
    norm_cfg: Any,
    size: int,
    augment: bool = True,
    seed: int = 0,
    cache: LoadCache | None = None,
) -> torch.utils.data.Dataset:
    """The data layer's :class:`SegmentationDataset` over ``pairs`` (label override: the label path
    becomes the sample's mask), with no coarse inputs and an in-memory cache of decoded images.

    The cache (:class:`~sam2elnet.data.load_cache.LoadCache`, shareable across calls; None:
    none) holds full-size normalised arrays, so the several settings of one experiment decode
    each image once (400 SOS images of 256 px are ~100 MB); the dataset keys them by (image,
    label, band count its ``bands`` asks for, normalisation), as the array depends on each (a
    grey image read for a 1-band and for a 3-band model; one cache passed to settings
    normalised differently).
    """
    from sam2elnet.data.datasets import SegmentationDataset
    from sam2elnet.data.layouts import Sample

    samples = [
        Sample(id=f"{i:06d}_{Path(ip).stem}", image=Path(ip), mask=Path(lp))
        for i, (ip, lp) in enumerate(pairs)
    ]
    return SegmentationDataset(
        samples, norm_cfg, size=size, train=augment, seed=seed, coarse_prob=0.0, cache=cache
    )


def require_pairs(pairs: Sequence[Pair], what: str) -> list[Pair]:
    """``pairs`` as Path tuples; :class:`UserError` naming ``what`` when there are none."""
    out = [(Path(a), Path(b)) for a, b in pairs]
    if not out:
        raise UserError(f"no {what} pairs; check the data folder and the selected split")
    return out
