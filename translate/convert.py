"""Convert image files and folders with a :class:`~translate.inference.Translator`.

Inputs are one file or a folder (searched recursively); outputs mirror the input's relative
folder tree under the output folder, each image at its own size. Files that cannot be read
are reported at the end and everything else is still written. Inputs are never overwritten:
the output folder may not be the input folder or lie inside it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .images import ImageError, is_image_file, load_rgb, save_image
from .inference import Translator

WRITABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class UsageError(ValueError):
    """Arguments that cannot work (missing input, output inside the input, ...)."""


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def plan(input_path: str | Path, output_dir: str | Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs; checks that no destination can touch the inputs."""
    src, out = Path(input_path), Path(output_dir)
    if not src.exists():
        raise UsageError(f"input {src} does not exist")
    root = src if src.is_dir() else src.parent
    out_r, root_r = out.resolve(), root.resolve()
    if src.is_dir() and (out_r == root_r or root_r in out_r.parents):
        raise UsageError(f"output folder {out} is inside the input folder {src}; choose a "
                         "folder outside it so inputs are never overwritten")
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        files = [src]
    pairs = []
    for f in files:
        rel = f.relative_to(root)
        ext = f.suffix.lower() if f.suffix.lower() in WRITABLE else ".png"
        dst = out / rel.with_suffix(ext)
        if dst.resolve() == f.resolve():
            raise UsageError(f"{dst} would overwrite its input")
        pairs.append((f, dst))
    return pairs


def convert(translator: Translator, input_path: str | Path, output_dir: str | Path,
            progress: bool = True) -> Report:
    """Translate every image under ``input_path`` into ``output_dir``."""
    report = Report()
    jobs = plan(input_path, output_dir)
    for src, dst in tqdm(jobs, disable=not progress, unit="img", desc="convert",
                         file=sys.stderr):
        if not is_image_file(src):
            report.failed.append((src, "not an image file (unknown extension)"))
            continue
        try:
            rgb = load_rgb(src)
        except ImageError as err:
            report.failed.append((src, str(err).split(": ", 1)[-1]))
            continue
        save_image(translator.translate_array(rgb), dst)
        report.written.append(dst)
    return report
