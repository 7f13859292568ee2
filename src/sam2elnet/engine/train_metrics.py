"""What a training run measures: the ``metrics.csv`` columns, the pixel counts of a batch and the
validation pass in both modes (annotation and enhancement).

IoU/F1 follow :func:`sam2elnet.engine.metrics.scores`; the road measures are
:func:`sam2elnet.engine.metrics.road_counts` (Wiedemann et al. 1998).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from sam2elnet.engine.losses import LossWeights, segmentation_loss
from sam2elnet.engine.runtime import autocast
from sam2elnet.utils.tables import csv_text

__all__ = [
    "METRIC_FIELDS",
    "ROAD_FIELDS",
    "iou_f1",
    "metrics_csv_text",
    "no_validation_row",
    "pixel_counts",
    "validate",
]

METRIC_FIELDS = (
    "epoch",
    "lr",
    "train_loss",
    "train_iou",
    "train_f1",
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
) -> dict[str, float]:
    """Validation in both modes: annotation (no coarse) and enhancement (simulated coarse).

    ``val_iou`` (model selection) is the mean of the two pixel-aggregated IoUs, so the chosen model
    is good at both tasks the file will be used for. With ``roads`` the road measures of the
    annotation-mode predictions (length-summed over the split) are added as ``val_road_*``.
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
                for p_i, t_i in zip(pred.cpu().numpy(), truth.cpu().numpy(), strict=True):
                    road_total = road_total + road_counts(p_i[0], t_i[0])
        coarse_counts += pixel_counts(c * 2 - 1, m, v).cpu()
    ia, fa = iou_f1(*counts["annotate"].tolist())
    ie, fe = iou_f1(*counts["enhance"].tolist())
    ic, _ = iou_f1(*coarse_counts.tolist())
    res = {
        "val_loss": loss_sum / max(1, n),
        "val_iou": 0.5 * (ia + ie),
        "val_f1": 0.5 * (fa + fe),
        "val_iou_annotate": ia,
        "val_iou_enhance": ie,
        "val_coarse_iou": ic,
    }
    if roads:
        res.update({f"val_{k}": float(v) for k, v in road_total.scores().items()})
    return res


def no_validation_row(roads: bool) -> dict[str, float]:
    """The validation columns of an epoch without a validation split: all NaN (empty cells in
    ``metrics.csv``, see :func:`metrics_csv_text`)."""
    keys = [f for f in METRIC_FIELDS if f.startswith("val_")]
    row = dict.fromkeys(keys, float("nan"))
    if roads:
        row.update(dict.fromkeys(ROAD_FIELDS, float("nan")))
    return row
