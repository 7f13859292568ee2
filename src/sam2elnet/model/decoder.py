"""Edge-attention U-decoder with deep supervision and a full-resolution head.

The decoder reduces each of Hiera's four stage features (strides 4, 8, 16, 32) to a common width,
then upsamples from coarse to fine with skip connections. At every upsampling step an *edge
attention gate* re-weights the features towards boundaries: it looks at the gradient magnitude
(Sobel) of a one-channel summary of the features and of the input image, and produces a per-pixel
weight ``a`` in (0, 1); features become ``x * (1 + a)``. Oil-slick edges and road borders are where
coarse labels are wrong, so that is where the decoder should spend its capacity.

Each scale also has a side output (deep supervision), and the last stage works at stride 1 with a
small "detail" branch that sees the input image and coarse label at full resolution: thin roads and
slick filaments vanish at stride 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam2elnet.model.activations import GELU


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + GroupNorm + GELU layers (GroupNorm: batch-size independent, fine at batch 1)."""
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.GroupNorm(groups, cout),
        GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.GroupNorm(groups, cout),
        GELU(),
    )


class SobelMagnitude(nn.Module):
    """Gradient magnitude of a one-channel map (fixed Sobel kernels)."""

    def __init__(self) -> None:
        super().__init__()
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        self.register_buffer("kernel", torch.stack([gx, gx.t()])[:, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype))
        return torch.sqrt(g.pow(2).sum(dim=1, keepdim=True) + 1e-6)


class EdgeAttentionGate(nn.Module):
    """Boundary-emphasising weights from feature edges and image edges: ``x * (1 + a)``."""

    def __init__(self, channels: int, hidden: int = 8) -> None:
        super().__init__()
        self.summary = nn.Conv2d(channels, 1, 1)
        self.sobel = SobelMagnitude()
        self.gate = nn.Sequential(
            nn.Conv2d(3, hidden, 3, padding=1),
            GELU(),
            nn.Conv2d(hidden, 1, 3, padding=1),
        )

    def forward(
        self, x: torch.Tensor, image_grey: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.summary(x)
        edges = torch.cat([s, self.sobel(s), self.sobel(image_grey.to(s.dtype))], dim=1)
        a = torch.sigmoid(self.gate(edges))
        return x * (1.0 + a), a


class EdgeUDecoder(nn.Module):
    """U-shaped decoder over four stage features, with edge gates and deep supervision."""

    def __init__(
        self,
        stage_channels: tuple[int, int, int, int],
        in_bands: int,
        dim: int = 64,
        detail_width: int = 16,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.reduce = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, dim, 1, bias=False),
                nn.GroupNorm(8 if dim % 8 == 0 else 1, dim),
                GELU(),
            )
            for c in stage_channels
        )
        self.top = conv_block(dim, dim)
        # fuse[i] merges the upsampled coarser map with the skip at strides 16, 8, 4.
        self.fuse = nn.ModuleList(conv_block(2 * dim, dim) for _ in range(3))
        self.gates = nn.ModuleList(EdgeAttentionGate(dim) for _ in range(3))
        # Side heads at strides 32, 16, 8, 4 (deep supervision).
        self.side = nn.ModuleList(nn.Conv2d(dim, 1, 1) for _ in range(4))
        # Full-resolution stage: detail branch on [image, coarse, has_coarse].
        self.detail = nn.Sequential(
            nn.Conv2d(in_bands + 2, detail_width, 3, padding=1),
            GELU(),
            nn.Conv2d(detail_width, detail_width, 3, padding=1),
            GELU(),
        )
        self.to_full = nn.Conv2d(dim, detail_width, 1)
        self.full = conv_block(2 * detail_width, detail_width)
        self.full_gate = EdgeAttentionGate(detail_width)
        self.head = nn.Conv2d(detail_width, 1, 1)
        self.edge_head = nn.Conv2d(detail_width, 1, 1)

    @property
    def embedding_dim(self) -> int:
        return 2 * self.dim

    def forward(
        self,
        stage_feats: list[torch.Tensor],
        mask_feats: list[torch.Tensor],
        image: torch.Tensor,
        mask_planes: torch.Tensor,
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Decode; every input is channels-first and already padded to a multiple of 32."""
        grey = image.mean(dim=1, keepdim=True)
        skips = [r(f) + m for r, f, m in zip(self.reduce, stage_feats, mask_feats, strict=True)]
        x = self.top(skips[3])
        sides = [self.side[0](x)]
        for i, skip in enumerate((skips[2], skips[1], skips[0])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.fuse[i](torch.cat([x, skip], dim=1))
            x, _ = self.gates[i](x, F.adaptive_avg_pool2d(grey, x.shape[-2:]))
            sides.append(self.side[i + 1](x))
        # Quality-head embedding: global mean and prediction-weighted mean of stride-4 features.
        p4 = torch.sigmoid(sides[-1].float()).to(x.dtype)
        weighted = (x * p4).sum(dim=(2, 3)) / (p4.sum(dim=(2, 3)) + 1e-3)
        embedding = torch.cat([x.mean(dim=(2, 3)), weighted], dim=1)

        full = F.interpolate(
            self.to_full(x), size=image.shape[-2:], mode="bilinear", align_corners=False
        )
        detail = self.detail(torch.cat([image.to(full.dtype), mask_planes.to(full.dtype)], dim=1))
        y = self.full(torch.cat([full, detail], dim=1))
        y, _ = self.full_gate(y, grey)
        return {
            "logits": self.head(y),
            "edge_logits": self.edge_head(y),
            "side_logits": sides,
            "embedding": embedding,
        }
