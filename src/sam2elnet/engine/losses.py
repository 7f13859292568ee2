"""Training losses for SAM2-ELNet.

Why these losses:

* **Boundary-weighted BCE**: coarse labels are mostly wrong *near boundaries*, and that is where label
  enhancement earns its keep, so pixels in a band around the true boundary weigh more.
* **Soft IoU** (per image): IoU is the metric we report; a differentiable surrogate counters class
  imbalance (thin roads, small slicks) that plain BCE handles badly.
* **Deep supervision** on the decoder's side outputs (downweighted): gives the coarse decoder stages a
  direct signal, which speeds convergence of a decoder trained from scratch.
* **Edge loss** (optional) on ``out.edge_logits`` against the true mask's boundary: trains the edge
  attention branch explicitly instead of hoping it emerges.

Every term honours ``valid`` (1 = usable pixel, 0 = nodata / padding), so nodata never pulls the model.
All maths run in float32 even under bf16 autocast (logits are cast first): bf16 sums over 65 k pixels
lose too much precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the loss terms (defaults chosen for frozen-trunk fine-tuning)."""

    bce: float = 1.0
    iou: float = 1.0
    boundary: float = 2.0  # extra BCE weight inside the boundary band (weight = 1 + boundary)
    boundary_width: int = 5  # band width in pixels (odd)
    deep_supervision: float = 0.4  # total weight of all side outputs together
    edge: float = 0.5  # 0 disables the edge loss


def boundary_map(mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    """Return a {0,1} float map of pixels within ``width // 2`` of a boundary of ``mask`` (B,1,H,W).

    Morphological gradient (dilation minus erosion) done with max-pooling, so it is cheap and runs on
    any device; the image border is not a boundary (replicate padding).
    """
    width = max(1, int(width) | 1)  # odd
    pad = width // 2
    m = mask.float()
    padded = F.pad(m, (pad, pad, pad, pad), mode="replicate")
    dil = F.max_pool2d(padded, width, stride=1)
    ero = -F.max_pool2d(-padded, width, stride=1)
    return (dil - ero).clamp_(0, 1)


def _resize_target(
    mask: torch.Tensor, valid: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Downsample target and valid mask to a side output's size (area average = soft target)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask, valid
    t = F.adaptive_avg_pool2d(mask * valid, size)
    v = F.adaptive_avg_pool2d(valid, size)
    soft = torch.where(v > 0, t / v.clamp_min(1e-6), torch.zeros_like(t))
    return soft, (v > 0.5).float()


def soft_iou_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Mean over images of ``1 - soft IoU``; ``smooth`` makes an empty-vs-empty image cost ~0."""
    p = torch.sigmoid(logits) * valid
    t = target * valid
    inter = (p * t).flatten(1).sum(1)
    union = (p + t - p * t).flatten(1).sum(1)
    return (1.0 - (inter + smooth) / (union + smooth)).mean()


def weighted_bce(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """BCE averaged over valid pixels with per-pixel ``weight``."""
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    w = weight * valid
    return (loss * w).sum() / valid.sum().clamp_min(1.0)


def edge_loss(
    edge_logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor, width: int = 3
) -> torch.Tensor:
    """Class-balanced BCE of ``edge_logits`` against the boundary of the true mask.

    Boundary pixels are rare (~1-5 %), so positives are reweighted to carry as much total weight as
    negatives; otherwise the branch learns "no edge anywhere".
    """
    edge = boundary_map(mask, width) * valid
    n_pos = edge.sum()
    n_all = valid.sum().clamp_min(1.0)
    pos_w = ((n_all - n_pos) / n_pos.clamp_min(1.0)).clamp(1.0, 50.0)
    loss = F.binary_cross_entropy_with_logits(
        edge_logits, edge, reduction="none", pos_weight=pos_w.detach()
    )
    return (loss * valid).sum() / n_all


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    side_logits: Sequence[torch.Tensor] = (),
    edge_logits: torch.Tensor | None = None,
    weights: LossWeights = LossWeights(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total training loss and its parts (for logging).

    Args:
        logits: (B,1,H,W) main output logits.
        target: (B,1,H,W) true mask in {0,1} (float).
        valid: (B,1,H,W) 1 = pixel counts; ``None`` = all valid.
        side_logits: deep-supervision logits at lower resolutions.
        edge_logits: (B,1,H,W) boundary logits, or None.
    """
    logits = logits.float()
    target = target.float()
    valid = torch.ones_like(target) if valid is None else valid.float()
    band = boundary_map(target, weights.boundary_width)
    pix_w = 1.0 + weights.boundary * band
    main_bce = weighted_bce(logits, target, pix_w, valid)
    main_iou = soft_iou_loss(logits, target, valid)
    total = weights.bce * main_bce + weights.iou * main_iou
    # parts stay (detached) tensors: converting to float here would force a device sync per step
    parts = {"bce": main_bce.detach(), "iou": main_iou.detach()}

    if side_logits and weights.deep_supervision > 0:
        per_side = weights.deep_supervision / len(side_logits)
        ds_total = torch.zeros((), device=logits.device)
        for side in side_logits:
            side = side.float()
            t, v = _resize_target(target, valid, tuple(side.shape[-2:]))
            ds = weights.bce * F.binary_cross_entropy_with_logits(side, t, reduction="none")
            ds = (ds * v).sum() / v.sum().clamp_min(1.0)
            ds = ds + weights.iou * soft_iou_loss(side, t, v)
            ds_total = ds_total + per_side * ds
        total = total + ds_total
        parts["deep"] = ds_total.detach()

    if edge_logits is not None and weights.edge > 0:
        e = edge_loss(edge_logits.float(), target, valid)
        total = total + weights.edge * e
        parts["edge"] = e.detach()

    parts["total"] = total.detach()
    return total, parts
