"""Convert image files, folders and globs with a translator, at every image's own size.

Pipeline: loader worker processes decode files (EXIF orientation applied, any mode to RGB,
alpha kept aside) while the main process runs the model on batches of consecutive images of
equal size; encoder worker processes write the results (atomically: a file either is
complete or is absent). Images larger than the tile threshold go through
:mod:`translate.tiling`. Files that cannot be read are collected and reported at the end;
everything else is still written.

Safety: the output folder may not be the input folder or lie inside it, and no output path
may equal an input path, so inputs are never overwritten. ``skip_existing`` skips images
whose output exists, which makes a stopped run resumable.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .images import (ALPHA_FORMATS, ImageError, is_image_file, load_image, save_image,
                     to_channels, to_tensor, to_uint8)

FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
WRITABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class UsageError(ValueError):
    """Arguments that cannot work (missing input, output inside the input, ...)."""


@dataclass
class Options:
    batch_size: int = 4
    tile: int = 0          # 0: automatic (large images only); N: tiles of N pixels
    overlap: int = 64
    format: str = "same"   # same, png, jpg, webp
    quality: int = 95
    skip_existing: bool = False
    workers: int = 2       # decoder and encoder processes each; 0 does all in-process


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    alpha_dropped: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next((i for i, p in enumerate(parts) if glob.has_magic(p)),
                                    len(parts))]]
    return Path(*fixed) if fixed else Path(".")


def find_inputs(spec: str | Path) -> tuple[Path, list[Path]]:
    """(root, files) for a file, a folder (recursive) or a glob (``**`` recurses)."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return path, sorted(p for p in path.rglob("*")
                            if p.is_file() and not any(part.startswith(".")
                                                       for part in p.relative_to(path).parts))
    if path.is_file():
        return path.parent, [path]
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise UsageError(f"no files match {text}")
        return _glob_root(text), files
    raise UsageError(f"input {text} does not exist")


def output_suffix(src: Path, fmt: str) -> str:
    if fmt != "same":
        return FORMATS[fmt]
    ext = src.suffix.lower()
    return ext if ext in WRITABLE else ".png"


def plan(input_spec: str | Path, output_dir: str | Path, fmt: str = "same"
         ) -> list[tuple[Path, Path]]:
    """(source, destination) pairs; refuses any plan that could touch the inputs."""
    if fmt not in ("same", *FORMATS):
        raise UsageError(f"--format must be one of same, {', '.join(FORMATS)}")
    root, files = find_inputs(input_spec)
    out = Path(output_dir)
    out_r, root_r = out.resolve(), root.resolve()
    if Path(input_spec).is_file() is False and (out_r == root_r or root_r in out_r.parents):
        raise UsageError(f"output folder {out} is inside the input folder {root}; choose a "
                         "folder outside it so inputs are never overwritten")
    inputs = {f.resolve() for f in files}
    pairs = []
    for f in files:
        dst = out / f.relative_to(root).with_suffix(output_suffix(f, fmt))
        if dst.resolve() in inputs:
            raise UsageError(f"{dst} would overwrite an input")
        pairs.append((f, dst))
    return pairs


class _Decode(Dataset):
    """Decodes in loader workers: (index, rgb, alpha, error)."""

    def __init__(self, jobs: list[tuple[Path, Path]]):
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int):
        src = self.jobs[i][0]
        if not is_image_file(src):
            return i, None, None, "not an image file (unknown extension)"
        try:
            rgb, alpha = load_image(src)
        except ImageError as err:
            return i, None, None, str(err).split(": ", 1)[-1]
        return i, rgb, alpha, None


def _encode(array: np.ndarray, path: Path, quality: int, alpha: np.ndarray | None) -> Path:
    return save_image(array, path, quality=quality, alpha=alpha)


class _Writer:
    """Encodes in worker processes with a bounded number of images in flight."""

    def __init__(self, workers: int):
        self.pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
                     if workers > 0 else None)
        self.pending: list[Future] = []
        self.limit = max(2, 4 * workers)

    def submit(self, *args) -> None:
        if self.pool is None:
            _encode(*args)
            return
        while len(self.pending) >= self.limit:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(_encode, *args))

    def close(self) -> None:
        for f in self.pending:
            f.result()
        self.pending = []
        if self.pool is not None:
            self.pool.shutdown()


def convert(engine, input_spec: str | Path, output_dir: str | Path,
            options: Options | None = None, progress: bool = True) -> Report:
    """Translate every image under ``input_spec`` into ``output_dir``.

    ``engine`` is a :class:`~translate.inference.Translator` (or anything with its
    ``__call__``, ``translate_array`` and ``tile_size``).
    """
    options = options or Options()
    report = Report()
    jobs = plan(input_spec, output_dir, options.format)
    if options.skip_existing:
        report.skipped = [dst for _, dst in jobs if dst.exists()]
        jobs = [(s, d) for s, d in jobs if not d.exists()]
    start = time.perf_counter()
    loader = DataLoader(_Decode(jobs), batch_size=None, num_workers=options.workers,
                        collate_fn=lambda x: x, prefetch_factor=8 if options.workers else None)
    writer = _Writer(options.workers)
    bar = tqdm(total=len(jobs), disable=not progress, unit="img", desc="convert",
               file=sys.stderr, dynamic_ncols=True)
    batch: list[tuple[int, np.ndarray, np.ndarray | None]] = []

    def emit(i: int, out: np.ndarray, alpha: np.ndarray | None) -> None:
        src, dst = jobs[i]
        if alpha is not None and dst.suffix.lower() not in ALPHA_FORMATS:
            report.alpha_dropped.append(dst)
            alpha = None
        writer.submit(out, dst, options.quality, alpha)
        report.written.append(dst)
        bar.update(1)

    def flush() -> None:
        if not batch:
            return
        x = torch.stack([_as_input(engine, rgb) for _, rgb, _ in batch])
        for (i, _, alpha), y in zip(batch, engine(x)):
            emit(i, to_uint8(y), alpha)
        batch.clear()

    try:
        for i, rgb, alpha, error in loader:
            if error is not None:
                report.failed.append((jobs[i][0], error))
                bar.update(1)
                continue
            h, w = rgb.shape[:2]
            if engine.tile_size(h, w, options.tile):
                flush()
                emit(i, engine.translate_array(rgb, options.tile, options.overlap,
                                               options.batch_size), alpha)
                continue
            if batch and batch[0][1].shape != rgb.shape:
                flush()
            batch.append((i, rgb, alpha))
            if len(batch) >= options.batch_size:
                flush()
        flush()
    finally:
        bar.close()
        writer.close()
    report.seconds = time.perf_counter() - start
    return report


def _as_input(engine, rgb: np.ndarray) -> torch.Tensor:
    return to_tensor(to_channels(rgb, engine.in_channels))


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))
