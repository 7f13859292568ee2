"""What a training run measures: the ``metrics.csv`` columns, the pixel counts of a batch, the
validation pass in both modes (annotation and enhancement) and the model-selection score
(:func:`selection_iou`, the one place that defines it).

IoU/F1 follow :func:`sam2elnet.engine.metrics.scores`; the road measures are
:func:`sam2elnet.engine.metrics.road_counts` (Wiedemann et al. 1998).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from sam2elnet.engine.losses import LossWeights, segmentation_loss
from sam2elnet.engine.runtime import autocast
from sam2elnet.engine.train_val import VAL_EVAL_MODE
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.utils.tables import csv_text

log = logging.getLogger("sam2elnet.engine.train")

__all__ = [
    "METRIC_FIELDS",
    "ROAD_FIELDS",
    "iou_f1",
    "metrics_csv_text",
    "no_validation_row",
    "OLD_VAL_MODE",
    "pixel_counts",
    "resumed_selection",
    "selection_iou",
    "selection_rule",
    "selection_weights",
    "VAL_SCALE",
    "VAL_SCALE_WORDS",
    "val_text",
    "validate",
]

VAL_SCALE = "val_scale"
"""The ``metrics.csv`` column (text, not a number) saying how a row's validation images were
scored: ``native`` (:data:`~sam2elnet.engine.train_val.VAL_EVAL_MODE`, each image's centred crop
window at its own scale) or ``resized`` (:data:`OLD_VAL_MODE`, epochs validated before 2026-12-03,
kept by a ``--resume`` across the change); empty without a validation split. The ``val_*`` scores
of rows with different values are not comparable."""

METRIC_FIELDS = (
    "epoch",
    "lr",
    "train_loss",
    "train_iou",
    "train_f1",
    VAL_SCALE,
    "val_loss",
    "val_iou",
    "val_f1",
    "val_iou_annotate",
    "val_iou_enhance",
    "val_coarse_iou",
    "time_s",
    "train_img_per_s",
)
# added to metrics.csv for road data (annotation mode, Wiedemann et al. 1998 measures over the
# validation split: sam2elnet.engine.metrics.road_counts)
ROAD_FIELDS = (
    "val_road_correctness",
    "val_road_completeness",
    "val_road_quality",
    "val_road_connectivity",
)


def metrics_csv_text(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    """metrics.csv text; a value that does not exist (no validation split) is an empty cell,
    never ``nan``."""
    clean = [
        {k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in rows
    ]
    return csv_text(clean, fields, ".6g")


def selection_weights(coarse_prob: float) -> tuple[float, float]:
    """(annotation weight, enhancement weight) of the model-selection score: the training mix.

    Args:
        coarse_prob: the run's ``TrainConfig.coarse_prob``, share of training samples given a
            coarse label (enhancement), in [0, 1]; the default 0.5 weighs both modes equally.

    Returns:
        ``(1 - coarse_prob, coarse_prob)``: 0 selects on annotation only, 1 on enhancement only
        (a model never trained on a mode is not judged by it).

    Raises:
        ValueError: ``coarse_prob`` outside [0, 1] or not finite.
    """
    p = float(coarse_prob)
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise ValueError(f"coarse_prob must be in [0, 1], got {coarse_prob!r}")
    return 1.0 - p, p


def selection_iou(annotate: float, enhance: float, coarse_prob: float) -> float:
    """The model-selection score ``val_iou``: the validation IoUs of the two modes weighted by
    the training mix, ``(1 - coarse_prob) * annotate + coarse_prob * enhance``
    (:func:`selection_weights`). A mode of weight 0 is left out (its NaN does not spread).
    Also used for ``val_f1`` (F1 per mode in place of IoU)."""
    wa, we = selection_weights(coarse_prob)
    return float(sum(w * v for w, v in ((wa, annotate), (we, enhance)) if w > 0))


def selection_rule(coarse_prob: float, by_loss: bool = False, validation: bool = True) -> dict:
    """What selected the best epoch, as recorded in the model file (``extra["train"]
    ["selection"]``), ``last.pt`` and :attr:`sam2elnet.engine.train.TrainResult.selection`.

    Returns:
        ``score`` (``"val_iou"``, ``"val_loss"`` for a validation split without object pixels,
        or ``"latest_epoch"`` without a validation split), ``annotate_weight`` and
        ``enhance_weight`` of ``val_iou`` (:func:`selection_weights`), ``coarse_prob``,
        ``rule`` (one line for logs and reports) and ``validation``: how the validation images
        were scored (:data:`~sam2elnet.engine.train_val.VAL_EVAL_MODE`, ``"native"``; None
        without a validation split). A ``last.pt`` without it is from before 2026-12-03, when
        validation images were resized to the crop size (:data:`OLD_VAL_MODE`).
    """
    wa, we = selection_weights(coarse_prob)
    if not validation:
        score, rule = "latest_epoch", "the latest epoch (no validation split)"
    elif by_loss:
        score, rule = "val_loss", "lowest validation loss (validation split has no object pixels)"
    else:
        score = "val_iou"
        rule = (
            f"val_iou = {wa:g} x annotation IoU + {we:g} x enhancement IoU (the training mix, "
            f"coarse_prob {coarse_prob:g})"
        )
    return {
        "score": score,
        "annotate_weight": wa,
        "enhance_weight": we,
        "coarse_prob": float(coarse_prob),
        "rule": rule,
        "validation": VAL_EVAL_MODE if validation else None,
    }


OLD_VAL_MODE = "resized"
"""The validation mode of a ``last.pt`` that records none: each validation image resized to the
crop size (``elnet train`` before 2026-12-03)."""

VAL_SCALE_WORDS = {
    VAL_EVAL_MODE: "at native scale",
    OLD_VAL_MODE: "with images resized to the crop size",
}
"""How messages and the training report say each validation mode (a :data:`VAL_SCALE` value)."""


def resumed_selection(
    state: dict[str, Any],
    coarse_prob: float,
    by_loss: bool,
    validation: bool = True,
    epochs: int | None = None,
) -> tuple[list[dict[str, Any]], float, float]:
    """History, best ``val_iou`` and best score of a resumed run, under this version's rule.

    A ``last.pt`` written before the rule followed the training mix (no ``selection`` entry)
    holds ``val_iou`` = the plain mean of the two modes: each row's ``val_iou`` is recomputed
    from its ``val_iou_annotate`` / ``val_iou_enhance`` (:func:`selection_iou`; ``val_f1`` keeps
    its old value), and the saved best epoch (whose weights ``model.pt`` holds) is scored again,
    so later epochs are compared under one rule. Same rule (or selection by loss): unchanged.

    A ``last.pt`` whose validation images were scored another way (``selection["validation"]``;
    none recorded: :data:`OLD_VAL_MODE`, resized to the crop size) holds scores that cannot be
    compared with this version's native-scale ones: the best score is reset to ``-inf``, so the
    first epoch trained after the resume becomes the best (``model.pt``) and later ones compete
    with it; one warning says so. The history (``metrics.csv``) and the old best's weights in
    ``model.pt`` are kept until then (a resumed run with no epoch left keeps them). Rows saved
    before ``metrics.csv`` had the :data:`VAL_SCALE` column get the mode ``last.pt`` records (none:
    ``resized``), so a resumed run's rows say which were validated which way.

    Args:
        state: the ``last.pt`` payload (``history``, ``best_iou``, ``best_epoch``, ...).
        coarse_prob: the run's share of training samples with a coarse label (0-1).
        by_loss: the best epoch is chosen by validation loss (no object pixels to score).
        validation: the run has a validation split (without one the latest epoch is the best
            and the validation mode does not matter).
        epochs: the run's epoch count; with no epoch left to train no warning is given.

    Returns:
        ``(history, best_iou, best_score)``.
    """
    history = [dict(r) for r in state["history"]]
    best_iou = float(state["best_iou"])
    best_score = float(state.get("best_score", best_iou))
    saved = state.get("selection") or {}
    if not (by_loss or saved.get("enhance_weight") == selection_weights(coarse_prob)[1]):
        best_epoch = int(state["best_epoch"]) + 1
        for row in history:
            a, e = row.get("val_iou_annotate"), row.get("val_iou_enhance")
            if isinstance(a, float) and isinstance(e, float) and math.isfinite(a + e):
                row["val_iou"] = selection_iou(a, e, coarse_prob)
                if row.get("epoch") == best_epoch:
                    best_iou = best_score = row["val_iou"]
    old_mode = saved.get("validation", OLD_VAL_MODE)
    for row in history:  # rows saved before the column: validated the way last.pt records
        if VAL_SCALE not in row:
            scored = any(
                math.isfinite(float(row.get(k, math.nan))) for k in ("val_loss", "val_iou")
            )
            row[VAL_SCALE] = (old_mode or "") if scored else ""
    if validation and saved.get("score") != "latest_epoch" and old_mode != VAL_EVAL_MODE:
        done = int(state["epoch"]) + 1
        if epochs is None or done < epochs:
            log.warning(
                "epochs 1-%d of this run were validated %s, this version validates at %s "
                "scale: their scores are not comparable, so the best epoch is chosen again "
                "from epoch %d on (model.pt keeps epoch %d until then; metrics.csv keeps the "
                "old rows)",
                done,
                VAL_SCALE_WORDS.get(old_mode or "", old_mode),
                VAL_EVAL_MODE,
                done + 1,
                int(state["best_epoch"]) + 1,
            )
        best_score = -math.inf
    return history, best_iou, best_score


def val_text(
    row: dict[str, Any], coarse_prob: float, roads: bool, road_buffer: float | str = ROAD_BUFFER_PX
) -> str:
    """The validation part of an epoch's log line: ``val loss 0.3990 val IoU 0.587 (0.5 x
    annotation 0.501 + 0.5 x enhancement 0.673 from coarse 0.610)`` (weights:
    :func:`selection_weights`), plus with ``roads`` the road measures and the buffer they were
    matched within (``road_buffer``, px, or in words:
    :attr:`~sam2elnet.engine.train_val.ValRoadBuffer.said`: ``... correctness 0.702 (buffer 3
    px)``, ``(buffer 2 m = 4-8 px)``); ``"no validation split"`` when the row has no validation
    values."""
    if not math.isfinite(float(row.get("val_loss", math.nan))):
        return "no validation split"
    wa, we = selection_weights(coarse_prob)
    txt = (
        f"val loss {row['val_loss']:.4f} val IoU {row['val_iou']:.3f} ({wa:g} x annotation "
        f"{row['val_iou_annotate']:.3f} + {we:g} x enhancement {row['val_iou_enhance']:.3f} "
        f"from coarse {row['val_coarse_iou']:.3f})"
    )
    if roads:
        txt += (
            f" road quality {_road(row['val_road_quality'])} completeness "
            f"{_road(row['val_road_completeness'])} correctness {_road(row['val_road_correctness'])}"
            f" (buffer {road_buffer if isinstance(road_buffer, str) else f'{road_buffer:g} px'})"
        )
    return txt


def _road(v: float) -> str:
    """A road measure for the epoch line: 3 decimals, "—" when undefined (NaN: nothing extracted
    for correctness, no reference road for completeness)."""
    return f"{v:.3f}" if math.isfinite(v) else "—"


def iou_f1(tp: float, fp: float, fn: float) -> tuple[float, float]:
    """(IoU, F1) of pixel counts, with :func:`sam2elnet.engine.metrics.scores`' conventions."""
    from sam2elnet.engine.metrics import Confusion, scores

    if tp + fp + fn == 0:  # no object anywhere and none predicted: agreement, not NaN
        return 1.0, 1.0
    s = scores(Confusion(int(tp), int(fp), int(fn), 0))
    return float(s["iou"]), float(s["f1"])


def pixel_counts(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(tp, fp, fn) over a batch, as a tensor so no host sync happens per step."""
    p = logits.detach() > 0
    t = mask > 0.5
    v = valid > 0.5
    return torch.stack([(p & t & v).sum(), (p & ~t & v).sum(), (~p & t & v).sum()]).double()


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    precision: str,
    weights: LossWeights,
    roads: bool = False,
    channels_last: bool = False,
    coarse_prob: float = 0.5,
    road_buffer: float | None = ROAD_BUFFER_PX,
) -> dict[str, float]:
    """Validation in both modes: annotation (no coarse) and enhancement (simulated coarse).

    ``val_iou`` (model selection) is :func:`selection_iou` of the two pixel-aggregated IoUs:
    weighted by the training mix ``coarse_prob`` (the run's), so the chosen model is the best at
    the mix of tasks it was trained for (default 0.5: their mean); ``val_f1`` likewise. With
    ``roads`` the road measures of the
    annotation-mode predictions (length-summed over the split, centre lines matched within
    ``road_buffer`` px, or each item's own ``"road_buffer"`` where the loader carries it:
    :func:`~sam2elnet.engine.train_val.validation_loader`; the lengths summed over the images,
    each matched within its own buffer) are added as ``val_road_*``.
    ``channels_last`` passes images and coarse labels in channels-last memory format (for a model
    converted to it; same results up to float rounding).
    """
    from sam2elnet.engine.metrics import RoadCounts, road_counts

    road_total = RoadCounts()
    model.eval()
    counts = {
        "annotate": torch.zeros(3, dtype=torch.float64),
        "enhance": torch.zeros(3, dtype=torch.float64),
    }
    coarse_counts = torch.zeros(3, dtype=torch.float64)
    loss_sum, n = 0.0, 0
    for batch in loader:
        x = batch["image"].to(device)
        m = batch["mask"].to(device)
        v = batch["valid"].to(device)
        c = batch["coarse"].to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            c = c.contiguous(memory_format=torch.channels_last)
        for mode in ("annotate", "enhance"):
            with autocast(device, precision):
                out = model(
                    x,
                    c if mode == "enhance" else None,
                    torch.ones(x.shape[0], device=device) if mode == "enhance" else None,
                )
            loss, _ = segmentation_loss(out.logits, m, v, out.side_logits, out.edge_logits, weights)
            loss_sum += float(loss) * x.shape[0]
            n += x.shape[0]
            counts[mode] += pixel_counts(out.logits.float(), m, v).cpu()
            if roads and mode == "annotate":
                pred = (out.logits.float() > 0) & (v > 0.5)
                truth = (m > 0.5) & (v > 0.5)
                bufs = batch.get("road_buffer")
                bufs = [road_buffer] * len(pred) if bufs is None else bufs.tolist()
                for p_i, t_i, b in zip(pred.cpu().numpy(), truth.cpu().numpy(), bufs, strict=True):
                    road_total = road_total + road_counts(p_i[0], t_i[0], buffer_px=float(b))
        coarse_counts += pixel_counts(c * 2 - 1, m, v).cpu()
    ia, fa = iou_f1(*counts["annotate"].tolist())
    ie, fe = iou_f1(*counts["enhance"].tolist())
    ic, _ = iou_f1(*coarse_counts.tolist())
    res: dict[str, Any] = {
        VAL_SCALE: VAL_EVAL_MODE,
        "val_loss": loss_sum / max(1, n),
        "val_iou": selection_iou(ia, ie, coarse_prob),
        "val_f1": selection_iou(fa, fe, coarse_prob),
        "val_iou_annotate": ia,
        "val_iou_enhance": ie,
        "val_coarse_iou": ic,
    }
    if roads:
        res.update({f"val_{k}": float(v) for k, v in road_total.scores().items()})
    return res


def no_validation_row(roads: bool) -> dict[str, Any]:
    """The validation columns of an epoch without a validation split: all NaN, and no
    :data:`VAL_SCALE` (empty cells in ``metrics.csv``, see :func:`metrics_csv_text`)."""
    keys = [f for f in METRIC_FIELDS if f.startswith("val_") and f != VAL_SCALE]
    row: dict[str, Any] = {VAL_SCALE: "", **dict.fromkeys(keys, float("nan"))}
    if roads:
        row.update(dict.fromkeys(ROAD_FIELDS, float("nan")))
    return row
