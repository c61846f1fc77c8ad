"""Training methods: an explicit registry from ``model`` names to classes."""

from .base import Export, Method
from .cyclegan import CycleGAN
from .pix2pix import Pix2Pix

METHODS: dict[str, type[Method]] = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
}


def build_method(config) -> Method:
    return METHODS[config.model](config)


__all__ = ["METHODS", "Export", "Method", "build_method"]
