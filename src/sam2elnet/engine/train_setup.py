"""Before a training run starts: the run folder (new run, or what ``--resume`` continues) and the
network to train (new, or ``--init-model`` to fine-tune further).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.config import (
    DEFAULT_IMAGE_SIZE,
    TRAIN_QUALITY_FIELDS,
    TRAIN_RUNTIME_FIELDS,
    TrainConfig,
)
from sam2elnet.engine.train_state import load_last
from sam2elnet.errors import CheckpointError, DataError, UserError
from sam2elnet.model.checkpoint_files import RANDOM_INIT_API, check_weights_exist, weights_files
from sam2elnet.model.io import check_checkpoint_kind, folder_not_model_file, trained_crop_size
from sam2elnet.option_checks import same_setting, setting_change
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import remove_stale_temps

log = logging.getLogger("sam2elnet.engine.train")

__all__ = [
    "build_model_for",
    "check_weights_file",
    "crop_share_note",
    "prepare_run_dir",
    "resolve_image_size",
    "resolve_trunk_scale",
]


def build_model_for(
    cfg: TrainConfig,
    in_bands: int,
    norm: Any,
    roads: bool = False,
    init_payload: dict[str, Any] | None = None,
) -> Any:
    """The network to train: ``cfg.init_model`` (checked for the band count; its trunk scale kept
    unless ``--trunk-scale`` is given, which only changes the forward pass: the trunk's weights do
    not depend on it) or a new one, its trunk scale resolved for the detected domain (``roads``;
    TrainConfig.resolved_trunk_scale). ``init_payload``: the ``--init-model`` file as
    :func:`~sam2elnet.engine.train_data.prepare_data` read it (``TrainData.init_payload``), so
    the file is read once a run; None reads it here."""
    # the network's modules import transformers: loaded only when a model is built or read
    from sam2elnet.model import ModelConfig, build_model

    if cfg.init_model is not None:
        from sam2elnet.model import load_model

        model, _extra = load_model(cfg.init_model, payload=init_payload)
        if int(model.config.in_bands) != in_bands:
            raise DataError(
                f"the model to fine-tune takes {model.config.in_bands} bands but the images have "
                f"{in_bands}",
                cfg.init_model,
            )
        if cfg.trunk_scale is not None and cfg.trunk_scale != model.config.trunk_scale:
            model.config = model.config.model_copy(update={"trunk_scale": cfg.trunk_scale})
        return model.train()
    kwargs: dict[str, Any] = {
        "size": cfg.size,
        "in_bands": in_bands,
        "weights": cfg.weights,
        "trunk_trainable": cfg.trunk,
        "normalization": norm.model_dump(mode="json"),
        "coarse_prior": cfg.coarse_prior,
    }
    if cfg.adapter_dim is not None:
        kwargs["adapter_dim"] = cfg.adapter_dim
    if cfg.detail_width is not None:
        kwargs["detail_width"] = cfg.detail_width
    trunk_scale = cfg.resolved_trunk_scale(roads)
    if trunk_scale is not None:
        kwargs["trunk_scale"] = trunk_scale
    return build_model(ModelConfig(**kwargs))


def resolve_trunk_scale(cfg: TrainConfig, roads: bool) -> TrainConfig:
    """``cfg`` with an auto ``trunk_scale`` (None) replaced by the scale built for the detected
    domain (``roads``; TrainConfig.resolved_trunk_scale), so ``config.yaml`` records it and the
    run can be made again from that file; the log line still says it was auto. Unchanged with
    ``--init-model`` (None there means the model file's scale) or a scale already set."""
    if cfg.trunk_scale is not None or cfg.init_model is not None:
        return cfg
    return cfg.model_copy(update={"trunk_scale": cfg.resolved_trunk_scale(roads)})


LARGE_IMAGE_CROPS = 64
"""Training images whose median area is at least this many crops (a side of at least 8 crops)
get :func:`crop_share_note`. Images of fewer crops are chips already (the SOS chips are 256 px,
4 x 4 crops of 64 px): the random crop moves every epoch, so over 20 epochs one crop an epoch
covers about 1 - (15/16)^20 = 72 % of a 16-crop image but 1 - (63/64)^20 = 27 % of a 64-crop one,
and cutting such an image smaller gains little. Before 2026-12-05 this was 16, and the README's
first try (256 px images, ``--image-size 64``) was told to cut them into 512 px chips."""

CHIP_CROPS = 2
"""Side of the chips :func:`crop_share_note` suggests, in crops: chips of 2 x 2 crops (512 px
for the default 256 px crop, ``elnet export --chip-size``'s default) stay under
:data:`LARGE_IMAGE_CROPS`, so training on them draws no note, and the random crop still moves
within each chip (docs/training.md, "Whole scenes as training images")."""


def chip_size(size: int, median_px: float) -> int:
    """The chip side (px) :func:`crop_share_note` suggests for ``size`` px crops on images of
    ``median_px`` px (H * W, their median): :data:`CHIP_CROPS` crops, within ``elnet export
    --chip-size``'s 16-16384 px and never larger than the median image's side
    (``sqrt(median_px)``, floored)."""
    side = max(16, int(median_px**0.5))
    return max(16, min(CHIP_CROPS * size, 16384, side))


def _image_facts(path: Path) -> tuple[int, bool] | None:
    """``(H * W px, 8-bit with 1 or 3 bands)`` of the image ``path`` from its header (GDAL, or
    PIL for PNG / JPEG); None when neither reads it (the data reader reports it), and for an
    image PIL refuses as a decompression bomb (over twice ``PIL.Image.MAX_IMAGE_PIXELS``, about
    179 Mpx by default): its size is then unknown here, and the note never raises."""
    from sam2elnet.data.grids import raster_header

    head = raster_header(path)
    if head.shape is None:
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    return int(im.size[0] * im.size[1]), im.mode in ("L", "RGB", "P")
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
    return int(head.shape[0] * head.shape[1]), head.itemsize == 1 and head.bands in (1, 3)


CHIPS_8BIT = (
    "`elnet export --labels MASKS --images SCENES --format coco --out chips/coco.json --chips "
    "chips --chip-size {chip}`, then --data chips"
)
"""How :func:`crop_share_note` cuts 8-bit grey / RGB scenes into training chips: ``elnet export
--chips`` keeps such pixels as they are (docs/geospatial.md, "Chips"); ``{chip}`` is
:func:`chip_size`."""

CHIPS_OTHER = (
    "with a tool that keeps their bands and data type, e.g. `gdal_retile.py -ps {chip} {chip} "
    "-targetDir chips/images SCENE.tif` and the same for the masks into chips/masks; `elnet "
    "export --chips` writes 8-bit chips of the first band or the first three only"
)
"""How :func:`crop_share_note` cuts other scenes (several bands, 16-bit, float dB): ``elnet
export --chips`` would stretch them to 8 bits and keep at most three bands, so the model would
train on other values than it predicts on; ``{chip}`` is :func:`chip_size`."""


def crop_share_note(images: list[Path], size: int, most: int = 64) -> str | None:
    """The line ``elnet train`` says before training when its images are much larger than the
    crop: their median area (of at most ``most`` images, evenly spread) at least
    :data:`LARGE_IMAGE_CROPS` crops of ``size`` x ``size`` px. Each epoch takes one random crop
    per image and validation scores each image's centred crop, so most of a whole scene is never
    seen; the line says the share and what to do (:data:`CHIPS_8BIT` when every image read is
    8-bit grey or RGB, else :data:`CHIPS_OTHER`, both with chips of :func:`chip_size`, 2 x 2
    crops). None for images of fewer crops (chips, e.g. 256 px images with 64 px crops): the
    random crop covers them over the epochs, and chips cut from them would hardly be smaller."""
    if not images or size <= 0:
        return None
    pick = (
        images
        if len(images) <= most
        else [images[int(i)] for i in np.linspace(0, len(images) - 1, most)]
    )
    facts = [f for f in (_image_facts(Path(p)) for p in pick) if f]
    if not facts:
        return None
    median = float(np.median([a for a, _ in facts]))
    crop = size * size
    if median < LARGE_IMAGE_CROPS * crop:
        return None
    share = 100.0 * crop / median
    pct = f"{share:.1f}" if share >= 0.1 else f"{share:.2f}"
    are = plural(len(images), "training image is", "training images are")
    how = (CHIPS_8BIT if all(eight for _, eight in facts) else CHIPS_OTHER).format(
        chip=chip_size(size, median)
    )
    return (
        f"{are} large for {size} px crops (median {median / 1e6:.1f} Mpx, "
        f"{median / crop:.0f} crops): each epoch takes one random {size} px crop per image, "
        f"about {pct} % of its pixels, and validation scores each image's centred crop only; "
        f"cut the scenes into chips ({how}) or raise --epochs"
    )


def resolve_image_size(
    cfg: TrainConfig, init_payload: dict[str, Any] | None
) -> tuple[TrainConfig, str]:
    """``cfg`` with its training crop size (px) decided, and with ``--init-model`` the words of
    the run's model line saying which one and why ("" without ``--init-model``).

    An ``image_size`` given (``--image-size``, ``--config``, or a resumed run's ``config.yaml``)
    wins; else the crop size the ``--init-model`` was trained at
    (:func:`~sam2elnet.model.io.trained_crop_size` of ``init_payload``, the file as
    :func:`~sam2elnet.engine.train_data.prepare_data` read it), else
    :data:`~sam2elnet.config.DEFAULT_IMAGE_SIZE` (a model file that records none). Without
    ``--init-model`` the config already holds it (given or the default)."""
    if cfg.init_model is None:
        return cfg, ""
    trained = trained_crop_size((init_payload or {}).get("extra"))
    at = f"; the --init-model was trained at {trained} px" if trained is not None else ""
    if cfg.image_size is not None:
        how = "the run's config.yaml" if cfg.resume else "--image-size"
        return cfg, f"{cfg.image_size} px crops ({how}{at})"
    if trained is not None:
        size, why = trained, "the --init-model's training crop size; --image-size changes it"
    else:
        size = DEFAULT_IMAGE_SIZE
        why = "the default: the --init-model records no training crop size"
    return cfg.model_copy(update={"image_size": size}), f"{size} px crops ({why})"


#: Options ``--resume`` takes from the command line even when the run's ``config.yaml`` says
#: otherwise: where the run lives (``out``: a copied run folder continues in the copy), how it
#: runs (device, precision, workers, threads, progress, distributed, channels-last:
#: ``config.TRAIN_RUNTIME_FIELDS``) and the quality evaluator fitted after training
#: (``quality.*``, ``fit_quality``: ``config.TRAIN_QUALITY_FIELDS``; changed cross-fitting
#: epochs retrain the fold networks, see :mod:`sam2elnet.engine.quality_crossfit`).
RESUME_MAY_CHANGE = frozenset(TRAIN_RUNTIME_FIELDS + TRAIN_QUALITY_FIELDS)


def resumed_config(
    saved: TrainConfig, given: TrainConfig, source: Path, recorded: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The configuration a resumed run continues with: the saved one, with the options of
    :data:`RESUME_MAY_CHANGE` taken from ``given``.

    Args:
        saved: the run's ``config.yaml``.
        given: the configuration built from the command line on top of it.
        source: the ``config.yaml`` file (named in the error).
        recorded: what the run recorded of its ``--weights`` file in ``last.pt``
            (``weights_path``, ``weights_sha256``; None or a key missing: not recorded): the
            same bytes at another path are the same setting, other bytes at the same path are
            not (:func:`~sam2elnet.model.checkpoint_files.weights_files`).

    Returns:
        The configuration to run (``out`` is the folder given, not the one the file recorded).

    ``--epochs K`` below the saved epochs is not a change of the run but its end: the returned
    configuration keeps the saved epochs (the learning-rate schedule) and stops after epoch K
    (``cfg._stop_after``; :func:`stop_line`), so a long run can end early and keep its best
    epoch.

    Raises:
        UserError: an option that defines the training (epochs above the saved ones, lr,
            data...) differs from the saved run: continuing would mix two runs; one line names
            the option(s).
    """
    old, new = saved.model_dump(mode="json"), given.model_dump(mode="json")

    # the --weights file as recorded: at another path (another node) the same bytes
    weights = weights_files(old.get("weights"), new.get("weights"), recorded)

    def same(key: str) -> bool:
        if key == "trunk_scale" and new.get(key) is None and not given.init_model:
            return True  # not given (auto): the scale the run resolved and recorded
        if key == "epochs" and new.get(key) is None:
            return True  # not given (auto): the epochs the run resolved and recorded
        return same_setting(key, old[key], new.get(key), weights)

    changed = [k for k in old if k not in RESUME_MAY_CHANGE and not same(k)]
    stop_after = None
    if changed == ["epochs"] and int(new["epochs"]) < int(old["epochs"]):
        changed, stop_after = [], int(new["epochs"])  # end the run early (:func:`stop_line`)
    if given._trunk_scale_auto and len(changed) > 1 and "trunk_scale" in changed:
        # resolved from another changed option (--weights, --domain), not given: name only that
        changed.remove("trunk_scale")
    if changed:
        what = ", ".join(
            weights.change() if k == "weights" else setting_change(k, new.get(k), old[k])
            for k in changed
        )
        more = ""
        if changed == ["epochs"] and int(new["epochs"]) > int(old["epochs"]):
            run = Path(given.out)
            more = (
                f"; to train {plural(int(new['epochs']) - int(old['epochs']), 'more epoch')} "
                f"on top of this run, start a new run from its model: elnet train --data "
                f"{given.data} --init-model {run / 'model.pt'} --epochs "
                f"{int(new['epochs']) - int(old['epochs'])} --out NEW_RUN (a new learning-rate "
                "schedule; run it after this run has finished)"
            )
        raise UserError(
            f"--resume continues the run saved in config.yaml; {what} would change it: drop "
            f"the option{'' if len(changed) == 1 else 's'}, or start a new run with another --out{more}",
            source,
        )
    cfg = saved.model_copy(update={k: getattr(given, k) for k in RESUME_MAY_CHANGE})
    if weights.given_path != weights.saved_path:  # the same bytes elsewhere: read from there
        cfg = cfg.model_copy(update={"weights": given.weights})
    # an auto scale the run recorded is still said to be auto in the log
    cfg._trunk_scale_auto = given._trunk_scale_auto or cfg._trunk_scale_auto
    cfg._stop_after = stop_after
    return cfg


def stop_line(stop_after: int, epochs: int, done: int, best_epoch: int) -> str:
    """What ``--resume --epochs K`` (K below the run's saved ``epochs``) does, for the log: the
    run ends after epoch K instead of ``epochs``, with the learning-rate schedule of ``epochs``
    kept up to there, and its best validation epoch so far becomes ``model.pt``. ``done``:
    epochs already trained; ``best_epoch``: 1-based, 0 when none yet."""
    if done >= stop_after:
        return (
            f"ending the run now (--epochs {stop_after} with --resume; {done} of {epochs} epochs "
            f"were trained): the best epoch so far ({best_epoch}) becomes model.pt; --resume "
            f"without --epochs continues to epoch {epochs} later"
        )
    return (
        f"ending the run after epoch {stop_after} of {epochs} (--epochs {stop_after} with "
        f"--resume; the learning-rate schedule of {epochs} epochs is kept up to there); --resume "
        f"without --epochs continues to epoch {epochs} later"
    )


def resume_note(start_epoch: int, epochs: int) -> str:
    """What ``--resume`` did, for the summary line (``start_epoch`` is 0-based)."""
    if start_epoch < epochs:
        return f"continued at epoch {start_epoch + 1} of {epochs}"
    return f"all {epochs} epochs were done; only the steps after training ran"


def changed_split_note(splits_json: Path, splits: dict[str, Any]) -> str | None:
    """A note when ``--resume`` finds other training or validation images than the run recorded
    in ``splits_json`` when it started (a file fixed, added or removed since: the resumed epochs
    train on the images found now, so the run no longer equals an uninterrupted one); None when
    they are the same or nothing readable is recorded. ``splits``: ``{"train": [ids], "val":
    [ids]}`` of this run."""
    try:
        before = json.loads(splits_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    parts = []
    for part in ("train", "val"):
        old, new = set(before.get(part) or []), set(splits.get(part) or [])
        if old == new:
            continue
        gained, lost = sorted(new - old), sorted(old - new)
        said = [
            f"{plural(len(ids), 'image')} {what} ({', '.join(ids[:3])}{', ...' * (len(ids) > 3)})"
            for ids, what in ((gained, "more"), (lost, "fewer"))
            if ids
        ]
        parts.append(f"{'training' if part == 'train' else 'validation'} set: {', '.join(said)}")
    if not parts:
        return None
    return (
        f"note: the images differ from those this run started with ({'; '.join(parts)}): a file "
        "was fixed, added or removed since; the resumed epochs train on the images found now, so "
        "the run no longer equals an uninterrupted one"
    )


def check_weights_file(cfg: TrainConfig, random_init: str | None = None) -> None:
    """The ``weights`` and ``init_model`` files exist and are of the right kind, checked
    before any data is read, not after every training image was checked (minutes on a large
    dataset): a missing weights file names the file, `elnet weights list` and how to train
    from random initialisation (``random_init``: default the API's ``weights=None``; the
    command line passes ``--weights none``), a file of the wrong kind (``--weights config.yaml``)
    is named by :func:`~sam2elnet.model.io.check_checkpoint_kind` (a few bytes read).
    ``weights`` is not checked with ``init_model``: its file holds the trunk.

    Raises:
        CheckpointError: a missing file, or one that cannot be a checkpoint.
    """
    if cfg.weights and cfg.init_model is None:
        check_weights_exist(cfg.weights, random_init or RANDOM_INIT_API)
        check_checkpoint_kind(cfg.weights)
    if cfg.init_model is not None:
        init = Path(cfg.init_model)
        if init.is_dir():
            raise CheckpointError(f"--init-model is {folder_not_model_file(init)}", init)
        if not init.is_file():
            # looked up per call, not at module import: tests replace model.io.read_model_file
            from sam2elnet.model.io import read_model_file

            read_model_file(init)  # raises the CheckpointError for a missing file
        check_checkpoint_kind(init)


def prepare_run_dir(cfg: TrainConfig) -> tuple[TrainConfig, str]:
    """New run: refuse to overwrite a previous one. Resume: continue from ``last.pt`` when it is
    readable, with the saved config (:func:`resumed_config`: the run folder is the one given,
    runtime and quality-evaluator options may change, training options may not); otherwise
    restart from the beginning with the options given and say why (no ``last.pt``: killed before
    the first epoch finished; damaged ``last.pt``).

    Returns the configuration to run and a note saying what ``--resume`` did ("" for new runs).
    """
    out = Path(cfg.out)
    saved = out / "config.yaml"
    last = out / "last.pt"
    if cfg.resume:
        remove_stale_temps(out, recursive=False)
        why = ""
        if not last.is_file():
            why = "no resume state (last.pt) in the run folder: the run stopped before its first epoch ended"
        else:
            try:
                state = load_last(last)
            except CheckpointError as err:
                why = f"the resume state is unusable ({err})"
        if why:
            log.warning("%s; restarting the run from the beginning", why)
            # nothing to continue: the run starts over with the options given
            cfg = cfg.model_copy(update={"resume": False})
            cfg._stop_after = None  # only a resumed run can end early
            return cfg, f"restarted: {why}"
        if saved.is_file():
            # state: the --weights file's path and bytes (weights_record; older: neither)
            cfg = resumed_config(TrainConfig.load(saved), cfg, saved, state)
        return cfg, "continued"
    if last.exists() or (out / "model.pt").exists():
        raise UserError(
            "run folder already holds a training run; pass --resume to continue it (or restart it, "
            "when it stopped before a resume state was saved) or choose a new --out",
            out,
        )
    if cfg._stop_after is not None:  # a config copied from a resumed one (quality fold networks)
        cfg = cfg.model_copy()
        cfg._stop_after = None
    return cfg, ""
