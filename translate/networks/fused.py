"""A 3x3 convolution, its leaky ReLU or a residual add as one oneDNN kernel on the CPU, for
inference (:func:`conv`).

The plain way runs a pass over memory for each of the convolution, the residual add and
the activation; at the local generator's widths (16 to 64 channels) such passes, not the
arithmetic, took much of the time in bf16. The reflection padding stays its own pass (the
kernel pads with zeros), so the result equals the plain one to rounding. Measured with the
shipped models at 1 MP (Intel Xeon with AMX, 2 threads, bf16, the upsampling by phases in
both; runs one after the other): 0.136 to 0.146 s a picture with the convolutions apart,
0.113 to 0.123 fused.

Used only where it means the same thing: on the CPU, outside autograd (training), without
autocast (whose casts a custom operator does not get), and not while the network is traced
or compiled (an export or torch.compile sees the plain operations, which it fuses itself).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

ENABLED = True   # off: the plain operations everywhere (to compare speeds)


@functools.cache
def kernels():
    """oneDNN's fused convolution operators (unary, binary), or None where this build of
    PyTorch has none or they do not give the plain result on a small probe (the operators
    are PyTorch's internal ones, which torch.compile uses; a change of their signature
    must fall back to the plain operations, not fail)."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        ops = torch.ops.mkldnn._convolution_pointwise
        found = ops.default, ops.binary
        generator = torch.Generator().manual_seed(0)   # the global one is not touched
        layer = torch.nn.utils.skip_init(nn.Conv2d, 4, 4, 3, padding=1,
                                         padding_mode="reflect")
        for p in layer.parameters():
            p.data = torch.randn(p.shape, generator=generator)
        x, residual = (torch.randn(1, 4, 6, 5, generator=generator) for _ in range(2))
        with torch.no_grad():
            want = (F.leaky_relu(layer(x), 0.2), layer(x) + residual)
            got = _run(found, x, layer, 0.2, None), _run(found, x, layer, None, residual)
        if all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want)):
            return found
    except (AttributeError, RuntimeError, TypeError):
        pass
    return None


def applies(x: torch.Tensor, layer: nn.Conv2d) -> bool:
    """Whether :func:`conv` may run ``layer`` on ``x`` fused (module docstring)."""
    return (ENABLED and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16) and layer.weight.dtype == x.dtype
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and layer.kernel_size == (3, 3) and layer.padding == (1, 1)
            and layer.padding_mode == "reflect" and layer.dilation == (1, 1)
            and layer.groups == 1 and min(x.shape[-2:]) >= 2 and kernels() is not None)


def _finish(y: torch.Tensor, residual: torch.Tensor | None, slope: float | None):
    y = y if residual is None else y + residual
    return y if slope is None else F.leaky_relu(y, slope)


def conv(x: torch.Tensor, layer: nn.Conv2d, slope: float | None = None,
         residual: torch.Tensor | None = None) -> torch.Tensor:
    """leaky_relu(layer(x) + residual, slope), (N, C_in, H, W) -> (N, C_out, H', W'); no
    residual or no activation where None. Fused where :func:`applies`, else the plain
    operations."""
    if not applies(x, layer):
        return _finish(layer(x), residual, slope)
    return _run(kernels(), x, layer, slope, residual)


def _run(found, x: torch.Tensor, layer: nn.Conv2d, slope: float | None,
         residual: torch.Tensor | None) -> torch.Tensor:
    unary, binary = found
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    args = ([0, 0], list(layer.stride), [1, 1], 1)
    if residual is None:
        leaky = slope is not None
        return unary(x, layer.weight, layer.bias, *args, "leaky_relu" if leaky else "none",
                     [slope] if leaky else [], "")
    # oneDNN fuses an add with ReLU only, not a leaky one
    y = binary(x, residual.contiguous(memory_format=_layout(x)), layer.weight, layer.bias,
               *args, "add", 1.0, None, [], None)
    return y if slope is None else F.leaky_relu_(y, slope)


def _layout(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format

