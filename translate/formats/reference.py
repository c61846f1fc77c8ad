"""Generators saved by other projects as plain PyTorch state dicts (``.pth`` / ``.pt``).

Recognised from the tensor names and shapes alone, with no flags:

- pix2pix U-Net generators of the reference pix2pix/CycleGAN implementation
  (``latest_net_G.pth``, the published pix2pix models): any depth (U-Net-256 = 8 levels,
  U-Net-128 = 7), any width, batch or instance norm. They load into
  :class:`~translate.networks.unet.UNetGenerator`.
- ResNet generators of the same implementation (``latest_net_G_A.pth``, the published
  CycleGAN models): any number of residual blocks, any width, instance or batch norm, saved
  with or without dropout layers. They load into
  :class:`~translate.networks.resnet.ResNetGenerator`.
- AnimeGANv2 generators (``face_paint_512_v2.pt``, ``paprika.pt``, ...), which load into
  :class:`~translate.networks.animegan.AnimeGANv2Generator`.

All take and return RGB in [-1, 1]. Batch-norm generators of the reference run with each
image's own statistics by default (``norm_stats`` 'image'), as its test script computes them
(it runs them in training mode at batch size 1) and as the pix2pix paper prescribes; dropout
is off, so results are deterministic. Running statistics remain available as an option.

Safety: files are read with ``torch.load(weights_only=True)``, which rebuilds tensors and
plain containers only. A file that needs anything else (a pickled class instance, a custom
class, a function) is refused with :class:`CheckpointError`; nothing in it is executed.

Name mapping: a ``module.`` prefix (from ``DataParallel``) is stripped; running statistics of
instance-norm layers, written by PyTorch before 0.4, are dropped; residual blocks saved
without dropout layers (``conv_block.5``) are renumbered to the layout with one
(``conv_block.6``). Every remaining tensor must be consumed by the module (strict load).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from translate.formats.checkpoint import CheckpointError, GeneratorSpec, check_finite
from translate.formats.state import STATE_FORMAT
from translate.networks import build_generator

REFERENCE_METHODS = ("reference-pix2pix", "reference-cyclegan", "animeganv2")
STAT_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


@dataclass(frozen=True)
class Recognised:
    """What a state dict holds: the module to build and how to run it."""

    arch: str            # key of translate.networks.GENERATORS
    kwargs: dict         # its constructor arguments
    method: str          # one of REFERENCE_METHODS
    norm_stats: str      # 'image' or 'running'
    description: str     # one line for humans


def _refusal_reason(text: str) -> str:
    """What torch's weights-only unpickler refused, from its message, without the advice
    to load the file unsafely that comes with it ('' when it names nothing)."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if found:
        return found.group(1).split(". Please")[0].strip()
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith(("Check the documentation", "Re-running")) \
                and "weights_only" not in line:
            return line.split(". Please")[0].rstrip(".")
    return ""


def read_weights(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that say what to do.

    Raises :class:`CheckpointError` when the file is unreadable, or when it holds pickled
    objects other than tensors and plain containers (these are refused, never run).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        reason = _refusal_reason(text)
        if "Weights only load failed" not in text or not reason \
                or reason.startswith("Unsupported operand"):  # not a pickle at all
            detail = reason or text.splitlines()[0]
            raise CheckpointError(f"{path}: not a readable PyTorch file ({detail})") from None
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects, not only tensors ({reason}). "
            "Weight files are read with torch.load(weights_only=True), which never runs code "
            "from a file; save a plain state dict instead (torch.save(net.state_dict(), "
            "path)).") from None
    except Exception as err:  # EOFError, RuntimeError (bad zip), KeyError (not a pickle) ...
        detail = f"{type(err).__name__}: {err}".rstrip(": ").split(". ")[0]
        raise CheckpointError(f"{path}: not a readable PyTorch file ({detail})") from None


def as_state_dict(obj: Any, where: Any) -> dict[str, torch.Tensor]:
    """The tensors of a loaded state dict, with ``module.`` prefixes stripped."""
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{where}: holds a {type(obj).__name__}, not a state dict "
                              "(a dict of parameter names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{where}: not a state dict: entries such as {bad[0]!r} are not "
                              "tensors (a training checkpoint of another project? save its "
                              "generator's state_dict() alone)")
    out = {}
    for k, v in obj.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


# --- Recognition: one function per layout, each returning None when it does not apply ----

def _shape(sd: dict, key: str) -> tuple[int, ...] | None:
    return tuple(sd[key].shape) if key in sd else None


def _norm_kind(sd: dict, bias_key: str) -> str | None:
    """'batch' when norm layers carry affine weights (1-D ``.weight``), 'instance' when the
    convolutions carry biases instead, None for neither (the reference's 'none' norm)."""
    if any(k.endswith(".weight") and v.ndim == 1 for k, v in sd.items()):
        return "batch"
    return "instance" if bias_key in sd else None


def _unet(sd: dict) -> Recognised | None:
    first, last = _shape(sd, "model.model.0.weight"), _shape(sd, "model.model.3.weight")
    if first is None or last is None or len(first) != 4 or first[2:] != (4, 4):
        return None
    inner = 0  # levels below the outermost: model.model.1(.model.3)^k.model.1 = their down conv
    while f"model.model.1.{'model.3.' * inner}model.1.weight" in sd:
        inner += 1
    norm = _norm_kind(sd, "model.model.1.model.1.bias")
    if inner < 1 or norm is None:
        return None
    depth, ngf = inner + 1, first[0]
    kwargs = {"in_channels": first[1], "out_channels": last[1], "ngf": ngf, "depth": depth,
              "norm": norm, "dropout": False}
    return Recognised("unet", kwargs, "reference-pix2pix",
                      "image" if norm == "batch" else "running",
                      f"pix2pix U-Net generator, {depth} levels (U-Net-{2 ** depth}), ngf "
                      f"{ngf}, {norm} norm")


def _resnet(sd: dict) -> Recognised | None:
    first = _shape(sd, "model.1.weight")
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    if first is None or len(first) != 4 or first[2:] != (7, 7) or not blocks:
        return None
    norm = _norm_kind(sd, "model.1.bias")
    convs = [int(m.group(1)) for k, v in sd.items()
             if v.ndim == 4 and (m := re.fullmatch(r"model\.(\d+)\.weight", k))]
    if norm is None or not convs:
        return None
    ngf, depth = first[0], len(blocks)
    kwargs = {"in_channels": first[1], "out_channels": sd[f"model.{max(convs)}.weight"].shape[0],
              "ngf": ngf, "depth": depth, "norm": norm, "dropout": False}
    return Recognised("resnet", kwargs, "reference-cyclegan",
                      "image" if norm == "batch" else "running",
                      f"CycleGAN ResNet generator, {depth} residual blocks, ngf {ngf}, "
                      f"{norm} norm")


def _animegan(sd: dict) -> Recognised | None:
    first, last = _shape(sd, "block_a.0.1.weight"), _shape(sd, "out_layer.0.weight")
    if first is None or last is None or len(first) != 4:
        return None
    kwargs = {"in_channels": first[1], "out_channels": last[0], "ngf": first[0]}
    return Recognised("animeganv2", kwargs, "animeganv2", "running",
                      f"AnimeGANv2 generator, ngf {first[0]}")


RECOGNISERS: dict[str, Callable[[dict], Recognised | None]] = {
    "unet": _unet,
    "resnet": _resnet,
    "animeganv2": _animegan,
}

EXPECTED = ("a pix2pix U-Net generator (model.model.0.weight, model.model.1.model.1.weight, "
            "... model.model.3.weight), a CycleGAN ResNet generator (model.1.weight 7x7, "
            "model.10.conv_block.1.weight, ...) or an AnimeGANv2 generator "
            "(block_a.0.1.weight ... out_layer.0.weight)")


def _looks_like_discriminator(sd: dict) -> bool:
    """A PatchGAN: model.0 is a conv, and the last conv has one output channel."""
    convs = {int(m.group(1)): v for k, v in sd.items()
             if v.ndim == 4 and (m := re.fullmatch(r"model\.(\d+)\.weight", k))}
    return 0 in convs and convs[max(convs)].shape[0] == 1


def recognise(sd: dict[str, torch.Tensor], where: Any) -> Recognised:
    """The generator a state dict holds; :class:`CheckpointError` naming what was expected
    when it is none of the known layouts."""
    for recogniser in RECOGNISERS.values():
        found = recogniser(sd)
        if found is not None:
            return found
    if _looks_like_discriminator(sd):
        raise CheckpointError(f"{where}: a PatchGAN discriminator's state dict, not a "
                              "generator; use the generator's file (latest_net_G*.pth)")
    names = ", ".join(list(sd)[:4])
    raise CheckpointError(f"{where}: not a generator layout this version knows; expected "
                          f"{EXPECTED}; found {len(sd)} tensors named like {names}")


# --- Name mapping ---------------------------------------------------------------------------

def map_names(sd: dict[str, torch.Tensor], found: Recognised) -> dict[str, torch.Tensor]:
    """``sd`` renamed to the module's names; stale instance-norm statistics dropped."""
    out = {}
    for k, v in sd.items():
        if k.endswith(STAT_SUFFIXES) and k.rsplit(".", 1)[0] + ".weight" not in sd:
            continue  # running statistics of an instance-norm layer (PyTorch < 0.4)
        out[k] = v
    if found.arch == "resnet" and any(re.search(r"\.conv_block\.5\.weight$", k) for k in out):
        # saved without dropout: [pad, conv, norm, relu, pad, conv, norm]; the module keeps a
        # slot for dropout after the first relu, as the reference does when it trains with one
        out = {re.sub(r"\.conv_block\.([56])\.", lambda m: f".conv_block.{int(m.group(1)) + 1}.",
                      k): v for k, v in out.items()}
    return out


def build(sd: dict[str, torch.Tensor], found: Recognised, where: Any) -> nn.Module:
    """The module of ``found`` holding the tensors of ``sd`` (float32), every tensor used.

    The module is created without memory or initialisation (on the meta device) and takes
    the loaded tensors over, so loading costs little more than reading the file.
    """
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    with torch.device("meta"):
        net = build_generator(found.arch, found.kwargs, init=False)
    try:
        net.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise CheckpointError(f"{where}: looks like a {found.description}, but its tensors do "
                              f"not fit that layout ({detail[:600]})") from None
    check_finite(tensors, where)
    return net.eval()


def _default_direction(path: Path) -> str:
    """The reference names CycleGAN's B -> A generator ``*_net_G_B.pth``."""
    return "b2a" if re.search(r"(^|_)G_B$", path.stem) else "a2b"


def load_reference(obj: Any, path: str | Path, direction: str | None = None
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """(generator, info) from a loaded state dict; ``info`` has the keys of an exported
    generator's (arch, kwargs, direction, stride, norm_stats, method, step, config, card).

    A state dict records no direction: ``direction`` labels it (default b2a for files named
    ``*G_B.pth``, else a2b).
    """
    path = Path(path)
    sd = as_state_dict(obj, path)
    found = recognise(sd, path)
    net = build(map_names(sd, found), found, path)
    note = ("; batch norm uses each image's own statistics, as the reference's test script "
            "computes them" if found.norm_stats == "image" else "")
    card = {"source": path.name,
            "description": f"{found.description}, read from a state dict{note}"}
    spec = GeneratorSpec(found.arch, dict(found.kwargs),
                         direction or _default_direction(path), found.norm_stats)
    return net, spec.info(net, found.method, 0, {}, card)


def load_reference_file(path: str | Path, direction: str | None = None
                        ) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_reference` on the contents of ``path``."""
    return load_reference(read_weights(path), path, direction)


def is_reference_file(path: str | Path) -> bool:
    """Whether ``path`` is a readable ``.pt``/``.pth`` file that is not a translate training
    checkpoint: a state dict of one generator, whose direction is only a label."""
    path = Path(path)
    if not path.is_file() or path.suffix not in (".pt", ".pth"):
        return False
    try:
        state = read_weights(path)
    except CheckpointError:
        return False
    return not (isinstance(state, dict) and state.get("format") == STATE_FORMAT)
