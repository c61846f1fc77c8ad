"""Discriminators: the PatchGAN of pix2pix (Isola et al. 2017, section 3.2.2), a 1x1
"PixelGAN", and pix2pixHD's multi-scale discriminator (Wang et al. 2018, section 3.2).

Each returns a map of logits, one per receptive field (no sigmoid: the losses take logits);
the multi-scale one returns a list of such maps, one per scale. A conditional discriminator
is the same network with ``in_channels`` = input + output channels, fed ``cat(x, y)``.
``forward_features`` also returns the activations after every LeakyReLU, for pix2pixHD's
feature-matching loss.
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

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, the activation after each LeakyReLU, outermost first)."""
        features = []
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return x, features


class MultiScaleDiscriminator(nn.Module):
    """``scales`` discriminators of one kind, the k-th judging the input downsampled k
    times (3x3 average pooling, stride 2, as pix2pixHD): coarse scales see global structure,
    the finest one detail. (N, C, H, W) -> a list of ``scales`` logit maps, finest first."""

    def __init__(self, make, scales: int):
        super().__init__()
        self.scales = nn.ModuleList(make() for _ in range(scales))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def _inputs(self, x: torch.Tensor):
        for k, net in enumerate(self.scales):
            yield net, x
            if k + 1 < len(self.scales):
                x = self.pool(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [net(x_k) for net, x_k in self._inputs(x)]

    def forward_features(self, x: torch.Tensor
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(logits per scale, the activations of every scale in one list)."""
        logits, features = [], []
        for net, x_k in self._inputs(x):
            out, feats = net.forward_features(x_k)
            logits.append(out)
            features += feats
        return logits, features


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

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, the activation after each LeakyReLU)."""
        features = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return x, features
