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
* **Soft clDice** (optional, ``LossWeights.topology``): a topology-aware term for thin, connected
  structures (roads), from S. Shit et al., "clDice - a Novel Topology-Preserving Loss Function for
  Tubular Structure Segmentation", CVPR 2021. Pixel losses barely notice a one-pixel gap in a road;
  clDice compares the *centre lines*, so a gap or a spur costs as much as the road length it
  breaks. Written here from the paper's description (soft skeleton by iterated min/max pooling).

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
    topology: float = 0.0  # weight of the soft-clDice term (0 = off)
    topology_iterations: int = 10  # soft-skeleton iterations (> half the widest road, in px)


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
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | float, valid: torch.Tensor
) -> torch.Tensor:
    """BCE averaged over valid pixels with per-pixel ``weight`` (a map like ``logits``, or one
    number for every pixel)."""
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


# ----------------------------------------------------------------------------- soft clDice
def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Soft (grey-level) erosion of (B,1,H,W) probabilities: minimum over the 4-neighbourhood cross.

    A min-pool of 3x1 and one of 1x3, combined by a minimum (Shit et al., 2021, Sec. 3.1); on a
    binary image it is an exact erosion by the 3x3 cross. Padding never erodes from the border.
    """
    vert = -F.max_pool2d(-x, (3, 1), stride=1, padding=(1, 0))
    horiz = -F.max_pool2d(-x, (1, 3), stride=1, padding=(0, 1))
    return torch.minimum(vert, horiz)


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Soft dilation of (B,1,H,W) probabilities: 3x3 max-pool (same size out)."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def soft_skeleton(x: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Differentiable soft skeleton of (B,1,H,W) probabilities in [0, 1] (same shape, in [0, 1]).

    Morphological skeleton by repeated thinning (Shit et al., 2021, Algorithm 1): the residue of an
    opening, ``relu(x - open(x))``, holds the pixels an opening removes (ridges of the current
    shape); the image is then eroded once and the next residue is added where it is not already
    covered, ``skel += relu(delta - skel * delta)``. After enough iterations (more than half the
    widest structure, in pixels) every structure has been thinned to its centre line. On a binary
    input the result is binary.
    """
    if iterations < 1:
        raise ValueError(f"soft_skeleton needs at least 1 iteration, got {iterations}")
    skel = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(int(iterations)):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice(
    prob: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    iterations: int = 10,
    smooth: float = 1.0,
) -> torch.Tensor:
    """Per-image soft clDice in [0, 1] (shape (B,)) between probabilities and a true mask.

    ``Tprec = |S(P) * L| / |S(P)|`` (how much of the predicted centre line lies inside the true
    road) and ``Tsens = |S(L) * P| / |S(L)|`` (how much of the true centre line the prediction
    covers); clDice is their harmonic mean (Shit et al., 2021, Eq. 1-2). ``S`` is
    :func:`soft_skeleton`. ``smooth`` (pixels) keeps empty-vs-empty at 1 and empty images finite.

    Args:
        prob: (B,1,H,W) float probabilities in [0, 1].
        target: (B,1,H,W) float true mask in {0, 1}.
        valid: (B,1,H,W) 1 = pixel counts (nodata / padding = 0), or None.
        iterations: soft-skeleton iterations (see :func:`soft_skeleton`).
        smooth: additive smoothing of both ratios.
    """
    prob = prob.float()
    target = target.float()
    if valid is not None:
        prob = prob * valid
        target = target * valid
    sp = soft_skeleton(prob, iterations)
    st = soft_skeleton(target, iterations)
    tprec = ((sp * target).flatten(1).sum(1) + smooth) / (sp.flatten(1).sum(1) + smooth)
    tsens = ((st * prob).flatten(1).sum(1) + smooth) / (st.flatten(1).sum(1) + smooth)
    return 2.0 * tprec * tsens / (tprec + tsens).clamp_min(1e-12)


def cldice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    iterations: int = 10,
) -> torch.Tensor:
    """Mean over images of ``1 - soft clDice`` of ``sigmoid(logits)`` (see :func:`soft_cldice`)."""
    return (1.0 - soft_cldice(torch.sigmoid(logits.float()), target, valid, iterations)).mean()


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
    # no boundary weight (the downstream U-Net's loss): every pixel weighs 1, the same values
    # without the band's two max-pools (3.5 % of a demo U-Net's CPU time, docs/benchmarks.md)
    pix_w: torch.Tensor | float = (
        1.0 + weights.boundary * boundary_map(target, weights.boundary_width)
        if weights.boundary
        else 1.0
    )
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

    if weights.topology > 0:
        cl = cldice_loss(logits, target, valid, weights.topology_iterations)
        total = total + weights.topology * cl
        parts["cldice"] = cl.detach()

    parts["total"] = total.detach()
    return total, parts
