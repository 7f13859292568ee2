"""activations.GELU: the values of nn.GELU, the layout of its input, any shape."""

import pytest
import torch
from torch import nn

from sam2elnet.model.activations import GELU


@pytest.mark.parametrize("shape", [(1, 16, 32, 48), (3, 5, 7, 9), (2, 1, 8, 8)])
def test_channels_last_map_equals_plain_gelu_and_keeps_layout(shape):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(*shape, generator=g) * 3).to(memory_format=torch.channels_last)
    y = GELU()(x)
    assert y.shape == x.shape
    assert y.is_contiguous(memory_format=torch.channels_last)
    # bit for bit the kernel's value on a dense copy (the channels-last kernel may differ by 1 ulp)
    assert torch.equal(y.contiguous(), nn.GELU()(x.contiguous()))


def test_other_inputs_go_straight_to_gelu():
    g = torch.Generator().manual_seed(1)
    for x in (torch.randn(4, 10, generator=g), torch.randn(2, 3, 5, 5, generator=g)):
        assert torch.equal(GELU()(x), nn.GELU()(x))
        assert GELU()(x).is_contiguous()


def test_gradient_equals_plain_gelu():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(2, 8, 6, 6, generator=g)
    a = base.clone().to(memory_format=torch.channels_last).requires_grad_()
    b = base.clone().requires_grad_()
    w = torch.randn(2, 8, 6, 6, generator=g)
    (GELU()(a) * w).sum().backward()
    (nn.GELU()(b) * w).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=0)


def test_no_parameters_so_model_files_do_not_change():
    assert GELU().state_dict() == {} and list(GELU().parameters()) == []
