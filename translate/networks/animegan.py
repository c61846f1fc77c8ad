"""AnimeGANv2 generator (Chen, Liu and Chen, "AnimeGAN", ISICA 2019; v2 2020), the
architecture of the widely shared PyTorch AnimeGANv2 weights (face_paint_512_v1/v2,
celeba_distill, paprika).

With ``ngf`` = 32 (the published width), H x W is the input size:

    block_a   c7-32, d3-64 (stride 2), c3-64                       -> 64 x H/2
    block_b   d3-128 (stride 2), c3-128                            -> 128 x H/4
    block_c   c3-128, IR(128 -> 256), 3 x IR(256 -> 256, residual), c3-128
              bilinear upsampling to block_a's output size         -> 128 x H/2
    block_d   c3-128, c3-128
              bilinear upsampling to the input size                -> 128 x H
    block_e   c3-64, c3-64, c7-32
    out_layer 1x1 convolution to 3 channels, tanh

``cK-C``: reflection padding, K x K convolution without bias, GroupNorm(1, C) (one mean and
variance over all of C x H x W per image, then a per-channel scale and shift), LeakyReLU(0.2).
``dK-C`` is the same with stride 2; it pads only the bottom and right by one pixel, so an
even side is exactly halved. ``IR`` is an inverted residual block (MobileNetV2): a 1x1
expansion to twice the input width, a 3x3 depthwise convolution (with bias), both followed
by norm and LeakyReLU, then a 1x1 projection and a norm without activation; the input is
added when input and output widths agree. Upsampling is bilinear with aligned corners, to the
sizes recorded on the way down, so every input size maps to itself.

Module names and parameter shapes are those of the shared checkpoints (``block_c.1.layers.
1.1.weight``), so their state dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvNormAct(nn.Sequential):
    """pad, conv, GroupNorm(1, C), LeakyReLU(0.2): (N, C_in, H, W) -> (N, C_out, H', W').

    ``pad`` is (left, right, top, bottom) reflection padding; ``groups`` = C_in = C_out makes
    the convolution depthwise.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 pad: tuple[int, int, int, int] | int = 1, groups: int = 1, bias: bool = False):
        super().__init__(
            nn.ReflectionPad2d(pad),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, groups=groups, bias=bias),
            nn.GroupNorm(1, c_out),
            nn.LeakyReLU(0.2, inplace=True),
        )


DOWN_PAD = (0, 1, 0, 1)  # stride-2 3x3 convolutions pad right and bottom only


class InvertedResidual(nn.Module):
    """1x1 expand (x2) -> 3x3 depthwise -> 1x1 project -> norm, plus x when C_in == C_out.

    (N, C_in, H, W) -> (N, C_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, expansion: int = 2):
        super().__init__()
        hidden = c_in * expansion
        self.residual = c_in == c_out
        self.layers = nn.Sequential(
            ConvNormAct(c_in, hidden, kernel=1, pad=0),
            ConvNormAct(hidden, hidden, groups=hidden, bias=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.GroupNorm(1, c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class AnimeGANv2Generator(nn.Module):
    """(N, in_channels, H, W) RGB in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    Any H and W work; ``stride`` = 4 (two stride-2 convolutions) is the size multiple at which
    both upsamplings are exact doublings, so inference pads inputs to it. ``ngf`` is the
    width of the first layer (32 in the published weights); the others are multiples of it.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 32):
        super().__init__()
        self.stride = 4
        w1, w2, w4, w8 = ngf, ngf * 2, ngf * 4, ngf * 8
        self.block_a = nn.Sequential(
            ConvNormAct(in_channels, w1, kernel=7, pad=3),
            ConvNormAct(w1, w2, stride=2, pad=DOWN_PAD),
            ConvNormAct(w2, w2),
        )
        self.block_b = nn.Sequential(
            ConvNormAct(w2, w4, stride=2, pad=DOWN_PAD),
            ConvNormAct(w4, w4),
        )
        self.block_c = nn.Sequential(
            ConvNormAct(w4, w4),
            InvertedResidual(w4, w8),
            InvertedResidual(w8, w8),
            InvertedResidual(w8, w8),
            InvertedResidual(w8, w8),
            ConvNormAct(w8, w4),
        )
        self.block_d = nn.Sequential(ConvNormAct(w4, w4), ConvNormAct(w4, w4))
        self.block_e = nn.Sequential(
            ConvNormAct(w4, w2),
            ConvNormAct(w2, w2),
            ConvNormAct(w2, w1, kernel=7, pad=3),
        )
        self.out_layer = nn.Sequential(nn.Conv2d(w1, out_channels, 1, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.block_a(x)
        y = self.block_c(self.block_b(half))
        y = F.interpolate(y, size=half.shape[-2:], mode="bilinear", align_corners=True)
        y = self.block_d(y)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return self.out_layer(self.block_e(y))
