"""Convert image files, folders and globs with a translator, at every image's own size.

Pipeline: loader worker processes decode files (EXIF orientation applied, any mode to RGB,
alpha kept aside) while the main process runs the model on batches of consecutive images of
equal size; encoder worker processes write the results (atomically: a file either is
complete or is absent). Images larger than the tile threshold go through
:mod:`translate.infer.tiling`. Files that cannot be read are collected and reported at the end;
everything else is still written.

Safety: the output folder may not be the input folder or lie inside it, and no output path
may equal an input path, so inputs are never overwritten. Temporary files that a killed run
left beside this run's outputs are removed before it starts. A file already at an output path
is never replaced unless asked: ``skip_existing`` keeps it (which makes a stopped run
resumable), ``overwrite`` replaces it, and without either the conversion stops before
writing anything.

On a CUDA device: batches travel through pinned memory with asynchronous copies, and the
model runs on one batch while the previous batch's results are copied back and handed to
the encoders; JPEG inputs are decoded and JPEG outputs encoded on the GPU
(:mod:`translate.data.jpeg`). On the CPU the pipeline is the one described above.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from translate.infer.video import (VIDEO_SUFFIXES, VideoError, VideoLimits, VideoOptions,
                                   VideoStats, convert_video, is_video_file)
from translate.infer.video import output_suffix as video_suffix
from translate.data.jpeg import (JPEG_SUFFIXES, EncodedJpeg, decode_jpegs, encode_jpegs,
                                 input_from_uint8, read_jpeg, to_uint8_batch)
from translate.devices import cores_per_process, loader_process_setup, stop_loader
from translate.errors import UserError
from translate.files import atomic_write
from translate.images import (ALPHA_FORMATS, IMAGE_EXTENSIONS, ImageError, image_size,
                              is_image_file, load_image, save_image)

CONVERT_MAX_PIXELS = 100_000_000  # larger images take gigabytes and minutes on a CPU
FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
WRITABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


VIDEO = "video"  # what the decoder hands over for a video file


class UsageError(UserError, ValueError):
    """Arguments that cannot work (missing input, output inside the input, ...)."""


# zlib level of PNG outputs: on 1 MP outputs of the shipped models level 1 encodes in 65 ms
# and 1.23 MB against level 6's 338 ms and 1.06 MB (AMD EPYC, one core); encoding shares two
# cores with the network, so level 6 made a folder of 1 MP photos to PNG 1.5x slower.
PNG_LEVEL = 1


@dataclass
class Options:
    batch_size: int = 4
    tile: int = 0          # 0: automatic (large images only); N: tiles of N pixels
    overlap: int = 64
    format: str = "same"   # same, png, jpg, webp
    quality: int = 95
    png_level: int = PNG_LEVEL
    skip_existing: bool = False
    overwrite: bool = False  # replace files already at output paths
    workers: int | None = None  # decoder and encoder processes each; 0 does all
    # in-process; None: helper_processes() decides
    device_codec: bool | None = None  # JPEG codec on the engine's device; None: on CUDA
    face: str | None = None  # crop or paste: the largest face (translate.infer.faces)
    video: VideoOptions = field(default_factory=VideoOptions)  # codec, crf, temporal
    tile_progress: bool = False  # a progress bar over the tiles of each large image
    max_pixels: int = CONVERT_MAX_PIXELS  # larger images are reported, not decoded


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    alpha_dropped: list[Path] = field(default_factory=list)
    no_face: list[Path] = field(default_factory=list)  # face mode found none: whole image
    faces: list[tuple[Path, str]] = field(default_factory=list)  # face mode: what it did
    renamed: list[tuple[Path, Path]] = field(default_factory=list)  # shared output names
    videos: list[tuple[Path, VideoStats]] = field(default_factory=list)
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
        root = _glob_root(text)
        rest = Path(*path.parts[len(root.parts) if str(root) != "." else 0:])
        # pathlib's ** does not descend into linked folders, so a link loop cannot repeat
        # or hang the listing (glob.glob's does); hidden files are left out like glob's
        files = sorted(p for p in root.glob(str(rest)) if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(root).parts))
        if not files:
            raise UsageError(f"no files match {text}")
        return root, files
    raise UsageError(f"input {text} does not exist")


def describe_contents(root: Path, files: list[Path], shown: int = 5) -> str:
    """What a folder without images holds, for an error message: its files by extension
    (a few named), its subfolders, the hidden entries left out."""
    if not files:
        try:
            entries = list(root.iterdir()) if root.is_dir() else []
        except OSError:
            entries = []
        hidden = sum(p.name.startswith(".") for p in entries)
        folders = sum(p.is_dir() and not p.name.startswith(".") for p in entries)
        held = ([f"{folders} empty folder(s)"] if folders else []) + \
            ([f"{hidden} hidden file(s) or folder(s), which are left out"] if hidden else [])
        return "it holds " + " and ".join(held) if held else "it is empty"
    kinds: dict[str, int] = {}
    for f in files:
        kinds[f.suffix.lower() or "(no extension)"] = \
            kinds.get(f.suffix.lower() or "(no extension)", 0) + 1
    counts = ", ".join(f"{n} {ext}" for ext, n in
                       sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    names = ", ".join(str(f.relative_to(root)) for f in files[:shown])
    more = ", ..." if len(files) > shown else ""
    return (f"it holds {len(files)} file(s) of other kinds ({counts}: {names}{more}); "
            f"convert reads images ({' '.join(IMAGE_EXTENSIONS)}) and videos "
            f"({' '.join(sorted(VIDEO_SUFFIXES))})")


def output_suffix(src: Path, fmt: str) -> str:
    if is_video_file(src):
        return video_suffix(src)
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
    if not any(is_image_file(f) or is_video_file(f) for f in files):
        raise UsageError(f"no image or video to convert in {input_spec}: "
                         f"{describe_contents(root, files)}")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file; name a folder for the outputs")
    out_r, root_r = out.resolve(), root.resolve()
    if Path(input_spec).is_file() is False and (out_r == root_r or root_r in out_r.parents):
        raise UsageError(f"output folder {out} is inside the input folder {root}; choose a "
                         "folder outside it so inputs are never overwritten")
    inputs = {f.resolve() for f in files}
    pairs = _unique([(f, out / f.relative_to(root).with_suffix(output_suffix(f, fmt)))
                     for f in files])
    for _, dst in pairs:
        if dst.resolve() in inputs:
            raise UsageError(f"{dst} would overwrite an input")
    return pairs


def _unique(pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """One output per input: inputs that would share an output name (photo.png and
    photo.gif both becoming photo.png) keep their own extension in it (photo_gif.png), and
    a number when that name is taken too (by photo_gif.png's own output: photo_gif_2.png).
    Outputs that nobody shares keep their names."""
    count: dict[Path, int] = {}
    for _, dst in pairs:
        count[dst] = count.get(dst, 0) + 1
    taken = {dst for dst, n in count.items() if n == 1}
    out = []
    for src, dst in pairs:
        if count[dst] > 1:
            base = f"{dst.stem}_{src.suffix.lstrip('.').lower()}"
            dst, n = dst.with_name(base + dst.suffix), 1
            while dst in taken:
                n += 1
                dst = dst.with_name(f"{base}_{n}{dst.suffix}")
            taken.add(dst)
        out.append((src, dst))
    return out


def remove_stale_temporaries(outputs: list[Path]) -> None:
    """Remove the temporary files (``.NAME.*.tmp``) that a killed run left beside the
    outputs it was writing; this run writes those outputs again."""
    for dst in outputs:
        if dst.parent.is_dir():
            for tmp in dst.parent.glob(f".{glob.escape(dst.name)}.*.tmp"):
                tmp.unlink(missing_ok=True)


def renamed(jobs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """The jobs whose output name is not the input's stem (see :func:`_unique`)."""
    return [(src, dst) for src, dst in jobs if dst.stem != src.stem]


class _Decode(Dataset):
    """Decodes in loader workers: (index, rgb, alpha, error). With ``device_jpeg``, plain
    JPEGs come as their bytes (:class:`EncodedJpeg`) in place of ``rgb``, to be decoded on
    the device."""

    def __init__(self, jobs: list[tuple[Path, Path]], device_jpeg: bool = False,
                 max_pixels: int = CONVERT_MAX_PIXELS):
        self.jobs = jobs
        self.device_jpeg = device_jpeg
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int):
        src = self.jobs[i][0]
        if is_video_file(src):
            return i, VIDEO, None, None  # decoded frame by frame in the main process
        if not is_image_file(src):
            return i, None, None, "not an image file (unknown extension)"
        try:
            if self.device_jpeg:
                image_size(src, self.max_pixels)  # load_image checks this on the host path
                encoded = read_jpeg(src)
                if encoded is not None:
                    return i, encoded, None, None
            rgb, alpha = load_image(src, self.max_pixels)
        except ImageError as err:
            return i, None, None, _with_hint(err.reason)
        return i, rgb, alpha, None


def _with_hint(reason: str) -> str:
    """A reason for leaving a file out, with the option that lifts a size limit."""
    return reason + (" (--max-megapixels raises the limit)" if "megapixels" in reason else "")


class _Writer:
    """Encodes in worker processes with a bounded number of images in flight.

    The encoders ignore SIGTERM (:func:`loader_process_setup`) and are stopped by the main
    process, as the loaders are: an encoder that died of a SIGTERM sent to the whole group
    while the main process was still sending it an image would leave the pool's feeder
    thread blocked on a full pipe, and the shutdown waiting on it for ever."""

    def __init__(self, workers: int):
        self.pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                         initializer=loader_process_setup)
                     if workers > 0 else None)
        self.pending: list[Future] = []
        self.limit = max(2, 4 * workers)

    def submit(self, *args, **options) -> None:
        """:func:`~translate.images.save_image` (``*args``, ``**options``) in a worker."""
        if self.pool is None:
            save_image(*args, **options)
            return
        while len(self.pending) >= self.limit:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(save_image, *args, **options))

    def close(self, cancel: bool = False) -> None:
        """Wait for the images in flight; with ``cancel`` (Ctrl-C), only for those being
        written now (each output is complete or absent either way)."""
        if not cancel:
            for f in self.pending:
                f.result()
        self.pending = []
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


def plan_jobs(input_spec: str | Path, output_dir: str | Path, options: Options
              ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(source, destination) pairs to convert, and the destinations skipped because they
    exist already (with ``options.skip_existing``). Existing destinations without
    ``skip_existing`` or ``overwrite``: :class:`UsageError`, before anything is written."""
    jobs = plan(input_spec, output_dir, options.format)
    exists = [dst.exists() for _, dst in jobs]
    if options.overwrite or not any(exists):
        return jobs, []
    if not options.skip_existing:
        found = [dst for (_, dst), e in zip(jobs, exists) if e]
        names = ", ".join(str(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
        raise UsageError(f"{len(found)} output(s) already exist ({names}); add --skip-existing "
                         "to keep them and convert the rest, or --overwrite to replace them "
                         "(nothing was written)")
    return ([job for job, e in zip(jobs, exists) if not e],
            [dst for (_, dst), e in zip(jobs, exists) if e])


def convert(engine, input_spec: str | Path, output_dir: str | Path,
            options: Options | None = None, progress: bool = True,
            planned: tuple[list[tuple[Path, Path]], list[Path]] | None = None) -> Report:
    """Translate every image under ``input_spec`` into ``output_dir``.

    ``engine`` is a :class:`~translate.infer.engine.Translator` (or anything with its
    ``__call__``, ``translate_array`` and ``tile_size``). ``planned``: (jobs, skipped) to use
    instead of :func:`plan_jobs`, for callers that split one plan between processes
    (:func:`translate.infer.shared.convert_shared`).
    """
    options = options or Options()
    jobs, skipped = (planned if planned is not None
                     else plan_jobs(input_spec, output_dir, options))
    remove_stale_temporaries([dst for _, dst in jobs])
    report = _Conversion(engine, jobs, options, progress).run(skipped)
    report.renamed = renamed(jobs)
    return report


def helper_processes(device: torch.device) -> int:
    """Decoder and encoder processes (each) when ``--workers`` is not given: 2, except on
    a CPU with 2 cores or fewer, where they share the cores with the network's threads and
    cost more than they overlap. Measured there (AMD EPYC, 2 cores, the shipped
    real2anime, default precision): eight 1 MP photos to JPEG in 2.2 s without helpers
    against 3.2 s with 2, to PNG 2.6 s against 3.3 s, one 12 MP photo 5.7 s against 6.1 s."""
    if device.type != "cpu":
        return 2
    return 0 if cores_per_process() <= 2 else 2


class _Conversion:
    """One conversion's pipeline: decode (loader workers, or nvJPEG on CUDA), batch images of
    equal size, translate (tiled when large), encode (writer processes, or nvJPEG); a file
    that fails is reported and skipped. On CUDA the model works on one batch while the
    previous one is written."""

    def __init__(self, engine, jobs: list[tuple[Path, Path]], options: Options,
                 progress: bool):
        self.engine, self.jobs, self.options = engine, jobs, options
        self.report = Report()
        self.device = getattr(engine, "device", torch.device("cpu"))
        self.device_codec = (self.device.type == "cuda" if options.device_codec is None
                             else options.device_codec)
        self.bar = tqdm(total=len(jobs), disable=not progress, unit="img", desc="convert",
                        file=sys.stderr, dynamic_ncols=True)
        self.batch: list[tuple[int, np.ndarray | EncodedJpeg, np.ndarray | None]] = []
        self.in_flight: list[_Launched] = []
        self.writer: _Writer | None = None
        self.buffers = HostBuffers(pinned=self.device.type == "cuda")
        self._side: torch.cuda.Stream | None = None

    def run(self, skipped: list[Path]) -> Report:
        self.report.skipped = skipped
        start = time.perf_counter()
        workers = (helper_processes(self.device) if self.options.workers is None
                   else self.options.workers)
        loader = DataLoader(_Decode(self.jobs, self.device_codec, self.options.max_pixels),
                            batch_size=None, worker_init_fn=loader_process_setup,
                            num_workers=workers, collate_fn=lambda x: x,
                            prefetch_factor=8 if workers else None)
        self.writer = _Writer(workers)
        decoded = iter(loader)
        try:
            for i, rgb, alpha, error in decoded:
                if error is not None:
                    self.fail(i, error)
                elif isinstance(rgb, str) and rgb == VIDEO:
                    self.video(i)
                elif self.options.face:
                    self.face(i, rgb, alpha)
                elif self.engine.tile_size(*rgb.shape[:2], self.options.tile):
                    self.tiled(i, rgb, alpha)
                else:
                    self.add(i, rgb, alpha)
            self.flush(drain=True)
        except KeyboardInterrupt:
            self.writer.close(cancel=True)
            raise
        finally:
            stop_loader(decoded)
            self.bar.close()
            self.writer.close()
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _on_host(self, i: int, rgb, alpha):
        """(rgb, alpha) as arrays: a JPEG kept for the device decoder is decoded here."""
        if isinstance(rgb, EncodedJpeg):
            try:
                return load_image(self.jobs[i][0])
            except ImageError as err:
                self.fail(i, err.reason)
                return None, None
        return rgb, alpha

    def _tile_bar(self, i: int):
        """A progress callback drawing a bar over the tiles of image ``i`` (or None)."""
        if not self.options.tile_progress or self.bar.disable:
            return None
        bar = tqdm(total=0, unit="tile", desc=self.jobs[i][0].name, leave=False,
                   file=sys.stderr, dynamic_ncols=True)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()
            if done >= total:
                bar.close()
        return update

    def tiled(self, i: int, rgb: np.ndarray | EncodedJpeg, alpha: np.ndarray | None) -> None:
        """Translate a large image alone, in tiles (after the batches before it)."""
        self.flush(drain=True)
        rgb, alpha = self._on_host(i, rgb, alpha)
        if rgb is None:
            return
        o = self.options
        self.emit(i, self.engine.translate_array(rgb, o.tile, o.overlap, o.batch_size,
                                                 progress=self._tile_bar(i)), alpha)

    def video(self, i: int) -> None:
        """A video, frame by frame with its own bar (frames/s, ETA), after the batches
        before it; a video that cannot be read is reported like an image."""
        self.flush(drain=True)
        src, dst = self.jobs[i]
        bar = tqdm(total=None, unit="frame", desc=src.name, leave=False, file=sys.stderr,
                   dynamic_ncols=True, disable=self.bar.disable)

        def update(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)
        o = self.options
        options = replace(o.video, batch_size=o.batch_size, tile=o.tile, overlap=o.overlap)
        try:
            stats = convert_video(self.engine, src, dst, options, update,
                                  VideoLimits(max_pixels=o.max_pixels))
        except VideoError as err:
            return self.fail(i, _with_hint(err.reason))
        finally:
            bar.close()
        self.report.videos.append((src, stats))
        self.report.written.append(dst)
        self.bar.update(1)

    def face(self, i: int, rgb: np.ndarray | EncodedJpeg, alpha: np.ndarray | None) -> None:
        """Face mode: the largest face, cropped or pasted back; the whole image (noted in
        the report) when there is none."""
        from translate.infer.faces import FACE_SIZE, NO_FACE, translate_face

        self.flush(drain=True)
        rgb, alpha = self._on_host(i, rgb, alpha)
        if rgb is None:
            return
        size = int(self.engine.info.get("card", {}).get("face_size") or FACE_SIZE)
        result = translate_face(self.engine, rgb, self.options.face, size)
        src = self.jobs[i][0]
        if result is None:
            self.report.no_face.append(src)
            self.report.faces.append((src, NO_FACE))
            return self.tiled(i, rgb, alpha)
        self.report.faces.append((src, result.describe()))
        self.emit(i, result.image, result.alpha(alpha))

    def add(self, i: int, rgb: np.ndarray | EncodedJpeg, alpha: np.ndarray | None) -> None:
        """Batch an image with the ones before it if they share its kind and size."""
        first = self.batch[0][1] if self.batch else None
        if first is not None and (type(first) is not type(rgb) or first.shape != rgb.shape):
            self.flush()
        self.batch.append((i, rgb, alpha))
        if len(self.batch) >= self.options.batch_size:
            self.flush()

    def fail(self, i: int, reason: str) -> None:
        self.report.failed.append((self.jobs[i][0], reason))
        self.bar.update(1)

    def emit(self, i: int, out: np.ndarray | bytes, alpha: np.ndarray | None) -> None:
        """Write image ``i``: a uint8 (H, W, C) array, or the JPEG file's bytes."""
        src, dst = self.jobs[i]
        if alpha is not None and dst.suffix.lower() not in ALPHA_FORMATS:
            self.report.alpha_dropped.append(dst)
            alpha = None
        if isinstance(out, bytes):
            atomic_write(dst, lambda tmp: Path(tmp).write_bytes(out))
        else:
            self.writer.submit(out, dst, quality=self.options.quality, alpha=alpha,
                               png_level=self.options.png_level)
        self.report.written.append(dst)
        self.bar.update(1)

    def decode_on_device(self, items: list) -> tuple[list, torch.Tensor | None]:
        """uint8 (N, 3, H, W) on the device for JPEG items; a batch the device decoder
        rejects is retried image by image, then on the CPU, and what fails there too is
        reported."""
        try:
            return items, decode_jpegs([p for _, p, _ in items], self.device)
        except RuntimeError:
            pass
        kept, images = [], []
        for item in items:
            try:
                image = decode_jpegs([item[1]], self.device)[0]
            except RuntimeError:
                try:
                    rgb, _ = load_image(self.jobs[item[0]][0])
                except ImageError as err:
                    self.fail(item[0], err.reason)
                    continue
                image = torch.from_numpy(rgb).permute(2, 0, 1).to(self.device)
            kept.append(item)
            images.append(image)
        return kept, torch.stack(images) if images else None

    def launch(self, items: list) -> _Launched | None:
        """Start translating ``items``; on CUDA this returns before the results are back.
        Images travel to the device as uint8 (a quarter of float32's bytes), through a
        reused pinned buffer on CUDA, and become floats there."""
        if isinstance(items[0][1], EncodedJpeg):
            items, images = self.decode_on_device(items)
            if images is None:
                return None
        else:
            host = self.buffers.get((len(items), *items[0][1].shape))
            for k, (_, rgb, _) in enumerate(items):
                host[k].copy_(torch.from_numpy(rgb))
            images = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).contiguous()
        images = to_uint8_batch(self.engine(input_from_uint8(images, self.engine.in_channels)))
        if images.device.type != "cuda":
            return _Launched(items, images)
        ready = torch.cuda.Event()
        ready.record()
        on_device = [k for k, (i, _, _) in enumerate(items)
                     if self.device_codec and images.shape[1] == 3
                     and self.jobs[i][1].suffix.lower() in JPEG_SUFFIXES]
        host = None
        if len(on_device) < len(items):
            host = self.buffers.get(tuple(images.permute(0, 2, 3, 1).shape))
            host.copy_(images.permute(0, 2, 3, 1), non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return _Launched(items, images, host, done, on_device, ready)

    def finish(self, launched: _Launched) -> None:
        """Hand a launched batch's results to the writers. On CUDA, JPEG outputs are
        encoded on a side stream that waits only for this batch's results, not for the
        batch launched after it."""
        if launched.done is None:  # the CPU: results are complete
            for (i, _, alpha), y in zip(launched.items, launched.output):
                self.emit(i, y.permute(1, 2, 0).numpy(), alpha)
            return
        encoded = {}
        if launched.on_device:
            side = self.side_stream()
            with torch.cuda.stream(side):
                side.wait_event(launched.ready)
                encoded = dict(zip(launched.on_device,
                                   encode_jpegs(launched.output[launched.on_device],
                                                self.options.quality)))
        launched.done.synchronize()
        for k, (i, _, alpha) in enumerate(launched.items):
            # a copy: the pinned buffer is reused while the writers may still be reading
            self.emit(i, encoded[k] if k in encoded else launched.host[k].numpy().copy(),
                      alpha)

    def side_stream(self) -> torch.cuda.Stream:
        if self._side is None:
            self._side = torch.cuda.Stream(self.device)
        return self._side

    def flush(self, drain: bool = False) -> None:
        """Launch the collected self.batch, then finish the one launched before it, so that on
        CUDA the model works on one self.batch while the previous one is written."""
        launched = self.launch(list(self.batch)) if self.batch else None
        self.batch.clear()
        while self.in_flight:
            self.finish(self.in_flight.pop(0))
        if launched is not None:
            if launched.done is None or drain:  # CPU results are complete already
                self.finish(launched)
            else:
                self.in_flight.append(launched)


@dataclass
class _Launched:
    """A batch whose translation was started: its items, the output (uint8 (N, C, H, W)),
    and on CUDA the pinned host copy, the event that marks its arrival, the positions to
    encode on the device and the event that marks the output complete on the device."""
    items: list
    output: torch.Tensor
    host: torch.Tensor | None = None
    done: torch.cuda.Event | None = None
    on_device: list[int] = field(default_factory=list)
    ready: torch.cuda.Event | None = None


class HostBuffers:
    """Reused uint8 host tensors, one ring of ``depth`` per shape, pinned on CUDA
    (page-locked memory is slow to allocate). A buffer comes round again only after
    ``depth - 1`` others of its shape: the conversion keeps at most one batch in flight
    while it fills the next, so depth 2 never overwrites a buffer still being copied.
    Only the ``shapes`` most recently used shapes are kept."""

    def __init__(self, pinned: bool, depth: int = 2, shapes: int = 4):
        self.pinned, self.depth, self.shapes = pinned, depth, shapes
        self.rings: dict[tuple, list[torch.Tensor]] = {}

    def get(self, shape: tuple) -> torch.Tensor:
        ring = self.rings.pop(shape, None)
        if ring is None:
            ring = [torch.empty(shape, dtype=torch.uint8, pin_memory=self.pinned)
                    for _ in range(self.depth)]
        self.rings[shape] = ring  # now the most recently used
        while len(self.rings) > self.shapes:
            self.rings.pop(next(iter(self.rings)))
        ring.append(ring.pop(0))
        return ring[-1]


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))
