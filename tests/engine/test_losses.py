"""Losses: boundary weighting, soft IoU, deep supervision, edge loss and the nodata (valid) mask."""

from __future__ import annotations

import pytest
import torch

from sam2elnet.engine.losses import (
    LossWeights,
    boundary_map,
    edge_loss,
    segmentation_loss,
    soft_iou_loss,
)


def _square(size: int = 32, lo: int = 8, hi: int = 24) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[..., lo:hi, lo:hi] = 1
    return m


def test_boundary_map_is_a_ring_around_the_edge() -> None:
    m = _square()
    b = boundary_map(m, width=3)
    assert b[0, 0, 16, 16] == 0  # interior
    assert b[0, 0, 2, 2] == 0  # far background
    assert b[0, 0, 8, 16] == 1 and b[0, 0, 7, 16] == 1  # both sides of the edge
    assert boundary_map(torch.zeros(1, 1, 16, 16)).sum() == 0
    assert boundary_map(torch.ones(1, 1, 16, 16)).sum() == 0  # image border is no boundary


def test_soft_iou_perfect_and_empty() -> None:
    m = _square()
    v = torch.ones_like(m)
    assert soft_iou_loss(m * 40 - 20, m, v) < 1e-3
    assert soft_iou_loss(torch.full_like(m, -20.0), torch.zeros_like(m), v) < 1e-3
    assert soft_iou_loss(-(m * 40 - 20), m, v) > 0.9


def test_loss_orders_predictions_and_has_all_parts() -> None:
    m = _square()
    good = m * 8 - 4
    bad = -good
    side = [torch.zeros(1, 1, 32 // s, 32 // s) for s in (32, 16, 8, 4)]
    lg, parts = segmentation_loss(good, m, None, side, torch.zeros_like(m))
    lb, _ = segmentation_loss(bad, m, None, side, torch.zeros_like(m))
    assert lg < lb
    assert {"bce", "iou", "deep", "edge", "total"} <= set(parts)
    l_nods, p2 = segmentation_loss(good, m, None, (), None)
    assert "deep" not in p2 and "edge" not in p2 and l_nods < lg


def test_invalid_pixels_do_not_affect_any_term() -> None:
    torch.manual_seed(0)
    m = _square()
    v = torch.ones_like(m)
    v[..., :, :10] = 0  # nodata strip
    logits = torch.randn_like(m)
    edge = torch.randn_like(m)
    side = [torch.randn(1, 1, 8, 8)]
    base, _ = segmentation_loss(logits, m, v, side, edge)
    logits2, edge2 = logits.clone(), edge.clone()
    logits2[..., :, :10] = 50.0  # wild values where nodata
    edge2[..., :, :10] = -50.0
    side2 = [side[0].clone()]
    side2[0][..., :, :2] = 30.0  # side pixels entirely within the nodata strip (cols 0-7 of 32)
    changed, _ = segmentation_loss(logits2, m, v, side2, edge2)
    assert torch.allclose(base, changed, atol=1e-5)


def test_gradients_flow_to_all_outputs() -> None:
    m = _square()
    logits = torch.zeros_like(m, requires_grad=True)
    side = [torch.zeros(1, 1, 8, 8, requires_grad=True)]
    edge = torch.zeros_like(m, requires_grad=True)
    loss, _ = segmentation_loss(logits, m, None, side, edge, LossWeights())
    loss.backward()
    for t in (logits, side[0], edge):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_edge_loss_rewards_edges_on_the_boundary() -> None:
    m = _square()
    v = torch.ones_like(m)
    target_edges = boundary_map(m, 3)
    right = target_edges * 10 - 5
    assert edge_loss(right, m, v) < edge_loss(-right, m, v)


def test_no_boundary_weight_skips_the_band_and_keeps_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boundary=0 (the downstream U-Net's loss): the band is not computed, and the loss equals
    the band-weighted formula's, whose weights are then all exactly 1, bit for bit."""
    import sam2elnet.engine.losses as losses

    torch.manual_seed(0)
    m = _square()
    v = torch.ones_like(m)
    v[..., :4, :] = 0
    logits = torch.randn_like(m)
    w = LossWeights(boundary=0.0, deep_supervision=0.0, edge=0.0)
    pix_w = 1.0 + 0.0 * boundary_map(m, w.boundary_width)  # what the loss used before
    expected = losses.weighted_bce(logits, m, pix_w, v) + soft_iou_loss(logits, m, v)

    def no_band(*_a: object, **_k: object) -> None:
        raise AssertionError("boundary_map called with boundary weight 0")

    monkeypatch.setattr(losses, "boundary_map", no_band)
    total, parts = segmentation_loss(logits, m, v, weights=w)
    assert torch.equal(total, expected)
    assert torch.equal(parts["bce"], losses.weighted_bce(logits, m, pix_w, v))
    with pytest.raises(AssertionError, match="boundary weight 0"):
        segmentation_loss(logits, m, v, weights=LossWeights())  # a boundary weight: band used
