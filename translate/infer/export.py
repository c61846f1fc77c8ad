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
            if target.exists() and not target.is_dir():
                raise ExportUsageError(f"--out {out} is a file, but {path} holds more than one "
                                       f"generator (or the format writes {ext} files into a "
                                       "folder): name a folder, or pass --direction")
            target = target / f"generator_{direction}{ext}"
        return target
    folder = path if path.is_dir() else path.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder / f"generator_{direction}{ext}"


def written_by_us(path: Path) -> bool:
    """Whether ``path`` is a generator file this project exported (safetensors or ONNX
    with the project's format in its metadata)."""
    from translate.formats.checkpoint import CheckpointError, read_generator_metadata

    if path.suffix == ".safetensors":
        try:
            read_generator_metadata(path)
            return True
        except CheckpointError:
            return False
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not an ONNX file, or onnx missing: not ours
        return False
    return any(p.key == "format" and p.value == "translate-generator-onnx"
               for p in model.metadata_props)


def check_target(target: Path, overwrite: bool = False) -> None:
    """:class:`ExportUsageError` unless ``target`` may be written: absent, an export of
    this project, or with ``overwrite`` any regular file; never a link, folder or
    device."""
    import os

    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_file():
        raise ExportUsageError(f"{target} exists and is not a regular file (a link, folder "
                               "or device); export never replaces it: choose another --out")
    if not overwrite and not written_by_us(target):
        raise ExportUsageError(f"{target} exists and is not a generator exported by this "
                               "project (nothing was written); choose another --out, or add "
                               "--overwrite to replace it")


def export(source: str | Path, direction: str | None = None, fmt: str = "safetensors",
           out: str | None = None, dtype: str = "fp32", opset: int = 17,
           card: dict | None = None, raw: bool = False, overwrite: bool = False
           ) -> list[tuple[Path, str, float | None]]:
    """Export every generator of ``source`` (or the one of ``direction``).

    ``source`` is a run folder (its latest training state), a training checkpoint, an
    exported file or a generator state dict of another project (see
    :mod:`translate.formats.reference`). Returns (written file, direction, ONNX parity or None) per
    generator. ``card`` entries (what the model is, how it was made, its scores) are
    merged into the model card stored in safetensors metadata. A run that kept a moving
    average of its weights (``train.ema``) exports the average; ``raw``: the trained
    weights. An existing file is replaced only when it is an export of this project, or
    with ``overwrite`` when it is a regular file (:func:`check_target`).
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
        check_target(target, overwrite)
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
