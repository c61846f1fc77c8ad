"""Video and folder conversion under attack (second hostile review): renamed outputs never
collide, every frame obeys the pixel limit, a frame size change fails that clip alone,
MPEG-TS time bases and repeated timestamps are written, SIGTERM stops like Ctrl-C, a killed
run's temporary file is removed by the next one, and a full disk stops the run."""

from __future__ import annotations

import io
import os
import resource
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
from test_video import make_clip, probe, scene  # noqa: E402

MODEL = ROOT / "models" / "day2night.safetensors"


def convert_cli(src: Path, out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return run_cli("convert", "--checkpoint", str(MODEL), "--input", str(src), "--output",
                   str(out), "--device", "cpu", "--quiet", "--workers", "0", *extra, **kwargs)


def jpeg(w: int, h: int, i: int = 0) -> bytes:
    from PIL import Image

    data = io.BytesIO()
    Image.fromarray(scene(i, w, h)).save(data, "JPEG")
    return data.getvalue()


def mjpeg(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """A raw MJPEG stream (JPEG after JPEG, no container), which FFmpeg reads as a video of
    whatever sizes its frames have."""
    path.write_bytes(b"".join(jpeg(w, h, i) for i, (w, h) in enumerate(sizes)))
    return path


def encode(path: Path, fmt: str, frames: int, pts: list[int] | None = None, fps: int = 15,
           size: tuple[int, int] = (96, 64)) -> Path:
    """A libx264 clip in container ``fmt`` with the given timestamps (1/fps units)."""
    out = av.open(str(path), "w", format=fmt)
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = *size, "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(scene(i, *size), format="rgb24")
        frame.pts, frame.time_base = (i if pts is None else pts[i]), Fraction(1, fps)
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    out.close()
    return path


def test_renamed_outputs_never_collide(tmp_path):
    """a.png, a.gif, a_gif.png, clip.mp4, clip.mov, clip_mov.mp4 gave 4 outputs for 6."""
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("a.png", "a.gif", "a_gif.png")):
        Image.new("RGB", (40, 30), (60 * i, 100, 200)).save(src / name)
    for name in ("clip.mp4", "clip.mov", "clip_mov.mp4"):
        make_clip(src / name, 64, 48, frames=3 + len(name) % 3, audio=False)
    proc = convert_cli(src, tmp_path / "out", "--format", "png", check=True)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a_gif.png", "a_gif_2.png", "a_png.png", "clip_mov.mp4",
                     "clip_mov_2.mp4", "clip_mp4.mp4"]
    assert "a.gif -> a_gif_2.png" in proc.stderr and "clip.mov -> clip_mov_2.mp4" in proc.stderr
    out = tmp_path / "out"
    # each output holds its own input: frame counts 4, 5, 3 for the clips above
    assert [probe(out / n)["frames"] for n in ("clip_mp4.mp4", "clip_mov_2.mp4",
                                               "clip_mov.mp4")] == [5, 5, 3]


def test_every_frame_obeys_the_pixel_limit(tmp_path):
    """A 2000x2000 JPEG named .mp4 and an MJPEG stream that grows from 64x48 to 2000x1500
    passed --max-megapixels 1; they are refused, and the rest of the folder is converted."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "still.mp4").write_bytes(jpeg(2000, 2000))
    mjpeg(src / "grows.mp4", [(64, 48)] * 3 + [(2000, 1500)] * 2)
    make_clip(src / "fine.mp4", 64, 48, frames=4, audio=False)
    proc = convert_cli(src, tmp_path / "out", "--max-megapixels", "1")
    assert proc.returncode == 1, proc.stderr
    assert ("still.mp4: its frames are 2000x2000 (4 megapixels), above the limit of 1 "
            "megapixels (--max-megapixels raises the limit)") in proc.stderr
    assert ("grows.mp4: frame 3 is 2000x1500 (3 megapixels), above the limit of 1 "
            "megapixels") in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fine.mp4"]


def test_a_frame_size_change_fails_that_clip_alone(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    mjpeg(src / "a_changes.mp4", [(64, 48)] * 4 + [(96, 64)] * 4)
    make_clip(src / "b_fine.mp4", 64, 48, frames=4, audio=False)
    proc = convert_cli(src, tmp_path / "out", "--temporal", "2")
    assert proc.returncode == 1, proc.stderr
    assert "a_changes.mp4: its frame size changes from 64x48 to 96x64 at frame 4" \
        in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_fine.mp4"]


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_mpeg_ts_clips_are_written_with_every_codec(tmp_path, codec):
    """MPEG-TS carries a 1/90000 time base, which mpeg4 refuses: it failed on every .ts."""
    src = tmp_path / "in"
    src.mkdir()
    pts = [0, 1, 2, 4, 5, 7, 8, 9]
    encode(src / "broadcast.ts", "mpegts", len(pts), pts)
    convert_cli(src, tmp_path / "out", "--codec", codec, check=True)
    got, want = probe(tmp_path / "out" / "broadcast.mp4"), probe(src / "broadcast.ts")
    assert got["frames"] == 8
    assert got["times"] == pytest.approx(want["times"], abs=2e-3)  # 1/65535 s steps in mpeg4


def test_repeated_timestamps_are_written_in_mp4(tmp_path):
    """A Matroska stream with repeated timestamps, named .mov (so written as MP4): 'non
    monotonically increasing dts' failed the whole clip."""
    src = tmp_path / "in"
    src.mkdir()
    pts = [0, 1, 2, 3, 3, 4, 5, 6, 6, 7]
    encode(tmp_path / "dup.mkv", "matroska", len(pts), pts)
    (src / "dup.mov").write_bytes((tmp_path / "dup.mkv").read_bytes())
    convert_cli(src, tmp_path / "out", check=True)
    times = probe(tmp_path / "out" / "dup.mp4")["times"]
    assert len(times) == 10 and all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] == pytest.approx(7 / 15, abs=2e-3)


CONVERT_ENV = dict(os.environ, OMP_NUM_THREADS="1", NO_ALBUMENTATIONS_UPDATE="1")


def _convert_cmd(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "translate", "convert", "--checkpoint", str(MODEL), "--input",
            str(src), "--output", str(out), "--device", "cpu", "--quiet", "--workers", "0"]


def _signalled_mid_video(tmp_path: Path, signum: int) -> tuple[subprocess.Popen, Path, Path]:
    """A conversion of one 240-frame clip, sent ``signum`` once its temporary output is
    being written; (the finished process, the input folder, the output folder)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mp4", 192, 128, frames=240, fps=30)
    proc = subprocess.Popen(_convert_cmd(src, out), cwd=ROOT, env=CONVERT_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(out.glob(".long.mp4.*.tmp")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signum)
    proc.wait(60)
    return proc, src, out


def test_sigterm_stops_a_video_like_ctrl_c(tmp_path):
    proc, _, out = _signalled_mid_video(tmp_path, signal.SIGTERM)
    assert proc.returncode == 143
    assert "interrupted: every file in" in proc.stderr.read()
    assert list(out.iterdir()) == []  # no output, no temporary file


def test_a_killed_runs_temporary_video_is_removed_by_the_next_run(tmp_path):
    _, src, out = _signalled_mid_video(tmp_path, signal.SIGKILL)
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # left by the kill
    convert_cli(src, out, check=True)
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4"]
    assert probe(out / "long.mp4")["frames"] == 240


def test_a_full_disk_during_a_video_stops_the_run(tmp_path):
    """A full disk was reported as a bad video and every further video translated in full
    before failing too. A file-size limit stands in for the full disk."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, 320, 240, frames=60, audio=False)
    out = tmp_path / "out"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4_000, 4_000))
    proc = subprocess.run(_convert_cmd(src, out), cwd=ROOT, env=CONVERT_ENV,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot write {out / 'a.mp4'}: File too large" in proc.stderr
    assert "--skip-existing" in proc.stderr and "could not be converted" not in proc.stderr
    assert list(out.iterdir()) == []
    convert_cli(src, out, "--skip-existing", check=True)
    assert [probe(out / n)["frames"] for n in ("a.mp4", "b.mp4")] == [60, 60]


def test_video_limits_stop_a_clip_while_it_is_decoded(tmp_path):
    """A raw H.264 stream has no container duration; its frames and timestamps are counted
    as they are decoded."""
    from translate.infer.engine import Translator
    from translate.infer.video import VideoLimits, VideoStopped, convert_video

    raw = encode(tmp_path / "raw.mp4", "h264", 40, size=(32, 32))
    with av.open(str(raw)) as c:
        assert not c.duration
    engine = Translator.from_checkpoint(MODEL, device="cpu")
    for limits, reason in ((VideoLimits(max_frames=10), "more than 10 frames"),
                           (VideoLimits(max_duration=1.0), "lasts more than 1 s"),
                           (VideoLimits(max_seconds=0.0), "took more than 0 s"),
                           (VideoLimits(cancelled=lambda: True), "cancelled after 0 frames")):
        with pytest.raises(VideoStopped, match=reason):
            convert_video(engine, raw, tmp_path / "out.mp4", limits=limits)
        assert list(tmp_path.glob("out*")) == [] and list(tmp_path.glob(".out*")) == []
    assert convert_video(engine, raw, tmp_path / "out.mp4",
                         limits=VideoLimits(max_frames=40, max_duration=3)).frames == 40


def test_a_stale_temporary_image_is_removed_and_others_are_kept(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    from translate.images import save_image

    save_image(np.full((32, 32, 3), 90, np.uint8), src / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".x.png.abc123.tmp").write_bytes(b"partial")
    (out / ".notes.txt.tmp").write_bytes(b"someone else's")
    convert_cli(src, out, check=True)
    assert sorted(p.name for p in out.iterdir()) == [".notes.txt.tmp", "x.png"]


STOPPED_MID_STREAM = """
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from test_hostile_video import MODEL, encode
from translate.infer.engine import Translator
from translate.infer.video import VideoLimits, VideoStopped, convert_video
tmp = Path(sys.argv[1])
raw = encode(tmp / "raw.mp4", "h264", 40, size=(32, 32))
engine = Translator.from_checkpoint(MODEL, device="cpu")
stops = (VideoLimits(max_frames=10), VideoLimits(max_duration=1.0),
         VideoLimits(max_seconds=0.0), VideoLimits(cancelled=lambda: True))
for i in range(20):
    for limits in stops:
        try:
            convert_video(engine, raw, tmp / "out.mp4", limits=limits)
        except VideoStopped:
            pass
    convert_video(engine, raw, tmp / "out.mp4")
print("done")
"""


def test_clips_stopped_mid_stream_never_hang(tmp_path):
    """A decoder freed mid-stream, while its frame threads still worked, hung the process in
    one run in a few: a worker logging an error waited for the GIL that the freeing
    thread held (PyAV's Python log callback). It hung with torch on 2 threads, not on 1."""
    env = dict(CONVERT_ENV, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", STOPPED_MID_STREAM, str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
