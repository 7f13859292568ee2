"""Input stem: N input bands -> the 3 channels SAM2's patch embedding expects.

SAM2 was pretrained on RGB with ImageNet normalisation. SAR data has 1 band (or 2, VV/VH), optical
data may have 4+ bands. A 1x1 convolution maps bands to 3 channels and is initialised so that the
pretrained behaviour is the starting point: 1 band -> grey replicated, 3 bands -> identity, 2 bands
-> their mean replicated, N>3 -> the first three bands (extra bands start at zero weight and are
learnt). ImageNet normalisation is applied after the stem.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputStem(nn.Module):
    """Trainable band mapping followed by the fixed ImageNet normalisation."""

    def __init__(self, in_bands: int) -> None:
        super().__init__()
        if in_bands < 1:
            raise ValueError("in_bands must be >= 1")
        self.in_bands = in_bands
        self.mix = nn.Conv2d(in_bands, 3, kernel_size=1)
        with torch.no_grad():
            w = torch.zeros(3, in_bands)
            if in_bands == 1:
                w[:, 0] = 1.0
            elif in_bands == 2:
                w[:, :] = 0.5
            else:
                w[:, :3] = torch.eye(3)
            self.mix.weight.copy_(w[:, :, None, None])
            self.mix.bias.zero_()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.mix(x) - self.mean) / self.std
