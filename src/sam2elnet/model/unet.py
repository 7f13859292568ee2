"""A small plain U-Net: the *downstream* segmentation model of the paper's protocol.

The protocol asks "how good is a segmentation model trained on these labels?". To answer it fairly the
downstream model must be ordinary, identical across settings and cheap enough to train several times on a
CPU, so it is written here in plain torch (torchvision / timm / smp cannot be installed on our machines).
With the defaults (``width=16``, ``depth=4``) it has ~1.9 M parameters, the size of the reference U-Net in
``DESIGN.md`` (7.8 img/s at 256 px, bf16, 2 cores).

Any input size works: the input is padded to a multiple of ``2**depth`` internally and the logits are
cropped back, so the output always has the input's height and width.

Other downstream architectures can be plugged in through :data:`DOWNSTREAM_MODELS` (name -> builder taking
``in_bands`` and keyword options, returning a module mapping ``(B, in_bands, H, W)`` to ``(B, 1, H, W)``
logits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormKind = Literal["batch", "group"]


def _norm(kind: NormKind, channels: int) -> nn.Module:
    """BatchNorm (fastest on CPU, the usual U-Net) or GroupNorm (stable for batch size 1)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = 8
        while channels % groups:
            groups //= 2
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}; use 'batch' or 'group'")


class DoubleConv(nn.Sequential):
    """Two 3x3 conv + norm + ReLU: the classic U-Net block."""

    def __init__(self, cin: int, cout: int, norm: NormKind) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Plain U-Net with ``depth`` down-sampling steps; channel width doubles at each step.

    Args:
        in_bands: number of image channels (1 for SAR, 3 for RGB, any other count works).
        width: channels of the first level (the deepest level has ``width * 2**depth``).
        depth: number of 2x down-sampling steps; inputs are padded to a multiple of ``2**depth``.
        norm: ``"batch"`` or ``"group"``.
        out_channels: logit channels (1 for binary segmentation).
    """

    def __init__(
        self,
        in_bands: int = 1,
        width: int = 16,
        depth: int = 4,
        norm: NormKind = "batch",
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if in_bands < 1 or width < 1 or depth < 1:
            raise ValueError("in_bands, width and depth must be >= 1")
        self.in_bands, self.width, self.depth, self.norm = in_bands, width, depth, norm
        chans = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        cin = in_bands
        for c in chans:
            self.encoders.append(DoubleConv(cin, c, norm))
            cin = c
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(depth, 0, -1):
            self.ups.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 2, stride=2))
            self.decoders.append(DoubleConv(2 * chans[i - 1], chans[i - 1], norm))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        """Spatial sizes are padded up to a multiple of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_bands, H, W)`` -> logits ``(B, out_channels, H, W)`` for any H, W >= 1."""
        if x.ndim != 4 or x.shape[1] != self.in_bands:
            raise ValueError(f"expected (B, {self.in_bands}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            # Reflection keeps image statistics at the border; it needs pad < size, else replicate.
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, dec in zip(self.ups, self.decoders, strict=True):
            x = up(x)
            x = dec(torch.cat([skips.pop(), x], dim=1))
        out = self.head(x)
        return out[..., :h, :w]


def build_unet(in_bands: int = 1, **options: object) -> UNet:
    """Registry builder for :class:`UNet` (options: width, depth, norm)."""
    return UNet(in_bands=in_bands, **options)  # type: ignore[arg-type]


DOWNSTREAM_MODELS: dict[str, Callable[..., nn.Module]] = {"unet": build_unet}


def build_downstream(name: str = "unet", in_bands: int = 1, **options: object) -> nn.Module:
    """Build a registered downstream model by name; ValueError lists the known names."""
    try:
        builder = DOWNSTREAM_MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown downstream model {name!r}; known: {', '.join(sorted(DOWNSTREAM_MODELS))}"
        ) from None
    return builder(in_bands=in_bands, **options)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
