"""How batch-norm layers normalise at inference time.

``running``: the running mean and variance collected during training (``eval()`` mode).
``image``: each image's own mean and variance, per channel, with the layer's learnt scale and
shift. For a network trained with batch size 1 this is exactly what it saw during training,
and it is what the pix2pix paper prescribes at test time. Unlike batch statistics it does not
mix images of one batch, so batching never changes a result.
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

NORM_STATS = ("running", "image")


def _image_stats_forward(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True,
                           eps=self.eps)


def set_norm_stats(net: nn.Module, norm_stats: str) -> nn.Module:
    """Make every BatchNorm2d of ``net`` use ``norm_stats`` ('running' or 'image')."""
    if norm_stats not in NORM_STATS:
        raise ValueError(f"norm_stats must be one of {', '.join(NORM_STATS)}")
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            if norm_stats == "image":
                m.forward = types.MethodType(_image_stats_forward, m)
            elif "forward" in m.__dict__:
                del m.forward
    return net


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@contextmanager
def inference_mode(net: nn.Module, norm_stats: str = "running"):
    """Temporarily put ``net`` in inference mode: dropout off, batch norm per ``norm_stats``,
    no gradients; restores the training state afterwards."""
    was_training = net.training
    net.eval()
    set_norm_stats(net, norm_stats)
    try:
        with torch.no_grad():
            yield net
    finally:
        set_norm_stats(net, "running")
        net.train(was_training)
