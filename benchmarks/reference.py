"""Reference configuration of the public SAM2-UNet-style design, for side-by-side benchmarks.

Built from the design's published description (not from its code), with the same frozen Hiera
trunk implementation we use (``transformers``' ``Sam2HieraDetModel`` via
:func:`sam2elnet.model.hiera.build_trunk`), so that a speed ratio compares the designs around the
trunk, not two trunk implementations:

* frozen Hiera trunk; an **adapter** ``Linear(dim -> 32) - GELU - Linear(32 -> dim) - GELU`` added
  residually to the tokens before every block (the only trainable part of the trunk path);
* four **RFB-style reductions** of the stage outputs (strides 4, 8, 16, 32) to 64 channels: a 1x1
  branch and three branches 1x1 -> (1xk, kx1) -> 3x3 with dilation k for k = 3, 5, 7, concatenated,
  fused by a 3x3 conv, plus a 1x1 shortcut, ReLU; every conv followed by BatchNorm;
* three **decoder steps**: bilinear 2x upsampling, concatenation with the next finer reduction,
  ``DoubleConv`` (two 3x3 conv - BatchNorm - ReLU); a 1x1 head after each step gives a side output
  at strides 16, 8 and 4, bilinearly upsampled to the input size (**deep supervision**: the loss is
  summed over the three; the stride-4 one is the prediction);
* **fp32** as it ships (no autocast), AdamW, a weighted BCE + weighted IoU ("structure") loss with
  boundary weights ``1 + 5 |avgpool31(mask) - mask|`` (the loss used by this family of designs);
* benchmark batch sizes: **4 at 256 px, 2 at 512 px**; inference is one forward pass, no
  test-time-augmentation or quality views.

Input is three-band (the trunk's patch embedding); the benchmarks give it our one-band SAR inputs
repeated to three bands, so both networks see the same pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BATCH = {256: 4, 512: 2}
"""Reference batch size per image size (other sizes: 4 up to 256 px, else 2)."""


def reference_batch(size: int) -> int:
    return BATCH.get(size, 4 if size <= 256 else 2)


class _Adapter(nn.Module):
    def __init__(self, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.GELU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _conv_bn(cin: int, cout: int, k: tuple[int, int] | int, dilation: int = 1) -> nn.Sequential:
    kh, kw = (k, k) if isinstance(k, int) else k
    pad = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, (kh, kw), padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
    )


class _RFB(nn.Module):
    """Receptive-field block reducing ``cin`` channels to ``cout``."""

    def __init__(self, cin: int, cout: int = 64) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn(cin, cout, 1)])
        for k in (3, 5, 7):
            self.branches.append(
                nn.Sequential(
                    _conv_bn(cin, cout, 1),
                    _conv_bn(cout, cout, (1, k)),
                    _conv_bn(cout, cout, (k, 1)),
                    _conv_bn(cout, cout, 3, dilation=k),
                )
            )
        self.fuse = _conv_bn(4 * cout, cout, 3)
        self.shortcut = _conv_bn(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fuse(torch.cat([b(x) for b in self.branches], dim=1))
        return F.relu(y + self.shortcut(x))


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ReferenceNet(nn.Module):
    """SAM2-UNet-style network (see module docstring). ``forward`` returns three full-size logit
    maps (stride-16, stride-8 and stride-4 heads, upsampled); the last one is the prediction."""

    def __init__(self, size: str = "tiny", width: int = 64) -> None:
        super().__init__()
        from sam2elnet.model.hiera import HIERA_SPECS, build_trunk

        self.trunk = build_trunk(size)
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        self.trunk.eval()
        self.stage_ends = set(self.trunk.stage_ends)
        self.adapters = nn.ModuleList(_Adapter(blk.dim) for blk in self.trunk.blocks)
        chans = HIERA_SPECS[size].stage_channels
        self.rfb = nn.ModuleList(_RFB(c, width) for c in chans)
        self.up = nn.ModuleList(_double_conv(2 * width, width) for _ in range(3))
        self.heads = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in range(3))

    def train(self, mode: bool = True) -> ReferenceNet:
        super().train(mode)
        self.trunk.eval()  # frozen
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.trunk.patch_embed(x)
        h = h + self.trunk._get_pos_embed(h.shape[1:3])
        feats = []
        for i, block in enumerate(self.trunk.blocks):
            h = block(self.adapters[i](h))
            if i in self.stage_ends:
                feats.append(h.permute(0, 3, 1, 2))
        r = [m(f) for m, f in zip(self.rfb, feats, strict=True)]
        y = r[3]
        outs = []
        for i, skip in enumerate((r[2], r[1], r[0])):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = self.up[i](torch.cat([y, skip], dim=1))
            outs.append(F.interpolate(self.heads[i](y), size=x.shape[-2:], mode="bilinear"))
        return outs


def structure_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Boundary-weighted BCE + weighted soft IoU, averaged over the batch."""
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, 31, stride=1, padding=15) - mask)
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    wbce = (weight * bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    p = torch.sigmoid(logits)
    inter = (p * mask * weight).sum(dim=(2, 3))
    union = ((p + mask) * weight).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


def build_reference(
    size: str = "tiny", seed: int = 0
) -> tuple[ReferenceNet, torch.optim.Optimizer]:
    """The reference network (random weights: speed does not depend on them) and its AdamW."""
    torch.manual_seed(seed)
    net = ReferenceNet(size)
    params = [p for p in net.parameters() if p.requires_grad]
    return net, torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)


def reference_train_step(
    net: ReferenceNet, opt: torch.optim.Optimizer, x3: torch.Tensor, mask: torch.Tensor
) -> float:
    """One fp32 training step on (B, 3, H, W) images and (B, 1, H, W) masks; returns the loss."""
    net.train()
    loss = sum(structure_loss(o, mask) for o in net(x3))
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[union-attr]
    opt.step()
    return float(loss.detach())  # type: ignore[union-attr]


@torch.no_grad()
def reference_predict(net: ReferenceNet, x3: torch.Tensor) -> torch.Tensor:
    """Probabilities (B, 1, H, W) of one fp32 forward pass."""
    net.eval()
    return torch.sigmoid(net(x3)[-1])
