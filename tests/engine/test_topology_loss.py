"""Soft clDice (Shit et al., CVPR 2021): soft skeleton, the clDice score and its use as a loss term."""

from __future__ import annotations

import pytest
import torch

from sam2elnet.engine.losses import (
    LossWeights,
    cldice_loss,
    segmentation_loss,
    soft_cldice,
    soft_skeleton,
)


def _bar(h: int = 32, w: int = 64, top: int = 10, bottom: int = 21) -> torch.Tensor:
    """A horizontal road of 11 px width (rows 10..20, centre row 15), columns 4..59."""
    m = torch.zeros(1, 1, h, w)
    m[..., top:bottom, 4:60] = 1
    return m


def test_soft_skeleton_of_a_thick_bar_is_its_centre_line() -> None:
    m = _bar()
    # half width is 5 px: from 5 iterations on, the skeleton is the centre row, nothing else
    for it in (5, 8, 15):
        s = soft_skeleton(m, it)[0, 0]
        rows = s.sum(1)
        assert rows[15] == pytest.approx(46.0)  # columns 9..54: the bar shortened by its half width
        assert float(rows.sum() - rows[15]) == 0.0
        assert torch.all(s[15, 9:55] == 1)
    # too few iterations: the bar is not thinned yet, so no centre line appears anywhere
    assert float(soft_skeleton(m, 2).sum()) == 0.0


def test_soft_skeleton_of_a_soft_road_peaks_on_its_centre() -> None:
    y = torch.arange(32, dtype=torch.float32).view(1, 1, 32, 1)
    prob = torch.exp(-(((y - 15) / 5) ** 2)).expand(1, 1, 32, 64).contiguous()
    s = soft_skeleton(prob, 10)[0, 0]
    assert torch.all(s.argmax(0) == 15)  # every column's ridge is the centre row
    assert float(s[15].min()) > 0.5
    off = s.clone()
    off[15] = 0
    assert float(off.max()) < 1e-6


def test_cldice_is_one_for_identical_masks_and_lower_for_a_broken_road() -> None:
    m = _bar()
    assert float(soft_cldice(m, m)) == pytest.approx(1.0)
    broken = m.clone()
    broken[..., 30:34] = 0  # a 4 px gap across the road
    # Tprec = 1 (the pieces' centre lines lie on the road); Tsens = (42 + 1) / (46 + 1)
    tsens = 43 / 47
    assert float(soft_cldice(broken, m)) == pytest.approx(2 * tsens / (1 + tsens), abs=1e-5)
    # a thinner but unbroken road keeps the topology: clDice stays 1 while its IoU is 5/11
    thin = torch.zeros_like(m)
    thin[..., 13:18, 4:60] = 1
    assert float(soft_cldice(thin, m)) == pytest.approx(1.0)
    # nothing predicted on a road image is the worst case; empty vs empty is a perfect match
    assert float(soft_cldice(torch.zeros_like(m), m)) < 0.05
    z = torch.zeros_like(m)
    assert float(soft_cldice(z, z)) == pytest.approx(1.0)


def test_cldice_honours_the_valid_mask() -> None:
    m = _bar()
    broken = m.clone()
    broken[..., 30:34] = 0
    valid = torch.ones_like(m)
    valid[..., 26:38] = 0  # the gap lies in nodata: not counted against the prediction
    assert float(soft_cldice(broken, m, valid)) == pytest.approx(1.0)


def test_cldice_loss_gradients_flow_and_point_to_the_gap() -> None:
    m = _bar()
    logits = (m * 8 - 4).clone()
    logits[..., 30:34] = -4.0  # the prediction misses a piece of the road
    logits.requires_grad_(True)
    loss = cldice_loss(logits, m)
    loss.backward()
    g = logits.grad
    assert g is not None and torch.isfinite(g).all()
    assert float(g.abs().sum()) > 0
    # descending the gradient raises the probability inside the gap, on the centre line
    assert float(g[0, 0, 15, 30:34].max()) < 0


def test_segmentation_loss_adds_the_topology_term_only_when_weighted() -> None:
    m = _bar()
    logits = m * 8 - 4
    logits[..., 30:34] = -4.0
    base, parts = segmentation_loss(logits, m)
    assert "cldice" not in parts
    w = LossWeights(topology=0.5, topology_iterations=8)
    total, parts = segmentation_loss(logits, m, weights=w)
    assert "cldice" in parts
    assert float(total) == pytest.approx(float(base) + 0.5 * float(parts["cldice"]), rel=1e-5)
    assert float(parts["cldice"]) == pytest.approx(float(cldice_loss(logits, m, None, 8)))
