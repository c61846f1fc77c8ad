"""Videos through translate convert: clips made here with PyAV (a moving scene with a tone on
the audio track) keep their frame count, rate, timestamps, duration, size and sound; odd
sizes and rotated phone clips come out right; a damaged file is reported and skipped; a
killed run leaves no partial output; temporal smoothing lowers the flicker figure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="video needs PyAV")

from conftest import ROOT, run_cli  # noqa: E402
from translate.infer.engine import Translator  # noqa: E402
from translate.infer.video import VideoOptions, convert_video  # noqa: E402

MODEL = ROOT / "models" / "day2night.safetensors"


def scene(i: int, w: int, h: int) -> np.ndarray:
    """Frame ``i`` of a moving scene: a gradient sky, a square crossing it."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 2] = np.linspace(200, 90, h, dtype=np.uint8)[:, None]
    img[..., 1] = 120
    x = (3 * i) % max(1, w - w // 5)
    img[h // 3:h // 3 + h // 4, x:x + w // 5] = (230, 140, 40)
    return img


def make_clip(path: Path, w: int = 96, h: int = 64, frames: int = 30, fps: int = 15,
              audio: bool = True, pix: str = "yuv420p", rotate: int = 0, pts=None) -> Path:
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = w, h, pix
    if rotate:
        vs.set_display_rotation(rotate)
    if audio:
        a = out.add_stream("aac", rate=22050)
        a.layout = "mono"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(scene(i, w, h), format="rgb24")
        frame.pts = i if pts is None else pts[i]
        frame.time_base = Fraction(1, fps)
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    if audio:
        n = int(22050 * frames / fps)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 22050)).astype(np.float32)
        for k in range(0, n, 1024):
            f = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="flt",
                                           layout="mono")
            f.sample_rate, f.pts = 22050, k
            out.mux(a.encode(f))
        out.mux(a.encode(None))
    out.close()
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(video=0))
        audio = [(s.codec_context.name, s.codec_context.sample_rate) for s in c.streams.audio]
        return {"size": (frames[0].width, frames[0].height), "frames": len(frames),
                "rate": v.average_rate, "rotation": frames[0].rotation, "audio": audio,
                "times": [float(f.pts * f.time_base) for f in frames],
                "duration": float(c.duration) / 1e6 if c.duration else None}


def test_a_folder_of_clips_and_photos(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "walk.mp4")
    make_clip(src / "odd.mov", 97, 63, audio=False, pix="yuv444p")
    make_clip(src / "phone.mp4", 96, 64, audio=False, rotate=90)
    (src / "damaged.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 200)
    (src / "photo.png").write_bytes((ROOT / "apps" / "photos" / "coffee.jpg").read_bytes())
    proc = run_cli("convert", "--checkpoint", str(MODEL), "--input", str(src), "--output",
                   str(tmp_path / "out"), "--device", "cpu", "--quiet", "--workers", "0")
    assert proc.returncode == 1  # the damaged file
    assert "damaged.mp4: cannot read video" in proc.stderr
    assert "video walk.mp4: 30 frames, 2.0 s at 15 fps" in proc.stderr
    before, after = probe(src / "walk.mp4"), probe(tmp_path / "out" / "walk.mp4")
    for key in ("size", "frames", "rate", "audio", "times"):
        assert after[key] == before[key], key
    assert after["audio"] == [("aac", 22050)]
    assert abs(after["duration"] - before["duration"]) < 0.1
    assert probe(tmp_path / "out" / "odd.mp4")["size"] == (98, 64)  # one column, one row
    phone = probe(tmp_path / "out" / "phone.mp4")
    assert phone["size"] == (64, 96) and phone["rotation"] == 0  # upright
    assert (tmp_path / "out" / "photo.png").is_file()
    assert not (tmp_path / "out" / "damaged.mp4").exists()


def test_variable_frame_rate_keeps_its_timestamps(tmp_path):
    pts = [0, 1, 2, 5, 6, 7, 12, 13, 20, 21]
    clip = make_clip(tmp_path / "vfr.mp4", frames=len(pts), audio=False, pts=pts)
    engine = Translator.from_checkpoint(MODEL, device="cpu")
    convert_video(engine, clip, tmp_path / "out.mp4")
    assert probe(tmp_path / "out.mp4")["times"] == pytest.approx([p / 15 for p in pts])


def test_a_killed_run_leaves_no_partial_video(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "long.mp4", 192, 128, frames=240, fps=30)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "translate", "convert", "--checkpoint", str(MODEL), "--input",
           str(src), "--output", str(out), "--device", "cpu", "--quiet", "--workers", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(out.glob(".long.mp4.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "long.mp4").exists()  # only a hidden temporary file, if anything
    run_cli(*cmd[3:], "--skip-existing", check=True)
    assert probe(out / "long.mp4")["frames"] == 240


def test_temporal_smoothing_lowers_flicker(tmp_path):
    """A still scene with sensor noise: the model passes the noise on as flicker; smoothing
    keeps the previous output where the input barely changed."""
    from PIL import Image

    still = np.asarray(Image.open(ROOT / "apps" / "photos" / "coffee.jpg").convert("RGB")
                       .resize((160, 96)))
    rng = np.random.default_rng(0)
    out = av.open(str(tmp_path / "still.mp4"), "w")
    vs = out.add_stream("libx264", rate=10)
    vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
    vs.options = {"crf": "10"}
    for i in range(20):
        noisy = np.clip(still + rng.normal(0, 4, still.shape), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(noisy, format="rgb24")
        frame.pts = i
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    out.close()
    engine = Translator.from_checkpoint(MODEL, device="cpu")
    plain = convert_video(engine, tmp_path / "still.mp4", tmp_path / "a.mp4").flicker
    smooth = convert_video(engine, tmp_path / "still.mp4", tmp_path / "b.mp4",
                           VideoOptions(temporal=4)).flicker
    print(f"flicker: {plain:.3f} without smoothing, {smooth:.3f} with --temporal 4")
    assert smooth < 0.5 * plain


def test_the_demo_translates_a_clip_with_its_sound(tmp_path):
    """The Video tab's API: the clip comes back as H.264 with its frames and sound; a clip
    above the duration limit is refused with a message."""
    gradio_client = pytest.importorskip("gradio_client")
    pytest.importorskip("gradio")
    from test_demo import DemoServer

    clip = make_clip(tmp_path / "holiday.mp4", 128, 96, frames=24, fps=12)
    longer = make_clip(tmp_path / "long.mp4", 64, 48, frames=40, fps=10, audio=False)
    demo = DemoServer("--max-video-seconds", "3", temp=tmp_path / "gradio")
    try:
        client = gradio_client.Client(demo.url, verbose=False)
        out = client.predict(gradio_client.handle_file(str(clip)),
                             model="day2night", api_name="/video")
        path = Path(out["video"] if isinstance(out, dict) else out)
        got, want = probe(path), probe(clip)
        assert (got["frames"], got["size"], got["rate"]) == (24, (128, 96), 12)
        assert got["audio"] == want["audio"] == [("aac", 22050)]
        with pytest.raises(Exception, match="lasts 4 s; this demo accepts clips up to"):
            client.predict(gradio_client.handle_file(str(longer)),
                           api_name="/video")
    finally:
        demo.stop()
