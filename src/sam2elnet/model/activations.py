"""GELU for channels-last feature maps.

The decoder and the coarse-label encoder run channels-last (NHWC in memory) on CPU, where oneDNN's
convolutions are fastest. torch 2.13's CPU GELU kernel, however, takes a slower path for a
channels-last 4-D tensor than for the same values in a dense tensor: 1.5-1.9x the time on a
16 x 512 x 512 map on the 2-core AVX2 machine of docs/benchmarks.md, about a tenth of a 512 px
forward. :class:`GELU` runs the kernel on the NHWC view (dense, no copy) and returns the result with
channels-last strides again, so the rest of the network sees the same layout.
"""

from __future__ import annotations

import torch
from torch import nn


class GELU(nn.GELU):
    """``nn.GELU`` (exact erf form, Hendrycks & Gimpel 2016) computed on the dense NHWC view of a
    channels-last 4-D map.

    Input: any shape and float dtype; a 4-D ``(N, C, H, W)`` tensor whose memory is channels-last
    is permuted to its dense ``(N, H, W, C)`` view, passed through the kernel and permuted back
    (no copies), so the output has the input's shape, dtype and strides. Other inputs go straight
    to ``nn.GELU``. The values equal ``nn.GELU`` on a contiguous copy of the input bit for bit (the
    channels-last kernel itself differs from both by up to 1 ulp). No parameters, so model files
    are the same with either module.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() == 4
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return super().forward(x)
