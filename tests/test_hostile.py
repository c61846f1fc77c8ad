"""Regression tests for what a hostile review found (each failed before its fix): a torn
metrics line no longer blocks resume, a refused pickle does not advise the unsafe load, and
the test suite installs no system packages."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from translate.formats.checkpoint import CheckpointError
from translate.formats.state import load_state
from translate.images import load_rgb, save_image
from translate.train.fields import ConfigError
from translate.train.loop import train

ROOT = Path(__file__).resolve().parent.parent


def test_a_torn_metrics_line_does_not_block_resume(shapes32, tmp_path):
    """A full disk or a kill mid-line leaves '{"' at the end of metrics.jsonl."""
    schedule = {"iterations": 4, "log_every": 1, "checkpoint_every": 2, "sample_every": 0}
    run = tmp_path / "run"
    train(tiny_config(shapes32, run, train=dict(schedule, iterations=2)), progress=False)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"')
    train(tiny_config(shapes32, run, train=schedule), resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == [1, 2, 3, 4]


class Payload:
    def __reduce__(self):
        return (print, ("never printed",))


def test_a_refused_pickle_does_not_advise_the_unsafe_load(tmp_path):
    path = tmp_path / "latest.pt"
    path.write_bytes(pickle.dumps({"format": "translate-train-state", "x": Payload()}))
    with pytest.raises(CheckpointError) as err:
        load_state(path)
    text = str(err.value)
    assert "refuses without running them" in text and "weights_only=False" not in text
    assert err.value.path == path


def test_the_suite_installs_no_system_packages():
    """Installing is .ci/run's job; a test that needs a system package skips without it."""
    calls = re.compile(r"[\"'](apt-get|apt|dnf|yum|brew)[\"']")
    for test in sorted((ROOT / "tests").glob("*.py")):
        if test.name != Path(__file__).name:
            assert not calls.search(test.read_text()), test.name
    assert "apt-get install" in (ROOT / ".ci" / "run").read_text()


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A valid PNG of a few hundred bytes whose header declares side x side pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * 16 + 1) * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows)
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_a_reported_file_not_a_crash(shapes32, tmp_path):
    from translate.data.check import check_dataset
    from translate.images import ImageError, image_size

    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1000
    with pytest.raises(ImageError, match="30000x30000 is 900 megapixels, above the limit"):
        image_size(bomb)
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes32, data)
    name = sorted((data / "train" / "A").iterdir())[0].name
    bomb_png(data / "train" / "A" / name)
    report = check_dataset(data)
    assert any(name in str(entry) for entry in report["unreadable"])


@pytest.mark.parametrize("side", [10000, 14000, 30000, 50000])
def test_the_demo_says_an_image_is_too_large_at_any_declared_size(tmp_path, side):
    """100, 196, 900 and 2500 megapixels declared: each is a size message, not "not an
    image ... or damaged" (above 200 MP the header check, above 2000 MP Pillow's own
    refusal, were taken for damage)."""
    from translate.apps.service import InputError, Limits, read_image

    bomb = bomb_png(tmp_path / "huge.png", side)
    with pytest.raises(InputError) as refused:
        read_image(bomb, "huge.png", Limits())
    said = str(refused.value)
    assert "megapixels" in said and "this demo accepts" in said, said
    assert "damaged" not in said and f"{side * side / 1e6:.1f}" in said, said


@pytest.mark.parametrize("override, message", [
    ("train.lr=.inf", "train.lr must be a finite number"),
    ("train.lr=.nan", "train.lr must be a finite number"),
    ("train.beta1=5", "train.beta1 must be below 1"),
    ("train.seed=-1", "train.seed must be at least 0"),
])
def test_config_values_that_cannot_train_are_refused(override, message):
    from translate.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override, "train.out=x"])


def test_a_section_that_is_not_a_mapping_is_explained(tmp_path):
    from translate.train.config import ConfigError, load_config

    path = tmp_path / "bad.yaml"
    path.write_text("data: 5\n")
    with pytest.raises(ConfigError, match="'data' must be a mapping of keys to values, not "
                                          "a int"):
        load_config(path)


def test_inputs_that_share_a_name_get_an_output_each(tmp_path):
    """photo.png, photo.gif and photo.jpg used to become 2 files for "converted 3"."""
    from PIL import Image

    from conftest import run_cli

    src = tmp_path / "in"
    src.mkdir()
    colours = {"png": (200, 30, 30), "gif": (30, 200, 30), "jpg": (30, 30, 200)}
    for ext, colour in colours.items():
        Image.new("RGB", (40, 30), colour).save(src / f"photo.{ext}")
    proc = run_cli("convert", "--checkpoint", str(ROOT / "models" / "day2night.safetensors"),
                   "--input", str(src), "--output", str(tmp_path / "out"), "--format", "png",
                   "--device", "cpu", "--quiet", "--workers", "0", check=True)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["photo_gif.png", "photo_jpg.png", "photo_png.png"]
    assert "photo.gif -> photo_gif.png" in proc.stderr


def _train_process(config_path: Path) -> subprocess.Popen:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "translate", "train", str(config_path),
                             "--quiet"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists()
                                      or len(path.read_text().splitlines()) < n):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)


def test_a_run_folder_has_one_trainer_and_a_run_killed_early_starts_again(shapes32,
                                                                         tmp_path):
    """Two trainers on one folder: the second is refused and told the first one's PID. A
    run SIGKILLed before its first checkpoint (the default is every 5000 steps) starts
    again from step 0 with --resume, and the temporary files of a killed write go."""
    run = tmp_path / "run"
    config = tiny_config(shapes32, run, train={"iterations": 100000, "log_every": 1,
                                               "checkpoint_every": 5000, "sample_every": 0})
    path = tmp_path / "run.yaml"
    path.write_text(config.to_yaml())
    proc = _train_process(path)
    try:
        _wait_for_lines(run / "metrics.jsonl", 2, proc)
        for resume in (False, True):
            with pytest.raises(ConfigError, match=f"in use by another training process "
                                                  rf"\(PID {proc.pid}\)"):
                train(config, resume=resume, progress=False)
    finally:
        proc.kill()
        proc.wait()
    assert not (run / "checkpoints" / "latest.pt").exists()
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / ".latest.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    short = tiny_config(shapes32, run, train={"iterations": 3, "log_every": 1,
                                              "sample_every": 0})
    with pytest.raises(ConfigError, match="stopped before its first checkpoint; add --resume"):
        train(short, progress=False)
    train(short, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == [1, 2, 3]
    assert load_state(run / "checkpoints" / "latest.pt")["step"] == 3
    assert not list((run / "checkpoints").glob(".*.tmp"))
    # the lock went with the run: the folder may be resumed again at once
    with pytest.raises(ConfigError, match="already reached step 3"):
        train(short, resume=True, progress=False)


def test_train_out_naming_a_file_is_explained(shapes32, tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        train(tiny_config(shapes32, tmp_path / "run"), progress=False)


def test_convert_never_replaces_a_file_it_did_not_write_unless_asked(tmp_path):
    """An unrelated out/photo.png used to be replaced without a word."""
    from PIL import Image

    from conftest import run_cli

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(src / "photo.png")
    Image.new("RGB", (40, 30), (9, 9, 9)).save(src / "other.png")
    (out / "photo.png").write_bytes(b"the user's own file")
    common = ("convert", "--checkpoint", str(ROOT / "models" / "day2night.safetensors"),
              "--input", str(src), "--output", str(out), "--device", "cpu", "--quiet",
              "--workers", "0")
    proc = run_cli(*common)
    assert proc.returncode == 2
    assert "1 output(s) already exist" in proc.stderr and "--overwrite" in proc.stderr
    assert (out / "photo.png").read_bytes() == b"the user's own file"
    assert not (out / "other.png").exists()  # nothing was written
    run_cli(*common, "--skip-existing", check=True)
    assert (out / "photo.png").read_bytes() == b"the user's own file"
    assert (out / "other.png").is_file()
    run_cli(*common, "--overwrite", check=True)
    assert Image.open(out / "photo.png").size == (40, 30)
    proc = run_cli(*common[:5], "--output", str(src / "photo.png"), *common[7:])
    assert proc.returncode == 2 and "is a file; name a folder" in proc.stderr


def _generator_file(path: Path, **meta: str) -> Path:
    """A 1 KB safetensors file whose metadata claims to be a translate generator."""
    import torch
    from safetensors.torch import save_file

    base = {"format": "translate-generator", "format_version": "1", "arch": "resnet",
            "kwargs": json.dumps({"ngf": 8, "depth": 2}), "direction": "a2b"}
    save_file({"w": torch.zeros(16)}, str(path), metadata={**base, **meta})
    return path


@pytest.mark.parametrize("meta, message", [
    ({"kwargs": json.dumps({"ngf": 1024, "depth": 8})}, "2,605 M parameters, above the limit"),
    ({"kwargs": json.dumps({"depth": 10 ** 6})}, "depth = 1000000 is not a whole number"),
    ({"arch": "unet", "kwargs": json.dumps({"depth": 30, "ngf": 1})}, "is not a whole number"
     r"|needs sizes in multiples of \d+ px, above the limit"),
    ({"arch": "unet", "kwargs": json.dumps({"depth": 14, "ngf": 1})},
     "needs sizes in multiples of 16384 px, above the limit of 1024"),
    ({"kwargs": json.dumps({"ngf": -3})}, "ngf = -3 is not a whole number"),
    ({"kwargs": json.dumps({"ngf": "8"})}, "ngf = '8' is not a whole number"),
    ({"kwargs": json.dumps({"colour": 1})}, "takes no argument.s. colour; it takes"),
    ({"kwargs": "{not json"}, "metadata field 'kwargs' is not a JSON object"),
    ({"kwargs": "[1, 2]"}, "metadata field 'kwargs' is not a JSON object"),
    ({"card": "{"}, "metadata field 'card' is not a JSON object"),
    ({"direction": "sideways"}, "expected a2b or b2a"),
    ({"arch": "transformer"}, "unknown architecture 'transformer'"),
])
def test_hostile_model_metadata_is_refused_before_building(tmp_path, meta, message):
    """A 1 KB file asking for a 2.6 G-parameter network used to allocate tens of GB in
    convert (and kill the demo); malformed metadata gave raw tracebacks."""
    import resource

    from translate.formats.checkpoint import load_generator

    path = _generator_file(tmp_path / "g.safetensors", **meta)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=message) as info:
        load_generator(path)
    assert str(path) in str(info.value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200


def test_convert_explains_a_refused_model_file(tmp_path):
    from conftest import run_cli

    path = _generator_file(tmp_path / "big.safetensors",
                           kwargs=json.dumps({"ngf": 1024, "depth": 8}))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "photo.jpg").write_bytes((ROOT / "apps/photos/coffee.jpg").read_bytes())
    proc = run_cli("convert", "--checkpoint", str(path), "--input", str(tmp_path / "in"),
                   "--output", str(tmp_path / "out"), "--device", "cpu", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "above the limit of 250 M" in proc.stderr and "Traceback" not in proc.stderr


def test_decode_limits_are_configurable_in_training_check_and_convert(shapes32, tmp_path,
                                                                     capsys):
    """Images just under Pillow's 200 MP ceiling used to be decoded at 4 GB each in
    training and conversion; each now has its own limit, set lower by default and
    configurable, and a larger image is named and left out without being decoded."""
    import shutil

    from PIL import Image

    from conftest import run_cli
    from translate.data.check import check_dataset
    from translate.train.loop import build_dataset

    root = tmp_path / "data"
    shutil.copytree(shapes32, root)
    for side in "AB":
        Image.new("RGB", (400, 300), (90, 90, 90)).save(root / "train" / side / "big.png")
    config = tiny_config(root, tmp_path / "run", data={"max_megapixels": 0.1})
    n = len(build_dataset(config))
    err = capsys.readouterr().err
    assert "big.png: 400x300 is 0.12 megapixels, above the limit of 0.1" in err
    assert n == len(build_dataset(tiny_config(root, tmp_path / "run"))) - 1
    report = check_dataset(root, max_megapixels=0.1)
    assert {u["path"] for u in report["unreadable"]} == {"train/A/big.png", "train/B/big.png"}

    out = tmp_path / "out"
    proc = run_cli("convert", "--checkpoint", str(ROOT / "models" / "day2night.safetensors"),
                   "--input", str(root / "train" / "A"), "--output", str(out),
                   "--device", "cpu", "--quiet", "--workers", "0", "--max-megapixels", "0.1")
    assert proc.returncode == 1
    assert "big.png: 400x300 is 0.12 megapixels, above the limit of 0.1 (--max-megapixels" \
        in proc.stderr
    assert not (out / "big.png").exists() and len(list(out.iterdir())) == n


def test_files_sharing_a_name_in_a_paired_domain_are_named(shapes32, tmp_path, capsys):
    """A/x.png and A/x.jpg: data check said '1/2 readable' naming neither, and training
    silently used one of them."""
    import shutil

    from translate.data.check import check_dataset, format_report
    from translate.data.datasets import paired_items

    root = tmp_path / "data"
    shutil.copytree(shapes32, root)
    first = sorted((root / "train" / "A").iterdir())[0]
    shutil.copy(first, first.with_suffix(".bmp"))
    text = format_report(check_dataset(root))
    assert f"{first.name}: shares its name with {first.stem}.bmp" in text
    items = paired_items(root, "paired")
    assert first.stem not in {i.name for i in items}
    assert f"{first.stem}.bmp: shares its name with {first.name}" in capsys.readouterr().err


def test_eval_names_an_unreadable_test_image(shapes32, tmp_path):
    """eval used to call an unreadable test image's partner 'no counterpart' and not name
    the unreadable file at all."""
    import shutil

    from translate.infer.engine import Translator
    from translate.infer.evaluate import evaluate

    root = tmp_path / "data"
    shutil.copytree(shapes32, root)
    broken = sorted((root / "test" / "B").iterdir())[0]
    broken.write_bytes(b"not an image")
    engine = Translator.from_checkpoint(ROOT / "models" / "day2night.safetensors",
                                        device="cpu")
    result = evaluate(engine, root, "a2b")
    assert any(f.startswith(f"{broken}: cannot read image") for f in result["failed"])


BOMB = """model:
  a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize("text, message", [
    (BOMB, "aliases .*name. are not allowed"),
    ("train:\n  lr: " + "[" * 5000 + "]" * 5000 + "\n", "nest more than 16 levels"),
    ("train:\n  lr: [" + ", ".join(["1"] * 20000) + "]\n", r"train.lr must be a number, got "
                                                          r"\[1, 1, 1, 1, \.\.\.\]"),
    ("train:\n  " + "k" * 1000 + ": 1\n", "unknown key 'k{40}' in 'train'"),
])
def test_hostile_yaml_is_refused_quickly_and_briefly(tmp_path, text, message):
    """An alias bomb in `model:` used to hang train at 2 GB; 5000 nested '[' gave a
    RecursionError; messages held the whole value."""
    from translate.train.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert time.monotonic() - start < 5
    assert len(str(info.value)) < 1000


def test_inputs_do_not_follow_link_loops(tmp_path):
    """A glob used to follow a link loop (one loop: the image converted 41 times; two: a
    hang)."""
    from PIL import Image

    from translate.infer.convert import find_inputs

    inner = tmp_path / "in" / "a" / "b"
    inner.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(inner / "x.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a" / "y.png")
    (inner / "loop").symlink_to("..")
    (inner / "loop2").symlink_to("../..")
    expected = [inner / "x.png", tmp_path / "in" / "a" / "y.png"]
    for spec in (f"{tmp_path}/in/**/*.png", f"{tmp_path}/in/**/*", str(tmp_path / "in")):
        start = time.monotonic()
        assert find_inputs(spec)[1] == expected, spec
        assert time.monotonic() - start < 5


def _children(pid: int) -> set[int]:
    """Live descendants of ``pid`` (from /proc)."""
    found, frontier = set(), {pid}
    while frontier:
        parents, frontier = frontier, set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in parents and fields[0] != "Z":
                child = int(stat.parent.name)
                found.add(child)
                frontier.add(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def many_photos(tmp_path) -> Path:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(150):
        Image.fromarray(rng.integers(0, 255, (192, 256, 3), np.uint8)).save(
            folder / f"p{i:03d}.png")
    return folder


def _convert_process(src: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "translate", "convert", "--checkpoint",
         str(ROOT / "models" / "day2night.safetensors"), "--input", str(src), "--output",
         str(out), "--device", "cpu", "--quiet", "--workers", "2", *extra],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """A shell that started us in the background ignores SIGINT, and so would the command
    (Python then installs no KeyboardInterrupt): give it the default, as a terminal does."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_outputs(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and not (out.is_dir() and list(out.glob("*.png"))):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)


def test_convert_helpers_die_with_a_killed_convert(many_photos, tmp_path):
    """4 helper processes (300+ MB each) used to outlive a SIGKILLed convert."""
    import signal

    proc = _convert_process(many_photos, tmp_path / "out")
    try:
        _wait_for_outputs(tmp_path / "out", proc)
        helpers = _children(proc.pid)
        assert len(helpers) >= 4, helpers
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in helpers):
        time.sleep(0.1)
    left = [pid for pid in helpers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "helper processes outlived their parent"


def test_ctrl_c_stops_convert_cleanly(many_photos, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) used to print 4
    tracebacks and exit -2."""
    import signal

    out = tmp_path / "out"
    proc = _convert_process(many_photos, out)
    _wait_for_outputs(out, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--skip-existing" in err
    assert not list(out.glob(".*"))  # no partial file
    written = len(list(out.iterdir()))
    assert 0 < written < 150
    proc = _convert_process(many_photos, out, "--skip-existing")
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    assert len(list(out.iterdir())) == 150


def test_one_bad_zip_member_does_not_lose_the_batch(tmp_path):
    """An encrypted or damaged member used to fail a whole demo batch."""
    import io
    import zipfile

    from PIL import Image

    pytest.importorskip("gradio", reason="the demo needs the demo extra")
    from translate.cli.demo import load_app

    load_app()
    from translate.apps.service import Limits, run_batch
    from translate.infer.engine import Translator

    def png(colour) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (40, 32), colour).save(buf, "PNG")
        return buf.getvalue()

    upload = tmp_path / "photos.zip"
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("good.png", png((200, 100, 50)))
        archive.writestr("secret.png", png((1, 2, 3)))
        archive.writestr("broken.png", png((9, 9, 9)) * 4)
        archive.writestr("also_good.png", png((50, 100, 200)))
    data = bytearray(upload.read_bytes())
    with zipfile.ZipFile(upload) as archive:
        info = archive.getinfo("broken.png")
    start = info.header_offset + 30 + len("broken.png") + 10
    data[start:start + 40] = bytes(40)  # damage the compressed stream
    central = data.index(b"PK\x01\x02")  # the first central-directory entry
    for entry in range(central, len(data) - 4):
        if data[entry:entry + 4] == b"PK\x01\x02" and \
                data[entry + 46:entry + 56] == b"secret.png":
            data[entry + 8] |= 0x1  # general purpose flag: encrypted
    upload.write_bytes(bytes(data))

    engine = Translator.from_checkpoint(ROOT / "models" / "day2night.safetensors",
                                        device="cpu")
    result = run_batch(engine, [upload], ["photos.zip"], 1.0, Limits(), tmp_path / "out", "x")
    assert sorted(name for _, name in result.written) == ["photos.zip/also_good.png",
                                                          "photos.zip/good.png"]
    reasons = dict(result.failed)
    assert "encrypted" in reasons["photos.zip/secret.png"]
    assert "photos.zip/broken.png" in reasons
    with zipfile.ZipFile(result.archive) as archive:
        assert len(archive.namelist()) == 2


@pytest.mark.parametrize("workers", [0, 1])
def test_a_diverged_run_stops_without_exporting_nan(shapes32, tmp_path, workers):
    """train.lr=1e30 used to export NaN weights with exit status 0, and metrics.jsonl
    gained NaN (not JSON). With a loader process the command used to print its error and
    then never end (the loader, which ignores SIGTERM, was joined for ever at exit)."""
    from conftest import run_cli

    run = tmp_path / "run"
    config = tiny_config(shapes32, run, train={"iterations": 6, "lr": 1e30, "log_every": 1,
                                               "sample_every": 0}, data={"workers": workers})
    path = tmp_path / "run.yaml"
    path.write_text(config.to_yaml())
    proc = run_cli("train", str(path), "--quiet", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert re.search(r"training diverged at step \d: the loss term \w+ is not a finite "
                     r"number.*a lower learning rate \(train.lr=1e\+29, a tenth of now\)",
                     proc.stderr, re.S)
    assert "Traceback" not in proc.stderr
    assert not list(run.glob("*.safetensors"))
    assert not (run / "checkpoints" / "latest.pt").exists()
    metrics = run / "metrics.jsonl"
    for line in (metrics.read_text() if metrics.exists() else "").splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))


def _file_size_limit(limit: int):
    """For subprocess preexec_fn: writes beyond ``limit`` bytes fail as on a full disk."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_write_that_fails_is_explained_in_train_and_convert(shapes32, tmp_path):
    """A full disk used to give raw tracebacks (torch.save's own RuntimeError in train).
    A file-size limit stands in for the full disk; then the limit goes and the work
    continues as the message says."""
    from conftest import run_cli

    run = tmp_path / "run"
    config = tiny_config(shapes32, run, train={"iterations": 4, "checkpoint_every": 2,
                                               "sample_every": 0})
    path = tmp_path / "run.yaml"
    path.write_text(config.to_yaml())
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "translate", "train", str(path), "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(100_000))
    assert proc.returncode == 1, proc.stderr
    assert f"cannot write {run / 'checkpoints' / 'latest.pt'}: File too large" in proc.stderr
    assert "continue with --resume" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((run / "checkpoints").iterdir())  # no partial checkpoint
    run_cli("train", str(path), "--resume", "--quiet", check=True)
    assert load_state(run / "checkpoints" / "latest.pt")["step"] == 4

    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (300, 200), (i * 80, 90, 200)).save(src / f"p{i}.bmp")  # 180 KB out
    cmd = [sys.executable, "-m", "translate", "convert", "--checkpoint",
           str(ROOT / "models" / "day2night.safetensors"), "--input", str(src), "--output",
           str(tmp_path / "out"), "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_file_size_limit(100_000))
    assert proc.returncode == 1, proc.stderr
    assert "File too large" in proc.stderr and "--skip-existing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").glob(".*"))
    run_cli(*cmd[3:], "--skip-existing", check=True)
    assert len(list((tmp_path / "out").iterdir())) == 3


@pytest.mark.parametrize("after", [3, 11, 19])
def test_sigterm_to_the_whole_group_stops_a_folder_quietly(tmp_path, after):
    """SIGTERM to every process of a conversion with loader and encoder workers (``kill --
    -PGID``, ``pkill -f``, service managers): the same clean stop as Ctrl-C, every file
    written is whole, no traceback from a worker and no worker left. At several points of
    the run: an encoder that died while the main process was sending it an image hung the
    command in the pool's shutdown (about one stop in 13 before encoders left SIGTERM to
    the main process)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    photo = np.random.default_rng(0).integers(0, 255, (256, 384, 3), np.uint8)
    for i in range(60):
        save_image(photo, src / f"{i:02d}.png")
    cmd = [sys.executable, "-m", "translate", "convert", "--checkpoint",
           str(ROOT / "models" / "day2night.safetensors"), "--input", str(src), "--output",
           str(out), "--device", "cpu", "--quiet", "--workers", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", NO_ALBUMENTATIONS_UPDATE="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while (not out.is_dir() or len(list(out.iterdir())) < after) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "interrupted: every file in" in err and "Traceback" not in err, err
    written = sorted(out.iterdir())
    assert after <= len(written) < 60 and all(p.suffix == ".png" for p in written)
    assert all(load_rgb(p).shape == photo.shape for p in written)
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no process of the group is left
