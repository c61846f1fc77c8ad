"""Export a generator to ONNX, and check the export against PyTorch.

The graph has one input ``image`` (N, C, H, W) float32 in [-1, 1] and one output
``translated`` (N, C_out, H, W) float32 in [-1, 1]; N, H and W are dynamic (H and W must be
multiples of the generator's stride, which :class:`translate.infer.onnx_engine.OnnxTranslator`
ensures by reflection padding). Dropout is off and batch norm follows one rule
(``norm_stats``), fixed in the graph. The model's ``metadata_props`` hold the keys of a
safetensors export (see :mod:`translate.formats.checkpoint`) with ``format`` set to
``translate-generator-onnx``, plus ``exporter`` and ``per_image_norm`` ("true" when some
layer normalises by each input's own statistics).

Exporters: the TorchScript exporter (``torch.onnx.export(dynamo=False)``) is tried first: it
honours the requested opset, keeps H and W free, and takes well under a second for these
networks. Where it is missing or fails, the torch.export-based exporter is used, with
dynamic shapes (batch, stride * h, stride * w) and opset 18 or newer (it has no lower one).

onnx and onnxruntime are imported only when used: ``pip install 'translate[onnx]'``.
"""

from __future__ import annotations

import inspect
import io
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from translate import __version__
from translate.errors import UserError
from translate.files import atomic_write
from translate.networks import stride_of
from translate.networks.norm_stats import needs_shared_statistics, set_norm_stats
from translate.infer.onnx_engine import ONNX_FORMAT, OnnxTranslator, require

EXPORTERS = ("auto", "torchscript", "dynamo")
INPUT, OUTPUT = "image", "translated"


class ExportError(UserError, ValueError):
    """An ONNX export that failed, or whose results disagree with PyTorch's."""


def base_size(stride: int) -> int:
    """The smallest multiple of ``stride`` that is at least 32 px: the unit of the example
    and parity sizes (small, yet large enough for every layer of a ResNet generator)."""
    return stride * -(-32 // stride)


def _torchscript(net: nn.Module, x: torch.Tensor, opset: int, stride: int):
    onnx = require("onnx")
    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters \
        else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # this exporter is deprecated
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        # instance norm (and batch norm in 'image' mode) uses each input's statistics at
        # inference too; the exporter warns about exactly that
        warnings.filterwarnings("ignore", "ONNX export mode is set to TrainingMode.EVAL",
                                UserWarning)
        # shape checks inside torch.nn (instance norm's) are traced as constants; harmless,
        # and check_parity runs other shapes anyway
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning,
                                module=r"torch\.nn\.")
        torch.onnx.export(net, (x,), buf, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: axes, OUTPUT: axes}, opset_version=opset,
                          **legacy)
    return onnx.load_from_string(buf.getvalue())


def _dynamo(net: nn.Module, x: torch.Tensor, opset: int, stride: int):
    require("onnxscript")
    dim = torch.export.Dim
    shapes = ({0: dim("batch"), 2: stride * dim("height"), 3: stride * dim("width")},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, (x,), dynamo=True, input_names=[INPUT],
                                    output_names=[OUTPUT], dynamic_shapes=shapes,
                                    opset_version=max(opset, 18), verbose=False)
    return program.model_proto


_EXPORT: dict[str, Callable] = {"torchscript": _torchscript, "dynamo": _dynamo}


def export_onnx(net: nn.Module, info: dict[str, Any], path: str | Path, opset: int = 17,
                norm_stats: str | None = None, exporter: str = "auto") -> Path:
    """Write ``net`` (as rebuilt by :func:`translate.infer.engine.load_any`, with its ``info``)
    to an ONNX file, atomically, and return its path.

    ``net`` is left in inference mode: ``eval()`` and batch norm per ``norm_stats`` (default
    ``info["norm_stats"]``). The graph is traced on a (2, C, 2u, 3u) input, u =
    :func:`base_size`, and accepts any batch and any multiple of the stride. ``exporter``:
    "auto" (TorchScript, else torch.export), "torchscript" or "dynamo".
    """
    onnx = require("onnx")
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}")
    missing = [k for k in ("arch", "kwargs") if k not in info]
    if missing:
        raise ValueError(f"info lacks {', '.join(missing)}; pass the info of load_any")
    norm_stats = norm_stats or info.get("norm_stats") or "running"
    set_norm_stats(net.eval(), norm_stats)
    stride = stride_of(net)
    u = base_size(stride)
    channels = int(info["kwargs"].get("in_channels", 3))
    x = torch.zeros(2, channels, 2 * u, 3 * u, device=next(net.parameters()).device)
    model, errors = None, []
    for name in ("torchscript", "dynamo") if exporter == "auto" else (exporter,):
        try:
            model = _EXPORT[name](net, x, opset, stride)
            break
        except Exception as err:  # exporters raise many kinds; report each one's reason
            first = (str(err).strip().splitlines() or [""])[0]
            errors.append(f"{name} exporter: {type(err).__name__}: {first}")
    if model is None:
        raise ExportError(f"cannot export {info['arch']} to ONNX: " + "; ".join(errors))
    meta = {
        "format": ONNX_FORMAT, "format_version": "1",
        "arch": info["arch"], "kwargs": json.dumps(info["kwargs"], sort_keys=True),
        "direction": info.get("direction", "a2b"), "stride": str(stride),
        "norm_stats": norm_stats, "value_range": "[-1, 1]", "channels": "RGB",
        "layout": "NCHW", "method": str(info.get("method", "?")),
        "step": str(info.get("step", 0)), "translate_version": __version__,
        "config": json.dumps(info.get("config") or {}, sort_keys=True),
        "card": json.dumps(info.get("card") or {}), "exporter": name,
        "per_image_norm": str(needs_shared_statistics(net)).lower(),
    }
    onnx.helper.set_model_props(model, meta)
    model.doc_string = (f"translate {info['arch']} generator: {INPUT} (N, {channels}, H, W) "
                        f"float32 in [-1, 1], H and W multiples of {stride} -> {OUTPUT} "
                        "(N, C_out, H, W) in [-1, 1]")
    data = model.SerializeToString()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def check_parity(net: nn.Module, onnx_path: str | Path,
                 sizes: tuple[tuple[int, int, int], ...] | None = None, tol: float = 1e-3,
                 seed: int = 0) -> float:
    """Run ``net`` (PyTorch) and the ONNX export at ``onnx_path`` (onnxruntime, CPU) on the
    same random inputs in [-1, 1] and return the largest absolute difference of the outputs.

    ``sizes``: (N, H, W) triples, H and W multiples of the stride; by default
    (1, u, 2u) and (3, 2u, u), u = :func:`base_size`, which differ from the traced
    (2, 2u, 3u) in batch and size. ``net`` is put in the export's inference mode (its
    ``norm_stats`` metadata). Raises :class:`ExportError` above ``tol`` (or on NaN).
    """
    engine = OnnxTranslator.from_file(onnx_path)
    u = base_size(engine.stride)
    sizes = tuple(sizes or ((1, u, 2 * u), (3, 2 * u, u)))
    bad = [(h, w) for _, h, w in sizes if h % engine.stride or w % engine.stride]
    if bad:
        raise ValueError(f"parity sizes must be multiples of the stride {engine.stride}: "
                         f"{bad}")
    set_norm_stats(net.eval(), engine.norm_stats)
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    diffs = []
    for n, h, w in sizes:
        x = torch.rand(n, engine.in_channels, h, w, generator=gen) * 2 - 1
        with torch.no_grad():
            ref = net(x.to(device)).float().cpu()
        out = engine(x)
        if out.shape != ref.shape:
            raise ExportError(f"{onnx_path}: ONNX output {tuple(out.shape)} for input "
                              f"{tuple(x.shape)}; PyTorch gives {tuple(ref.shape)}")
        diffs.append((out - ref).abs().max().item())
    worst = float(np.max(diffs))
    if not worst <= tol:  # also catches NaN
        raise ExportError(f"{onnx_path}: onnx parity failed: max |onnx - torch| = "
                          f"{worst:.1e} exceeds the tolerance {tol:.0e} (the file is left "
                          "there for inspection; do not use it)")
    return worst
