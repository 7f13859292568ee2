"""Bottleneck adapters placed before each Hiera block.

An adapter is ``x + up(gelu(down(x)))`` on channels-last tokens. ``up`` starts at zero, so a fresh
model computes exactly the pretrained encoder's features and fine-tuning starts from SAM2's
representation instead of from a perturbed one. Only adapters (a few % of the trunk's parameters)
are trained; the trunk stays frozen.
"""

from __future__ import annotations

import torch
from torch import nn


class BottleneckAdapter(nn.Module):
    """Residual bottleneck MLP over the last (channel) dimension, zero-initialised output."""

    def __init__(self, dim: int, bottleneck: int = 32) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


def build_adapters(block_dims: list[int], bottleneck: int) -> nn.ModuleList:
    """One adapter per block, sized to the block's input width."""
    return nn.ModuleList(BottleneckAdapter(d, bottleneck) for d in block_dims)
