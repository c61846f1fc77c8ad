"""Self-describing generator files, and the description of a generator they carry
(:class:`GeneratorSpec`, also kept in training states: :mod:`translate.formats.state`).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from translate import __version__
from translate.errors import UserError
from translate.files import atomic_write
from translate.networks import GENERATORS, ArchitectureError, build_generator, stride_of

GENERATOR_FORMAT = "translate-generator"


class CheckpointError(UserError, ValueError):
    """A file that is not a checkpoint this version can read; the message says why.
    ``path``: the file, where one is at fault."""

    def __init__(self, message: str, path: str | Path | None = None):
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class NoSuchDirection(CheckpointError):
    """A file that holds no generator for the direction asked for."""


@dataclass(frozen=True)
class GeneratorSpec:
    """What rebuilds a generator: ``arch`` (registry name) and ``kwargs`` (constructor
    arguments), the ``direction`` it maps ("a2b": domain A to B) and how its batch norm
    normalises at inference (``norm_stats``: "running" or "image")."""

    arch: str
    kwargs: dict
    direction: str
    norm_stats: str = "running"

    def build(self, where: str | Path = "checkpoint") -> nn.Module:
        """The network, weights not initialised (they are loaded next). Arguments that are
        not valid or build too large a network: :class:`CheckpointError` naming ``where``."""
        try:
            return build_generator(self.arch, self.kwargs, init=False)
        except ArchitectureError as err:
            raise CheckpointError(f"{where}: its description is refused: {err}",
                                  where) from None

    def entry(self, net_name: str) -> dict[str, Any]:
        """Its entry in a training state's ``exports`` (``net``: its name in ``nets``)."""
        return {"net": net_name, "arch": self.arch, "kwargs": self.kwargs,
                "norm_stats": self.norm_stats}

    @classmethod
    def from_entry(cls, direction: str, entry: dict[str, Any]) -> GeneratorSpec:
        return cls(entry["arch"], entry["kwargs"], direction, entry["norm_stats"])

    def info(self, net: nn.Module, method: str, step: int | str, config: dict,
             card: dict | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The description :func:`load_generator` and the engine report: these fields,
        ``stride``, ``method``, ``step`` (a string, as in file metadata), ``config`` and
        ``card``, over ``extra`` (a file's other metadata)."""
        return {**(extra or {}), "arch": self.arch, "kwargs": self.kwargs,
                "direction": self.direction, "norm_stats": self.norm_stats, "stride": stride_of(net), "method": method,
                "step": str(step), "config": config, "card": card or {}}


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors in ``tensors`` that hold a NaN or an
    infinity (one read back from their device for all of them)."""
    floats = [(k, v) for k, v in tensors.items() if torch.is_tensor(v) and v.is_floating_point()]
    if not floats:
        return []
    finite = torch.stack([torch.isfinite(v).all().cpu() for _, v in floats]).tolist()
    return [k for (k, _), ok in zip(floats, finite) if not ok]


def check_finite(tensors: dict[str, torch.Tensor], where: str | Path,
                 what: str = "its weights", hint: str = "") -> None:
    """:class:`CheckpointError` when ``what`` of ``where`` hold a NaN or an infinity: a
    generator with one such weight turns every output black. ``hint``: what to do instead."""
    bad = non_finite(tensors)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(f"{where}: {what}: {', '.join(bad[:3])}{more} hold values that "
                              "are not finite numbers (NaN or infinity), and a model made of "
                              f"them cannot translate{hint}", where)


def export_generator(net: nn.Module, path: str | Path, *, arch: str, kwargs: dict,
                     direction: str, norm_stats: str, method: str, step: int,
                     config: dict | None = None, card: dict | None = None,
                     dtype: torch.dtype = torch.float32) -> Path:
    """Write ``net``'s weights and full description to a safetensors file, atomically."""
    return write_generator(net, GeneratorSpec(arch, kwargs, direction, norm_stats), path,
                           method=method, step=step, config=config, card=card, dtype=dtype)


def write_generator(net: nn.Module, spec: GeneratorSpec, path: str | Path, *, method: str,
                    step: int, config: dict | None = None, card: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """:func:`export_generator` from a :class:`GeneratorSpec`."""
    tensors = {}
    for name, t in net.state_dict().items():
        t = t.detach().cpu()
        if t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t.contiguous()
    check_finite(tensors, f"{path} (not written)")
    meta = {
        "format": GENERATOR_FORMAT, "format_version": "1",
        "arch": spec.arch, "kwargs": json.dumps(spec.kwargs, sort_keys=True),
        "direction": spec.direction, "stride": str(stride_of(net)),
        "norm_stats": spec.norm_stats,
        "value_range": "[-1, 1]", "channels": "RGB", "layout": "NCHW",
        "method": method, "step": str(step), "translate_version": __version__,
        "config": json.dumps(config or {}, sort_keys=True),
        "card": json.dumps(card or {}),  # in the order its author wrote it
    }
    blob = save(tensors, metadata=meta)  # written by Python, so a full disk is an OSError
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))


def read_generator_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})",
                              path) from None
    if meta.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a translate generator "
                              "export (its metadata has no 'format: translate-generator')", path)
    return meta


def load_generator(path: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported generator from its file alone. Returns (net in fp32, metadata)."""
    meta = read_generator_metadata(path)
    arch = meta.get("arch", "")
    if arch not in GENERATORS:
        raise CheckpointError(f"{path}: unknown architecture '{arch[:40]}' "
                              f"(this version knows {', '.join(GENERATORS)})", path)
    direction = meta.get("direction", "a2b")
    norm_stats = meta.get("norm_stats", "running")
    if direction not in ("a2b", "b2a") or norm_stats not in ("running", "image"):
        raise CheckpointError(f"{path}: its metadata has direction {direction[:20]!r} and "
                              f"norm_stats {norm_stats[:20]!r}; expected a2b or b2a, and "
                              "running or image", path)
    spec = GeneratorSpec(arch, _json_field(meta, "kwargs", path, None), direction, norm_stats)
    config, card = _json_field(meta, "config", path, {}), _json_field(meta, "card", path, {})
    net = spec.build(path)
    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            tensors[name] = f.get_tensor(name)
    expected = net.state_dict()
    tensors = {k: v.to(expected[k].dtype) if k in expected else v for k, v in tensors.items()}
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise CheckpointError(f"{path}: weights do not fit {arch}({spec.kwargs}): "
                              f"{detail[:600]}", path) from None
    check_finite(tensors, path)
    info = spec.info(net, meta.get("method", ""), meta.get("step", ""), config, card,
                     meta)  # the stride is the network's own, whatever the metadata says
    return net.to(device).eval(), info


def _json_field(meta: dict[str, str], key: str, path, default):
    """The JSON object in metadata field ``key`` (``default`` when absent, or None: it must
    be there); :class:`CheckpointError` when it is not a JSON object."""
    text = meta.get(key)
    if text is None and default is not None:
        return default
    try:
        value = json.loads(text or "")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: metadata field '{key}' is not a JSON object "
                              f"({(text or 'missing')[:40]!r})", path)
    return value


def choose_direction(direction: str | None, available: list[str], where) -> str:
    """``direction`` if ``where`` has it; by default a2b, else the only one there is."""
    if direction is None:
        return "a2b" if "a2b" in available else available[0]
    if direction not in available:
        raise NoSuchDirection(f"{where} has no {direction} generator (it has: "
                              f"{', '.join(available)})")
    return direction
