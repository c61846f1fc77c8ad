"""U-Net generator of pix2pix (Isola et al. 2017, section 3.2.1 and appendix 6.1.1).

An encoder of ``depth`` stride-2 4x4 convolutions (C64-C128-C256-C512-C512-...), a mirrored
decoder of stride-2 transposed convolutions, and skip connections that concatenate encoder
layer i with decoder layer depth - i. Dropout(0.5) sits in the decoder blocks of full width
(ngf * 8) below the bottleneck's parent, as in the paper's CD512 layers.

The module tree is built so that ``state_dict()`` names and shapes are those of the widely
shared reference checkpoints (``model.model.1.model.3...``), which lets those files load.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.networks.layers import conv_bias, norm_layer, upsample_layer


class UNetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up; returns cat(x, up(...)) except at
    the outermost level.

    Shapes: (N, outer, H, W) -> (N, 2 * outer, H, W) for inner levels,
    (N, in_channels, H, W) -> (N, out_channels, H, W) for the outermost one.
    """

    def __init__(self, outer: int, inner: int, norm: str, inside: nn.Module | None = None,
                 in_channels: int | None = None, outermost: bool = False,
                 dropout: bool = False, upsample: str = "transpose"):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        down = nn.Conv2d(in_channels or outer, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = upsample_layer(upsample, inner * 2, outer, 4, bias=True)
            layers = [down, inside, nn.ReLU(True), up, nn.Tanh()]
        elif inside is None:  # innermost: no norm on the 1x1 bottleneck
            up = upsample_layer(upsample, inner, outer, 4, bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, norm_layer(norm, outer)]
        else:
            up = upsample_layer(upsample, inner * 2, outer, 4, bias)
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(norm, inner), inside,
                      nn.ReLU(True), up, norm_layer(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """pix2pix U-Net. (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of ``2 ** depth`` (``stride``). Level i (0 = outermost) goes from
    ``ngf * min(2**(i-1), 8)`` to ``ngf * min(2**i, 8)`` channels; depth 8 is the paper's
    U-Net-256, depth 7 the U-Net-128. ``upsample``: the decoder's x2 layers, the paper's
    transposed convolutions or resize-convolutions (:func:`~translate.networks.layers.
    upsample_layer`).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 depth: int = 8, norm: str = "batch", dropout: bool = True,
                 upsample: str = "transpose"):
        super().__init__()
        if depth < 2:
            raise ValueError("a U-Net needs depth >= 2")
        self.stride = 2 ** depth

        def width(level: int) -> int:
            return ngf * min(2 ** level, 8)

        block = UNetBlock(width(depth - 2), width(depth - 1), norm, upsample=upsample)
        for level in range(depth - 2, 0, -1):
            outer, inner = width(level - 1), width(level)
            block = UNetBlock(outer, inner, norm, inside=block,
                              dropout=dropout and outer == inner == ngf * 8,
                              upsample=upsample)
        self.model = UNetBlock(out_channels, ngf, norm, inside=block, in_channels=in_channels,
                               outermost=True, upsample=upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
