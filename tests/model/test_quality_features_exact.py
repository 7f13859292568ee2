"""The quality features' fast paths give the same bits as the plain formulation.

``uncertainty_features`` skips the products without a valid mask (run_model drops an all-ones
one) and pools the side outputs' valid mask only when some pixel is invalid; ``_boundary`` takes
the 3 x 3 window maximum / minimum along rows then columns; ``input_flags`` looks at a whole
batch at once. The scores the evaluator gives are functions of these features, so equal bits here
mean equal scores. The references below are the formulations these replaced (2026-12-01), kept as
the definition of the values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam2elnet.model.quality_features import (
    _boundary,
    _boundary_bool,
    all_finite,
    all_ones,
    input_flags,
    uncertainty_features,
)


def _ref_masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (x * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)


def _ref_iou(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    inter = (a * b * valid).flatten(1).sum(1)
    union = (((a + b) > 0).float() * valid).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def _ref_boundary(mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    pad = width // 2
    m = F.pad(mask.unsqueeze(1), (pad, pad, pad, pad), mode="replicate")
    return (F.max_pool2d(m, width, stride=1) + F.max_pool2d(-m, width, stride=1)).squeeze(1)


def _ref_features(p, tta=(), sides=(), valid=None, coarse=None, has_coarse=None):  # noqa: ANN001, ANN202
    p = p.float().clamp(1e-6, 1 - 1e-6)
    b = p.shape[0]
    v = torch.ones_like(p) if valid is None else valid.float()
    hard = (p > 0.5).float()
    ent = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    edge = _ref_boundary(hard) * v
    n_edge = edge.flatten(1).sum(1)
    n_fg = (hard * v).flatten(1).sum(1)
    cols = [
        _ref_masked_mean(ent, v),
        _ref_masked_mean(((p - 0.5).abs() < 0.3).float(), v),
        torch.where(n_edge > 0, (ent * edge).flatten(1).sum(1) / n_edge.clamp_min(1.0), 0 * n_edge),
        _ref_masked_mean(hard, v),
        torch.where(n_fg > 0, (p * hard * v).flatten(1).sum(1) / n_fg.clamp_min(1.0), 0 * n_fg),
        _ref_masked_mean(edge, v),
    ]
    if tta:
        cols.append(torch.stack([_ref_iou(hard, (t > 0.5).float(), v) for t in tta]).mean(0))
        cols.append(torch.stack([_ref_masked_mean((t - p).abs(), v) for t in tta]).mean(0))
    else:
        cols += [torch.ones(b), torch.zeros(b)]
    if sides:
        ious, diffs = [], []
        for s in sides:
            size = tuple(s.shape[-2:])
            ps = F.adaptive_avg_pool2d(p.unsqueeze(1), size).squeeze(1)
            vs = (F.adaptive_avg_pool2d(v.unsqueeze(1), size).squeeze(1) > 0.5).float()
            ious.append(_ref_iou((ps > 0.5).float(), (s > 0.5).float(), vs))
            diffs.append(_ref_masked_mean((s - ps).abs(), vs))
        cols += [torch.stack(ious).mean(0), torch.stack(diffs).mean(0)]
    else:
        cols += [torch.ones(b), torch.zeros(b)]
    if coarse is not None:
        hc = torch.ones(b) if has_coarse is None else has_coarse.float().reshape(b)
        cols += [hc, _ref_iou(hard, (coarse > 0.5).float(), v) * hc]
    else:
        cols += [torch.zeros(b), torch.zeros(b)]
    cols.append(v.flatten(1).mean(1))
    return torch.stack([c.float().reshape(b) for c in cols], dim=1)


def _probs(g: torch.Generator, b: int, h: int, w: int) -> torch.Tensor:
    """Blobby probabilities (smooth noise through a sigmoid): boundaries, some pixels at 0.5."""
    z = F.interpolate(torch.randn(b, 1, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w))
    return torch.sigmoid(3 * z[:, 0] + 0.3 * torch.randn(b, h, w, generator=g))


def test_boundary_equals_the_2d_max_pool_formulation() -> None:
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 17, 23), (1, 1, 5), (2, 4, 1), (2, 64, 64)]:
        m = (torch.rand(*shape, generator=g) > 0.6).float()
        for width in (3, 5):
            got, ref = _boundary(m, width), _ref_boundary(m, width)
            assert got.shape == ref.shape == m.shape
            assert torch.equal(got, ref)
    ring = torch.zeros(1, 7, 7)
    ring[0, 2:5, 2:5] = 1
    edge = _boundary(ring)  # a 3 x 3 square: its 5 x 5 hull but the centre (all object around)
    assert int(edge.sum()) == 24 and edge[0, 3, 3] == 0 and edge[0, 1, 1] == 1
    assert edge[0, 0, 0] == 0
    # the bool form (annotate's all-valid path) marks the same pixels
    for shape in [(3, 17, 23), (1, 1, 5), (2, 4, 1), (2, 64, 64)]:
        m = torch.rand(*shape, generator=g) > 0.6
        assert _boundary_bool(m).dtype == torch.bool
        assert torch.equal(_boundary_bool(m).float(), _ref_boundary(m.float()))
    assert torch.equal(_boundary_bool(ring > 0.5).float(), edge)


def test_features_equal_the_plain_formulation_bit_for_bit() -> None:
    """All valid (None or ones), part valid, with test-time views, side outputs and a coarse label:
    the same bits as the reference (so the same predicted IoUs)."""
    g = torch.Generator().manual_seed(1)
    b, h, w = 3, 64, 48
    p = _probs(g, b, h, w)
    tta = [_probs(g, b, h, w), p.flip(-1)]
    sides = [_probs(g, b, 8, 6), _probs(g, b, 16, 12), _probs(g, b, 21, 17)]  # 21 x 17: uneven
    coarse = (_probs(g, b, h, w) > 0.5).float()
    has = torch.tensor([1.0, 0.0, 1.0])
    part = torch.ones(b, h, w)
    part[0, :10] = 0
    part[2, :, 30:] = 0
    cases = [
        {"valid": None},
        {"valid": torch.ones(b, h, w)},
        {"valid": torch.ones(b, h, w, dtype=torch.bool)},
        {"valid": part},
    ]
    for kw in cases:
        for extra in ({}, {"coarse": coarse, "has_coarse": has}):
            got = uncertainty_features(p, tta_probs=tta, side_probs=sides, **kw, **extra)
            ref = _ref_features(p, tta, sides, **kw, **extra)
            assert torch.equal(got, ref), (kw["valid"] is None, list(extra))
            plain = uncertainty_features(p, **kw, **extra)
            assert torch.equal(plain, _ref_features(p, (), (), **kw, **extra))
    # a valid mask of all ones gives what None gives
    assert torch.equal(
        uncertainty_features(p, side_probs=sides, valid=torch.ones(b, h, w)),
        uncertainty_features(p, side_probs=sides),
    )


def _ref_flags(x: torch.Tensor, valid: torch.Tensor | None) -> list[str]:
    ok = torch.isfinite(x).all(1)
    if valid is not None:
        ok = ok & (valid > 0.5)
    out = []
    for i in range(x.shape[0]):
        if not bool(ok[i].any()):
            out.append("all nodata")
            continue
        vals = x[i][:, ok[i]]
        spread = float((vals.amax(1) - vals.amin(1)).max())
        out.append("constant image" if spread <= 1e-6 else "")
    return out


def test_input_flags_for_a_batch_equal_the_per_image_check() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 2, 9, 7, generator=g)
    x[1] = float("nan")
    x[2] = 0.25
    x[3, 0, :5] = float("inf")
    x[4, :, :, :3] = 0.7  # constant where valid (below)
    x[5, 1] = x[5, 0] + 5e-7  # bands differ, each band varies: usable
    valid = torch.ones(6, 9, 7)
    valid[0] = 0
    valid[4, :, 3:] = 0
    for v in (None, valid, valid.bool()):
        ref = _ref_flags(x, v)
        assert input_flags(x, v) == ref
        assert input_flags(x, v, finite=torch.isfinite(x).all(1)) == ref
    assert _ref_flags(x, valid) == [
        "all nodata",
        "all nodata",
        "constant image",
        "",
        "constant image",
        "",
    ]
    clean = torch.rand(3, 1, 8, 8, generator=g)  # every pixel usable: the one-pass branch
    clean[1] = 0.5
    assert input_flags(clean) == _ref_flags(clean, None) == ["", "constant image", ""]
    # the caller found every value finite (run_model): the same flags, with and without nodata
    part = torch.ones(3, 8, 8)
    part[2] = 0
    part[1, :4] = 0
    clean[1, 0, 4:] = 0.9  # constant where valid
    for v in (None, torch.ones(3, 8, 8), part, part.bool()):
        assert input_flags(clean, v, finite=True) == _ref_flags(clean, v)
    assert input_flags(clean, part, finite=True) == ["", "constant image", "all nodata"]


def test_all_finite_equals_isfinite_all() -> None:
    """The one-pass check run_model uses on inputs and outputs (NaN, +inf, -inf, bf16, empty)."""
    g = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x = torch.randn(2, 1, 9, 7, generator=g).to(dtype)
        assert all_finite(x) is True
        for bad in (float("nan"), float("inf"), float("-inf")):
            y = x.clone()
            y[1, 0, 8, 6] = bad
            assert all_finite(y) is False == bool(torch.isfinite(y).all())
    assert all_finite(torch.zeros(0, 3)) and all_finite(torch.ones(4, dtype=torch.int64))


def test_all_ones_equals_eq_one_all() -> None:
    """The one-pass check run_model uses to drop an all-valid mask: bool and float masks, a 0, a
    fractional weight (0.5 or 1.5 is not "valid"), a NaN, empty."""
    for dtype in (torch.bool, torch.float32, torch.uint8):
        assert all_ones(torch.ones(2, 9, 7, dtype=dtype)) is True
        z = torch.ones(2, 9, 7, dtype=dtype)
        z[1, 8, 6] = 0
        assert all_ones(z) is False
    for bad in (0.5, 1.5, float("nan")):
        t = torch.ones(2, 9, 7)
        t[0, 0, 0] = bad
        assert all_ones(t) is False == bool((t == 1).all())
    assert all_ones(torch.zeros(0, 3)) is True
