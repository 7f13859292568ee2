"""A training run's checkpoints: what ``last.pt`` and ``model.pt`` record, and ``--resume`` from ``last.pt``.

``last.pt`` is written after every epoch (:func:`save_epoch`): the trainable weights, optimiser,
schedule and RNG states, and where the epoch loop stands (:class:`Standing`: the metrics rows,
the best epoch, its score and its trainable weights). ``--resume`` restores all of it
(:func:`resume`), so a run resumed after a kill ends as an uninterrupted one would. ``model.pt``
holds the best epoch's weights with :func:`model_extra`: normalisation, input bands, crop size and
what the run trained (:func:`training_record`). It is written once, when the epochs are done
(:func:`write_best`), from the best epoch's trainable weights kept in memory (:func:`keep_best`)
and in ``last.pt``: writing the 111 MB file (frozen trunk included) on every improving epoch cost
the demo about 15 writes of 0.24 s (docs/benchmarks.md, "Demo timing"). The ``last.pt`` format and the frozen-weight check live in
:mod:`sam2elnet.engine.train_state`; the loop that calls these in :mod:`sam2elnet.engine.train`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sam2elnet import __version__
from sam2elnet.config import TrainConfig
from sam2elnet.engine.runtime import precision_record
from sam2elnet.engine.train_metrics import resumed_selection
from sam2elnet.engine.train_state import (
    LAST_FORMAT,
    LAST_VERSION,
    FrozenState,
    load_last,
    load_weights,
    rng_state,
    save_last,
    set_rng_state,
    trainable_state,
)

__all__ = [
    "Standing",
    "keep_best",
    "model_extra",
    "resume",
    "save_epoch",
    "training_record",
    "write_best",
]


@dataclass
class Standing:
    """Where a run's epoch loop stands (epochs 0-based; ``best_epoch`` -1 before any epoch)."""

    start_epoch: int = 0
    """The first epoch this run trains (after ``--resume``: the one after ``last.pt``'s)."""
    best_epoch: int = -1
    best_iou: float = -1.0
    """The best epoch's IoU: validation IoU, or training IoU without a validation split."""
    best_score: float = -math.inf
    """What selects the best epoch (validation IoU or minus validation loss)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One ``metrics.csv`` row per epoch trained."""
    best_state: dict[str, torch.Tensor] | None = None
    """The best epoch's trainable weights (:func:`keep_best`), written to ``model.pt`` when the
    epochs are done (:func:`write_best`); None before any epoch was best, and after resuming an
    older ``last.pt`` whose best epoch's weights are only in ``model.pt``."""

    def record(self, epoch: int, row: dict[str, Any], score: float, validated: bool) -> bool:
        """Add ``epoch``'s metrics ``row`` to the history; True when it is the best epoch so far
        (``score`` above the best; without validation, ``validated`` False, every epoch is: the
        latest is the best known), which then becomes the best."""
        self.history.append(row)
        improved = not validated or score > self.best_score
        if improved:
            self.best_score, self.best_epoch = float(score), epoch
            self.best_iou = float(row["val_iou"] if validated else row["train_iou"])
        return improved


IMPLEMENTATION_FLAGS = ("foreach", "fused")
"""Optimiser options that choose how the update is computed, not what it is: a resumed run keeps
the ones of the optimiser it built (:func:`load_optimizer_state`)."""


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: Mapping[str, Any]) -> None:
    """``optimizer.load_state_dict(saved)``, keeping ``optimizer``'s own
    :data:`IMPLEMENTATION_FLAGS` per parameter group: torch takes a saved group's options whole, so a ``last.pt`` written
    before AdamW's ``foreach`` form (``foreach`` None: one tensor at a time on a CPU) would
    resume the slower form (the same numbers on a CPU, bit for bit:
    :func:`~sam2elnet.engine.train_schedule.adamw`).

    Raises:
        ValueError: as torch's ``load_state_dict`` (another group or parameter count).
    """
    kept = [{k: g[k] for k in IMPLEMENTATION_FLAGS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, flags in zip(optimizer.param_groups, kept, strict=True):
        group.update(flags)


def resume(
    cfg: TrainConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    frozen: FrozenState,
    *,
    by_loss: bool,
    validated: bool,
) -> tuple[Standing, str]:
    """Restore ``RUN/last.pt`` into ``model``, ``optimizer``, ``scheduler`` and the RNGs.

    Args:
        cfg: the run's configuration (``out``, ``epochs``, ``coarse_prob``).
        frozen: the rebuilt model's frozen weights, checked against the file's record.
        by_loss, validated: how this run selects the best epoch
            (:func:`~sam2elnet.engine.train_metrics.resumed_selection`).

    Returns:
        Where the loop stands, and the line that says where it resumes from.

    Raises:
        CheckpointError: the file is unreadable, of another format, or its frozen weights differ
            from the rebuilt model's.
    """
    out = Path(cfg.out)
    last_path = out / "last.pt"
    state = load_last(last_path)
    load_weights(model, state, last_path, frozen)
    load_optimizer_state(optimizer, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    st = Standing(start_epoch=int(state["epoch"]) + 1, best_epoch=int(state["best_epoch"]))
    st.history, st.best_iou, st.best_score = resumed_selection(
        state, cfg.coarse_prob, by_loss, validated, cfg.epochs
    )
    set_rng_state(state["rng"])
    checked = "; frozen encoder weights checked" if state.get("frozen") is not None else ""
    at = (  # a finished run has no next epoch ("at epoch 4 of 3" was said)
        f"at epoch {st.start_epoch + 1} of {cfg.epochs}"
        if st.start_epoch < cfg.epochs
        else f"after its last epoch ({cfg.epochs} of {cfg.epochs} done)"
    )
    if state.get("best_model") is not None:  # version 3: the best epoch's weights
        st.best_state = state["best_model"]
    elif st.best_epoch == int(state["epoch"]) and st.best_epoch >= 0:
        # versions 1-2 wrote model.pt after last.pt: a kill between the two left the best
        # epoch's weights only here (else model.pt holds them and is kept)
        st.best_state = state["model"]  # version 1: every weight (strict=False loads)
    return st, f"resuming {out} {at} (from {last_path}{checked})"


def save_epoch(
    last_path: Path,
    model: torch.nn.Module,
    frozen: FrozenState,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    epoch: int,
    st: Standing,
    selection: dict[str, Any],
    weights: Mapping[str, str | None] | None = None,
) -> None:
    """Write ``last.pt`` (atomically) after ``epoch``: everything :func:`resume` restores, and
    ``weights`` (the ``--weights`` file's absolute path and SHA-256,
    :func:`~sam2elnet.model.checkpoint_files.weights_record`): ``--resume`` compares the file it
    is given with that one (:class:`~sam2elnet.option_checks.WeightsFiles`)."""
    save_last(
        last_path,
        {
            "format": LAST_FORMAT,
            "version": LAST_VERSION,
            "model": trainable_state(model, frozen),
            "frozen": frozen.record(),
            "weights_sha256": (weights or {}).get("weights_sha256"),
            "weights_path": (weights or {}).get("weights_path"),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "best_iou": st.best_iou,
            "best_score": st.best_score,
            "best_epoch": st.best_epoch,
            "selection": selection,
            "history": st.history,
            "rng": rng_state(),
            "best_model": st.best_state,
        },
    )


def keep_best(st: Standing, model: torch.nn.Module, frozen: FrozenState) -> None:
    """Keep a copy of ``model``'s trainable weights as the best epoch's (``st.best_state``): a
    few MB for Hiera-tiny (the frozen trunk is left out), written by :func:`save_epoch` and
    :func:`write_best`."""
    st.best_state = {k: v.detach().clone() for k, v in trainable_state(model, frozen).items()}


def write_best(
    model: torch.nn.Module, best_path: Path, st: Standing, extra: dict[str, Any]
) -> bool:
    """Write ``model.pt`` once the epochs are done: the best epoch's weights (``st.best_state``,
    loaded into ``model``, which then holds them) with ``extra`` (:func:`model_extra`).

    Without kept weights: nothing when ``best_path`` exists (a resumed older run whose best
    epoch's weights are in it), else ``model``'s weights as they are (no epoch was best, e.g.
    every validation score was NaN). Returns whether the file was written.
    """
    # looked up per call, not at module import: tests replace model.save_model
    from sam2elnet.model import save_model

    if st.best_state is not None:
        model.load_state_dict(st.best_state, strict=False)
    elif best_path.is_file():
        return False
    save_model(model, best_path, extra=extra)
    return True


def training_record(
    cfg: TrainConfig,
    data: Any,
    model: Any,
    *,
    precision: str,
    device: torch.device,
    batch_size: int,
    batch_rule: str,
    channels_last: bool,
    roads: bool,
    topology: float,
    selection: dict[str, Any],
    val_road_buffer: Any,
) -> dict[str, Any]:
    """What ``model.pt``'s ``extra["train"]`` records of the run besides its best epoch: data,
    network, precision (option and resolved), batch, domain, loss, selection rule and the
    validation road buffer. ``data``: the run's
    :class:`~sam2elnet.engine.train_data.TrainData`; ``precision``: the one training ran with;
    ``topology``: the clDice loss weight."""
    return {
        "package_version": __version__,
        "data": str(cfg.data),
        "dataset_splits": data.source_splits,
        "modality": data.modality,
        "size": model.config.size,  # the network trained (an --init-model's, not --size)
        "image_size": cfg.image_size,
        "positive_values": list(cfg.positive_values) if cfg.positive_values else None,
        "fraction": cfg.fraction,
        "seed": cfg.seed,
        "n_train": len(data.train_samples),
        "n_val": len(data.val_samples),
        "n_held_out": len(data.splits["held_out"]),
        "precision": precision,
        **precision_record(cfg.precision, device),  # as annotate / enhance / scene / cv record
        "batch_size": batch_size,
        "batch_rule": batch_rule,
        "channels_last": channels_last,
        "trunk": model.config.trunk_trainable,
        "weights": model.config.weights,
        "domain": "roads" if roads else "other",
        "topology_loss": "cldice" if topology > 0 else "none",
        "selection": selection,
        "val_road_buffer": val_road_buffer,  # of the validation road measures (metrics.csv)
    }


def model_extra(
    cfg: TrainConfig, data: Any, record: dict[str, Any], st: Standing
) -> dict[str, Any]:
    """``model.pt``'s ``extra`` when the best epoch is saved: normalisation, input bands, crop
    size, :func:`training_record` with the best epoch (1-based) and its IoU; ``quality`` and
    ``quality_summary`` stay empty until the evaluator is fitted
    (:func:`~sam2elnet.engine.quality_fit.fit_quality` writes them)."""
    return {
        "normalization": data.norm.model_dump(mode="json"),
        "in_bands": data.in_bands,
        "image_size": cfg.image_size,
        "quality": {},
        "quality_summary": {},
        "train": {
            **record,
            "best_epoch": st.best_epoch + 1,
            "best_val_iou": st.best_iou,
            # the epochs trained: a run ended early by --resume --epochs K records K (and
            # epochs_planned); train.train puts them into the record
            "epochs": record.get("epochs", cfg.epochs),
        },
    }
