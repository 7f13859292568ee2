"""Tests for the downstream U-Net: shapes for any size, parameter budget, registry, determinism."""

from __future__ import annotations

import pytest
import torch

from sam2elnet.model.unet import DOWNSTREAM_MODELS, UNet, build_downstream, count_parameters


def test_default_size_is_about_two_million_parameters() -> None:
    n = count_parameters(UNet(in_bands=1))
    assert 1.0e6 < n < 2.5e6


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (1, 1, 37, 50), (2, 1, 1, 1), (2, 1, 17, 3)])
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_output_matches_input_size(shape: tuple[int, ...], norm: str) -> None:
    model = UNet(in_bands=1, width=4, depth=3, norm=norm)  # type: ignore[arg-type]
    model.train()
    out = model(torch.randn(*shape))
    assert out.shape == (shape[0], 1, *shape[2:])
    model.eval()
    assert model(torch.randn(*shape)).shape == out.shape


@pytest.mark.parametrize("bands", [1, 3, 5])
def test_any_band_count(bands: int) -> None:
    model = build_downstream("unet", in_bands=bands, width=4, depth=2)
    assert model(torch.randn(1, bands, 24, 24)).shape == (1, 1, 24, 24)


def test_wrong_band_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expected"):
        UNet(in_bands=3, width=4, depth=2)(torch.randn(1, 1, 16, 16))


def test_registry_and_unknown_name() -> None:
    assert "unet" in DOWNSTREAM_MODELS
    with pytest.raises(ValueError, match="known: unet"):
        build_downstream("segformer")
    with pytest.raises(ValueError):
        UNet(norm="layer")  # type: ignore[arg-type]


def test_same_seed_same_weights_and_gradients_flow() -> None:
    torch.manual_seed(3)
    a = UNet(1, width=4, depth=2)
    torch.manual_seed(3)
    b = UNet(1, width=4, depth=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    x = torch.randn(2, 1, 20, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = a(x)
    y.float().mean().backward()
    assert all(p.grad is not None for p in a.parameters())
