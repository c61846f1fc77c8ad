"""What the demo does with an upload, free of any web framework: check it against the limits,
decode it, translate it at its own size, blend with the input, and write PNGs and zips.

Every problem with an upload is an :class:`InputError` whose message is meant for the
person who uploaded it; nothing here touches files other than the upload it is given and
the demo's own output folder.
"""

from __future__ import annotations

import base64
import ctypes
import gc
import io
import re
import shutil
import tempfile
import time
import uuid
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image

from translate.files import atomic_write
from translate.images import (ImageError, TooLarge, image_size, load_image, save_image,
                              to_channels)
from translate.infer.faces import NO_FACE, translate_face


class InputError(ValueError):
    """An upload the demo refuses; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 20 * 2**20     # per uploaded file (and per image inside a zip)
    max_pixels: int = 40_000_000         # width x height; larger images are refused unread
    max_batch_images: int = 64           # images per batch (files plus zip members)
    max_zip_bytes: int = 200 * 2**20     # uncompressed total of the images in one zip
    max_video_bytes: int = 100 * 2**20   # per video file
    max_video_seconds: float = 60.0      # per video; its frames obey max_pixels
    max_video_frame_rate: float = 60.0   # frames per second of max_video_seconds
    max_video_job_seconds: float = 600.0  # a clip is stopped after this (wall time)
    max_batch_pixels: int = 80_000_000   # all images of one batch together
    max_batch_seconds: float = 120.0     # a batch starts no image after this
    upload_bytes_per_minute: int = 200 * 2**20  # per client, every request body counted
    upload_files_per_minute: int = 500   # per client
    max_files_per_request: int = 100     # files in one upload
    max_upload_folder_bytes: int = 2 * 2**30    # disk used by uploads and results
    max_upload_folder_files: int = 20_000       # files there
    max_hub_bytes: int = 512 * 2**20     # a Hub file the page may fetch (hf:// in the box)
    max_hub_models: int = 8              # Hub models fetched by the page kept at once
    hub_fetches_per_hour: int = 6        # per client

    def describe(self) -> str:
        return (f"up to {self.max_file_bytes / 2**20:g} MB and "
                f"{self.max_pixels / 1e6:g} megapixels per image")

    def describe_video(self) -> str:
        return (f"clips up to {self.max_video_bytes / 2**20:g} MB and "
                f"{self.max_video_seconds:g} s")

    @property
    def largest_upload(self) -> int:
        """What the server accepts at all; each kind of file is checked against its own."""
        return max(self.max_file_bytes, self.max_video_bytes)

    @property
    def max_request_bytes(self) -> int:
        """The body of any request but an upload: an API call that carries an image as a
        base64 data URL (4/3 of its bytes) and its other fields."""
        return self.max_file_bytes * 4 // 3 + 2**20

    @property
    def max_video_frames(self) -> int:
        return int(self.max_video_seconds * self.max_video_frame_rate)


Source = Path | bytes


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f}" if n >= 1e5 else f"{n / 1e6:.3f}"


def read_image(source: Source, name: str, limits: Limits
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an upload to (uint8 RGB (H, W, 3), alpha (H, W) or None), EXIF orientation
    applied. Refuses files above ``limits.max_file_bytes`` and images above
    ``limits.max_pixels`` (from the header alone, so decompression bombs are never
    decoded)."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > limits.max_file_bytes:
        raise InputError(f"{name} is {size / 2**20:.1f} MB; this demo accepts "
                         f"{limits.describe()}")

    def opened() -> Path | BinaryIO:
        return source if isinstance(source, Path) else io.BytesIO(source)

    try:
        with warnings.catch_warnings():  # the header is all we read; the limit is below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            w, h = image_size(opened())
        if w * h > limits.max_pixels:
            raise InputError(f"{name} is {w} x {h} pixels ({_megapixels(w * h)} megapixels);"
                             f" this demo accepts {limits.describe()}")
        return load_image(opened())
    except TooLarge as err:  # beyond what the decoder opens at all: still a size
        size = f" ({_megapixels(err.pixels)} megapixels)" if err.pixels else ""
        raise InputError(f"{name} is larger than this demo accepts{size}; it accepts "
                         f"{limits.describe()}") from None
    except (ImageError, Image.DecompressionBombError):
        raise InputError(f"{name} is not an image this demo can read (not an image file, "
                         "or damaged)") from None


def decode_data_url(url: str, limits: Limits) -> bytes:
    """The bytes of a ``data:...;base64,`` URL, refusing ones above the upload limit."""
    head, _, data = url.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        raise InputError("the upload is neither a file nor a base64 data URL")
    if len(data) * 3 // 4 > limits.max_file_bytes:
        raise InputError(f"the pasted image is too large; this demo accepts "
                         f"{limits.describe()}")
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise InputError("the pasted image is not valid base64 data") from None


def blend(translated: np.ndarray, rgb: np.ndarray, strength: float) -> np.ndarray:
    """uint8 (H, W, 3) ``strength`` * translated + (1 - strength) * input; strength in
    [0, 1] (1: the model's output unchanged, 0: the input unchanged)."""
    if strength >= 1:
        return translated
    if strength <= 0:
        return rgb
    mixed = translated.astype(np.float32) * strength + rgb.astype(np.float32) * (1 - strength)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def check_strength(strength) -> float:
    if strength is None:
        return 1.0
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise InputError(f"strength must be a number from 0 to 1, not {strength!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"strength must be from 0 to 1, not {value:g}")
    return value


def translate_rgb(translator, rgb: np.ndarray, strength: float, progress=None) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 RGB (H, W, 3) at the same size; large images are tiled
    by the engine (:meth:`translate.infer.engine.Engine.translate_array`), which reports
    ``progress(tiles done, tiles)``."""
    out = to_channels(translator.translate_array(rgb, progress=progress), 3)
    return blend(out, rgb, strength)


FACE_MODES = ("off", "crop", "paste")


@dataclass
class Translated:
    """One translated upload: the PNG, the input it is to be compared with (the face square
    in face mode ``crop``), and a note for the person (no face found, ...)."""
    png: Path
    before: Path | None = None
    note: str = ""


def check_face(face) -> str:
    value = "off" if face in (None, "", False) else str(face)
    if value not in FACE_MODES:
        raise InputError(f"face mode must be one of {', '.join(FACE_MODES)}, not {face!r}")
    return value


def translate_face_upload(translator, rgb: np.ndarray, alpha: np.ndarray | None,
                          strength: float, face: str, face_size: int, progress=None):
    """Face mode on one image: (output, its alpha, the input it compares with, note)."""
    result = translate_face(translator, rgb, face, face_size, progress)
    if result is None:
        return translate_rgb(translator, rgb, strength, progress), alpha, rgb, NO_FACE
    before = rgb if face == "paste" else result.square
    return (blend(result.image, before, strength), result.alpha(alpha), before,
            result.describe())


def safe_stem(name: str) -> str:
    """A file-name stem made only of letters, digits, '-', '_' and '.' (at most 60)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "image"
    return stem[:60]


class OutputFolder:
    """The demo's own output files: one fresh subfolder per request, removed after
    ``max_age`` seconds (and with the folder when the demo stops)."""

    def __init__(self, root: str | Path | None = None, max_age: float = 900.0):
        self.root = Path(root or tempfile.mkdtemp(prefix="translate-demo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age

    def new(self) -> Path:
        self.sweep()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def sweep(self) -> None:
        cutoff = time.time() - self.max_age
        for sub in self.root.iterdir():
            try:
                if sub.stat().st_mtime < cutoff:
                    shutil.rmtree(sub, ignore_errors=True)
            except FileNotFoundError:
                pass

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def release_memory() -> None:
    """Hand the memory a large request freed back to the system (glibc's allocator keeps it
    for the process otherwise: hundreds of MB after a large image)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def translate_one(translator, source: Source, name: str, strength: float, limits: Limits,
                  out_dir: Path, suffix: str, face: str = "off", face_size: int = 512,
                  progress=None) -> Translated:
    """Translate one upload and write ``out_dir/<stem>_<suffix>.png`` (alpha kept: the face
    square's for a face crop). ``face``: off, crop or paste (:mod:`translate.infer.faces`)."""
    rgb, alpha = read_image(source, name, limits)
    target = out_dir / f"{safe_stem(name)}_{suffix}.png"
    if face == "off":
        out = translate_rgb(translator, rgb, strength, progress)
        return Translated(save_image(out, target, alpha=alpha))
    out, alpha, before, note = translate_face_upload(translator, rgb, alpha, strength, face,
                                                     face_size, progress)
    return Translated(save_image(out, target, alpha=alpha),
                      save_image(before, out_dir / "before.png"), note)


# ----------------------------------------------------------------------------- batches

@dataclass
class BatchResult:
    written: list[tuple[Path, str]] = field(default_factory=list)   # (png, original name)
    failed: list[tuple[str, str]] = field(default_factory=list)     # (name, reason)
    archive: Path | None = None
    before: dict[Path, Path] = field(default_factory=dict)  # png -> its input's preview


PREVIEW_SIDE = 1024  # px: the longer side of a batch input's preview (JPEG)


def write_preview(rgb: np.ndarray, path: Path, side: int = PREVIEW_SIDE) -> Path:
    """A JPEG of uint8 RGB ``rgb`` at most ``side`` pixels on its longer side, for the
    page to show beside its translation."""
    image = Image.fromarray(to_channels(rgb, 3))
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return save_image(np.asarray(image), path, quality=90)


def batch_items(paths: list[Path], names: list[str], limits: Limits, result: BatchResult
                ) -> list[tuple[str, Source]]:
    """(name, source) for every image among the uploads, zips opened in memory. Zip members
    are read by name only (never extracted to their paths); entries beyond the limits are
    recorded in ``result.failed``."""
    items: list[tuple[str, Source]] = []
    for path, name in zip(paths, names):
        if not zipfile.is_zipfile(path):
            items.append((name, path))
            continue
        try:
            items += _zip_members(path, name, limits, result)
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            result.failed.append((name, f"not a readable zip ({err})"))
    if len(items) > limits.max_batch_images:
        for label, _ in items[limits.max_batch_images:]:
            result.failed.append((label, f"more than {limits.max_batch_images} images in "
                                  "one batch; left out"))
        items = items[:limits.max_batch_images]
    return items


def _zip_members(path: Path, name: str, limits: Limits, result: BatchResult
                 ) -> list[tuple[str, bytes]]:
    """The image members of one uploaded zip, read into memory; a member that cannot be
    read (damaged, encrypted, an unknown compression) is recorded and the others kept."""
    items: list[tuple[str, bytes]] = []
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            member = info.filename
            if (info.is_dir() or Path(member).name.startswith(".")
                    or "__MACOSX" in Path(member).parts):
                continue
            label = f"{name}/{member}"
            if info.file_size > limits.max_file_bytes:
                result.failed.append((label, f"{info.file_size / 2**20:.1f} MB; the limit "
                                      f"is {limits.max_file_bytes / 2**20:g} MB"))
                continue
            total += info.file_size
            if total > limits.max_zip_bytes:
                result.failed.append((label, "the zip holds more than "
                                      f"{limits.max_zip_bytes / 2**20:g} MB of files; "
                                      "the rest was left out"))
                break
            try:
                items.append((label, archive.read(info)))
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError,
                    EOFError, ValueError, zlib.error) as err:  # RuntimeError: encrypted
                result.failed.append((label, f"cannot be read from the zip ({err})"))
    return items


class _Budget:
    """What one batch may still use of the model: pixels (``max_batch_pixels``) and time
    (``max_batch_seconds``), so that no batch holds the one model slot for long."""

    def __init__(self, limits: Limits):
        self.pixels, self.start = 0, time.monotonic()

    def refusal(self, source: Source, name: str, limits: Limits) -> str | None:
        """Why the image ``source`` is left out, or None (its pixels are then counted)."""
        if time.monotonic() - self.start > limits.max_batch_seconds:
            return (f"left out: the batch ran for more than {limits.max_batch_seconds:g} s; "
                    "send the rest in another batch")
        try:
            w, h = image_size(io.BytesIO(source) if isinstance(source, bytes) else source)
        except ImageError:
            return None  # reported when it is read
        if self.pixels + w * h > limits.max_batch_pixels:
            return (f"left out: one batch translates at most "
                    f"{limits.max_batch_pixels / 1e6:g} megapixels in all; send the rest in "
                    "another batch")
        self.pixels += w * h
        return None


def run_batch(translator, paths: list[Path], names: list[str], strength: float,
              limits: Limits, out_dir: Path, suffix: str,
              progress: Callable[[int, int, str], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> BatchResult:
    """Translate every image among the uploads (files and zips) into ``out_dir``, then zip
    the results into ``out_dir/results.zip``. A bad file is recorded and skipped; the batch
    stops when ``cancelled()`` says its client went away."""
    result = BatchResult()
    items = batch_items(paths, names, limits, result)
    taken: set[str] = set()
    budget = _Budget(limits)
    for i, (name, source) in enumerate(items):
        if cancelled is not None and cancelled():
            print(f"batch: stopped after {i} of {len(items)} images: the client went away",
                  flush=True)
            break
        if progress:
            progress(i, len(items), name)
        why = budget.refusal(source, name, limits)
        if why:
            result.failed.append((name, why))
            continue
        stem = safe_stem(name)
        unique, n = stem, 1
        while unique in taken:
            n += 1
            unique = f"{stem}_{n}"
        taken.add(unique)
        try:
            rgb, alpha = read_image(source, name, limits)
            out = translate_rgb(translator, rgb, strength)
        except InputError as err:
            result.failed.append((name, str(err)))
            continue
        except (RuntimeError, MemoryError) as err:  # out of memory on the device, ...
            result.failed.append((name, f"the model failed on this image ({err})"))
            continue
        png = save_image(out, out_dir / "images" / f"{unique}_{suffix}.png", alpha=alpha)
        result.written.append((png, name))
        result.before[png] = write_preview(rgb, out_dir / "before" / f"{unique}.jpg")
    if progress:
        progress(len(items), len(items), "")
    if result.written:
        def write(tmp: str) -> None:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
                for png, _ in result.written:
                    archive.write(png, png.name)
        result.archive = atomic_write(out_dir / f"results_{suffix}.zip", write)
    return result


# ----------------------------------------------------------------------------- videos

def check_video(path: Path, name: str, limits: Limits) -> None:
    """Refuse a clip above the size, duration or frame-size limits, or one that is not a
    video, from its header (nothing is decoded)."""
    import av

    size = path.stat().st_size
    if size > limits.max_video_bytes:
        raise InputError(f"{name} is {size / 2**20:.1f} MB; this demo accepts "
                         f"{limits.describe_video()}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            seconds = (container.duration / 1e6 if container.duration
                       else float((stream.duration or 0) * (stream.time_base or 0)))
    except (av.error.FFmpegError, IndexError, OSError, UnicodeDecodeError):
        raise InputError(f"{name} is not a video this demo can read (not a video file, or "
                         "damaged)") from None
    if seconds > limits.max_video_seconds:
        raise InputError(f"{name} lasts {seconds:.0f} s; this demo accepts "
                         f"{limits.describe_video()}")
    if w * h > limits.max_pixels:
        raise InputError(f"{name} has {w} x {h} frames; this demo accepts "
                         f"{limits.max_pixels / 1e6:g} megapixels per frame")


def translate_video(translator, path: Path, name: str, limits: Limits, out_dir: Path,
                    temporal: int = 0, progress=None, cancelled=None):
    """Translate one uploaded clip into ``out_dir/<stem>_translated.mp4`` (H.264, the
    sound copied); returns (its path, its
    :class:`~translate.infer.video.VideoStats`); ``progress(frames done, frames
    expected)``. The header is checked first
    (:func:`check_video`); while the clip is decoded, every frame's size, the frame count,
    the duration and the wall time are held to ``limits``, and ``cancelled()`` (the client
    went away) stops it too: :class:`InputError` either way, nothing written."""
    from translate.infer.video import (VideoError, VideoLimits, VideoOptions, VideoStopped,
                                       convert_video)

    check_video(path, name, limits)
    target = out_dir / f"{safe_stem(name)}_translated.mp4"
    bounds = VideoLimits(max_pixels=limits.max_pixels, max_frames=limits.max_video_frames,
                         max_duration=limits.max_video_seconds,
                         max_seconds=limits.max_video_job_seconds, cancelled=cancelled)
    try:
        stats = convert_video(translator, path, target, VideoOptions(temporal=temporal),
                              progress, bounds)
    except VideoStopped as err:
        print(f"video {name}: stopped: {err.reason}", flush=True)  # the server's log
        raise InputError(f"{name} was not translated: {err.reason}; this demo accepts "
                         f"{limits.describe_video()}, {limits.max_pixels / 1e6:g} megapixels "
                         f"per frame and {limits.max_video_job_seconds:g} s of work per "
                         "clip") from None
    except VideoError as err:
        raise InputError(f"{name}: {err.reason}") from None
    return target, stats
