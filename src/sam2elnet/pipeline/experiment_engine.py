"""The protocol's calls into the engine: weights, SAM2-ELNet training, annotation, enhancement,
the quality threshold and the downstream configuration. Part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2elnet.errors import DataError
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import trunk_scale_words
from sam2elnet.pipeline.experiment_config import (
    RANDOM_INIT_EXPERIMENT_API,
    UNFITTED_MIN_QUALITY,
    ExperimentConfig,
)
from sam2elnet.utils.advice import plural

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- engine adapters
def check_weights_kind(cfg: ExperimentConfig) -> None:
    """The ``weights`` given can be a checkpoint (a few bytes read; no-op when they name nothing
    that exists: :func:`~sam2elnet.model.checkpoint_files.check_weights_exist` says that first,
    before the data folder and the output folder are looked at).

    Raises:
        CheckpointError: a YAML, empty or text file, or a folder without ``.safetensors`` files
            (:func:`~sam2elnet.model.io.check_checkpoint_kind`).
    """
    if cfg.weights and cfg.weights != "none" and Path(cfg.weights).expanduser().exists():
        from sam2elnet.model.io import check_checkpoint_kind

        check_checkpoint_kind(Path(cfg.weights))


def resolve_weights(
    cfg: ExperimentConfig, random_init: str = RANDOM_INIT_EXPERIMENT_API
) -> tuple[str | None, str]:
    """(weights path or None, a sentence saying what the encoder starts from).

    ``cfg.weights`` ``"none"`` asks for a random encoder without looking in the weights cache.
    ``random_init`` is how the caller's user asks for it, in the sentence and the error: the
    API's ``weights="none"`` (default), or ``--weights none`` from the command line.

    Raises:
        CheckpointError: ``cfg.weights`` names no file, or a file that cannot be a checkpoint
            (:func:`~sam2elnet.model.checkpoint_files.check_weights_exist`,
            :func:`check_weights_kind`).
    """
    random_note = (
        f"RANDOMLY INITIALISED SAM2 Hiera-{cfg.size} encoder (%s; trunk training: {cfg.trunk}). "
        "Numbers are a floor, not what SAM2-ELNet reaches with real SAM2 weights."
    )
    if cfg.weights == "none":
        return None, random_note % random_init
    if cfg.weights:
        from sam2elnet.model.checkpoint_files import check_weights_exist

        check_weights_exist(cfg.weights, random_init)
        check_weights_kind(cfg)
        p = Path(cfg.weights)
        return str(p), f"pretrained SAM2 Hiera-{cfg.size} weights from {p}"
    found = cached_weights(cfg.size)
    if found is not None:
        return str(
            found
        ), f"pretrained SAM2 Hiera-{cfg.size} weights from the local cache ({found})"
    return None, random_note % "no pretrained weights were available locally"


def cached_weights(size: str) -> Path | None:
    """The official checkpoint of ``size`` in the local weights cache, which an experiment
    without ``weights`` starts from (:func:`~sam2elnet.model.weights_cache.find_cached_weights`),
    or None: none cached, the ``micro`` test size, or a cache that cannot be read."""
    if size == "micro":
        return None
    try:
        from sam2elnet.model.weights_cache import find_cached_weights

        return find_cached_weights(size)
    except Exception:  # noqa: BLE001 - a missing or unreadable cache is not an error here
        return None


def train_elnet(cfg: ExperimentConfig, data_dir: Path, run_dir: Path, weights: str | None) -> dict:
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train import train

    resume = cfg.resume and (run_dir / "last.pt").is_file()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)
    tcfg = TrainConfig(
        data=data_dir,
        out=run_dir,
        weights=weights,
        size=cfg.size,
        trunk=cfg.trunk,
        trunk_scale=cfg.trunk_scale,
        fraction=1.0,
        seed=cfg.seed,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        image_size=cfg.image_size,
        precision=cfg.precision,
        device=cfg.device,
        resume=resume,
        progress=cfg.progress,
        road_buffer=cfg.road_buffer,
        road_buffer_m=cfg.road_buffer_m,
        # the split decided the modality and wrote it into the subset's dataset.json; a given
        # one is passed on as given (auto: the same TrainConfig as runs made before the option)
        modality=cfg.modality,
        quality={"crossfit_folds": cfg.quality_folds, "crossfit_epochs": cfg.quality_fold_epochs},
    )
    res = train(tcfg)
    return {
        "model": str(res.best_path),
        "best_epoch": res.best_epoch,
        "best_val_iou": res.best_val_iou,
        "selection": res.selection.get("rule", ""),
        "history": res.history,
        "quality": res.quality,
        "splits": {k: len(v) for k, v in res.splits.items()},
    }


def built_trunk_scale(model: str | Path) -> int:
    """The trunk scale SAM2-ELNet's network was built with, from its model file: 1 (full) or 2
    (half resolution); an auto ``--trunk-scale`` resolved by training.

    Raises:
        CheckpointError: the model file is missing or not one this project wrote.
    """
    from sam2elnet.model.io import model_config_of, read_model_file

    return int(model_config_of(read_model_file(model), model).trunk_scale)


def elnet_trunk(cfg: ExperimentConfig, model: str) -> dict[str, Any]:
    """The trunk scale SAM2-ELNet's network was built with (:func:`built_trunk_scale`) and a
    sentence for the report: ``{"trunk_scale", "trunk_note"}``."""
    scale = built_trunk_scale(model)
    given = cfg.trunk_scale if cfg.trunk_scale is not None else "auto"
    return {
        "trunk_scale": scale,
        "trunk_note": f"SAM2-ELNet: {trunk_scale_words(scale)} (--trunk-scale {given})",
    }


def rows_to_labels(result: Any, ids: Sequence[str]) -> tuple[dict[str, str], dict[str, float]]:
    """Label paths and predicted quality per id from an annotate/enhance FolderResult."""
    labels: dict[str, str] = {}
    quality: dict[str, float] = {}
    for row in result.rows:
        key = Path(str(row["image"])).stem
        labels[key] = str(Path(result.out_dir) / str(row["label"]))
        q = row.get("predicted_iou")
        quality[key] = float(q) if q not in (None, "") else float("nan")
    missing = [i for i in ids if i not in labels]
    if missing:
        raise DataError(
            f"{plural(len(missing), 'label was', 'labels were')} not produced "
            f"(e.g. {missing[0]}; see skipped.csv); fix or remove those images",
            result.out_dir,
        )
    return {i: labels[i] for i in ids}, {i: quality[i] for i in ids}


def predictor_for(cfg: ExperimentConfig, model: str) -> Any:
    from sam2elnet.engine.predictor import Predictor

    return Predictor.from_file(
        model, device=cfg.device, precision=cfg.precision, batch_size=cfg.batch_size
    )


def annotate_images(
    cfg: ExperimentConfig, pred: Any, model: str, image_dir: Path, out_dir: Path
) -> Any:
    """``annotate_folder`` for a stage: every label unusable is no error but the result's
    ``unusable`` (the stage reports it: :func:`unusable_record`)."""
    from sam2elnet.engine.infer import annotate_folder

    return annotate_folder(
        model, image_dir, out_dir, resume=cfg.resume, progress=cfg.progress, predictor=pred,
        unusable_is_error=False,
    )  # fmt: skip


def enhance_images(
    cfg: ExperimentConfig, pred: Any, model: str, image_dir: Path, label_dir: Path, out_dir: Path
) -> Any:
    """``enhance_folder`` for a stage, every label unusable no error as in
    :func:`annotate_images`."""
    from sam2elnet.engine.infer import enhance_folder

    return enhance_folder(
        model,
        image_dir,
        label_dir,
        out_dir,
        resume=cfg.resume,
        progress=cfg.progress,
        predictor=pred,
        save_changes=False,
        unusable_is_error=False,
    )


def unusable_record(result: Any, stage: str) -> dict[str, str]:
    """A stage's record of a folder job (``result``: :func:`annotate_images`,
    :func:`enhance_images`) whose every label is unusable whatever the filter (its images hold
    nothing to label, or the model's scaling clips them flat: a normalisation mismatch), with
    one warning naming ``stage``: ``{"unusable": what happened}``; ``{}`` when some label is
    usable. The labels stay and are scored as they are."""
    from sam2elnet.data.runfolder import QUALITY_CSV

    if not result.unusable:
        return {}
    log.warning(
        "%s: nothing usable: %s; scored as they are (see %s)",
        stage, result.unusable, Path(result.out_dir) / QUALITY_CSV,
    )  # fmt: skip
    return {"unusable": result.unusable}


def quality_threshold(cfg: ExperimentConfig, pred: Any) -> tuple[float, str]:
    """Quality threshold for filtering and a sentence saying how it was chosen.

    Default (neither option): the evaluator's default target precision when it was fitted, else a
    minimum predicted quality of :data:`UNFITTED_MIN_QUALITY` (0.5).
    """
    if cfg.min_quality is not None:
        return cfg.min_quality, f"--min-quality {cfg.min_quality}"
    target = cfg.target_precision
    if target is None:
        if not pred.evaluator.fitted:
            why = pred.evaluator.warning or pred.evaluator.status
            return UNFITTED_MIN_QUALITY, (
                f"minimum predicted quality {UNFITTED_MIN_QUALITY:g} (the quality evaluator was "
                f"not fitted: {why}; "
                f"its scores are capped at {pred.evaluator.prior:.2f})"
            )
        from sam2elnet.config import QualityConfig

        target = option_default(QualityConfig, "default_target_precision")
    thr, info = pred.choose_threshold(None, target)
    choice = info.get("target_precision", {})
    how = (
        f"target precision {target:.2f} of 'IoU >= {choice.get('tau', float('nan')):.2f}' on "
        f"held-out labels -> threshold {thr:.3f}"
    )
    if not choice.get("achievable", True):
        how += " (not achievable on the held-out labels)"
    return float(thr), how


def downstream_config(cfg: ExperimentConfig) -> Any:
    from sam2elnet.engine.downstream_config import DownstreamConfig

    return DownstreamConfig(
        model_options={
            "width": cfg.downstream_width,
            "depth": cfg.downstream_depth,
            "norm": "batch",
        },
        epochs=cfg.downstream_epochs,
        steps=cfg.downstream_steps,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        precision=cfg.precision,
        device=cfg.device,
        seed=cfg.seed,
        curve_points=cfg.downstream_curve_points,
        progress=cfg.progress,
    )
