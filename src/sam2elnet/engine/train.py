"""Fine-tuning SAM2-ELNet: ``train(TrainConfig) -> TrainResult`` (the library behind ``elnet train``).

What a run does, and why:

* Splits the labelled set reproducibly: ``fraction`` of it is the *labelled part* (the paper's 30 %
  protocol; the rest is recorded as held out in ``RUN/splits.json``), and ``val_fraction`` of the
  labelled part is kept for validation (model selection and the quality evaluator, which must be
  fitted on predictions the model was not trained on).
* One model learns both tasks: the dataset gives a coarse label to ``coarse_prob`` of the training
  samples (enhancement) and none to the rest (annotation), so every batch mixes the two.
* Only adapters, input stem, mask encoder and decoder train (``model.trainable_parameters()``); the
  frozen Hiera trunk stays in eval mode. ``trunk="last"|"all"`` also trains the trunk for runs
  without pretrained weights.
* AdamW, linear warm-up then cosine decay (per step), gradient clipping, bf16 autocast where
  the hardware computes bf16 natively (``--precision auto``; float32 elsewhere, where bf16 is
  many times slower: :func:`sam2elnet.engine.runtime.native_bf16`), fixed seeds, epoch-level
  checkpoints: ``--resume`` after a kill continues with the same weights, optimiser, schedule,
  RNG and data order, so the result equals an uninterrupted run.
* ``torchrun``: with ``WORLD_SIZE > 1`` the same command runs DDP (gloo on CPU, nccl on CUDA); every
  rank trains on its shard, rank 0 validates and writes files.

Outputs in ``RUN/``: ``model.pt`` (best ``val_iou``, the modes weighted by the training mix:
:func:`~sam2elnet.engine.train_metrics.selection_iou`; with normalisation, quality evaluator and
training metadata in ``extra``), ``last.pt`` (resume state), ``config.yaml``, ``metrics.csv``,
``splits.json``.

Where the parts live: the split and datasets in :mod:`sam2elnet.engine.train_data`, DDP set-up and
the ``last.pt`` file format in :mod:`sam2elnet.engine.train_state`, what ``last.pt`` and
``model.pt`` record, ``--resume`` and the best epoch so far in
:mod:`sam2elnet.engine.train_checkpoints`, one pass over the loader (forward, loss, step, DDP sums)
in :mod:`sam2elnet.engine.train_epoch`, the run folder and the network to train in
:mod:`sam2elnet.engine.train_setup`, the schedule, parameter groups, sampler and loader in
:mod:`sam2elnet.engine.train_schedule`, the validation items (native scale, batched by shape) in
:mod:`sam2elnet.engine.train_val`, ``metrics.csv`` columns and the validation pass in
:mod:`sam2elnet.engine.train_metrics`, device/autocast/threads/seeds in
:mod:`sam2elnet.engine.runtime`, the finished run's evaluator in
:mod:`sam2elnet.engine.train_quality` (the fit itself: :mod:`sam2elnet.engine.quality_fit`). This
module holds the run itself: the set-up, the epoch loop and its outputs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sam2elnet.config import TrainConfig
from sam2elnet.data.load_cache import LoadCache, train_cache_bytes
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.engine.quality_crossfit import check_crossfit
from sam2elnet.engine.runtime import (
    precision_note,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_threads,
)
from sam2elnet.engine.train_checkpoints import (
    Standing,
    keep_best,
    model_extra,
    resume,
    save_epoch,
    training_record,
    write_best,
)
from sam2elnet.engine.train_checks import positive_values as _positive
from sam2elnet.engine.train_data import prepare_data as _prepare_data
from sam2elnet.engine.train_data import training_recipe as _training_recipe
from sam2elnet.engine.train_epoch import train_epoch
from sam2elnet.engine.train_metrics import (
    METRIC_FIELDS,
    ROAD_FIELDS,
    iou_f1,
    metrics_csv_text,
    no_validation_row,
    selection_rule,
    val_text,
    validate,
)
from sam2elnet.engine.train_quality import fit_run_evaluator
from sam2elnet.engine.train_schedule import (
    adamw,
    auto_epochs,
    batch_plan,
    collapse_note,
    late_best_note,
    lr_lambda,
    train_loader,
)
from sam2elnet.engine.train_setup import (
    build_model_for,
    changed_split_note,
    check_weights_file,
    crop_share_note,
    prepare_run_dir,
    resolve_image_size,
    resolve_trunk_scale,
    resume_note,
    stop_line,
)
from sam2elnet.engine.train_state import frozen_state
from sam2elnet.engine.train_state import init_distributed as _init_distributed
from sam2elnet.engine.train_val import val_road_buffer, validation_loader
from sam2elnet.model.checkpoint_files import weights_record
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic
from sam2elnet.utils.lock import output_lock
from sam2elnet.utils.progress import bar_wanted, line, write

log = logging.getLogger(__name__)

__all__ = ["METRIC_FIELDS", "ROAD_FIELDS", "TrainConfig", "TrainResult", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    best_path: Path
    last_path: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_iou: float
    splits: dict[str, list[str]] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Image/mask pairs that could not be read (also in ``RUN/skipped.csv``)."""
    resumed: str = ""
    """How ``--resume`` started: "continued at epoch N", "restarted: <why>" or "" (new run)."""
    selection: dict[str, Any] = field(default_factory=dict)
    """What chose ``best_epoch`` (:func:`~sam2elnet.engine.train_metrics.selection_rule`)."""

    @property
    def best_val_modes(self) -> dict[str, float]:
        """The best epoch's validation IoU per mode: ``annotate`` (image only, what ``elnet
        annotate`` produces), ``enhance`` (image + simulated coarse label) and ``coarse`` (that
        coarse label's own IoU); NaN without a validation split.

        ``best_val_iou`` (selection) is ``(1 - coarse_prob) * annotate + coarse_prob * enhance``,
        the training mix (:attr:`selection`; default 0.5: their mean). Compare ``annotate`` with
        annotation test IoUs: enhancement starts from a coarse label of IoU ~0.7 and lifts the
        score far above annotation (roads-dev: mean 0.49, annotation 0.27, enhancement 0.71)."""
        row = next((r for r in self.history if r.get("epoch") == self.best_epoch), {})
        keys = {"annotate": "val_iou_annotate", "enhance": "val_iou_enhance"}
        keys["coarse"] = "val_coarse_iou"
        return {k: float(row.get(v, float("nan"))) for k, v in keys.items()}


def train(cfg: TrainConfig, echo: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune SAM2-ELNet as configured; see the module docstring for what is written.

    Progress lines (splits found and used, normalisation, one line per epoch with loss, IoUs and
    speed) go above the progress bar; with ``cfg.progress`` False they go to ``echo`` (the CLI
    passes ``typer.echo``, so ``--no-progress`` logs stay informative), else to the log at INFO.

    The run folder is locked for the duration (a second job into the same ``--out`` fails with
    an error naming the first one's PID); under torchrun only rank 0 takes the lock.

    Raises:
        LockedError: another job is writing into ``cfg.out`` (the message names its PID).
        UserError: ``cfg.out`` already holds a training run and ``resume`` is off, a resumed
            run's ``config.yaml`` disagrees with ``cfg``, ``fraction`` / ``val_fraction`` /
            ``quality_folds`` leave no training image (or too few for the folds), a label
            looks like an image (images and masks swapped), or ``SAM2ELNET_TRAIN_CACHE_MB`` is
            not a whole number >= 0 (:func:`~sam2elnet.data.load_cache.train_cache_bytes`).
        DataError: no usable training pair in ``cfg.data`` (every image skipped: nothing
            produced), all training masks empty or all full, ``norm_stats`` missing or
            unreadable or for another band count, or images whose band count the model to
            fine-tune (``init_model``) does not take.
        CheckpointError: ``cfg.weights`` / ``init_model`` / the resume state ``last.pt`` is
            missing, truncated, not a SAM2 encoder / sam2elnet model file, or for another
            encoder size.
    """
    cache_bytes = train_cache_bytes()  # a bad SAM2ELNET_TRAIN_CACHE_MB: before anything is made
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(cfg, echo, cache_bytes)
    with output_lock(cfg.out):
        return _train(cfg, echo, cache_bytes)


def _train(cfg: TrainConfig, echo: Callable[[str], None] | None, cache_bytes: int) -> TrainResult:
    from sam2elnet.data.datasets import SegmentationDataset

    cfg, resumed = prepare_run_dir(cfg)
    check_weights_file(cfg)  # before the data checks, which read every training image
    out = Path(cfg.out)
    set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    dist_info, device = _init_distributed(cfg, device)
    seed_everything(cfg.seed)

    def say(msg: str) -> None:
        if not dist_info.main:
            return
        if cfg.progress:
            write(msg, sys.stdout)  # above the bar
        elif echo is not None:
            echo(msg)
        else:
            line(msg)

    data = _prepare_data(cfg)
    cfg, crops = resolve_image_size(cfg, data.init_payload)  # an --init-model's own crop size
    for note in data.notes:
        say(note)
    for warning in data.warnings:  # after the split line they are about
        log.warning(warning)
    if cfg.fit_quality:  # before any training: a fold count the data cannot fill is an error
        check_crossfit(cfg.quality.crossfit_folds, len(data.train_samples), cfg.data)
    weights, augmentation, recipe = _training_recipe(cfg, data.domain)
    say(recipe)
    batch_size, batch_rule, channels_last, plan_txt = batch_plan(cfg)
    precision = resolve_precision(cfg.precision, device)  # "auto": "32" without native bf16
    say(plan_txt)
    say(precision_note(cfg.precision, device))
    roads = bool(data.domain is not None and data.domain.roads)
    fields = METRIC_FIELDS + (ROAD_FIELDS if roads else ())
    train_ds = SegmentationDataset(
        data.train_samples,
        data.norm,
        size=cfg.image_size,
        train=True,
        seed=cfg.seed,
        coarse_prob=cfg.coarse_prob,
        bands=data.in_bands,
        positive_values=_positive(cfg),
        augmentation=augmentation,
        # each image decoded once, not once an epoch (in this process: workers read anyway)
        cache=LoadCache(cache_bytes),
    )
    n_windowed = train_ds.prepare_windows()  # before the workers fork: they inherit the plans
    if n_windowed:
        say(
            f"{plural(n_windowed, 'large training image is', 'large training images are')} "
            "read by windows (only each crop's pixels; see docs/training.md)"
        )
    if big := crop_share_note([s.image for s in data.train_samples], cfg.image_size):
        say(big)  # whole scenes: one crop an epoch sees little of each
    vbuf = val_road_buffer(cfg, data.val_samples, roads)  # px per image; metres checked here
    val_loader = None  # native scale, batched by shape (engine.train_val); rank 0 validates
    if dist_info.main:
        val_loader = validation_loader(
            data.val_samples, data.norm, cfg.image_size, data.in_bands, cfg.seed, batch_size,
            _positive(cfg), vbuf.px,
        )  # fmt: skip

    model = build_model_for(cfg, data.in_bands, data.norm, roads, data.init_payload).to(device)
    data.init_payload = None  # the --init-model file, read once: its weights are in the model
    cfg = resolve_trunk_scale(cfg, roads)  # config.yaml records the scale built
    say(cfg.trunk_scale_note(roads, int(model.config.trunk_scale)))
    if cfg.init_model is not None:  # --size / --trunk / --weights are the new-model options
        say(
            f"model: {model.config.size}, trunk training {model.config.trunk_trainable} (the "
            "--init-model's architecture, kept in fine-tuning; --size, --trunk and --weights "
            f"do not change it); {crops}"
        )
    if channels_last:  # before the optimiser: converts the parameters in place
        model = model.to(memory_format=torch.channels_last)
    params = model.trainable_parameters()
    optimizer = adamw(params, cfg.lr, cfg.weight_decay)
    frozen = frozen_state(model)  # left out of last.pt: a resumed run rebuilds and checks them
    weights_rec = weights_record(cfg.weights)  # last.pt: --resume elsewhere, or the file moved

    sampler, loader = train_loader(
        train_ds, batch_size, cfg.seed, device, cfg.num_workers, dist_info
    )
    if cfg.epochs is None:  # --epochs auto: about AUTO_UPDATES updates; config.yaml records them
        epochs, auto_line = auto_epochs(len(loader))  # not `line`: say() may be progress.line
        cfg = cfg.model_copy(update={"epochs": epochs})
        say(auto_line)
    total_steps = max(1, len(loader)) * cfg.epochs
    warmup = int(round(cfg.warmup_fraction * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, warmup, cfg.min_lr_ratio)
    )

    st = Standing()  # epochs done, best so far: restored from last.pt by --resume
    last_path, best_path = out / "last.pt", out / "model.pt"
    if cfg.resume:
        st, where = resume(
            cfg, model, optimizer, scheduler, frozen,
            by_loss=data.select_by_loss, validated=val_loader is not None,
        )  # fmt: skip
        resumed = resume_note(st.start_epoch, cfg.epochs)
        say(where)
        if dist_info.main and (changed := changed_split_note(out / "splits.json", data.splits)):
            say(changed)

    ddp_model: torch.nn.Module = model
    if dist_info.enabled:
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
        write_json_atomic(
            out / "splits.json", {**data.splits, "dataset_splits": data.source_splits}
        )

    selection = selection_rule(cfg.coarse_prob, data.select_by_loss, val_loader is not None)
    record = training_record(
        cfg, data, model, precision=precision, device=device, batch_size=batch_size,
        batch_rule=batch_rule, channels_last=channels_last, roads=roads,
        topology=weights.topology, selection=selection, val_road_buffer=vbuf.record,
    )  # fmt: skip

    if dist_info.main:  # image, id, reason; an earlier run's list removed when none is skipped
        data.skip_log.write_csv(out / SKIPPED_CSV)

    stop = min(cfg.epochs, cfg._stop_after or cfg.epochs)  # --resume --epochs K: end early
    if stop < cfg.epochs and dist_info.main:
        say(stop_line(stop, cfg.epochs, st.start_epoch, st.best_epoch + 1))
    # one bar over the whole run, so its ETA is the run's, not the epoch's
    bar_on = bar_wanted(cfg.progress and dist_info.main)  # a terminal's bar (CLI: not into logs)
    bar = tqdm(
        total=len(loader) * max(0, stop - st.start_epoch),
        disable=not bar_on,
        unit="batch",
        dynamic_ncols=True,
    )
    for epoch in range(st.start_epoch, stop):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        ddp_model.train()
        bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
        sums = train_epoch(
            ddp_model, loader, optimizer, scheduler, params, weights, device=device,
            precision=precision, channels_last=channels_last, grad_clip=cfg.grad_clip, bar=bar,
            show_loss=bar_on, distributed=dist_info.enabled,
        )  # fmt: skip
        train_time = time.perf_counter() - t0
        tr_iou, tr_f1 = iou_f1(*sums.counts)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": float(scheduler.get_last_lr()[0]),
            "train_loss": sums.loss_sum / max(1, sums.n_img),
            "train_iou": tr_iou,
            "train_f1": tr_f1,
            "train_img_per_s": sums.n_img / max(train_time, 1e-9),
        }
        if dist_info.main:
            if val_loader is not None:
                row.update(
                    validate(
                        model,
                        val_loader,
                        device,
                        precision,
                        weights,
                        roads=roads,
                        channels_last=channels_last,
                        coarse_prob=cfg.coarse_prob,
                        road_buffer=cfg.road_buffer,
                    )
                )
                score = -row["val_loss"] if data.select_by_loss else row["val_iou"]
            else:
                score = tr_iou  # no validation split: the latest epoch is the best we know
                row.update(no_validation_row(roads))
            row["time_s"] = time.perf_counter() - t0
            improved = st.record(epoch, row, score, validated=val_loader is not None)
            if improved:  # in memory and in last.pt; model.pt is written once, after the epochs
                keep_best(st, model, frozen)
            write_text_atomic(out / "metrics.csv", metrics_csv_text(st.history, fields))
            save_epoch(
                last_path, model, frozen, optimizer, scheduler, epoch, st, selection, weights_rec
            )
            val_txt = val_text(row, cfg.coarse_prob, roads, vbuf.said)
            say(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f} train IoU "
                f"{tr_iou:.3f} {val_txt} lr {row['lr']:.2g} ({row['train_img_per_s']:.2f} img/s, "
                f"{row['time_s']:.1f} s){' *' if improved else ''}"
            )
        if dist_info.enabled:
            dist.barrier()

    bar.close()
    quality_summary: dict[str, Any] = {}
    if dist_info.main:
        late = late_best_note(st.best_epoch + 1, stop, len(loader) * stop, val_loader is not None)
        if late:
            say(late)
        collapsed = collapse_note(st.history, st.best_epoch + 1, cfg.lr)
        if collapsed:
            say(collapsed)
        # the best epoch's weights (kept since then, or from last.pt after --resume); a resumed
        # run that trained no epoch keeps the model.pt it finished with (its evaluator too)
        if stop < cfg.epochs:  # ended early: the network was trained for `stop` epochs
            record.update(epochs=stop, epochs_planned=cfg.epochs)
        if st.start_epoch < stop or stop < cfg.epochs or not best_path.is_file():
            write_best(model, best_path, st, model_extra(cfg, data, record, st))
        if cfg.fit_quality:  # fold networks of --quality-folds are trained by train()
            quality_summary = fit_run_evaluator(cfg, data, best_path, train, say, batch_size)
    if dist_info.enabled:
        dist.barrier()
        if dist_info.owns_group:
            dist.destroy_process_group()
    return TrainResult(
        run_dir=out,
        best_path=best_path,
        last_path=last_path,
        history=st.history,
        best_epoch=st.best_epoch + 1,
        best_val_iou=st.best_iou,
        splits=data.splits,
        quality=quality_summary,
        skipped=data.skipped,
        resumed=resumed,
        selection=selection,
    )
