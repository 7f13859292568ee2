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

# the flag rule lives in a torch-free module (the scene path uses it without torch); re-exported
from sam2elnet.model.input_flags import (  # noqa: F401  (re-exported)
    CLIPPED_FLAG,
    CONSTANT_SPREAD,
    spread_flag,
)

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

UNCERTAIN_BAND = 0.3
"""A pixel counts in ``uncertain_frac`` when its probability is within this of 0.5
(0.2 < p < 0.8)."""

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


def _masked_mean(x: torch.Tensor, valid: torch.Tensor | None, count: torch.Tensor) -> torch.Tensor:
    """Per-image mean of ``x`` over the valid pixels; ``valid`` None = every pixel is valid (the
    sum is then that of ``x * 1``, bit for bit), ``count`` = number of valid pixels, at least 1."""
    return (x if valid is None else x * valid).flatten(1).sum(1) / count


def _binary_iou(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Per-image IoU of two {0,1} maps over the valid pixels (``valid`` None = all); 1 when both
    are empty (they agree)."""
    inter = a * b
    union = ((a + b) > 0).float()
    if valid is not None:
        inter, union = inter * valid, union * valid
    inter, union = inter.flatten(1).sum(1), union.flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def _window_extreme(t: torch.Tensor, width: int, dim: int, op: Callable) -> torch.Tensor:
    """``op`` (torch.maximum / torch.minimum) over ``width`` consecutive entries along ``dim``:
    length ``n - width + 1``."""
    n = t.shape[dim] - width + 1
    out = t.narrow(dim, 0, n)
    for k in range(1, width):
        out = op(out, t.narrow(dim, k, n))
    return out


def _boundary(mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    """(B, H, W) 1 where a ``width`` x ``width`` window (edges replicated) around the pixel holds
    both values of the {0, 1} ``mask``: its dilation minus its erosion.

    The window maximum / minimum are taken along rows, then columns (the same values as a 2-D
    ``max_pool2d`` of the padded mask, exactly: max and min do not round; ~10x faster on a CPU
    for one channel)."""
    pad = width // 2
    m = F.pad(mask.unsqueeze(1), (pad, pad, pad, pad), mode="replicate").squeeze(1)
    dil = _window_extreme(_window_extreme(m, width, -1, torch.maximum), width, -2, torch.maximum)
    ero = _window_extreme(_window_extreme(m, width, -1, torch.minimum), width, -2, torch.minimum)
    return dil - ero


def _boundary_bool(hard: torch.Tensor, width: int = 3) -> torch.Tensor:
    """:func:`_boundary` of a bool (B, H, W) mask, as bool: the same pixels (True where the
    float form is 1), from one-byte any / all window tests instead of float max / min (~4x less
    memory traffic; uint8 because the replicate pad takes no bool)."""
    pad = width // 2
    m = F.pad(hard.unsqueeze(1).to(torch.uint8), (pad, pad, pad, pad), mode="replicate")
    m = m.squeeze(1).bool()
    dil = _window_extreme(
        _window_extreme(m, width, -1, torch.logical_or), width, -2, torch.logical_or
    )
    ero = _window_extreme(
        _window_extreme(m, width, -1, torch.logical_and), width, -2, torch.logical_and
    )
    return dil & ~ero


EXACT_COUNT = 2**24
"""Pixels per image up to which float32 sums of 0 / 1 values are exact integers, so that counts
taken as integers (:func:`_pixel_features_all_valid`) equal them bit for bit."""


def all_ones(t: torch.Tensor) -> bool:
    """``bool((t == 1).all())`` in one pass without a temporary map (the smallest and largest
    value both 1; a NaN makes them NaN, as it makes ``t == 1`` false); True for an empty ``t``.
    :func:`sam2elnet.engine.runtime.run_model` uses it once per batch to drop a valid mask
    with every pixel valid (the usual case), so that the features and flags below take their
    all-valid paths (``valid=None``)."""
    if t.numel() == 0:
        return True
    if t.dtype == torch.bool:
        return bool(t.all())
    lo, hi = torch.aminmax(t)
    return bool(lo == 1) and bool(hi == 1)


def all_finite(t: torch.Tensor) -> bool:
    """``bool(torch.isfinite(t).all())`` in one pass, ~10x faster on a CPU: the smallest and
    largest value are finite (a NaN makes both NaN, an infinity one of them); True when empty."""
    if t.numel() == 0 or not t.is_floating_point():
        return True
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def _pixel_features(
    p: torch.Tensor, mv: torch.Tensor | None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The six per-pixel features of :data:`FEATURE_NAMES` (mean entropy .. edge density) and
    the valid-pixel count, each (B,), of clamped probabilities ``p`` (B, H, W) over the valid
    pixels ``mv`` (None: all); and the hard (B, H, W) float {0, 1} map. The definition of their
    values (:func:`_pixel_features_all_valid` gives the same bits faster)."""
    v = torch.ones_like(p) if mv is None else mv
    count = v.flatten(1).sum(1).clamp_min(1.0)
    hard = (p > 0.5).float()
    ent = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    mean_entropy = _masked_mean(ent, mv, count)
    uncertain = _masked_mean(((p - 0.5).abs() < UNCERTAIN_BAND).float(), mv, count)
    edge = _boundary(hard) if mv is None else _boundary(hard) * mv
    n_edge = edge.flatten(1).sum(1)
    boundary_entropy = torch.where(
        n_edge > 0, (ent * edge).flatten(1).sum(1) / n_edge.clamp_min(1.0), torch.zeros_like(n_edge)
    )
    fg_frac = _masked_mean(hard, mv, count)
    fg = hard if mv is None else hard * mv
    n_fg = fg.flatten(1).sum(1)
    fg_p = p * hard if mv is None else p * hard * mv
    fg_conf = torch.where(
        n_fg > 0, fg_p.flatten(1).sum(1) / n_fg.clamp_min(1.0), torch.zeros_like(n_fg)
    )
    edge_density = _masked_mean(edge, mv, count)
    cols = [mean_entropy, uncertain, boundary_entropy, fg_frac, fg_conf, edge_density, count]
    return cols, hard


def _pixel_features_all_valid(p: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`_pixel_features` of an image batch without invalid pixels: the same bits in about
    half the time (2026-12-03, 8 x 256^2 px, one thread, 1.7-2.1 -> 1.1 ms per image with the side
    outputs): the valid count is the pixel count (the float sum of ones is exact up to
    :data:`EXACT_COUNT` pixels), the boundary comes from a bool map (:func:`_boundary_bool`), the
    entropy is built in place without computing ``1 - p`` twice, and one sum serves two features
    (edge count and density, foreground count and share)."""
    count = torch.full((p.shape[0],), float(max(1, p[0].numel())))
    ent = torch.log2(p).mul_(p)
    q = 1 - p
    ent.add_(torch.log2(q).mul_(q)).neg_()
    del q
    mean_entropy = ent.flatten(1).sum(1) / count
    d = p - 0.5
    uncertain = (d.abs_() < UNCERTAIN_BAND).float().flatten(1).sum(1) / count
    del d
    hard = p > 0.5
    edge = _boundary_bool(hard).float()
    n_edge = edge.flatten(1).sum(1)
    boundary_entropy = torch.where(
        n_edge > 0, (ent * edge).flatten(1).sum(1) / n_edge.clamp_min(1.0), torch.zeros_like(n_edge)
    )
    hard_f = hard.float()
    n_fg = hard_f.flatten(1).sum(1)
    fg_conf = torch.where(
        n_fg > 0, (p * hard_f).flatten(1).sum(1) / n_fg.clamp_min(1.0), torch.zeros_like(n_fg)
    )
    cols = [mean_entropy, uncertain, boundary_entropy, n_fg / count, fg_conf, n_edge / count]
    return [*cols, count], hard_f


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
        valid: (B,H,W) 1 = pixel counts; None = every pixel (give None rather than all ones: the
            same values, about twice as fast, see :func:`all_ones`).
        coarse: (B,H,W) coarse label {0,1} for enhancement samples.
        has_coarse: (B,) 1 where ``coarse`` is meaningful.

    Returns:
        (B, len(FEATURE_NAMES)) float32 CPU tensor, columns in :data:`FEATURE_NAMES` order:
        entropies in bits, fractions and agreements (IoUs) in [0, 1].
    """
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    b = p.shape[0]
    # mv None: every pixel valid (a caller drops an all-ones mask: run_model with all_ones); the
    # products with the mask are skipped, as is pooling it for the side outputs below
    mv = None if valid is None else valid.float()
    if mv is None and 0 < p[0:1].numel() <= EXACT_COUNT:
        cols6, hard = _pixel_features_all_valid(p)
    else:
        cols6, hard = _pixel_features(p, mv)
    count = cols6.pop()
    (mean_entropy, uncertain, boundary_entropy, fg_frac, fg_conf, edge_density) = cols6
    if tta_probs:
        tta_iou = torch.stack([_binary_iou(hard, (t.float() > 0.5).float(), mv) for t in tta_probs])
        tta_diff = torch.stack([_masked_mean((t.float() - p).abs(), mv, count) for t in tta_probs])
        tta_agreement, tta_soft = tta_iou.mean(0), tta_diff.mean(0)
    else:
        tta_agreement, tta_soft = torch.ones(b), torch.zeros(b)

    if side_probs:
        ious, diffs = [], []
        for s in side_probs:
            size = tuple(s.shape[-2:])
            p_small = F.adaptive_avg_pool2d(p.unsqueeze(1), size).squeeze(1)
            if mv is None:  # each pooled window of the mask is exactly 1
                v_small = torch.ones_like(p_small)
            else:
                v_small = (F.adaptive_avg_pool2d(mv.unsqueeze(1), size).squeeze(1) > 0.5).float()
            n_small = v_small.flatten(1).sum(1).clamp_min(1.0)
            ious.append(_binary_iou((p_small > 0.5).float(), (s.float() > 0.5).float(), v_small))
            diffs.append(_masked_mean((s.float() - p_small).abs(), v_small, n_small))
        ds_agreement, ds_soft = torch.stack(ious).mean(0), torch.stack(diffs).mean(0)
    else:
        ds_agreement, ds_soft = torch.ones(b), torch.zeros(b)

    if coarse is not None:
        hc = torch.ones(b) if has_coarse is None else has_coarse.float().reshape(b).cpu()
        c_iou = _binary_iou(hard, (coarse.float() > 0.5).float(), mv).cpu() * hc
    else:
        hc, c_iou = torch.zeros(b), torch.zeros(b)
    valid_frac = torch.ones(b) if mv is None else mv.flatten(1).mean(1)

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


def input_flags(
    x: torch.Tensor,
    valid: torch.Tensor | None = None,
    finite: torch.Tensor | bool | None = None,
) -> list[str]:
    """Per-image reasons why an input cannot carry a label: "" when it is usable.

    Args:
        x: (B, C, H, W) normalised image batch (non-finite values count as nodata).
        valid: (B, H, W) 1 where pixels hold data (None = all: one pass, no (B, H, W) map).
        finite: ``torch.isfinite(x).all(1)`` when the caller has it already (bool (B, H, W)),
            or True when the caller has found every value of ``x`` finite (:func:`all_finite`).

    Returns:
        One string per image: ``"no pixels"`` (H or W is 0), ``"all nodata"`` (no finite valid
        pixel), ``"constant image"`` (every valid pixel of every band has the same value, within
        :data:`CONSTANT_SPREAD`: a blank, zero-filled or saturated tile), else ``""``
        (:func:`spread_flag`).
    """
    b = x.shape[0]
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        return ["no pixels"] * b
    xf = x.detach().float()
    # every pixel usable (the usual case), found in one pass each without a (B, H, W) map
    if finite is True or (finite is None and all_finite(xf)):
        if valid is None:
            lo, hi = torch.aminmax(xf.flatten(2), dim=-1)  # per image and band, one pass
            return [spread_flag(True, s) for s in (hi - lo).amax(1).tolist()]
        finite = torch.ones(xf.shape[0], *xf.shape[2:], dtype=torch.bool)
    elif finite is None:
        finite = torch.isfinite(xf).all(1)
    assert isinstance(finite, torch.Tensor)
    ok = finite.to(xf.device)  # (B,H,W)
    if valid is not None:
        ok = ok & (valid.to(ok.device) > 0.5)
    # per image and band the largest and smallest usable value (one pass for the whole batch)
    if bool(ok.all()):
        hi, lo = xf.amax((-2, -1)), xf.amin((-2, -1))
    else:
        okc = ok.unsqueeze(1)
        hi = torch.where(okc, xf, float("-inf")).amax((-2, -1))
        lo = torch.where(okc, xf, float("inf")).amin((-2, -1))
    spread = (hi - lo).amax(1).tolist()  # (B,) widest band range
    has = ok.flatten(1).any(1).tolist()
    return [spread_flag(h, s) for h, s in zip(has, spread, strict=True)]
