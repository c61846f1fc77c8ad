"""Building blocks shared by the networks: normalisation choice and weight initialisation."""

from __future__ import annotations

from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation layer for ``kind``.

    ``batch``: BatchNorm2d with affine parameters and running statistics (pix2pix).
    ``instance``: InstanceNorm2d without affine parameters or running statistics (CycleGAN).
    ``none``: identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; choose one of {', '.join(NORMS)}")


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
