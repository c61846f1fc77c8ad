"""translate/networks/fused.py: a convolution with reflection padding, its leaky ReLU and a
residual add as one oneDNN kernel at inference, equal to the plain operations; and the
plain operations wherever the fused kernel would mean something else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import translate.networks.fused as fused

pytestmark = pytest.mark.skipif(fused.kernels() is None,
                                reason="this PyTorch build has no oneDNN fused convolution")


def _layer(stride: int, dtype: torch.dtype, channels_last: bool) -> nn.Conv2d:
    layer = nn.Conv2d(8, 6, 3, stride=stride, padding=1, padding_mode="reflect").to(dtype)
    return layer.to(memory_format=torch.channels_last) if channels_last else layer


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_equals_the_plain_operations(stride, dtype, channels_last, monkeypatch):
    torch.manual_seed(0)
    layer = _layer(stride, dtype, channels_last)
    x = torch.randn(2, 8, 10, 13, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    residual = torch.randn(2, 6, 10 // stride, -(-13 // stride), dtype=dtype)
    bf16 = dtype == torch.bfloat16   # rounding: two of its steps (2^-7 relative), plus some
    for slope in (None, 0.2):
        for extra in (None, residual):
            with torch.no_grad():
                assert fused.applies(x, layer)
                got = fused.conv(x, layer, slope, extra)
                monkeypatch.setattr(fused, "ENABLED", False)
                want = fused.conv(x, layer, slope, extra)
                monkeypatch.setattr(fused, "ENABLED", True)
            assert got.shape == want.shape and got.dtype == want.dtype
            error = (got.float() - want.float()).abs()
            relative, floor = (2 ** -6, 0.02) if bf16 else (1e-5, 1e-5)  # fp32: summation order
            assert (error <= relative * want.float().abs() + floor).all()
            if channels_last:   # the layout the next layer expects
                assert got.is_contiguous(memory_format=torch.channels_last)


def test_the_probe_of_the_kernels_leaves_the_random_state_alone():
    fused.kernels.cache_clear()
    state = torch.get_rng_state()
    assert fused.kernels() is not None
    assert torch.equal(torch.get_rng_state(), state)


def test_fused_only_where_it_means_the_same():
    layer = _layer(1, torch.float32, False)
    x = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        assert fused.applies(x, layer)
        assert not fused.applies(x.bfloat16(), layer)     # weights and input disagree
        assert not fused.applies(x[..., :1, :], layer)    # too small for its padding
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fused.applies(x, layer)            # autocast would not cast it
        zero_padded = nn.Conv2d(8, 6, 3, padding=1)
        assert not fused.applies(x, zero_padded)
    assert not fused.applies(x, layer)                    # autograd: training uses plain
    with torch.no_grad():
        traced = torch.jit.trace(_Wrapped(layer).eval(), x)
    graph = str(traced.inlined_graph)
    assert "aten::_convolution" in graph                 # exports see the plain operations
    assert "mkldnn" not in graph


class _Wrapped(nn.Module):
    def __init__(self, layer: nn.Conv2d):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused.conv(x, self.layer, 0.2)
