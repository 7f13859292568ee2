"""Coarse-label encoder: turns an optional coarse mask into features at every decoder scale.

Input is two planes: the coarse mask and a constant "a label was given" plane. With the indicator
at 0 (and a zero mask) the network must annotate from the image alone; this is how one model serves
both label enhancement and automatic annotation, and how a batch can mix the two tasks.
Projections into the decoder start at zero so a fresh model is not disturbed by the extra input.
"""

from __future__ import annotations

import torch
from torch import nn

from sam2elnet.model.activations import GELU


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(1, cout),
        GELU(),
    )


class MaskEncoder(nn.Module):
    """Strided conv pyramid over [coarse, has_coarse]: features at strides 4, 8, 16, 32."""

    def __init__(self, decoder_dim: int, trunk_dim: int | None, width: int = 16) -> None:
        super().__init__()
        self.s2 = _conv(2, width, 2)
        self.s4 = _conv(width, 2 * width, 2)
        self.s8 = _conv(2 * width, 2 * width, 2)
        self.s16 = _conv(2 * width, 4 * width, 2)
        self.s32 = _conv(4 * width, 4 * width, 2)
        widths = (2 * width, 2 * width, 4 * width, 4 * width)
        self.proj = nn.ModuleList(nn.Conv2d(w, decoder_dim, 1) for w in widths)
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)
        # Optional injection into the trunk tokens right after the patch embedding (stride 4).
        self.to_trunk = nn.Linear(2 * width, trunk_dim) if trunk_dim else None
        if self.to_trunk is not None:
            nn.init.zeros_(self.to_trunk.weight)
            nn.init.zeros_(self.to_trunk.bias)

    @staticmethod
    def planes(coarse: torch.Tensor, has_coarse: torch.Tensor) -> torch.Tensor:
        """Stack the mask (zeroed where absent) with the indicator plane."""
        ind = has_coarse.view(-1, 1, 1, 1).to(coarse.dtype).expand_as(coarse)
        return torch.cat([coarse * ind, ind], dim=1)

    def forward(self, planes: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Return decoder features at strides (4, 8, 16, 32) and trunk tokens (B, H/4, W/4, C)."""
        f4 = self.s4(self.s2(planes))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        feats = [p(f) for p, f in zip(self.proj, (f4, f8, f16, f32), strict=True)]
        tokens = self.to_trunk(f4.permute(0, 2, 3, 1)) if self.to_trunk is not None else None
        return feats, tokens
