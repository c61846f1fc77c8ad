"""Network registry: explicit dicts from config names to classes.

Adding an architecture is one file and one line here. A generator is rebuilt from an exported
file by ``GENERATORS[arch](**kwargs)``, so constructor arguments are the whole description.
"""

from __future__ import annotations

from torch import nn

from translate.networks.animegan import AnimeGANv2Generator
from translate.networks.layers import add_spectral_norm, init_weights
from translate.networks.local import LocalGenerator
from translate.networks.patchgan import PatchDiscriminator, PixelDiscriminator
from translate.networks.resnet import ResNetGenerator
from translate.networks.unet import UNetGenerator

GENERATORS: dict[str, type[nn.Module]] = {
    "unet": UNetGenerator,
    "resnet": ResNetGenerator,
    "animeganv2": AnimeGANv2Generator,
    "local": LocalGenerator,
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patch": PatchDiscriminator,
    "pixel": PixelDiscriminator,
}


def generator_kwargs(cfg, in_channels: int = 3, out_channels: int = 3) -> dict:
    """Constructor arguments of the generator a :class:`GeneratorConfig` describes."""
    return {"in_channels": in_channels, "out_channels": out_channels, "ngf": cfg.ngf,
            "depth": cfg.depth, "norm": cfg.norm, "dropout": cfg.dropout}


def discriminator_kwargs(cfg, in_channels: int) -> dict:
    """Constructor arguments of the discriminator a :class:`DiscriminatorConfig` describes."""
    kwargs = {"in_channels": in_channels, "ndf": cfg.ndf, "norm": cfg.norm}
    if cfg.arch == "patch":
        kwargs["layers"] = cfg.layers
    return kwargs


def build_generator(arch: str, kwargs: dict, init: bool = True) -> nn.Module:
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator '{arch}'; known: {', '.join(GENERATORS)}")
    net = GENERATORS[arch](**kwargs)
    return init_weights(net) if init and not getattr(net, "own_init", False) else net


def build_discriminator(arch: str, kwargs: dict, spectral_norm: bool = False) -> nn.Module:
    if arch not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator '{arch}'; known: {', '.join(DISCRIMINATORS)}")
    net = init_weights(DISCRIMINATORS[arch](**kwargs))
    return add_spectral_norm(net) if spectral_norm else net


def receptive_margin(arch: str, kwargs: dict) -> int:
    """Pixels an output pixel of a local generator sees on each side (0 where the output
    depends on the whole image, or the architecture does not say)."""
    cls = GENERATORS.get(arch)
    margin = getattr(cls, "receptive_margin", None)
    return int(margin(**kwargs)) if margin else 0


def stride_of(net: nn.Module) -> int:
    """Input sizes must be multiples of this for the generator to map H x W to H x W."""
    return int(getattr(net, "stride", 1))
