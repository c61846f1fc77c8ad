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

from translate.networks.layers import instance_norm, is_channels_last

NORM_STATS = ("running", "image")


def _image_stats_forward(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    if is_channels_last(x):  # F.instance_norm would return NCHW
        return instance_norm(x, self.weight, self.bias, self.eps)
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


# --- Statistics shared across tiles ---------------------------------------------------------
#
# Layers that normalise each image by its own statistics (instance norm, batch norm in 'image'
# mode) would see different statistics in every tile of a large image, and the tiles would
# disagree in brightness and colour. To translate an image in tiles, the statistics are first
# recorded in one pass over the whole image (downscaled if it is very large), then every tile
# is normalised with those same numbers.

def _per_image_layers(net: nn.Module) -> list[nn.Module]:
    out = []
    for m in net.modules():
        if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats:
            out.append(m)
        elif isinstance(m, nn.BatchNorm2d) and "forward" in m.__dict__:  # 'image' mode
            out.append(m)
        elif isinstance(m, nn.GroupNorm):
            out.append(m)
    return out


def _input_statistics(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance that ``m`` normalises ``x`` (N, C, H, W) with, broadcast to
    (N, C, 1, 1): per channel, or per group of channels for GroupNorm."""
    if isinstance(m, nn.GroupNorm):
        n, c = x.shape[:2]
        var, mean = torch.var_mean(x.reshape(n, m.num_groups, -1), dim=2, keepdim=True,
                                   correction=0)
        per = c // m.num_groups
        return (mean.repeat_interleave(per, 1)[..., None],
                var.repeat_interleave(per, 1)[..., None])
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, var


def _normalise(m: nn.Module, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor):
    y = (x - mean) * torch.rsqrt(var + m.eps)
    if getattr(m, "weight", None) is not None:
        y = y * m.weight.view(1, -1, 1, 1) + m.bias.view(1, -1, 1, 1)
    return y


@contextmanager
def recorded_statistics(net: nn.Module):
    """Run ``net`` normally while recording, for each per-image normalisation layer, the
    per-channel mean and (biased) variance of its input, shape (N, C, 1, 1). Yields the dict
    that fills up, keyed by layer."""
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
    layers = _per_image_layers(net)

    def make(m):
        def forward(x):
            mean, var = _input_statistics(m, x.float())
            stats[m] = (mean, var)
            return _normalise(m, x.float(), mean, var).to(x.dtype)
        return forward

    saved = {m: m.__dict__.get("forward") for m in layers}
    try:
        for m in layers:
            m.forward = make(m)
        yield stats
    finally:
        _restore(saved)


@contextmanager
def fixed_statistics(net: nn.Module, stats: dict):
    """Normalise every per-image layer of ``net`` with recorded statistics (from
    :func:`recorded_statistics` on one image) instead of its input's own, for any batch of
    tiles."""
    layers = _per_image_layers(net)
    missing = [m for m in layers if m not in stats]
    if missing:
        raise ValueError(f"{len(missing)} normalisation layer(s) have no recorded statistics")

    def make(m):
        mean, var = stats[m]

        def forward(x):
            return _normalise(m, x.float(), mean[:1], var[:1]).to(x.dtype)
        return forward

    saved = {m: m.__dict__.get("forward") for m in layers}
    try:
        for m in layers:
            m.forward = make(m)
        yield
    finally:
        _restore(saved)


def _restore(saved: dict) -> None:
    for m, forward in saved.items():
        if forward is None:
            m.__dict__.pop("forward", None)
        else:
            m.forward = forward


def needs_shared_statistics(net: nn.Module) -> bool:
    """Whether tiles of one image would be normalised differently without shared stats."""
    return bool(_per_image_layers(net))
