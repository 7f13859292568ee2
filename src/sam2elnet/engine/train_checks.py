"""What a training run checks of its labelled pairs before the first step.

:func:`check_pairs` reads every image and mask once (unreadable pairs are skipped and listed in
``RUN/skipped.csv``; a band count the model cannot take stops the run), :func:`check_labels`
refuses a training set with nothing to learn (all masks empty or all full) and warns about a
validation split without object pixels (:func:`mask_content`), and :func:`positive_values` is
the ``--positive-values`` the masks are read with. Used by
:func:`sam2elnet.engine.train_data.prepare_data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sam2elnet.config import TrainConfig
from sam2elnet.errors import BandCountError, DataError
from sam2elnet.utils.advice import plural
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.progress import track

__all__ = ["check_labels", "check_pairs", "mask_content", "positive_values"]


def positive_values(cfg: TrainConfig) -> tuple[float, ...] | None:
    """``cfg.positive_values`` as the tuple the mask reader takes."""
    return tuple(cfg.positive_values) if cfg.positive_values else None


def check_pairs(
    samples: Sequence[Any],
    norm: Any,
    progress: bool,
    positive_values: tuple[float, ...] | None = None,
    zeros: dict[str, float] | None = None,
) -> SkipLog:
    """Read every image and mask once (full decode: truncated files fail here, not mid-epoch);
    return the pairs that cannot be used, each with the reason. ``zeros``, when given, gets each
    image's :func:`~sam2elnet.data.zero_pixels.zero_share` (valid pixels <= 0 in every band;
    of the statistics sample for large files), for the untagged-zero warning of training.
    The first pair read whole must have a mask for a label
    (:func:`~sam2elnet.data.masks.check_training_pair`: UserError for an image, or images and
    masks swapped).

    Large GeoTIFFs (:func:`sam2elnet.data.windowed.use_windows`) are decoded in one streamed
    pass that also makes the plan their windowed reads use (cached for the training run), so
    they are never held in memory whole."""
    from sam2elnet.data import windowed, windowed_image, windowed_mask
    from sam2elnet.data.images import read_image
    from sam2elnet.data.masks import check_training_pair, read_mask
    from sam2elnet.data.zero_pixels import zero_share

    skips = SkipLog("image")
    checked_kinds = False
    # a long step on large datasets (minutes on SOS): a bar, or one line with --no-progress
    for smp in track(samples, "check data", unit="pair", enabled=progress, skipped=skips):
        try:
            if windowed.use_windows(smp.image):
                plan = windowed_image.image_plan(smp.image, norm.sar, norm.band_select)
                shape = plan.shape
                img = windowed_image.sample_image(plan) if zeros is not None else None
            else:
                img = read_image(smp.image, sar=norm.sar, bands=norm.band_select)
                shape = img.shape
            if zeros is not None and img is not None:
                zeros[str(smp.image)] = zero_share(img.data[:, img.valid])
            if windowed.use_windows(smp.mask):
                windowed_mask.mask_plan(smp.mask, shape, smp.image, positive_values)
            else:
                read_mask(
                    smp.mask, shape=shape, image_path=smp.image, positive_values=positive_values
                )
                if not checked_kinds:  # the first readable pair: labels are masks, not images
                    checked_kinds = True
                    check_training_pair(smp.image, smp.mask)
        except BandCountError:
            raise
        except DataError as err:
            skips.add(smp.image, err, id=smp.id)  # RUN/skipped.csv: image, id, reason
    return skips


def mask_content(
    samples: Sequence[Any], positive_values: tuple[float, ...] | None = None
) -> tuple[bool, bool]:
    """(any object pixel, any background pixel) over the masks of ``samples`` (valid pixels only).

    Reads masks until both have been seen, so a normal dataset costs one or two reads and only a
    degenerate one is read completely.
    """
    from sam2elnet.data import windowed, windowed_mask
    from sam2elnet.data.masks import read_mask

    pos = neg = False
    for s in samples:
        if windowed.use_windows(s.mask) and positive_values is None:  # counted by one streamed pass
            plan = windowed_mask.mask_plan(s.mask)
            pos = pos or plan.object_px > 0
            neg = neg or plan.background_px > 0
        else:
            m = read_mask(s.mask, positive_values=positive_values)
            pos = pos or bool(m.any())
            neg = neg or bool((~m).any())
        if pos and neg:
            break
    return pos, neg


def check_labels(cfg: TrainConfig, train: Sequence[Any], val: Sequence[Any]) -> list[str]:
    """Refuse a training set with nothing to learn; return warnings for a weak validation split.

    All-empty masks (no object pixel anywhere) or all-full masks (no background) make every
    prediction equally right for the loss: the model learns a constant. That is a DataError.
    A validation split without object pixels cannot rank epochs by IoU: a warning, and the run
    selects the model by validation loss instead.
    """
    pos, neg = mask_content(train, positive_values(cfg))
    if not pos:
        raise DataError(
            f"all {len(train)} training masks are empty (no object pixels): there is nothing to "
            "learn; check the mask encoding (object = non-zero, e.g. 255) or add labelled objects",
            cfg.data,
        )
    if not neg:
        raise DataError(
            f"all {len(train)} training masks are full (every pixel is object): there is no "
            "background to learn; check that masks are not inverted",
            cfg.data,
        )
    notes = []
    if val and not mask_content(val, positive_values(cfg))[0]:
        notes.append(
            f"validation split ({plural(len(val), 'image')}) has no object "
            "pixels: its IoU cannot rank "
            "epochs, so the model is selected by validation loss; raise --val-fraction or add "
            "labelled objects"
        )
    return notes
