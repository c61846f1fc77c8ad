"""Video files: decoded and encoded with PyAV (whose wheels bundle FFmpeg), translated frame
by frame with the engine that converts images.

:func:`convert_video` reads any container and codec FFmpeg reads, translates the frames in
batches of equal size (large frames in tiles, as images), and writes H.264 (yuv420p, CRF 18
by default) at the source's size and frame rate. Every frame keeps its presentation
timestamp, so a variable frame rate stays as it was, and the audio streams are copied
packet by packet, unchanged. A rotated clip (display-matrix metadata, as phones write it) is
turned upright before translation and written upright. Odd widths and heights, which
yuv420p cannot hold, get one replicated column or row. The file is written atomically:
a killed run leaves no partial output under the final name.

Temporal smoothing (``temporal`` = N > 0) blends each output frame with the previous output
where the input barely changed (a per-pixel weight N/(N+1) where the input moved by less
than :data:`STILL` of the range, falling to 0 at twice that), which removes flicker in still
areas and leaves motion alone. Flicker is measured as the mean absolute frame-to-frame change
of the output over that of the input (1: as much change as the input has).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from translate.errors import UserError
from translate.files import atomic_write
from translate.images import to_channels, to_tensor, to_uint8

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg",
                            ".mpeg", ".ts", ".wmv", ".flv", ".3gp"})
CODECS = ("libx264", "mpeg4", "libvpx-vp9")
STILL = 0.03


class VideoError(UserError):
    """A video that cannot be read or written; ``path`` and ``reason``."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(src: Path) -> str:
    """Matroska input stays Matroska (it holds any audio codec); everything else is MP4."""
    return ".mkv" if src.suffix.lower() in (".mkv", ".webm") else ".mp4"


@dataclass
class VideoStats:
    """What converting one video did: frames written, its duration (s), the source frame
    rate, the wall time (s) and the flicker ratio of the output (None for one frame)."""
    frames: int = 0
    duration: float = 0.0
    fps: float = 0.0
    seconds: float = 0.0
    flicker: float | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _av():
    try:
        import av
    except ImportError:
        raise UserError("video needs PyAV: pip install av") from None
    av.logging.set_level(av.logging.ERROR)
    return av


class _Smoother:
    """Temporal smoothing and the flicker figure of one video (see the module docstring)."""

    def __init__(self, strength: int):
        self.keep = strength / (strength + 1) if strength > 0 else 0.0
        self.prev_in = self.prev_out = None
        self.change_in = self.change_out = 0.0

    def __call__(self, rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
        x, y = rgb.astype(np.float32), out.astype(np.float32)
        if self.prev_in is not None:
            moved = np.abs(x - self.prev_in).mean(axis=2, keepdims=True)  # (H, W, 1), 0-255
            if self.keep:
                w = self.keep * np.clip(2 - moved / (255 * STILL), 0, 1)
                y = w * self.prev_out + (1 - w) * y
            self.change_in += float(moved.mean())
            self.change_out += float(np.abs(y - self.prev_out).mean())
        self.prev_in, self.prev_out = x, y
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)

    def flicker(self) -> float | None:
        return self.change_out / self.change_in if self.change_in else None


@dataclass
class VideoOptions:
    """How videos are written: frames per batch, tiling as for images, the encoder
    (``codec``, ``crf``: lower is better and larger, 18 is visually lossless for H.264) and
    temporal smoothing (0: off)."""
    batch_size: int = 4
    tile: int = 0
    overlap: int = 64
    crf: int = 18
    codec: str = "libx264"
    temporal: int = 0


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as it is meant to be seen (``rotation``: counter-clockwise degrees of the
    display matrix)."""
    turns = (int(round(rotation / 90)) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _even(rgb: np.ndarray) -> np.ndarray:
    """yuv420p needs an even width and height: replicate the last column or row."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 \
        else rgb


class _Transcoder:
    """One video: demux, decode, translate in batches, encode, mux (audio copied)."""

    def __init__(self, av, engine, inp, tmp: str, fmt: str, options: VideoOptions, progress):
        self.av, self.engine, self.inp, self.options = av, engine, inp, options
        self.progress = progress
        self.vs = inp.streams.video[0]
        self.vs.thread_type = "AUTO"
        self.audio = list(inp.streams.audio)
        self.out = av.open(tmp, "w", format=fmt)
        self.oas = {s.index: self.out.add_stream_from_template(s) for s in self.audio}
        self.ovs = None                       # made at the first frame: its upright size
        self.held: list = []                  # audio packets that came before it
        self.batch: list[tuple[int, np.ndarray]] = []
        self.smooth = _Smoother(options.temporal)
        rate = self.vs.average_rate or self.vs.guessed_rate or Fraction(25)
        self.rate = Fraction(rate)
        self.stats = VideoStats(fps=float(rate))
        self.last_pts = None

    def run(self) -> VideoStats:
        for packet in self.inp.demux(self.vs, *self.audio):
            if packet.stream.type == "video":
                for frame in packet.decode():
                    self.take(frame)
            elif packet.dts is not None:
                packet.stream = self.oas[packet.stream.index]
                self.held.append(packet) if self.ovs is None else self.out.mux(packet)
        if self.ovs is None:
            raise VideoError(self.inp.name, "no video frame could be decoded")
        self.translate_batch()
        self.out.mux(self.ovs.encode(None))
        self.out.close()
        tb = self.vs.time_base
        self.stats.duration = float((self.last_pts or 0) * tb + 1 / self.rate)
        self.stats.flicker = self.smooth.flicker()
        return self.stats

    def take(self, frame) -> None:
        rgb = _upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0))
        pts = frame.pts
        if pts is None:  # containers without timestamps: count frames
            pts = round(self.stats.frames / self.rate / self.vs.time_base)
        if self.ovs is None:
            self.open_output(*rgb.shape[:2])
        self.stats.frames += 1
        self.last_pts = pts
        if self.batch and self.batch[0][1].shape != rgb.shape:
            self.translate_batch()
        self.batch.append((pts, rgb))
        if len(self.batch) >= self.options.batch_size:
            self.translate_batch()

    def open_output(self, h: int, w: int) -> None:
        o = self.options
        self.ovs = self.out.add_stream(o.codec, rate=self.rate)
        self.ovs.width, self.ovs.height = w + w % 2, h + h % 2
        self.ovs.pix_fmt = "yuv420p"
        self.ovs.time_base = self.vs.time_base
        self.ovs.codec_context.time_base = self.vs.time_base
        if o.codec == "libx264":
            self.ovs.options = {"crf": str(o.crf), "preset": "medium"}
        elif o.codec == "libvpx-vp9":
            self.ovs.options = {"crf": str(o.crf), "b": "0"}
        for packet in self.held:
            self.out.mux(packet)
        self.held = []

    def translate_batch(self) -> None:
        """Translate the collected frames (large ones in tiles), smooth, encode, mux."""
        if not self.batch:
            return
        e, o = self.engine, self.options
        frames = [rgb for _, rgb in self.batch]
        h, w = frames[0].shape[:2]
        if e.tile_size(h, w, o.tile):
            outs = [to_channels(e.translate_array(f, o.tile, o.overlap, o.batch_size), 3)
                    for f in frames]
        else:
            x = torch.stack([to_tensor(to_channels(f, e.in_channels)) for f in frames])
            outs = [to_channels(to_uint8(y), 3) for y in e(x)]
        for (pts, rgb), out in zip(self.batch, outs):
            vf = self.av.VideoFrame.from_ndarray(_even(self.smooth(rgb, out)), format="rgb24")
            vf.pts, vf.time_base = pts, self.vs.time_base
            self.out.mux(self.ovs.encode(vf))
        self.batch = []
        if self.progress is not None:
            self.progress(self.stats.frames, self.expected_frames())

    def expected_frames(self) -> int | None:
        """The frame count the container announces, or duration x rate (None: unknown)."""
        if self.vs.frames:
            return int(self.vs.frames)
        if self.vs.duration and self.vs.time_base:
            return int(round(float(self.vs.duration * self.vs.time_base * self.rate)))
        return None


def convert_video(engine, src: str | Path, dst: str | Path,
                  options: VideoOptions | None = None, progress=None) -> VideoStats:
    """Translate the video ``src`` into ``dst`` (see the module docstring). ``progress
    (frames done, frames expected or None)`` is called after every batch. Raises
    :class:`VideoError` for a file that is not a readable video (nothing is written)."""
    av, options = _av(), options or VideoOptions()
    if options.codec not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}")
    start = time.perf_counter()
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(src, f"cannot read video ({err})") from None
    result: list[VideoStats] = []
    fmt = "matroska" if Path(dst).suffix.lower() == ".mkv" else "mp4"
    try:
        with inp:
            if not inp.streams.video:
                raise VideoError(src, "holds no video stream")

            def write(tmp: str) -> None:
                result.append(_Transcoder(av, engine, inp, tmp, fmt, options, progress).run())
            atomic_write(dst, write)
    except av.error.FFmpegError as err:
        raise VideoError(src, f"cannot convert this video ({err})") from None
    stats = result[0]
    stats.seconds = time.perf_counter() - start
    return stats
