"""``translate export``: write the generator(s) of a run or checkpoint as self-describing
safetensors files, or as ONNX graphs checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import torch

from translate.formats.checkpoint import GeneratorSpec, NoSuchDirection, write_generator
from translate.errors import UserError
from translate.infer.engine import load_any
from translate.formats.reference import is_reference_file

ONNX_TOLERANCE = 1e-3  # largest |onnx - torch| an ONNX export may show in its parity check
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class ExportUsageError(UserError, ValueError):
    """Export arguments that cannot work; the message says why."""


def _target(path: Path, out: str | None, direction: str, ext: str, several: bool) -> Path:
    if out:
        target = Path(out)
        if (several or ext == ".onnx") and target.suffix != ext:
            target = target / f"generator_{direction}{ext}"
        return target
    folder = path if path.is_dir() else path.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder / f"generator_{direction}{ext}"


def export(source: str | Path, direction: str | None = None, fmt: str = "safetensors",
           out: str | None = None, dtype: str = "fp32", opset: int = 17,
           card: dict | None = None, raw: bool = False) -> list[tuple[Path, str, float | None]]:
    """Export every generator of ``source`` (or the one of ``direction``).

    ``source`` is a run folder (its latest training state), a training checkpoint, an
    exported file or a generator state dict of another project (see
    :mod:`translate.formats.reference`). Returns (written file, direction, ONNX parity or None) per
    generator. ``card`` entries (what the model is, how it was made, its scores) are
    merged into the model card stored in safetensors metadata. A run that kept a moving
    average of its weights (``train.ema``) exports the average; ``raw``: the trained
    weights.
    """
    path = Path(source)
    if path.is_dir() and (path / "checkpoints" / "latest.pt").is_file():
        path = path / "checkpoints" / "latest.pt"
    if raw and path.suffix not in (".pt", ".pth"):
        raise ExportUsageError(f"{path}: --raw exports the trained weights kept in training "
                               "checkpoints; name a run folder or a checkpoint")
    if fmt == "onnx" and dtype != "fp32":
        raise ExportUsageError("--dtype applies to safetensors exports; ONNX exports are "
                               "float32")
    ext = ".onnx" if fmt == "onnx" else ".safetensors"
    directions: list[str | None] = [direction] if direction else ["a2b", "b2a"]
    if direction is None and is_reference_file(path):
        directions = [None]  # one generator; its direction is a label (default a2b)
    written: list[tuple[Path, str, float | None]] = []
    for d in directions:
        try:
            net, info = load_any(path, d, raw)
        except NoSuchDirection:
            if direction or d is None:
                raise
            continue
        d = info["direction"]
        target = _target(path, out, d, ext, several=len(directions) > 1)
        if target.exists() and target.resolve() == path.resolve():
            raise ExportUsageError(f"{target} is the input; choose another --out")
        if any(target == w for w, _, _ in written):
            raise ExportUsageError(f"{path} holds both directions but --out names one file; "
                                   "pass --direction, or a folder as --out")
        parity = None
        if fmt == "onnx":
            from translate.infer.onnx_export import check_parity, export_onnx

            export_onnx(net, info, target, opset=opset)
            parity = check_parity(net, target, tol=ONNX_TOLERANCE)
        else:
            spec = GeneratorSpec(info["arch"], info["kwargs"], d, info["norm_stats"])
            write_generator(net, spec, target, method=info["method"], step=int(info["step"]),
                            config=info["config"],
                            card={**(info.get("card") or {}), **(card or {})},
                            dtype=DTYPES[dtype])
        written.append((target, d, parity))
    if not written:
        raise ExportUsageError(f"{path} holds no generator to export")
    return written
