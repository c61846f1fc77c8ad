"""Translate images with an exported ONNX generator on the CPU, through onnxruntime.

An ONNX export (see :mod:`translate.infer.onnx_export`) maps ``image`` (N, C, H, W) float32 in
[-1, 1], any N and any H, W that are multiples of its stride, to ``translated``
(N, C_out, H, W) in [-1, 1]. Its ``metadata_props`` carry the description a safetensors
export carries (format ``translate-generator-onnx``). :class:`OnnxTranslator` has the
interface of :class:`translate.infer.engine.Translator`, so ``convert`` can use either; it needs
onnxruntime, never the training code or the generator classes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.formats.checkpoint import CheckpointError
from translate.infer.engine import Engine

ONNX_FORMAT = "translate-generator-onnx"


class OnnxError(CheckpointError):
    """An .onnx file that is not a translate generator, or ONNX support that is not
    installed; the message says why."""


def require(module: str):
    """Import ``module`` (onnx, onnxruntime) or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OnnxError(f"ONNX support needs the '{module}' package: "
                        "pip install 'translate[onnx]' (or pip install -e '.[onnx]' in a "
                        "checkout)") from None


def decode_metadata(meta: dict[str, str], where: Any) -> dict[str, Any]:
    """The metadata strings of an ONNX export -> info, decoded as
    :func:`~translate.formats.checkpoint.load_generator` decodes its own: kwargs, config and
    card from JSON, stride as int. Raises :class:`OnnxError` for anything else."""
    if meta.get("format") != ONNX_FORMAT:
        raise OnnxError(f"{where}: an ONNX model, but not a translate generator export "
                        f"(its metadata has no 'format: {ONNX_FORMAT}')")
    try:
        info: dict[str, Any] = dict(meta)
        info["kwargs"] = json.loads(meta.get("kwargs") or "{}")
        info["config"] = json.loads(meta.get("config") or "{}")
        info["card"] = json.loads(meta.get("card") or "{}")
        info["stride"] = int(meta["stride"])
    except (KeyError, ValueError) as err:
        raise OnnxError(f"{where}: damaged translate metadata ({err!r})") from None
    return info


class OnnxTranslator(Engine):
    """An ONNX generator ready to translate images of any size, on the CPU.

    ``translator(x)``: (N, C, H, W) float in [-1, 1] -> (N, C_out, H, W) float32 in [-1, 1].
    Each batch is padded by reflection to the stride, run by onnxruntime and cropped back.
    The batch-norm rule (``norm_stats``) was fixed when the graph was exported.
    """

    device = torch.device("cpu")

    def __init__(self, session, info: dict[str, Any], threads: int | None = None):
        self.session = session
        self.info = info
        self.threads = threads
        self.stride = int(info["stride"])
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def from_file(cls, path: str | Path, threads: int | None = None) -> "OnnxTranslator":
        """Open an ONNX export; ``threads`` caps onnxruntime's intra-op threads (default:
        onnxruntime's choice, one per core). Raises :class:`OnnxError` for other files."""
        ort = require("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise OnnxError(f"{path} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.log_severity_level = 3  # errors only
        try:
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/...
            raise OnnxError(f"{path}: not a readable ONNX model ({err})") from None
        info = decode_metadata(session.get_modelmeta().custom_metadata_map, path)
        return cls(session, info, threads)

    @property
    def norm_stats(self) -> str:
        return self.info.get("norm_stats", "running")

    @property
    def per_image_norm(self) -> bool:
        """Whether the graph normalises by each input's own statistics (instance norm, batch
        norm in 'image' mode), as recorded at export; assumed when not recorded."""
        return self.info.get("per_image_norm", "true") != "false"

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(
            x.detach().to("cpu", torch.float32).numpy())})
        return torch.from_numpy(y)

    def tile_size(self, h: int, w: int, tile: int = 0) -> int:
        """As :meth:`Translator.tile_size`, but 0 (translate whole) for graphs with per-image
        normalisation: a graph cannot share statistics across tiles, and tiles normalised
        separately would differ in tone."""
        return 0 if self.per_image_norm else super().tile_size(h, w, tile)

    def describe(self) -> str:
        kw = json.dumps(self.info.get("kwargs", {}), sort_keys=True)
        threads = self.threads or "auto"
        return (f"{self.info.get('method', '?')} generator {self.info.get('arch')} {kw}, "
                f"{self.direction}, step {self.info.get('step', '?')}, ONNX on cpu "
                f"(onnxruntime, {threads} threads, norm stats {self.norm_stats})")
