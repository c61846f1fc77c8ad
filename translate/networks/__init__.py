"""Network registry: explicit dicts from config names to classes.

Adding an architecture is one file and one line here. A generator is rebuilt from an exported
file by ``GENERATORS[arch](**kwargs)``, so constructor arguments are the whole description.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from translate.networks.animegan import AnimeGANv2Generator
from translate.networks.layers import add_spectral_norm, init_weights
from translate.networks.local import LocalGenerator
from translate.networks.patchgan import (MultiScaleDiscriminator, PatchDiscriminator,
                                         PixelDiscriminator)
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
    kwargs = {"in_channels": in_channels, "out_channels": out_channels, "ngf": cfg.ngf,
              "depth": cfg.depth, "norm": cfg.norm, "dropout": cfg.dropout}
    if getattr(cfg, "upsample", "transpose") != "transpose":  # files of the paper's layout
        kwargs["upsample"] = cfg.upsample                      # keep their description
    if getattr(cfg, "smooth", 0):
        kwargs["smooth"] = cfg.smooth
    if getattr(cfg, "tones", 0):
        kwargs["tones"] = cfg.tones
    return kwargs


def discriminator_kwargs(cfg, in_channels: int) -> dict:
    """Constructor arguments of the discriminator a :class:`DiscriminatorConfig` describes."""
    kwargs = {"in_channels": in_channels, "ndf": cfg.ndf, "norm": cfg.norm}
    if cfg.arch == "patch":
        kwargs["layers"] = cfg.layers
    return kwargs


# Bounds on what a file's description may ask to build (the largest generator shipped or
# trained by default has 54 M parameters and a stride of 256).
MAX_PARAMETERS = 250_000_000  # 1 GB of fp32 weights
MAX_STRIDE = 1024
MAX_INT_ARGUMENT = 1024


class ArchitectureError(ValueError):
    """Constructor arguments that are not valid, or build a network beyond the bounds."""


def check_generator(arch: str, kwargs) -> None:
    """Refuse, before any memory is allocated, arguments that ``GENERATORS[arch]`` does not
    take, values of the wrong type or out of range, and networks with more than
    ``MAX_PARAMETERS`` parameters or a stride above ``MAX_STRIDE`` (counted on the meta
    device, which holds no data). Raises :class:`ArchitectureError`."""
    if arch not in GENERATORS:
        raise ArchitectureError(f"unknown generator '{arch}'; known: {', '.join(GENERATORS)}")
    if not isinstance(kwargs, dict):
        raise ArchitectureError(f"{arch} arguments must be a mapping, not {type(kwargs).__name__}")
    params = inspect.signature(GENERATORS[arch]).parameters
    unknown = sorted(str(k)[:40] for k in kwargs if k not in params)
    if unknown:
        raise ArchitectureError(f"{arch} takes no argument(s) {', '.join(unknown)}; it takes "
                                + ", ".join(params))
    for name, value in kwargs.items():
        if value is None and "None" in str(params[name].annotation):
            continue  # an optional argument left unset
        _check_argument(arch, name, value, params[name].default)
    with torch.device("meta"):
        try:
            net = GENERATORS[arch](**kwargs)
        except (ValueError, TypeError, KeyError, RuntimeError) as err:
            raise ArchitectureError(f"{arch}({_short(kwargs)}) cannot be built: "
                                    f"{str(err)[:200]}") from None
    count = sum(p.numel() for p in net.parameters())
    if count > MAX_PARAMETERS:
        raise ArchitectureError(f"{arch}({_short(kwargs)}) has {count / 1e6:,.0f} M parameters, "
                                f"above the limit of {MAX_PARAMETERS / 1e6:.0f} M")
    if stride_of(net) > MAX_STRIDE:
        raise ArchitectureError(f"{arch}({_short(kwargs)}) needs sizes in multiples of "
                                f"{stride_of(net)} px, above the limit of {MAX_STRIDE}")


def _check_argument(arch: str, name: str, value, default) -> None:
    """``value`` must have the type of the parameter's default (an int where the default is
    None); ints lie in 0..MAX_INT_ARGUMENT."""
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int) or default is None:
        ok = (isinstance(value, int) and not isinstance(value, bool)
              and 0 <= value <= MAX_INT_ARGUMENT)
        want = f"a whole number from 0 to {MAX_INT_ARGUMENT}"
    elif isinstance(default, str):
        ok, want = isinstance(value, str) and len(value) <= 64, "a short string"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    if not ok:
        raise ArchitectureError(f"{arch} argument {name} = {repr(value)[:40]} is not {want}")


def _short(kwargs: dict) -> str:
    return ", ".join(f"{k}={repr(v)[:20]}" for k, v in kwargs.items())


def build_generator(arch: str, kwargs: dict, init: bool = True) -> nn.Module:
    """``GENERATORS[arch](**kwargs)`` once :func:`check_generator` accepts the arguments;
    weights initialised unless ``init`` is False (they are loaded next)."""
    check_generator(arch, kwargs)
    net = GENERATORS[arch](**kwargs)
    return init_weights(net) if init and not getattr(net, "own_init", False) else net


def build_discriminator(arch: str, kwargs: dict, spectral_norm: bool = False,
                        scales: int = 1) -> nn.Module:
    """``DISCRIMINATORS[arch](**kwargs)``, initialised; with ``scales`` > 1, that many of
    them at successively halved resolutions (:class:`MultiScaleDiscriminator`)."""
    if arch not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator '{arch}'; known: {', '.join(DISCRIMINATORS)}")

    def make() -> nn.Module:
        net = init_weights(DISCRIMINATORS[arch](**kwargs))
        return add_spectral_norm(net) if spectral_norm else net
    return make() if scales <= 1 else MultiScaleDiscriminator(make, scales)


def configured_discriminator(cfg, in_channels: int) -> nn.Module:
    """The discriminator a :class:`DiscriminatorConfig` describes, for ``in_channels``."""
    return build_discriminator(cfg.arch, discriminator_kwargs(cfg, in_channels),
                               cfg.spectral_norm, cfg.scales)


def receptive_margin(arch: str, kwargs: dict) -> int:
    """Pixels an output pixel of a local generator sees on each side (0 where the output
    depends on the whole image, or the architecture does not say)."""
    cls = GENERATORS.get(arch)
    margin = getattr(cls, "receptive_margin", None)
    return int(margin(**kwargs)) if margin else 0


def stride_of(net: nn.Module) -> int:
    """Input sizes must be multiples of this for the generator to map H x W to H x W."""
    return int(getattr(net, "stride", 1))
