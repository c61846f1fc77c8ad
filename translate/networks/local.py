"""A small generator that behaves the same at every image size.

Every output pixel depends only on a fixed window of the input (about 100 x 100 pixels):
there is no normalisation over the image (instance norm's statistics of a 24-megapixel
photo are not those of a 256-pixel training crop), no transposed convolution (whose uneven
overlap paints a checkerboard) and no deep bottleneck (whose 2^depth grid shows as a
lattice on images far larger than the crops). Upsampling is bilinear followed by a 3x3
convolution (outside training computed as one convolution per output phase, :func:`_up_conv`).
The network predicts a change to its input, so an untrained one returns the input (through
the output filter, where there is one; with the tone stage, half stepped), and the result
is clamped to [-1, 1].

Layout, with ``ngf`` = C and ``depth`` residual blocks::

    x -> conv3 C -> conv3/2 2C -> conv3/2 4C -> depth x [conv3 4C, conv3 4C, + skip]
      -> up2, conv3 2C (+ the 2C features) -> up2, conv3 C (+ the C features) -> conv3 out
    y = clamp(x + that, -1, 1)
    y = guided(luma(y), y)             with ``smooth`` = r > 0
    L = L + a * (cel(L) - L)           with ``tones`` = T > 0 (a = sigmoid of a 4th channel)

The optional output stage flattens by construction: a self-guided filter (He et al. 2013,
kornia.filters.guided_blur; a (2r+1)-pixel window, eps SMOOTH_EPS, guided by the output's
own luma) averages away variations weaker than about sqrt(eps) within each window and keeps
stronger edges, as White-box Cartoonization (Wang and Yu 2020) filters its output at
inference. It runs in fp32 whatever the network's precision (it subtracts squares).

The optional tone stage flattens shading by construction, as cel shading does: the output's
CIELAB lightness L (in [0, 1]) is drawn to ``tones`` steps, cel(L) = K L + (1 - K) q(L),
where q rounds to the nearest multiple of 1/T through a smoothstep transition TONE_SOFTNESS
of a step wide and K = TONE_KEEP keeps a little of the shading; chroma and hue stay. The
network predicts, in a fourth output channel, how much of the step to apply at each pixel
(a in (0, 1)), so it can keep a sky's smooth gradient or a face's soft shading. Within a
step a change of L moves the output by only K, so in training the gradient also passes the
step as if it were not there (straight-through, as :func:`_clamp`), lest a pixel on the
wrong step never learn to leave it. fp32, like the filter.

At ngf 16 and depth 4 it has 0.34 M parameters and costs about 31 kMAC per pixel. Because
it is local (:meth:`LocalGenerator.receptive_margin` pixels each way), tiles equal the
whole-image result (:mod:`translate.infer.tiling` widens the overlap to suit).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab
from kornia.filters import guided_blur
from torch import nn

from translate.networks import fused

SMOOTH_EPS = 1e-2   # the guided filter's eps, in squared [-1, 1] units (std 0.1: 13 levels)
LUMA = (0.299, 0.587, 0.114)
TONE_KEEP = 0.1       # share of the lightness kept beside its steps ...
TONE_SOFTNESS = 0.2   # ... and the width of a step's transition, as a share of one step


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, padding_mode="reflect")


def _clamp(y: torch.Tensor, training: bool) -> torch.Tensor:
    """y clamped to [-1, 1]. In training the gradient passes the clamp as if it were not
    there (straight-through): a plain clamp has no gradient where it cuts, so a generator
    pushed past the range everywhere (a wider one did so after 800 iterations at lr 2e-4)
    never came back, its gradient 0 for good; the L1 term now pulls it back."""
    clamped = torch.clamp(y, -1.0, 1.0)
    return y + (clamped - y).detach() if training else clamped


PHASE_UPSAMPLE = True   # _up_conv's fast path (off: the plain one, to compare speeds)
# Bilinear 2x upsampling (align_corners=False) seen through a 3x3 convolution: for output
# phase p the rows 2i+p-1, 2i+p and 2i+p+1 of the upsampled map (what the kernel reads) as
# weights of the low-resolution rows i-1, i and i+1 (the same for columns).
_PHASE_TAPS = (((0.75, 0.25, 0.0), (0.25, 0.75, 0.0), (0.0, 0.75, 0.25)),
               ((0.25, 0.75, 0.0), (0.0, 0.75, 0.25), (0.0, 0.25, 0.75)))


def _up_conv(h: torch.Tensor, conv: nn.Conv2d, training: bool) -> torch.Tensor:
    """conv(bilinear 2x upsampling of h): (N, C_in, H, W) -> (N, C_out, 2H, 2W).

    Outside training it runs as one 3x3 convolution at the low resolution with 4 C_out
    channels (one per output phase; kernels k_pq = T_p^T w T_q, T_p = _PHASE_TAPS[p]) and a
    pixel shuffle: the same multiply-adds without the upsampled map, 2 to 3 times faster in
    bf16 on a CPU. The 1-pixel ring of the output, where the convolution's reflection
    padding meets the upsampling's edge clamp, is computed the plain way from 2-row strips,
    so the result equals the plain one to rounding. Traced or compiled (an ONNX export,
    torch.compile) it is the plain operations: OpenVINO ran the plain graph up to 1.3x
    faster than this one, whose ring writes export as scatters."""
    up = lambda t: conv(F.interpolate(t, scale_factor=2.0, mode="bilinear",  # noqa: E731
                                      align_corners=False))
    if (training or not PHASE_UPSAMPLE or min(h.shape[-2:]) < 2 or torch.jit.is_tracing()
            or torch.compiler.is_compiling()):
        return up(h)
    taps = conv.weight.new_tensor(_PHASE_TAPS)
    kernel = torch.einsum("pau,oiab,qbv->opqiuv", taps, conv.weight, taps)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(4)
    y = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="replicate"),
                 kernel.reshape(-1, *conv.weight.shape[1:]), bias)
    y = F.pixel_shuffle(y, 2)
    y[..., :1, :] = up(h[..., :2, :])[..., :1, :]
    y[..., -1:, :] = up(h[..., -2:, :])[..., -1:, :]
    y[..., :, :1] = up(h[..., :, :2])[..., :, :1]
    y[..., :, -1:] = up(h[..., :, -2:])[..., :, -1:]
    return y


class _Block(nn.Module):
    """x + conv3(act(conv3(x))), (N, C, H, W) kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused.conv(fused.conv(x, self.conv1, 0.2), self.conv2, residual=x)


class LocalGenerator(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]; H and W
    multiples of 4 (``stride``). ``norm`` must be 'none' and ``dropout`` False (the
    arguments exist so that every generator takes the same configuration). ``smooth`` > 0:
    the self-guided output filter of that radius; ``tones`` > 0 (RGB out only): the tone
    stage of that many lightness steps (module docstring)."""

    own_init = True   # build_generator keeps this initialisation

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 16,
                 depth: int | None = 4, norm: str = "none", dropout: bool = False,
                 smooth: int = 0, tones: int = 0):
        super().__init__()
        if norm != "none" or dropout:
            raise ValueError("the local generator has no normalisation or dropout layers "
                             "(generator.norm: none, generator.dropout: false)")
        if not 0 <= smooth <= 16:
            raise ValueError(f"the output filter's radius (smooth) must be 0 to 16; got {smooth}")
        if not 0 <= tones <= 64:
            raise ValueError(f"the tone stage's steps (tones) must be 0 to 64; got {tones}")
        if tones and out_channels != 3:
            raise ValueError(f"the tone stage works on RGB output (3 channels); got "
                             f"{out_channels}")
        self.smooth, self.tones = smooth, tones
        depth = 4 if depth is None else depth
        self.stride = 4
        self.in_channels, self.out_channels = in_channels, out_channels
        self.head = _conv(in_channels, ngf)
        self.down1 = _conv(ngf, 2 * ngf, stride=2)
        self.down2 = _conv(2 * ngf, 4 * ngf, stride=2)
        self.blocks = nn.ModuleList(_Block(4 * ngf) for _ in range(depth))
        self.up2 = _conv(4 * ngf, 2 * ngf)
        self.up1 = _conv(2 * ngf, ngf)
        self.tail = _conv(ngf, out_channels + (1 if tones else 0))
        if not self.tail.weight.is_meta:  # built to be counted: random values would cost
            self.initialise()             # an import of torch's compiler (about 1 s)

    def initialise(self) -> None:
        """He-normal convolutions, zero biases; residual branches start small and the tail
        at zero, so the network starts as the identity mapping."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        for block in self.blocks:
            block.conv2.weight.data.mul_(0.1)
        nn.init.zeros_(self.tail.weight)

    @staticmethod
    def receptive_margin(depth: int | None = 4, smooth: int = 0, **_) -> int:
        """Pixels an output pixel sees on each side of it, rounded up: 12 for the encoder
        and decoder, 8 for each residual block (two 3x3 convolutions at quarter size), and
        twice the output filter's radius (its two rounds of window means)."""
        return 12 + 8 * (4 if depth is None else depth) + 4 + 2 * smooth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        f0 = fused.conv(x, self.head, 0.2)
        f1 = fused.conv(f0, self.down1, 0.2)
        h = fused.conv(f1, self.down2, 0.2)
        for block in self.blocks:
            h = block(h)
        h = act(_up_conv(h, self.up2, self.training) + f1)
        h = act(_up_conv(h, self.up1, self.training) + f0)
        delta = fused.conv(h, self.tail)
        if self.tones:
            delta, mix = delta[:, :-1], delta[:, -1:]
        if self.in_channels == self.out_channels:
            y = _clamp(x + delta, self.training)
        else:
            y = torch.tanh(delta)
        y = self.flatten(y) if self.smooth else y
        return self.tone(y, mix) if self.tones else y

    def flatten(self, y: torch.Tensor) -> torch.Tensor:
        """The self-guided output filter, in fp32, (N, C, H, W) kept; the guide is the luma
        for 3 channels, else the channels' mean."""
        with torch.autocast(y.device.type, enabled=False):
            out = y.float()
            if out.shape[1] == 3:
                weights = out.new_tensor(LUMA).view(1, 3, 1, 1)
                guide = (out * weights).sum(1, keepdim=True)
            else:
                guide = out.mean(1, keepdim=True)
            out = guided_blur(guide, out, 2 * self.smooth + 1, SMOOTH_EPS)
        return out.clamp(-1.0, 1.0).to(y.dtype)

    def tone(self, y: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """The tone stage (module docstring), in fp32: y (N, 3, H, W) in [-1, 1] and the
        logits ``mix`` (N, 1, H, W) of how much of the step to apply -> (N, 3, H, W)."""
        with torch.autocast(y.device.type, enabled=False):
            lab = rgb_to_lab((y.float() + 1.0) / 2.0)
            light = (lab[:, :1] / 100.0).clamp(0.0, 1.0)
            scaled = light * self.tones
            step = torch.floor(scaled).detach()
            edge = ((scaled - step - 0.5) / TONE_SOFTNESS + 0.5).clamp(0.0, 1.0)
            stepped = (step + edge * edge * (3.0 - 2.0 * edge)) / self.tones
            cel = TONE_KEEP * light + (1.0 - TONE_KEEP) * stepped
            amount = torch.sigmoid(mix.float())
            toned = light + amount * (cel - light)
            if self.training:   # straight-through: the step passes the gradient of light
                toned = toned + amount * (1.0 - TONE_KEEP) * (light - light.detach())
            out = lab_to_rgb(torch.cat([100.0 * toned, lab[:, 1:]], 1)) * 2.0 - 1.0
        return out.to(y.dtype)
