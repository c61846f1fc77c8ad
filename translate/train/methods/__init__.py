"""Training methods: an explicit registry from ``model`` names to classes."""

from translate.train.methods.base import Export, Method
from translate.train.methods.cut import CUT
from translate.train.methods.cyclegan import CycleGAN
from translate.train.methods.dclgan import DCLGAN
from translate.train.methods.pix2pix import Pix2Pix

METHODS: dict[str, type[Method]] = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "cut": CUT,
    "dclgan": DCLGAN,
}


def build_method(config) -> Method:
    return METHODS[config.model](config)


__all__ = ["METHODS", "Export", "Method", "build_method"]
