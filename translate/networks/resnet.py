"""ResNet generator of CycleGAN (Zhu et al. 2017, appendix 7.2; after Johnson et al. 2016).

c7s1-64, d128, d256, ``depth`` residual blocks R256, u128, u64, c7s1-out with tanh. Reflection
padding keeps borders free of artefacts. The module tree is laid out so that ``state_dict()``
names and shapes match the widely shared reference checkpoints (``model.10.conv_block.1``).
"""

from __future__ import annotations

import torch
from torch import nn

from translate.networks.layers import conv_bias, norm_layer, upsample_layer


class ResidualBlock(nn.Module):
    """x + F(x) with F = pad-conv3-norm-relu-[dropout]-pad-conv3-norm; (N, C, H, W) kept."""

    def __init__(self, channels: int, norm: str, dropout: bool):
        super().__init__()
        bias = conv_bias(norm)
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(True),
            nn.Dropout(0.5) if dropout else nn.Identity(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResNetGenerator(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of 4 (``stride``): two stride-2 downsamplings, mirrored by two
    transposed convolutions (or resize-convolutions: ``upsample``). ``depth`` is the number
    of residual blocks (9 at 256 px, 6 at 128 px in the paper).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 depth: int = 9, norm: str = "instance", dropout: bool = False,
                 upsample: str = "transpose"):
        super().__init__()
        self.stride = 4
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        layers += [ResidualBlock(ngf * 4, norm, dropout) for _ in range(depth)]
        for mult in (4, 2):
            layers += [upsample_layer(upsample, ngf * mult, ngf * mult // 2, 3, bias),
                       norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def features(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        """The outputs of ``self.model[i]`` for each i in ``layers`` (ascending), running
        only as far as the last of them (the encoder features CUT compares)."""
        out = []
        for i, layer in enumerate(self.model[:max(layers) + 1]):
            x = layer(x)
            if i in layers:
                out.append(x)
        return out
