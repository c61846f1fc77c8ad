"""Discriminators: the PatchGAN of pix2pix (Isola et al. 2017, section 3.2.2) and a 1x1
"PixelGAN".

Both return a map of logits, one per receptive field (no sigmoid: the losses take logits).
A conditional discriminator is the same network with ``in_channels`` = input + output
channels, fed ``cat(x, y)``.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.networks.layers import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    """(N, in_channels, H, W) -> logits (N, 1, H', W').

    ``layers`` stride-2 4x4 convolutions (C64-C128-C256...), one stride-1 convolution and a
    1-channel output convolution. With ``layers=3`` each logit sees a 70x70 patch; the first
    layer has no normalisation, widths are capped at ``ndf * 8``.
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, layers: int = 3,
                 norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        seq: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, layers + 1):
            prev, width = width, ndf * min(2 ** n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(prev, width, 4, stride=stride, padding=1, bias=bias),
                    norm_layer(norm, width), nn.LeakyReLU(0.2, True)]
        seq.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: (N, in_channels, H, W) -> logits (N, 1, H, W), one per pixel.

    It judges colour statistics only, not structure (pix2pix paper, figure 6).
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
