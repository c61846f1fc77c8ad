"""Which precision a generator runs in: ``--precision auto``.

On a CPU with bf16 units (AVX512-BF16 or AMX-BF16, :func:`translate.devices.cpu_bf16_units`)
a generator runs several times faster with its weights and activations in bf16 and the
channels-last layout (oneDNN's bf16 convolutions) than in fp32; bf16 autocast gains nothing
there, as every operation casts back and forth. ``auto`` picks that path for a model when
its output on :func:`probe_image` stays within :data:`TOLERANCE` of the fp32 output, and fp32
otherwise. The check runs once per model (weights, architecture and PyTorch version) and
is remembered in ``cache_dir()/precision.json``. On CPUs without bf16 units, and on GPUs,
``auto`` is fp32.

``TRANSLATE_CPU_BF16=0`` makes a CPU count as having no bf16 units (``=1`` as having them),
for comparing the two paths on one machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from translate.devices import cpu_bf16_units
from translate.files import atomic_write, cache_dir

CACHE_FILE = "precision.json"
PROBE_SIZE = 256


@dataclass(frozen=True)
class Tolerance:
    """How far a bf16 output may be from the fp32 one, in 8-bit levels (0-255) of
    ``|bf16 - fp32|`` over the probe image's pixels and channels."""
    max_levels: float = 4.0
    mean_levels: float = 0.5


TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Choice:
    """The precision ``auto`` picked and why. ``max_levels``/``mean_levels``: the bf16
    output's difference from fp32 on the probe (None when not measured)."""
    precision: str
    reason: str
    max_levels: float | None = None
    mean_levels: float | None = None


def probe_image(size: int = PROBE_SIZE) -> np.ndarray:
    """A fixed uint8 RGB (size, size, 3) picture with what rounding spoils first: a smooth
    two-colour gradient (banding), saturated blocks with hard edges, a fine periodic
    texture, 1-pixel dark lines and a little noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.25 + 0.6 * y, 0.45 + 0.3 * x, 0.95 - 0.5 * y], axis=-1)
    for _ in range(6):
        top, left = rng.integers(0, size * 3 // 4, 2)
        h, w = rng.integers(size // 10, size // 3, 2)
        img[top:top + h, left:left + w] = rng.choice([0.05, 0.5, 0.95], 3)
    lower = y > 0.6
    texture = 0.5 + 0.3 * np.sin(2 * np.pi * (x * size / 5 + y * size / 13))
    img[lower] = 0.5 * img[lower] + 0.5 * texture[lower, None]
    for row in rng.integers(0, size, 4):
        img[row, :, :] = 0.08
        img[:, (row * 7) % size, :] = 0.08
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def to_bf16(net: nn.Module) -> nn.Module:
    """``net`` with bf16 weights in the channels-last layout (in place)."""
    return net.to(dtype=torch.bfloat16, memory_format=torch.channels_last)


def bf16_input(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)


def model_key(net: nn.Module, info: dict) -> str:
    """A digest of the weights (names, dtypes, shapes, values of every tensor, buffers
    included), the architecture, the batch-norm statistics used (``info["norm_stats"]``)
    and the PyTorch version: what the bf16 difference depends on."""
    digest = hashlib.sha256(json.dumps([info.get("arch"), info.get("kwargs", {}),
                                        info.get("norm_stats"), torch.__version__],
                                       sort_keys=True,
                                       default=str).encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()[:32]


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The raw bytes of any tensor's values: floating or integer, 0-dim (BatchNorm's
    ``num_batches_tracked``), empty or not contiguous."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def difference_levels(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Max and mean ``|a - b|`` of two outputs in [-1, 1], in 8-bit levels."""
    diff = (a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).abs() * 127.5
    return float(diff.max()), float(diff.mean())


MAX_CACHE_BYTES = 1 << 20  # a cache file larger than this is taken as damaged


def _read_cache() -> dict:
    """The remembered checks; {} when the file is missing, damaged, too large or not a
    regular file (a FIFO would block the read)."""
    path = cache_dir() / CACHE_FILE
    try:
        if not path.is_file() or path.stat().st_size > MAX_CACHE_BYTES:
            return {}
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, figures: tuple[float, float]) -> None:
    path = cache_dir() / CACHE_FILE
    if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
        return  # never replace what is not a plain file of ours: checked again next time
    data = _read_cache()
    data[key] = {"max_levels": figures[0], "mean_levels": figures[1]}
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))
    except OSError:
        pass  # a read-only cache: the check runs again next time


def _figures(entry) -> tuple[float, float] | None:
    """(max, mean) levels of a cache entry, or None when it is damaged (missing keys,
    values that are not non-negative finite numbers)."""
    if not isinstance(entry, dict):
        return None
    values = [entry.get("max_levels"), entry.get("mean_levels")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
               and math.isfinite(v) and v >= 0 for v in values):
        return None
    return float(values[0]), float(values[1])


def measured_difference(key: str, measure) -> tuple[float, float]:
    """(max, mean) levels for model ``key``: from the cache, else (also when its entry is
    damaged) ``measure()``, remembered."""
    figures = _figures(_read_cache().get(key))
    if figures is not None:
        return figures
    figures = measure()
    _write_cache(key, figures)
    return figures


def choose(device: torch.device, key, measure, tolerance: Tolerance = TOLERANCE) -> Choice:
    """The precision ``auto`` means for a model on ``device``. ``key()`` names the model
    for the cache; ``measure()`` returns its bf16 output's (max, mean) difference from fp32
    on the probe, in 8-bit levels. Both are called only on CPUs with bf16 units."""
    if device.type != "cpu":
        return Choice("fp32", "auto keeps fp32 on GPUs (--precision bf16 uses autocast)")
    units = cpu_bf16_units()
    if units is None:
        return Choice("fp32", "this CPU has no bf16 units")
    worst, mean = measured_difference(key(), measure)
    figures = f"{worst:.2f} max, {mean:.3f} mean levels from fp32 on the probe"
    if worst <= tolerance.max_levels and mean <= tolerance.mean_levels:
        return Choice("bf16", f"{units}; {figures}", worst, mean)
    return Choice("fp32", f"bf16 would be {figures}, beyond {tolerance.max_levels:g} / "
                          f"{tolerance.mean_levels:g}", worst, mean)
