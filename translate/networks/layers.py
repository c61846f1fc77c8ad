"""Building blocks shared by the networks: normalisation choice and weight initialisation."""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "none")
UPSAMPLES = ("transpose", "resize")


def upsample_layer(kind: str, channels_in: int, channels_out: int, kernel: int, bias: bool
                   ) -> nn.Module:
    """A x2 upsampling convolution, (N, channels_in, H, W) -> (N, channels_out, 2H, 2W).

    ``transpose``: a stride-2 transposed convolution of ``kernel`` (4 with padding 1, or 3
    with output padding 1), as the papers' networks have it. ``resize``: nearest-neighbour
    x2 then a 3x3 convolution (Odena et al. 2016, "Deconvolution and Checkerboard
    Artifacts"): every output pixel gets the same number of weights, so uneven overlap can
    draw no periodic pattern."""
    if kind == "transpose":
        extra = {"padding": 1} if kernel == 4 else {"padding": 1, "output_padding": 1}
        return nn.ConvTranspose2d(channels_in, channels_out, kernel, stride=2, bias=bias,
                                  **extra)
    if kind == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=bias,
                                       padding_mode="reflect"))
    raise ValueError(f"unknown upsample '{kind}'; choose one of {', '.join(UPSAMPLES)}")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation layer for ``kind``.

    ``batch``: BatchNorm2d with affine parameters and running statistics (pix2pix).
    ``instance``: InstanceNorm2d without affine parameters or running statistics (CycleGAN).
    ``none``: identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose one of {', '.join(NORMS)}")


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D tensor is laid out NHWC (and not also plain NCHW-contiguous)."""
    return (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous())


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each image's channels of (N, C, H, W) by their own mean and (biased)
    variance, then scale and shift per channel when ``weight``/``bias`` (C,) are given.

    The same numbers as ``F.instance_norm`` (statistics in fp32 for any input dtype), but
    made of reductions and elementwise operations, which keep the input's memory layout:
    ``F.instance_norm`` returns NCHW even for a channels-last input. Output dtype = input's.
    """
    xf = x.float()
    var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
    y = (xf - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.float().view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.float().view(1, -1, 1, 1)
    return y.to(x.dtype)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps channels-last inputs channels-last (see
    :func:`instance_norm`); NCHW inputs take the built-in path unchanged. Same parameters
    and state-dict names as the built-in layer, of which it is a subclass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_channels_last(x) and (self.training or not self.track_running_stats):
            return instance_norm(x, self.weight, self.bias, self.eps)
        return super().forward(x)


def conv_bias(norm: str) -> bool:
    """Convolutions followed by batch norm need no bias (the norm's shift replaces it)."""
    return norm != "batch"


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise as the papers do: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") \
                else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return net


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Wrap every convolution of ``net`` in spectral normalisation (Miyato et al. 2018)."""
    for m in list(net.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.utils.parametrizations.spectral_norm(m)
    return net
