"""Files: atomic writes, training-state checkpoints, and self-describing generator exports.

Training state (``RUN/checkpoints/latest.pt``) is a plain dict of tensors, numbers and strings
written with ``torch.save`` and read with ``torch.load(weights_only=True)``: nothing in it is
code, so loading one never executes anything.

An exported generator is a safetensors file. Its metadata (strings) describes it completely:

    format           "translate-generator"
    format_version   "1"
    arch, kwargs     registry name and constructor arguments (JSON)
    direction        "a2b" or "b2a": which folder's images it maps to which
    stride           input sizes are padded to multiples of this
    norm_stats       "running" or "image" (how batch norm normalises at inference)
    value_range      "[-1, 1]", channels "RGB", layout "NCHW"
    method, step, config (JSON of the training config), translate_version, card (JSON)

so ``load_generator(path)`` needs nothing but the path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from translate import __version__
from translate.errors import UserError
from translate.files import atomic_write
from translate.networks import GENERATORS, build_generator, stride_of

GENERATOR_FORMAT = "translate-generator"
STATE_FORMAT = "translate-train-state"


class CheckpointError(UserError, ValueError):
    """A file that is not a checkpoint this version can read; the message says why."""


def save_state(state: dict[str, Any], path: str | Path) -> Path:
    """Write a training-state dict atomically."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training-state dict without unpickling code (``weights_only=True``)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise CheckpointError(f"{path}: not a loadable training checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a translate training checkpoint")
    return state


def export_generator(net: nn.Module, path: str | Path, *, arch: str, kwargs: dict,
                     direction: str, norm_stats: str, method: str, step: int,
                     config: dict | None = None, card: dict | None = None,
                     dtype: torch.dtype = torch.float32) -> Path:
    """Write ``net``'s weights and full description to a safetensors file, atomically."""
    tensors = {}
    for name, t in net.state_dict().items():
        t = t.detach().cpu()
        if t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t.contiguous()
    meta = {
        "format": GENERATOR_FORMAT, "format_version": "1",
        "arch": arch, "kwargs": json.dumps(kwargs, sort_keys=True),
        "direction": direction, "stride": str(stride_of(net)), "norm_stats": norm_stats,
        "value_range": "[-1, 1]", "channels": "RGB", "layout": "NCHW",
        "method": method, "step": str(step), "translate_version": __version__,
        "config": json.dumps(config or {}, sort_keys=True),
        "card": json.dumps(card or {}),  # in the order its author wrote it
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_generator_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    if meta.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a translate generator "
                              "export (its metadata has no 'format: translate-generator')")
    return meta


def load_generator(path: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported generator from its file alone. Returns (net in fp32, metadata)."""
    meta = read_generator_metadata(path)
    arch = meta.get("arch", "")
    if arch not in GENERATORS:
        raise CheckpointError(f"{path}: unknown architecture '{arch}' "
                              f"(this version knows {', '.join(GENERATORS)})")
    kwargs = json.loads(meta["kwargs"])
    net = build_generator(arch, kwargs, init=False)
    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            tensors[name] = f.get_tensor(name)
    expected = net.state_dict()
    tensors = {k: v.to(expected[k].dtype) if k in expected else v for k, v in tensors.items()}
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {arch}({kwargs}): {err}") from None
    info: dict[str, Any] = dict(meta)
    info["kwargs"] = kwargs
    info["config"] = json.loads(meta.get("config") or "{}")
    info["card"] = json.loads(meta.get("card") or "{}")
    info["stride"] = int(meta.get("stride", stride_of(net)))
    return net.to(device).eval(), info


def choose_direction(direction: str | None, available: list[str], where) -> str:
    """``direction`` if ``where`` has it; by default a2b, else the only one there is."""
    if direction is None:
        return "a2b" if "a2b" in available else available[0]
    if direction not in available:
        raise CheckpointError(f"{where} has no {direction} generator (it has: "
                              f"{', '.join(available)})")
    return direction


def generator_from_state(state: dict[str, Any], direction: str | None, where="checkpoint"
                         ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a generator held in a training-state dict; returns (net, info) like
    :func:`load_generator`."""
    exports = state.get("exports") or {}
    if not exports:
        raise CheckpointError(f"{where}: holds no generator description")
    direction = choose_direction(direction, sorted(exports), where)
    spec = exports[direction]
    net = build_generator(spec["arch"], spec["kwargs"], init=False)
    prefix = spec["net"] + "."
    net.load_state_dict({k[len(prefix):]: v for k, v in state["nets"].items()
                         if k.startswith(prefix)})
    info = {"arch": spec["arch"], "kwargs": spec["kwargs"], "direction": direction,
            "norm_stats": spec["norm_stats"], "stride": stride_of(net),
            "method": state["config"]["model"], "step": str(state["step"]),
            "config": state["config"], "card": {}}
    return net.eval(), info
