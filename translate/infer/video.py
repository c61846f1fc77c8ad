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

Timestamps are written in a time base at least as fine as the source's (MPEG-4 Part 2
accepts denominators up to 65535, so an MPEG-TS clip's 1/90000 becomes 1/65535 there), and
each frame's is made later than the one before, so a source with repeated timestamps is
written in any container. :class:`VideoLimits` bounds one video: the pixels of every frame
(the stream's declared size before decoding, and the decoder refuses any larger frame), the
frames, the duration read from the timestamps while decoding, the wall time, and a
``cancelled`` check made at every frame. A clip whose frame size changes mid-stream is
refused with that reason (one stream holds one size).

Temporal smoothing (``temporal`` = N > 0) blends each output frame with the previous output
where the input barely changed (a per-pixel weight N/(N+1) where the input moved by less
than :data:`STILL` of the range, falling to 0 at twice that), which removes flicker in still
areas and leaves motion alone. Flicker is measured as the mean absolute frame-to-frame change
of the output over that of the input (1: as much change as the input has).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from translate.errors import UserError
from translate.files import WRITE_ERRORS, atomic_write
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


class VideoStopped(VideoError):
    """A video whose conversion was stopped by a limit of :class:`VideoLimits` or by its
    ``cancelled`` check; nothing was written."""


@dataclass
class VideoLimits:
    """Bounds on one video (None: no bound). ``max_pixels`` per frame; ``max_frames``;
    ``max_duration``: seconds of video, from the timestamps as they are decoded (a stream
    without a container duration is counted too); ``max_seconds``: wall time of the
    conversion; ``cancelled()``: checked at every frame, True stops the conversion (the
    client that asked for it went away)."""
    max_pixels: int | None = None
    max_frames: int | None = None
    max_duration: float | None = None
    max_seconds: float | None = None
    cancelled: Callable[[], bool] | None = None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} megapixels"


def output_time_base(time_base: Fraction, codec: str) -> Fraction:
    """The encoder's time base: ``time_base`` divided by the largest whole factor that keeps
    its denominator within 90000 (65535 for mpeg4, which accepts no more), so repeated
    source timestamps can be told apart; 1/65535 for mpeg4 when the source's is finer."""
    limit = 65535 if codec == "mpeg4" else 90000
    if time_base.denominator > limit:
        return Fraction(1, limit) if codec == "mpeg4" else time_base
    return time_base / (limit // time_base.denominator)


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
    # No Python log callback (PyAV's default): with one, a decoder's worker thread that logs
    # an error while the codec is being freed waits for the GIL that the freeing thread
    # holds, and the process hangs (a loop of clips stopped mid-way hung within 3 rounds)
    av.logging.set_level(None)
    return av


def _refused_size(av, stream, packet, limit: int) -> tuple[int, int] | None:
    """The width and height of the frame in ``packet`` that ``stream``'s decoder refused as
    larger than ``limit`` pixels, or None where FFmpeg does not say. FFmpeg states the size
    only in its log, so a fresh one-thread decoder (no worker threads to hang on) decodes
    this packet alone while the log is captured, and the log is switched off again."""
    cc = stream.codec_context
    probe = av.CodecContext.create(cc.name, "r")
    if cc.extradata:
        probe.extradata = cc.extradata
    probe.thread_count, probe.options = 1, {"max_pixels": str(limit)}
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            try:
                probe.decode(packet)
            except av.error.FFmpegError:
                pass
    finally:
        av.logging.set_level(None)
        time.sleep(0.01)  # any log call already past the level check takes the GIL now
    for _, _, message in logs:
        size = re.search(r"Picture size (\d+)x(\d+) exceeds", message)
        if size is not None:
            return int(size.group(1)), int(size.group(2))
    return None


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

    def __init__(self, av, engine, inp, tmp: str, fmt: str, options: VideoOptions, progress,
                 limits: VideoLimits):
        self.av, self.engine, self.inp, self.options = av, engine, inp, options
        self.progress, self.limits = progress, limits
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
        self.last_pts = self.first_pts = self.shape = None
        self.time_base = Fraction(self.vs.time_base or Fraction(1, 90000))
        self.out_time_base = output_time_base(self.time_base, options.codec)
        self.last_out = -1                    # the last timestamp written (out_time_base)
        self.start = time.monotonic()
        self.check_declared_size()

    def check_declared_size(self) -> None:
        """Refuse frames above ``max_pixels`` from the stream's header, and have the decoder
        refuse any later frame above it (a stream may change size mid-way)."""
        limit, cc = self.limits.max_pixels, self.vs.codec_context
        if not limit:
            return
        if cc.width * cc.height > limit:
            raise VideoStopped(self.inp.name, f"its frames are {cc.width}x{cc.height} "
                               f"({_megapixels(cc.width * cc.height)}), above the limit of "
                               f"{_megapixels(limit)}")
        cc.options = {**cc.options, "max_pixels": str(limit)}

    def run(self) -> VideoStats:
        for packet in self.inp.demux(self.vs, *self.audio):
            if packet.stream.type == "video":
                for frame in self.decoded(packet):
                    self.take(frame)
            elif packet.dts is not None:
                packet.stream = self.oas[packet.stream.index]
                self.held.append(packet) if self.ovs is None else self.out.mux(packet)
        if self.ovs is None:
            raise VideoError(self.inp.name, "no video frame could be decoded")
        self.translate_batch()
        self.out.mux(self.ovs.encode(None))
        self.out.close()
        self.stats.duration = float((self.last_pts or 0) * self.time_base + 1 / self.rate)
        self.stats.flicker = self.smooth.flicker()
        return self.stats

    def decoded(self, packet) -> list:
        """The frames of a video packet; a frame the decoder refuses for its size is a
        :class:`VideoStopped` that says so."""
        try:
            return packet.decode()
        except self.av.error.FFmpegError:
            limit = self.limits.max_pixels
            size = limit and _refused_size(self.av, self.vs, packet, limit)
            if not size:
                raise
            w, h = size
            raise VideoStopped(self.inp.name, f"frame {self.stats.frames} is {w}x{h} "
                               f"({_megapixels(w * h)}), above the limit of "
                               f"{_megapixels(limit)}") from None

    def take(self, frame) -> None:
        rgb = _upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0))
        pts = frame.pts
        if pts is None:  # containers without timestamps: count frames
            pts = round(self.stats.frames / self.rate / self.time_base)
        if self.ovs is None:
            self.shape, self.first_pts = rgb.shape, pts
            self.open_output(*rgb.shape[:2])
        elif rgb.shape != self.shape:
            (h0, w0), (h, w) = self.shape[:2], rgb.shape[:2]
            raise VideoError(self.inp.name, f"its frame size changes from {w0}x{h0} to {w}x{h} "
                             f"at frame {self.stats.frames}; a video is written at one size, "
                             "so re-encode it at one size first (ffmpeg -vf scale)")
        self.stats.frames += 1
        self.last_pts = pts
        self.check_limits(pts)
        self.batch.append((pts, rgb))
        if len(self.batch) >= self.options.batch_size:
            self.translate_batch()

    def check_limits(self, pts: int) -> None:
        """:class:`VideoStopped` when a bound of :class:`VideoLimits` is passed."""
        lim, n = self.limits, self.stats.frames
        seconds = float((pts - self.first_pts) * self.time_base)
        why = None
        if lim.max_frames is not None and n > lim.max_frames:
            why = f"it has more than {lim.max_frames} frames"
        elif lim.max_duration is not None and seconds > lim.max_duration:
            why = f"it lasts more than {lim.max_duration:g} s (frame {n} is at {seconds:.1f} s)"
        elif lim.max_seconds is not None and time.monotonic() - self.start > lim.max_seconds:
            why = (f"converting it took more than {lim.max_seconds:g} s ({n - 1} frames "
                   "done)")
        elif lim.cancelled is not None and lim.cancelled():
            why = f"cancelled after {n - 1} frames"
        if why is not None:
            raise VideoStopped(self.inp.name, why)

    def open_output(self, h: int, w: int) -> None:
        o = self.options
        self.ovs = self.out.add_stream(o.codec, rate=self.rate)
        self.ovs.width, self.ovs.height = w + w % 2, h + h % 2
        self.ovs.pix_fmt = "yuv420p"
        self.ovs.time_base = self.out_time_base
        self.ovs.codec_context.time_base = self.out_time_base
        if o.codec == "libx264":
            self.ovs.options = {"crf": str(o.crf), "preset": "medium"}
        elif o.codec == "libvpx-vp9":
            self.ovs.options = {"crf": str(o.crf), "b": "0"}
        for packet in self.held:
            self.out.mux(packet)
        self.held = []

    def output_pts(self, pts: int) -> int:
        """``pts`` (source time base) in the output time base, later than the last one
        written (a source may repeat or reorder timestamps)."""
        out = max(round(pts * self.time_base / self.out_time_base), self.last_out + 1)
        self.last_out = out
        return out

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
            vf.pts, vf.time_base = self.output_pts(pts), self.out_time_base
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
                  options: VideoOptions | None = None, progress=None,
                  limits: VideoLimits | None = None) -> VideoStats:
    """Translate the video ``src`` into ``dst`` (see the module docstring). ``progress
    (frames done, frames expected or None)`` is called after every batch. Raises
    :class:`VideoError` for a file that is not a readable video, and :class:`VideoStopped`
    past a bound of ``limits`` (nothing is written either way); a write that fails for
    want of room or permission is the ``OSError`` it is, naming ``dst``."""
    av, options, limits = _av(), options or VideoOptions(), limits or VideoLimits()
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
                result.append(_Transcoder(av, engine, inp, tmp, fmt, options, progress,
                                          limits).run())
            atomic_write(dst, write)
    except av.error.FFmpegError as err:
        if isinstance(err, OSError) and err.errno in WRITE_ERRORS:  # full disk, ...
            raise OSError(err.errno, err.strerror or str(err), str(dst)) from None
        raise VideoError(src, f"cannot convert this video ({err})") from None
    stats = result[0]
    stats.seconds = time.perf_counter() - start
    return stats
