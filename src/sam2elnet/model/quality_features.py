"""Label-quality features: what a model's own outputs say about a label, without the truth.

Per image: mean binary entropy, share of uncertain pixels, entropy on the predicted boundary,
foreground share and confidence, edge density, agreement between test-time-augmented views
(flips / rotations) and between the decoder's deep-supervision outputs and the main output,
agreement with the coarse input (enhancement) and the valid share. Labels that the model "is unsure
about" in these senses are the ones that tend to be wrong; :mod:`sam2elnet.model.quality` learns
how much. Also the input checks (:func:`input_flags`) that make a label unusable whatever its
score. Tensors only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

FEATURE_NAMES: tuple[str, ...] = (
    "mean_entropy",
    "uncertain_frac",
    "boundary_entropy",
    "fg_frac",
    "fg_confidence",
    "edge_density",
    "tta_agreement",
    "tta_soft_diff",
    "ds_agreement",
    "ds_soft_diff",
    "has_coarse",
    "coarse_agreement",
    "valid_frac",
)

Transform = Callable[[torch.Tensor], torch.Tensor]


def tta_views(count: int) -> list[tuple[Transform, Transform]]:
    """The first ``count`` test-time augmentations as (forward, inverse) pairs.

    Flips come first (no shape change, so batches of non-square images stay valid); 90-degree
    rotations and transposes follow.

    Args:
        count: Number of views, clipped to 0-7.

    Returns:
        ``[(forward, inverse), ...]``: functions on (..., H, W) tensors; ``inverse(forward(x))``
        is ``x``.
    """
    views: list[tuple[Transform, Transform]] = [
        (lambda x: x.flip(-1), lambda x: x.flip(-1)),
        (lambda x: x.flip(-2), lambda x: x.flip(-2)),
        (lambda x: x.flip(-1, -2), lambda x: x.flip(-1, -2)),
        (lambda x: x.rot90(1, (-2, -1)), lambda x: x.rot90(-1, (-2, -1))),
        (lambda x: x.rot90(-1, (-2, -1)), lambda x: x.rot90(1, (-2, -1))),
        (lambda x: x.transpose(-1, -2), lambda x: x.transpose(-1, -2)),
        (
            lambda x: x.flip(-1, -2).transpose(-1, -2),
            lambda x: x.transpose(-1, -2).flip(-1, -2),
        ),
    ]
    return views[: max(0, min(int(count), len(views)))]


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (x * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)


def _binary_iou(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of two {0,1} maps; 1 when both are empty (they agree)."""
    inter = (a * b * valid).flatten(1).sum(1)
    union = (((a + b) > 0).float() * valid).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def _boundary(mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    pad = width // 2
    m = F.pad(mask.unsqueeze(1), (pad, pad, pad, pad), mode="replicate")
    dil = F.max_pool2d(m, width, stride=1)
    ero = -F.max_pool2d(-m, width, stride=1)
    return (dil - ero).squeeze(1)


@torch.no_grad()
def uncertainty_features(
    probs: torch.Tensor,
    *,
    tta_probs: Sequence[torch.Tensor] = (),
    side_probs: Sequence[torch.Tensor] = (),
    valid: torch.Tensor | None = None,
    coarse: torch.Tensor | None = None,
    has_coarse: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image features (B, len(FEATURE_NAMES)) from predicted probabilities.

    Args:
        probs: (B,H,W) main-output probabilities.
        tta_probs: de-augmented (B,H,W) probabilities of each test-time view (may be empty: the
            agreement features are then 1 / 0, i.e. "perfect agreement").
        side_probs: deep-supervision probabilities at any lower resolution (B,h,w).
        valid: (B,H,W) 1 = pixel counts.
        coarse: (B,H,W) coarse label {0,1} for enhancement samples.
        has_coarse: (B,) 1 where ``coarse`` is meaningful.

    Returns:
        (B, len(FEATURE_NAMES)) float32 CPU tensor, columns in :data:`FEATURE_NAMES` order:
        entropies in bits, fractions and agreements (IoUs) in [0, 1].
    """
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    b = p.shape[0]
    v = torch.ones_like(p) if valid is None else valid.float()
    hard = (p > 0.5).float()
    ent = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    mean_entropy = _masked_mean(ent, v)
    uncertain = _masked_mean(((p - 0.5).abs() < 0.3).float(), v)
    edge = _boundary(hard) * v
    n_edge = edge.flatten(1).sum(1)
    boundary_entropy = torch.where(
        n_edge > 0, (ent * edge).flatten(1).sum(1) / n_edge.clamp_min(1.0), torch.zeros_like(n_edge)
    )
    fg_frac = _masked_mean(hard, v)
    n_fg = (hard * v).flatten(1).sum(1)
    fg_conf = torch.where(
        n_fg > 0, (p * hard * v).flatten(1).sum(1) / n_fg.clamp_min(1.0), torch.zeros_like(n_fg)
    )
    edge_density = _masked_mean(edge, v)

    if tta_probs:
        tta_iou = torch.stack([_binary_iou(hard, (t.float() > 0.5).float(), v) for t in tta_probs])
        tta_diff = torch.stack([_masked_mean((t.float() - p).abs(), v) for t in tta_probs])
        tta_agreement, tta_soft = tta_iou.mean(0), tta_diff.mean(0)
    else:
        tta_agreement, tta_soft = torch.ones(b), torch.zeros(b)

    if side_probs:
        ious, diffs = [], []
        for s in side_probs:
            size = tuple(s.shape[-2:])
            p_small = F.adaptive_avg_pool2d(p.unsqueeze(1), size).squeeze(1)
            v_small = (F.adaptive_avg_pool2d(v.unsqueeze(1), size).squeeze(1) > 0.5).float()
            ious.append(_binary_iou((p_small > 0.5).float(), (s.float() > 0.5).float(), v_small))
            diffs.append(_masked_mean((s.float() - p_small).abs(), v_small))
        ds_agreement, ds_soft = torch.stack(ious).mean(0), torch.stack(diffs).mean(0)
    else:
        ds_agreement, ds_soft = torch.ones(b), torch.zeros(b)

    if coarse is not None:
        hc = torch.ones(b) if has_coarse is None else has_coarse.float().reshape(b).cpu()
        c_iou = _binary_iou(hard, (coarse.float() > 0.5).float(), v).cpu() * hc
    else:
        hc, c_iou = torch.zeros(b), torch.zeros(b)
    valid_frac = v.flatten(1).mean(1)

    cols = [
        mean_entropy,
        uncertain,
        boundary_entropy,
        fg_frac,
        fg_conf,
        edge_density,
        tta_agreement,
        tta_soft,
        ds_agreement,
        ds_soft,
        hc,
        c_iou,
        valid_frac,
    ]
    return torch.stack([c.float().cpu().reshape(b) for c in cols], dim=1)


#: Flags (``QualityResult.flags``) for which the label is never kept, whatever the threshold.
REJECT_FLAGS = ("no pixels", "all nodata", "constant image", "non-finite features")


def input_flags(x: torch.Tensor, valid: torch.Tensor | None = None) -> list[str]:
    """Per-image reasons why an input cannot carry a label: "" when it is usable.

    Args:
        x: (B, C, H, W) normalised image batch (non-finite values count as nodata).
        valid: (B, H, W) 1 where pixels hold data (None = all).

    Returns:
        One string per image: ``"no pixels"`` (H or W is 0), ``"all nodata"`` (no finite valid
        pixel), ``"constant image"`` (every valid pixel of every band has the same value, within
        1e-6: a blank, zero-filled or saturated tile), else ``""``.
    """
    b = x.shape[0]
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        return ["no pixels"] * b
    xf = x.detach().float()
    ok = torch.isfinite(xf).all(1)  # (B,H,W)
    if valid is not None:
        ok = ok & (valid.to(ok.device) > 0.5)
    flags = []
    for i in range(b):
        m = ok[i]
        if not bool(m.any()):
            flags.append("all nodata")
            continue
        vals = xf[i][:, m]  # (C, n)
        spread = float((vals.amax(1) - vals.amin(1)).max())
        flags.append("constant image" if spread <= 1e-6 else "")
    return flags
