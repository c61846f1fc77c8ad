"""Inference: rebuild a generator from a path and translate images of any size.

This module never imports training code: an exported generator file, or a run folder, is
enough. ``Translator.from_checkpoint(path)`` accepts

- an exported generator (``*.safetensors``, see :mod:`translate.formats.checkpoint`);
- a run folder: its exported generator for the requested direction, or, when the run has
  not finished, the generator inside its latest training checkpoint;
- a training checkpoint file (``checkpoints/latest.pt``);
- a generator state dict saved by another project (``.pth``/``.pt``: the reference pix2pix
  and CycleGAN generators, AnimeGANv2), recognised by :mod:`translate.formats.reference`.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from translate.formats.checkpoint import (CheckpointError, NoSuchDirection, choose_direction,
                                          load_generator)
from translate.formats.state import STATE_FORMAT, TrainingState, generator_from_state
# pick_device is part of this module's API
from translate.devices import PRECISION_CHOICES, PRECISIONS, pick_device  # noqa: F401
from translate.images import to_channels, to_tensor, to_uint8
from translate.formats.reference import load_reference, read_weights
from translate.infer.precision import (PROBE_SIZE, Choice, bf16_input, choose,
                                       difference_levels, model_key, probe_image, to_bf16)
from translate.infer.tiling import translate_tiled
from translate.networks import stride_of
from translate.networks.norm_stats import (fixed_statistics, has_batch_norm,
                                           needs_shared_statistics, recorded_statistics,
                                           set_norm_stats)

DIRECTIONS = ("a2b", "b2a")


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


def padded_size(n: int, stride: int, minimum: int = 32) -> int:
    """The size a side of ``n`` pixels is padded to: a multiple of ``stride``, and at least
    ``minimum`` so that normalisation layers deep inside never see a 1 x 1 map."""
    return max(-(-n // stride), -(-minimum // stride)) * stride


def _exported_files(folder: Path) -> dict[str, Path]:
    return {p.stem.split("_")[-1]: p for p in sorted(folder.glob("generator_*.safetensors"))
            if p.stem.split("_")[-1] in DIRECTIONS}


def _checkpoint_step(path: Path) -> int:
    """The step of a training checkpoint, read without loading its tensors (memory-mapped);
    -1 when unreadable (loading it later says why)."""
    try:
        return TrainingState.read(path, mmap=True).step
    except Exception:  # noqa: BLE001 - any unreadable file
        return -1


def _raw_weights(path: Path, direction: str | None) -> tuple[nn.Module, dict]:
    """The trained (not averaged) weights of a run folder's or a checkpoint's generator."""
    latest = path / "checkpoints" / "latest.pt" if path.is_dir() else path
    if not latest.is_file() or latest.suffix not in (".pt", ".pth"):
        raise CheckpointError(f"{path}: the trained weights (--raw) are kept in training "
                              "checkpoints; name a run folder or a checkpoint")
    state = read_weights(latest)
    if not (isinstance(state, dict) and state.get("format") == STATE_FORMAT):
        raise CheckpointError(f"{latest}: not a training checkpoint, so it has no separate "
                              "trained weights (--raw)")
    return generator_from_state(state, direction, latest, raw=True)


def load_any(path: str | Path, direction: str | None = None, raw: bool = False
             ) -> tuple[nn.Module, dict]:
    """(generator, info) from an exported file, a run folder, a training checkpoint or a
    generator state dict of another project. A training checkpoint gives the moving average
    of the weights when the run kept one (``train.ema``); ``raw``: the trained weights
    themselves (training checkpoints only)."""
    path = Path(path)
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if raw:
        return _raw_weights(path, direction)
    if path.is_dir():  # a run folder: its export, unless training went on after it
        files = _exported_files(path)
        latest = path / "checkpoints" / "latest.pt"
        if files:
            export = files[choose_direction(direction, sorted(files), path)]
            net, info = load_any(export, direction)
            if not latest.is_file() or _checkpoint_step(latest) <= int(info.get("step", -1)):
                return net, info
        if latest.is_file():
            return generator_from_state(TrainingState.read(latest), direction, latest)
        raise CheckpointError(f"{path} holds neither an exported generator "
                              "(generator_*.safetensors) nor checkpoints/latest.pt")
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        net, info = load_generator(path)
        if direction is not None and info.get("direction") != direction:
            raise NoSuchDirection(f"{path} maps {info.get('direction')}, not {direction}")
        return net, info
    if path.suffix in (".pt", ".pth"):
        state = read_weights(path)  # torch.load(weights_only=True): refuses pickled code
        if isinstance(state, dict) and state.get("format") == STATE_FORMAT:
            return generator_from_state(state, direction, path)
        return load_reference(state, path, direction)  # another project's state dict
    raise CheckpointError(f"{path}: expected a .safetensors export, a training checkpoint "
                          "(.pt), a generator state dict (.pth/.pt) or a run folder")




class Engine:
    """A generator behind any runtime, ready to translate images of any size.

    ``engine(x)``: (N, C, H, W) in [-1, 1] -> (N, C_out, H, W) in [-1, 1], float32 on the
    CPU or the engine's device. Each batch is padded by reflection (:func:`padded_size`),
    run, and cropped back, so the output always has the input's size. ``translate_array``
    adds tiling for large images (see :mod:`translate.infer.tiling`). Subclasses implement
    ``run`` on padded batches.
    """

    info: dict
    stride: int

    def run(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def direction(self) -> str:
        return self.info.get("direction", "a2b")

    @property
    def in_channels(self) -> int:
        return int(self.info.get("kwargs", {}).get("in_channels", 3))

    @property
    def tile_margin(self) -> int:
        """How far (pixels) an output pixel sees into its input, for networks that are
        local (0: unbounded, or not known); see :mod:`translate.infer.tiling`."""
        from translate.networks import receptive_margin

        return receptive_margin(self.info.get("arch", ""), self.info.get("kwargs", {}))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = padded_size(h, self.stride) - h, padded_size(w, self.stride) - w
        return self.run(reflect_pad(x.float(), ph, pw))[..., :h, :w].float()

    def translate_array(self, rgb: np.ndarray, tile: int = 0, overlap: int = 64,
                        batch_size: int = 4, progress=None) -> np.ndarray:
        """uint8 RGB (H, W, 3) -> uint8 (H, W, C_out) (RGB, or gray for a 1-channel
        generator). A grayscale generator gets the image's luma. ``tile`` > 0 translates
        in tiles of that size (rounded up to the stride) when the image is larger;
        ``tile`` = 0 tiles automatically above :data:`AUTO_TILE_PIXELS`. ``progress(done,
        total)`` is told of every finished batch of tiles (once, 1 of 1, when untiled)."""
        x = to_channels(rgb, self.in_channels)
        size = self.tile_size(x.shape[0], x.shape[1], tile)
        if size:
            return translate_tiled(self, x, size, overlap, batch_size, progress=progress)
        out = to_uint8(self(to_tensor(x)[None])[0])
        if progress is not None:
            progress(1, 1)
        return out

    def tile_size(self, h: int, w: int, tile: int = 0) -> int:
        """The tile size to use for an h x w image, or 0 to translate it whole."""
        if tile == 0:
            if h * w <= AUTO_TILE_PIXELS:
                return 0
            tile = AUTO_TILE
        tile = -(-tile // self.stride) * self.stride
        return tile if max(h, w) > tile else 0


class Translator(Engine):
    """A PyTorch generator on a device. ``precision``: ``fp32``; ``bf16``: on the CPU the
    weights and activations in bf16, channels-last (:mod:`translate.infer.precision`), on a
    GPU bf16 autocast; ``fp16``: autocast; ``auto``: bf16 on a CPU with bf16 units where the
    model's output stays within tolerance of fp32 on a probe image, else fp32 (``choice``
    says which and why). ``channels_last`` runs it in the NHWC layout (faster convolutions
    on recent GPUs); ``compile`` wraps it in ``torch.compile`` with ``backend``: the first
    image size compiles a graph for that size; the second compiles one whose height and
    width are symbolic (on the CPU torch guards small sizes apart, so there may be one
    more), and later sizes reuse these: a folder of photos of many sizes compiles two or
    three times, not once per size (tests/test_speed_options.py counts them)."""

    def __init__(self, net: nn.Module, info: dict, device: torch.device,
                 norm_stats: str | None = None, precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False,
                 backend: str = "inductor"):
        if precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}")
        self.info = info
        self.device = device
        self.stride = int(info.get("stride") or stride_of(net))
        self.norm_stats = norm_stats or info.get("norm_stats", "running")
        self.net = net.to(device).eval()
        if has_batch_norm(net):
            set_norm_stats(self.net, self.norm_stats)
        self.choice = self._choose(precision)
        self.precision = self.choice.precision
        self.pure_bf16 = self.precision == "bf16" and device.type == "cpu"
        self.channels_last = channels_last or self.pure_bf16
        if self.pure_bf16:
            self.net = to_bf16(self.net)
        elif channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            # dynamic=None: static for the first size, symbolic sizes from the second on
            self.net.compile(backend=backend, dynamic=None)

    def _choose(self, precision: str) -> Choice:
        if precision != "auto":
            return Choice(precision, "asked for")
        key = {**self.info, "norm_stats": self.norm_stats}  # image statistics round otherwise
        return choose(self.device, lambda: model_key(self.net, key), self._bf16_probe)

    @torch.no_grad()
    def _bf16_probe(self) -> tuple[float, float]:
        """(max, mean) levels between this generator's fp32 output on the probe image and
        a bf16 copy's."""
        x = to_tensor(to_channels(probe_image(), self.in_channels))[None].to(self.device)
        pad = padded_size(PROBE_SIZE, self.stride) - PROBE_SIZE
        x = reflect_pad(x, pad, pad)
        reference = self.net(x)
        return difference_levels(reference, to_bf16(copy.deepcopy(self.net))(bf16_input(x)))

    @classmethod
    def from_checkpoint(cls, path: str | Path, direction: str | None = None,
                        device: str = "auto", norm_stats: str | None = None,
                        precision: str = "fp32", channels_last: bool = False,
                        compile: bool = False) -> "Translator":
        net, info = load_any(path, direction)
        return cls(net, info, pick_device(device), norm_stats, precision, channels_last,
                   compile)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """As :meth:`Engine.__call__`; the batch moves to the device first (asynchronously
        from pinned memory), so padding and cropping run there too."""
        return super().__call__(x.to(self.device, non_blocking=True))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.pure_bf16:
            return self.net(bf16_input(x))
        dtype = PRECISIONS[self.precision]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.net(x)

    @contextmanager
    def shared_statistics(self, rgb: np.ndarray, stats_size: int = 1024):
        """Within this context every per-image normalisation layer uses the statistics of
        the whole of ``rgb`` (downscaled to at most ``stats_size`` on its longer side), so
        tiles of it are normalised alike (see :mod:`translate.infer.tiling`)."""
        if not needs_shared_statistics(self.net):
            yield
            return
        h, w = rgb.shape[:2]
        scale = min(1.0, stats_size / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            rgb = np.asarray(Image.fromarray(rgb.squeeze(-1) if rgb.shape[-1] == 1 else rgb)
                             .resize(size, Image.Resampling.BOX)).reshape(size[1], size[0], -1)
        with recorded_statistics(self.net) as stats:
            self(to_tensor(to_channels(rgb, self.in_channels))[None])
        with fixed_statistics(self.net, stats):
            yield

    def describe(self) -> str:
        kw = json.dumps(self.info.get("kwargs", {}), sort_keys=True)
        layout = ", channels-last" if self.channels_last else ""
        why = f": {self.choice.reason}" if self.choice.reason != "asked for" else ""
        return (f"{self.info.get('method', '?')} generator {self.info.get('arch')} {kw}, "
                f"{self.direction}, step {self.info.get('step', '?')}, on {self.device} "
                f"({self.precision}{layout}{why})")


# Images above this many pixels are translated in tiles of AUTO_TILE unless --tile says
# otherwise: a 256 px ResNet-9 needs about 1 GB of activations per megapixel in fp32.
AUTO_TILE_PIXELS = 2048 * 2048
AUTO_TILE = 1024
