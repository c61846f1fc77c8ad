"""Frames per second of video conversion with the shipped models, on this machine's CPU.

    python benchmarks/video_speed.py [--frames 20]

Makes 720p and 1080p clips (30 fps, a tone on the audio track) from a held-out photo with
a slow pan, converts each with both shipped models in each ``--precisions`` (default
``auto,fp32``: what convert does by default, then fp32), and prints frames/s and the
flicker figure (output change over input change per frame; 1: as much as the input). Freed
memory is kept for reuse, as every translate command does (``TRANSLATE_SYSTEM_MALLOC=1``:
the C library's default). ``--layers plain`` runs the local generator's layers the plain
way (no upsampling by phases, no fused convolutions), ``phases`` without the fused
convolutions, to compare."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

import translate.networks.fused as fused
import translate.networks.local as local
from translate.host_memory import keep_freed_memory
from translate.infer.engine import Translator
from translate.infer.video import VideoOptions, convert_video

ROOT = Path(__file__).resolve().parent.parent


def panning_clip(path: Path, w: int, h: int, frames: int) -> Path:
    """A slow pan across a held-out photo (picosdeeuropa.jpg), 30 fps, with sound."""
    photo = Image.open(ROOT / "apps" / "photos" / "picosdeeuropa.jpg").convert("RGB")
    big = np.asarray(photo.resize((int(w * 1.2), int(h * 1.2)), Image.LANCZOS))
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    audio = out.add_stream("aac", rate=44100)
    audio.layout = "mono"
    for i in range(frames):
        x = int(i * (big.shape[1] - w) / max(1, frames - 1))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(big[:h, x:x + w]),
                                           format="rgb24")
        frame.pts = i
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    n = 44100 * frames // 30
    tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / 44100)).astype(np.float32)
    for k in range(0, n, 1024):
        f = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="flt", layout="mono")
        f.sample_rate, f.pts = 44100, k
        out.mux(audio.encode(f))
    out.mux(audio.encode(None))
    out.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--precisions", default="auto,fp32")
    parser.add_argument("--temporal", default="0,4")
    parser.add_argument("--layers", choices=("fused", "phases", "plain"), default="fused")
    args = parser.parse_args()
    keep_freed_memory()
    local.PHASE_UPSAMPLE, fused.ENABLED = args.layers != "plain", args.layers == "fused"
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
            clip = panning_clip(Path(tmp) / f"{name}.mp4", w, h, args.frames)
            for task in ("day2night", "real2anime"):
                for precision in args.precisions.split(","):
                    engine = Translator.from_checkpoint(
                        ROOT / "models" / f"{task}.safetensors", device="cpu",
                        precision=precision)
                    for temporal in map(int, args.temporal.split(",")):
                        stats = convert_video(engine, clip, Path(tmp) / f"{task}.mp4",
                                              VideoOptions(temporal=temporal))
                        print(f"{name} {task} {precision} ({engine.precision}) temporal "
                              f"{temporal}: {stats.frames_per_second:.2f} frames/s, flicker "
                              f"{stats.flicker:.3f}", flush=True)


if __name__ == "__main__":
    main()
