"""The browser demo (apps/, ``translate demo``): model catalogue, the real server started by
the CLI on a free port and called with gradio_client, limits and path safety.

The models are tiny stand-ins exported here; the shipped models are not needed."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate.formats.checkpoint import export_generator
from translate.infer.engine import Translator
from translate.networks import build_generator

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install -e '.[demo]'")
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

from translate.cli.demo import load_app  # noqa: E402

load_app()  # translate.apps, with gradio

ROOT = Path(__file__).resolve().parent.parent
UNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 5, "norm": "batch",
        "dropout": False}
RESNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 1, "norm": "instance",
          "dropout": False}


def stand_in_models(folder: Path) -> Path:
    """real2anime.safetensors and day2night.safetensors (cards with a task), sub/plain
    (no card: both tabs) and a file that is not a generator."""
    torch.manual_seed(0)
    for name, arch, kw, card in [
            ("real2anime", "unet", UNET, {"task": "real2anime", "title": "Tiny anime",
                                          "summary": "A stand-in for tests.",
                                          "scores": {"psnr": 12.5}}),
            ("day2night", "resnet", RESNET, {"task": "day2night", "title": "Tiny night",
                                             "summary": "Another stand-in."}),
            ("sub/plain", "resnet", RESNET, None)]:
        export_generator(build_generator(arch, kw).eval(), folder / f"{name}.safetensors",
                         arch=arch, kwargs=kw, direction="a2b", norm_stats="running",
                         method="test", step=1, card=card)
    (folder / "junk.safetensors").write_bytes(b"not a safetensors file")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """``translate demo`` in a subprocess; ``url`` once it serves."""

    def __init__(self, *args: str, temp: Path, timeout: float = 120,
                 command: tuple[str, ...] = (sys.executable, "-m", "translate", "demo"),
                 cwd: Path = ROOT, **env_vars: str):
        env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONUNBUFFERED="1",
                   GRADIO_TEMP_DIR=str(temp), GRADIO_ANALYTICS_ENABLED="False", **env_vars)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port), *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + timeout
        while not any("Running on local URL" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("translate demo did not start:\n" + "".join(self.lines))
            time.sleep(0.2)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return stand_in_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    demo = DemoServer("--models", str(models), "--max-upload-mb", "1", "--max-megapixels",
                      "0.25", "--max-video-mb", "1", temp=tmp_path_factory.mktemp("gradio"))
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server.url, verbose=False)


def write_png(path: Path, h: int, w: int, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    channels = len(mode)
    array = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
    return path


# --------------------------------------------------------------------- no server needed

def test_catalog_sorts_models_into_tabs(models, tmp_path):
    from translate.apps.catalog import UnknownModel, card_markdown, scan

    catalog = scan(models, shipped_dir=None, zoo=False)
    assert [e.key for e in catalog.for_task("real2anime")] == ["real2anime", "sub/plain"]
    assert [e.key for e in catalog.for_task("day2night")] == ["day2night", "sub/plain"]
    assert catalog.defaults == {"real2anime": "real2anime", "day2night": "day2night"}
    assert [p.name for p, _ in catalog.skipped] == ["junk.safetensors"]
    card = card_markdown(catalog.entries["real2anime"])
    assert "Tiny anime" in card and "A stand-in for tests." in card and "psnr: 12.5" in card
    assert "does not say what it was trained for" in card_markdown(catalog.entries["sub/plain"])
    with pytest.raises(UnknownModel, match="day2night"):
        catalog.lookup("real2anime", "day2night")   # a model of the other tab
    # a shipped default is offered (and preselected) beside a folder without that task
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "day2night.safetensors").write_bytes((models / "day2night.safetensors")
                                                     .read_bytes())
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.safetensors").write_bytes((models / "real2anime.safetensors").read_bytes())
    catalog = scan(other, shipped_dir=shipped, zoo=False)
    assert catalog.defaults == {"real2anime": "mine", "day2night": "day2night (shipped)"}


def test_app_uses_no_training_code(models):
    code = ("import sys; from translate.apps import catalog, service, examples; "
            f"c = catalog.scan({str(models)!r}, zoo=False); "
            "t = catalog.TranslatorCache('cpu').get(c.entries['day2night']); "
            "print(sorted(m for m in sys.modules if m.startswith('translate')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    for training in ("translate.train", "translate.train.loop", "translate.train.methods",
                     "translate.train.losses", "translate.data.datasets",
                     "translate.train.config"):
        assert f"'{training}'" not in out, out


def test_every_translation_runs_in_one_device_group_behind_a_bounded_queue(models):
    from translate.apps.demo import DEVICE_GROUP, build_app

    app = build_app(models, device="cpu", queue_size=5, examples=False, zoo=False)
    runs = {fn.api_name: fn for fn in app.fns.values()
            if fn.api_name in ("real2anime", "day2night", "batch")}
    assert len(runs) == 3
    for fn in runs.values():
        assert (fn.concurrency_id, fn.concurrency_limit, fn.queue) == (DEVICE_GROUP, 1, True)
    assert app._queue.max_size == 5


def test_only_uploaded_files_are_read(tmp_path):
    import base64

    from translate.apps.demo import upload_source
    from translate.apps.service import InputError, Limits

    for payload in ({"path": "/etc/passwd"}, {"path": str(ROOT / "README.md")}, "/etc/passwd",
                    {"url": "https://example.com/a.png"}, None):
        with pytest.raises(InputError):
            upload_source(payload, Limits())
    png = write_png(tmp_path / "x.png", 5, 7).read_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert upload_source({"url": url, "orig_name": "../x.png"}, Limits()) == (png, "x.png")
    with pytest.raises(InputError, match="too large"):
        upload_source({"url": url}, Limits(max_file_bytes=len(png) // 2))


def test_cli_lists_demo_and_its_options():
    from conftest import run_cli

    assert "demo" in run_cli("--help", check=True).stdout
    text = run_cli("demo", "--help", check=True).stdout
    for option in ("--models", "--host", "--port", "--share", "--max-upload-mb",
                   "--max-megapixels", "--queue-size"):
        assert option in text
    assert "127.0.0.1" in text
    missing = run_cli("demo", "--models", "no/such/folder")
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


# --------------------------------------------------------------------- the real server

def test_server_binds_localhost_with_one_device_group(server):
    assert f"Running on local URL:  http://127.0.0.1:{server.port}" in "".join(server.lines)
    config = httpx.get(server.url + "config").json()
    assert config["max_file_size"] == 2**20 and config["analytics_enabled"] is False
    public = {d["api_name"]: d for d in config["dependencies"]
              if d["api_visibility"] == "public"}
    assert set(public) == {"real2anime", "day2night", "batch", "download_real2anime",
                           "download_day2night", "video"}
    text = "".join(server.lines)
    assert "share=True" not in text and "--share opens a public link" in text
    try:
        outward = socket.gethostbyname(socket.gethostname())
    except OSError:
        outward = "127.0.0.1"
    if not outward.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((outward, server.port), timeout=2).close()


def test_endpoints_keep_the_size_and_match_the_translator(client, models, tmp_path):
    rgb = write_png(tmp_path / "photo.png", 37, 50)
    out = client.predict(gradio_client.handle_file(str(rgb)), api_name="/real2anime")
    result = np.asarray(Image.open(out))
    assert result.shape == (37, 50, 3)
    expected = Translator.from_checkpoint(models / "real2anime.safetensors", device="cpu") \
        .translate_array(np.asarray(Image.open(rgb)))
    assert np.abs(result.astype(int) - expected).max() <= 1

    rgba = write_png(tmp_path / "street.png", 45, 61, mode="RGBA", seed=1)
    out = client.predict(gradio_client.handle_file(str(rgba)), model="sub/plain",
                         strength=0.0, api_name="/day2night")
    with Image.open(out) as img, Image.open(rgba) as original:
        assert img.size == (61, 45) and img.mode == "RGBA"      # alpha carried over
        assert np.array_equal(np.asarray(img), np.asarray(original))  # strength 0: input


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(client, server, tmp_path):
    good = write_png(tmp_path / "good.png", 20, 30)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(good.read_bytes()[:60])
    large = write_png(tmp_path / "large.png", 600, 500)          # 0.3 MP > 0.25 MP
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)                    # 100 MP in a few kB
    cases = [(text, "not an image"), (damaged, "not an image"), (large, "megapixels"),
             (bomb, "megapixels")]
    for path, message in cases:
        with pytest.raises(gradio_client.exceptions.AppError, match=message):
            client.predict(gradio_client.handle_file(str(path)), api_name="/real2anime")
        out = client.predict(gradio_client.handle_file(str(good)), api_name="/real2anime")
        assert Image.open(out).size == (30, 20)
    with pytest.raises(gradio_client.exceptions.AppError, match="unknown model"):
        client.predict(gradio_client.handle_file(str(good)), model="../../etc/passwd",
                       api_name="/day2night")
    # the server itself refuses uploads above --max-upload-mb (not only the client)
    reply = httpx.post(server.url + "gradio_api/upload",
                       files={"files": ("big.png", os.urandom(2**20 + 1000), "image/png")})
    assert reply.status_code == 413
    assert "Running on local URL" in "".join(server.lines) and server.proc.poll() is None


def test_parallel_calls_all_succeed(server, tmp_path):
    sizes = [(20 + 3 * i, 24 + 5 * i) for i in range(6)]
    paths = [write_png(tmp_path / f"p{i}.png", h, w, seed=i) for i, (h, w) in enumerate(sizes)]

    def call(i: int):
        one = gradio_client.Client(server.url, verbose=False)
        api = "/real2anime" if i % 2 else "/day2night"
        return Image.open(one.predict(gradio_client.handle_file(str(paths[i])), api_name=api))

    with ThreadPoolExecutor(len(paths)) as pool:
        images = list(pool.map(call, range(len(paths))))
    assert [img.size for img in images] == [(w, h) for h, w in sizes]


def test_batch_of_files_and_a_zip(client, tmp_path):
    first = write_png(tmp_path / "first.png", 24, 40)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("holiday/a.png", write_png(tmp_path / "a.png", 33, 21).read_bytes())
        archive.writestr("../escape/b.png", write_png(tmp_path / "b.png", 16, 16).read_bytes())
        archive.writestr("readme.txt", "not an image")
    (tmp_path / "album.zip").write_bytes(packed.getvalue())
    gallery, archive_path, report = client.predict(
        [gradio_client.handle_file(str(first)), gradio_client.handle_file(str(tmp_path /
                                                                               "album.zip"))],
        model="day2night", api_name="/batch")
    names = ["first.png", "album.zip/holiday/a.png", "album.zip/../escape/b.png"]
    assert [item["caption"] for item in gallery] == [f"{name}: {side}" for name in names
                                                     for side in ("before", "after")]
    befores = [Image.open(item["image"]).size for item in gallery[::2]]
    assert befores == [(40, 24), (21, 33), (16, 16)]  # each input beside its output
    assert "**3**" in report and "readme.txt" in report and "not an image" in report
    with zipfile.ZipFile(archive_path) as results:
        names = sorted(results.namelist())
        sizes = sorted(Image.open(io.BytesIO(results.read(n))).size for n in names)
    assert names == ["a_day2night.png", "b_day2night.png", "first_day2night.png"]
    assert sizes == [(16, 16), (21, 33), (40, 24)]


def test_files_outside_uploads_and_outputs_are_refused(server, models):
    for path in ("/etc/passwd", str(models / "real2anime.safetensors"),
                 str(ROOT / "README.md"), "README.md", "../../../../etc/passwd"):
        reply = httpx.get(f"{server.url}gradio_api/file={path}")
        assert reply.status_code in (403, 404), (path, reply.status_code)
        assert "root:" not in reply.text



def test_sigterm_stops_the_demo_and_removes_its_temporary_folders(models, tmp_path):
    """A service manager's SIGTERM ends the demo like Ctrl-C: the server closes, and the
    folder of results it made is gone, not left in /tmp (examples are read from
    apps/photos and need none)."""
    (tmp_path / "tmp").mkdir()
    demo = DemoServer("--models", str(models), temp=tmp_path / "gradio",
                      TMPDIR=str(tmp_path / "tmp"))
    made = [p for p in (tmp_path / "tmp").rglob("translate-demo-*")]
    made += [p for p in (tmp_path / "gradio").rglob("translate-demo-*")]
    assert len(made) == 1, made  # the outputs
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(30) == 0
    left = [p for p in made if p.exists()]
    assert not left, left


# ------------------------------------------------------------- one client, many requests

def test_uploads_beyond_a_clients_rate_are_refused_before_they_are_stored(models, tmp_path):
    """62 uploads of 19 MB in 10 s used to add 1.2 GB to the upload folder: Gradio stores
    uploads outside the queue. Beyond the client's rate they are refused unread (429)."""
    temp = tmp_path / "gradio"
    demo = DemoServer("--models", str(models), "--upload-mb-per-minute", "1", temp=temp)
    try:
        before = sum(p.stat().st_size for p in temp.rglob("*") if p.is_file())  # examples
        blob = bytes(400_000)
        answers = [httpx.post(demo.url + "gradio_api/upload",
                              files={"files": (f"f{i}.png", blob, "image/png")}, timeout=30)
                   for i in range(4)]
        codes = [a.status_code for a in answers]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429], codes
        assert "at most 1 MB a minute" in answers[2].json()["detail"]
        stored = sum(p.stat().st_size for p in temp.rglob("*") if p.is_file()) - before
        assert 800_000 <= stored < 1_000_000  # the two accepted uploads only
    finally:
        demo.stop()


def test_a_batch_has_a_pixel_and_a_time_budget(tmp_path):
    """A 64-image batch could hold the one model slot for about an hour."""
    from translate.apps.service import Limits, run_batch

    engine = Translator.from_checkpoint(ROOT / "models" / "day2night.safetensors",
                                        device="cpu")
    paths = [write_png(tmp_path / f"p{i}.png", 300, 400, seed=i) for i in range(3)]
    names = [p.name for p in paths]
    result = run_batch(engine, paths, names, 1.0, Limits(max_batch_pixels=300_000),
                       tmp_path / "out", "x")
    assert [name for _, name in result.written] == ["p0.png", "p1.png"]
    assert result.failed == [("p2.png", "left out: one batch translates at most 0.3 "
                              "megapixels in all; send the rest in another batch")]
    result = run_batch(engine, paths, names, 1.0, Limits(max_batch_seconds=1e-9),
                       tmp_path / "out2", "x")
    assert result.written == [] and len(result.failed) == 3
    assert "the batch ran for more than 1e-09 s" in result.failed[0][1]


def test_a_model_card_cannot_make_the_page_fetch_or_run_anything():
    """Card fields, unknown card keys, metadata facts and file names come from the model
    file (a Hub model's author): images, links, HTML and table cells in them are shown as
    text, so the page fetches nothing from elsewhere."""
    import re

    from translate.apps.catalog import ModelEntry, card_markdown

    entry = ModelEntry("k", Path("evil_![x](http:__a).safetensors"), "day2night", "folder",
                       card={"title": "Hi ![pic](http://10.0.0.1/x.png)",
                             "summary": "<img src=http://10.0.0.1/y.png> *bold* "
                                        "face_paint_512",
                             "limits": '<a href="http://10.0.0.1/">here</a>',
                             "odd|key": "[link](http://10.0.0.1/)"},
                       facts={"arch": "<script>alert(1)</script>"})
    text = card_markdown(entry)
    for unsafe in (r"(?<!\\)!(?<!\\)\[", r"(?<!\\)\]\(", "<img", "<a ", "<script",
                   r"odd\|key"):
        assert not re.search(unsafe, text), (unsafe, text)
    assert "face_paint_512" in text  # words keep their underscores
