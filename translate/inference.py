"""Inference: rebuild a generator from a path and translate images of any size.

This module never imports training code: an exported generator file, or a run folder, is
enough. ``Translator.from_checkpoint(path)`` accepts

- an exported generator (``*.safetensors``, see :mod:`translate.checkpoint`);
- a run folder: its exported generator for the requested direction, or, when the run has
  not finished, the generator inside its latest training checkpoint;
- a training checkpoint file (``checkpoints/latest.pt``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import (CheckpointError, choose_direction, generator_from_state,
                         load_generator, load_state)
from .images import to_channels, to_tensor, to_uint8
from .networks import stride_of
from .networks.norm_stats import has_batch_norm, set_norm_stats

DIRECTIONS = ("a2b", "b2a")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def reflect_pad(x: torch.Tensor, bottom: int, right: int) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom and right by mirroring, by any amount: the mirroring
    repeats while the pad exceeds the image; a side of one pixel is repeated instead."""
    while bottom > 0 or right > 0:
        h, w = x.shape[-2:]
        pb, pr, mode = min(bottom, h - 1), min(right, w - 1), "reflect"
        if (bottom and not pb) or (right and not pr):
            pb, pr, mode = bottom, right, "replicate"
        x = F.pad(x, (0, pr, 0, pb), mode=mode)
        bottom, right = bottom - pb, right - pr
    return x


def _exported_files(folder: Path) -> dict[str, Path]:
    return {p.stem.split("_")[-1]: p for p in sorted(folder.glob("generator_*.safetensors"))
            if p.stem.split("_")[-1] in DIRECTIONS}


def load_any(path: str | Path, direction: str | None = None) -> tuple[nn.Module, dict]:
    """(generator, info) from an exported file, a run folder or a training checkpoint."""
    path = Path(path)
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if path.is_dir():
        files = _exported_files(path)
        if files:
            return load_any(files[choose_direction(direction, sorted(files), path)], direction)
        latest = path / "checkpoints" / "latest.pt"
        if latest.is_file():
            return generator_from_state(load_state(latest), direction, latest)
        raise CheckpointError(f"{path} holds neither an exported generator "
                              "(generator_*.safetensors) nor checkpoints/latest.pt")
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        net, info = load_generator(path)
        if direction is not None and info.get("direction") != direction:
            raise CheckpointError(f"{path} maps {info.get('direction')}, not {direction}")
        return net, info
    if path.suffix == ".pt":
        return generator_from_state(load_state(path), direction, path)
    raise CheckpointError(f"{path}: expected a .safetensors export, a training checkpoint "
                          "(.pt) or a run folder")


class Translator:
    """A generator ready to translate images of any size.

    ``translator(x)``: (N, C, H, W) in [-1, 1] -> (N, C, H, W) in [-1, 1]. Each image is
    padded by reflection to the network's stride, translated and cropped back, so the output
    always has the input's size.
    """

    def __init__(self, net: nn.Module, info: dict, device: torch.device,
                 norm_stats: str | None = None):
        self.info = info
        self.device = device
        self.stride = int(info.get("stride") or stride_of(net))
        self.norm_stats = norm_stats or info.get("norm_stats", "running")
        self.net = set_norm_stats(net.to(device).eval(), self.norm_stats) \
            if has_batch_norm(net) else net.to(device).eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, direction: str | None = None,
                        device: str = "auto", norm_stats: str | None = None) -> "Translator":
        net, info = load_any(path, direction)
        return cls(net, info, pick_device(device), norm_stats)

    @property
    def direction(self) -> str:
        return self.info.get("direction", "a2b")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        x = reflect_pad(x.to(self.device, torch.float32), ph, pw)
        return self.net(x)[..., :h, :w].float()

    @property
    def in_channels(self) -> int:
        return int(self.info.get("kwargs", {}).get("in_channels", 3))

    def translate_array(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) -> uint8 (H, W, C): C = 3 (RGB) or 1 (gray) as the
        generator's output. A grayscale generator gets the image's luma."""
        return to_uint8(self(to_tensor(to_channels(rgb, self.in_channels))[None])[0])

    def describe(self) -> str:
        kw = json.dumps(self.info.get("kwargs", {}), sort_keys=True)
        return (f"{self.info.get('method', '?')} generator {self.info.get('arch')} {kw}, "
                f"{self.direction}, step {self.info.get('step', '?')}, on {self.device}")
