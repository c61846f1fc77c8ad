"""Models on the Hugging Face Hub, against a local stand-in (tests/local_hub.py; HF_ENDPOINT
points at it): hf:// references in convert, eval, export, zoo download and the demo's list;
offline use of the cache; hostile repositories refused before anything large is read;
translate push, dry-run and real, then the pushed model used from another cache."""

from __future__ import annotations

import io
import os
import signal
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

pytest.importorskip("huggingface_hub", reason="needs the hub extra (pip install -e '.[hub]')")

from conftest import ROOT, run_cli, tiny_config  # noqa: E402
from local_hub import HubServer  # noqa: E402
from translate.hub.hf import HubError, choose_file, parse, resolve  # noqa: E402
from translate.train.loop import train  # noqa: E402

MODEL = ROOT / "models" / "day2night.safetensors"
PHOTO = ROOT / "apps" / "photos" / "chelsea.jpg"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stand-in Hub, an empty Hub cache and an empty project cache, for this process
    and the commands it starts."""
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def test_references_parse():
    assert parse("hf://me/night") == parse("hf://me/night")
    ref = parse("hf://me/night@v1/weights/g.pth")
    assert (ref.repo, ref.revision, ref.filename) == ("me/night", "v1", "weights/g.pth")
    assert parse("hf://me/night/g.safetensors").filename == "g.safetensors"
    for bad in ("hf://night", "hf://me/../x", "hf:/me/night", "hf://me/night@"):
        with pytest.raises(HubError, match="not a Hub reference"):
            parse(bad)


def test_the_model_file_of_a_repository():
    ref = parse("hf://me/x")
    assert choose_file(["README.md", "generator_b2a.safetensors",
                        "generator_a2b.safetensors"], ref) == "generator_a2b.safetensors"
    assert choose_file(["latest_net_G.pth", "README.md"], ref) == "latest_net_G.pth"
    with pytest.raises(HubError, match="several .pth"):
        choose_file(["a.pth", "b.pth"], ref)
    with pytest.raises(HubError, match="no model file"):
        choose_file(["README.md"], ref)


def convert(checkpoint: str, out: Path, *extra: str):
    return run_cli("convert", "--checkpoint", checkpoint, "--input", str(PHOTO), "--output",
                   str(out), "--format", "png", "--quiet", "--workers", "0", *extra)


def test_convert_from_the_hub_matches_the_local_file_and_pins_the_commit(hub, tmp_path):
    commit = hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes(),
                                  "README.md": b"# night\n"})
    remote = convert("hf://me/night", tmp_path / "remote")
    assert remote.returncode == 0, remote.stderr
    assert f"model hf://me/night@{commit}/generator_a2b.safetensors" in remote.stderr
    local = convert(str(MODEL), tmp_path / "local")
    assert local.returncode == 0, local.stderr
    a, b = (np.asarray(Image.open(tmp_path / d / "chelsea.png")) for d in ("remote", "local"))
    assert np.array_equal(a, b)
    # offline: the cached model still loads, without a request
    before = len(hub.requests)
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        again = convert("hf://me/night", tmp_path / "offline")
        assert again.returncode == 0, again.stderr
        assert len(hub.requests) == before
        missing = convert("hf://me/other", tmp_path / "missing")
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    assert missing.returncode == 2
    assert "translate zoo download hf://me/other" in missing.stderr


def test_eval_and_export_take_hub_references(hub, tmp_path):
    hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / PHOTO.name).write_bytes(PHOTO.read_bytes())
    scores = run_cli("eval", "--checkpoint", "hf://me/night", "--photos", str(photos),
                     "--json")
    assert scores.returncode == 0, scores.stderr
    refused = run_cli("export", "--checkpoint", "hf://me/night")
    assert refused.returncode == 2 and "--out" in refused.stderr
    out = tmp_path / "copy.safetensors"
    done = run_cli("export", "--checkpoint", "hf://me/night", "--out", str(out))
    assert done.returncode == 0, done.stderr and out.is_file()


def test_missing_repositories_and_files_are_said_plainly(hub):
    with pytest.raises(HubError, match="no such repository"):
        resolve("hf://me/nothing")
    hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
    with pytest.raises(HubError, match="has no file other.pth"):
        resolve("hf://me/night/other.pth")


def test_a_huge_claim_is_refused_before_downloading(hub):
    hub.add("me/huge", {"generator_a2b.safetensors": MODEL.read_bytes()})
    hub.claimed_size[("me/huge", "generator_a2b.safetensors")] = 5 * 1024 ** 3
    with pytest.raises(HubError, match="5.4 GB.*refused before downloading"):
        resolve("hf://me/huge")
    assert not [r for r in hub.requests if "/resolve/" in r[1]]


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_with_code_is_refused_not_run(hub, tmp_path):
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(1), "payload": Payload()}, buffer)
    hub.add("evil/pickle", {"latest_net_G.pth": buffer.getvalue()})
    proc = convert("hf://evil/pickle", tmp_path / "out")
    assert proc.returncode == 2
    assert "refused: it holds pickled Python objects" in proc.stderr
    assert "pwned" not in proc.stdout + proc.stderr
    assert "weights_only` set to `False" not in proc.stderr  # no advice to load it unsafely


def test_an_oversized_safetensors_header_is_refused(hub, tmp_path):
    """The header length says 4 GB: refused by the reader without allocating it."""
    hub.add("evil/header", {"generator_a2b.safetensors": struct.pack("<Q", 4 * 1024 ** 3)
                            + b"{}" * 8})
    proc = convert("hf://evil/header", tmp_path / "out")
    assert proc.returncode == 2
    assert "not a readable safetensors file" in proc.stderr


@pytest.fixture
def run(shapes32, tmp_path):
    return train(tiny_config(shapes32, tmp_path / "run",
                             train={"iterations": 4, "sample_every": 4, "eval_every": 4,
                                    "eval_images": 2}), progress=False)


def test_push_dry_run_writes_the_repository_it_would_send(hub, run, tmp_path):
    out = tmp_path / "staged"
    proc = run_cli("push", str(run), "me/shapes", "--dry-run", str(out), "--license", "mit",
                   "--data", "procedural shapes, 32 px")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["README.md", "config.yaml", "generator_a2b.safetensors",
                     "samples/latest.png"]
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "translate" and meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "mit" and "pix2pix" in meta["tags"]
    assert "procedural shapes, 32 px" in card and "| psnr |" in card
    assert "translate convert --checkpoint hf://me/shapes" in card
    assert (out / "generator_a2b.safetensors").read_bytes() == \
        (run / "generator_a2b.safetensors").read_bytes()
    assert not [r for r in hub.requests if r[0] == "POST"]  # nothing sent


def test_push_then_use_from_another_machine(hub, run, tmp_path, monkeypatch):
    proc = run_cli("push", str(run), "me/shapes", "--license", "mit")
    assert proc.returncode == 0, proc.stderr
    files = hub.repos["me/shapes"]["files"]
    assert {"README.md", "config.yaml", "generator_a2b.safetensors",
            "samples/latest.png"} <= set(files)
    assert files["generator_a2b.safetensors"] == (run / "generator_a2b.safetensors").read_bytes()
    assert "Bearer hf_test_token" in hub.tokens
    assert hub.cards and "library_name: translate" in hub.cards[-1]
    # another machine: fresh caches
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf2"))
    monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache2"))
    used = convert("hf://me/shapes", tmp_path / "out")
    assert used.returncode == 0, used.stderr
    listed = run_cli("zoo", "download", "hf://me/shapes")
    assert listed.returncode == 0, listed.stderr
    from apps.catalog import scan

    keys = [k for k in scan(None).entries if k.startswith("hf://me/shapes@")]
    assert len(keys) == 1, list(scan(None).entries)


def test_push_without_exports_says_what_to_do(hub, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli("push", str(tmp_path / "empty"), "me/x", "--dry-run", str(tmp_path / "o"))
    assert proc.returncode == 2 and "translate export" in proc.stderr


def test_with_the_hub_down_a_cached_model_is_used_and_others_are_said_plainly(tmp_path,
                                                                              monkeypatch):
    """The Hub stops answering (HF_HUB_OFFLINE unset): a model already in the cache is
    used from there; one that is not, and a name the Hub would refuse, are errors that
    say so, not tracebacks."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
        first = convert("hf://me/night", tmp_path / "first")
        assert first.returncode == 0, first.stderr
    again = convert("hf://me/night", tmp_path / "again")  # the server is gone
    assert again.returncode == 0, again.stderr
    assert np.array_equal(*(np.asarray(Image.open(tmp_path / d / "chelsea.png"))
                            for d in ("first", "again")))
    for ref, said in (("hf://me/other", "cannot be reached"),
                      ("hf://-/-", "not a valid repository name")):
        proc = convert(ref, tmp_path / "other")
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    with pytest.raises(HubError, match="cannot be reached .*not in the Hub cache"):
        resolve("hf://me/other")


def test_names_that_are_not_plain_are_refused_plainly(hub):
    """Repository ids the Hub would refuse and listed files that climb out of the
    repository: each is a HubError naming the reference, never a traceback or a file
    written elsewhere."""
    for ref in ("hf://./.", "hf://-/-", "hf://ｍｅ/ｎｉｇｈｔ"):
        with pytest.raises(HubError, match="not a valid repository name|not a Hub reference"):
            resolve(ref)
    hub.add("me/climb", {"../../x.safetensors": MODEL.read_bytes(),
                         "/etc/y.safetensors": MODEL.read_bytes()})
    with pytest.raises(HubError, match="holds no model file"):
        resolve("hf://me/climb")
    assert choose_file(["../a.safetensors", "sub/generator_a2b.safetensors"],
                       parse("hf://me/x")) == "sub/generator_a2b.safetensors"


def test_references_to_pull_requests_parse():
    ref = parse("hf://me/night@refs/pr/1")
    assert (ref.repo, ref.revision, ref.filename) == ("me/night", "refs/pr/1", None)
    ref = parse("hf://me/night@refs/pr/12/sub/g.safetensors")
    assert (ref.revision, ref.filename) == ("refs/pr/12", "sub/g.safetensors")
    assert parse("hf://me/night@main/g.pth").revision == "main"


def test_several_safetensors_without_a_generator_of_ours_are_named_not_guessed():
    with pytest.raises(HubError, match="several .safetensors.*name one"):
        choose_file(["a.safetensors", "b.safetensors"], parse("hf://me/x"))
    assert choose_file(["README.md", "only.safetensors"], parse("hf://me/x")) == \
        "only.safetensors"


def test_zoo_download_keeps_only_what_loads_and_each_file_of_a_repository(hub, tmp_path):
    """A file no loader takes (a pickle with code, a README) is not remembered for the
    demo and is removed from the Hub cache again; two files of one repository are two
    models in the demo's list."""
    import json

    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(1), "payload": Payload()}, buffer)
    hub.add("evil/pickle", {"latest_net_G.pth": buffer.getvalue()})
    hub.add("me/text", {"README.md": b"# no model\n"})
    hub.add("me/two", {"day.safetensors": MODEL.read_bytes(),
                       "night.safetensors": MODEL.read_bytes()})
    for ref, said in (("hf://evil/pickle", "is not a model this project can load"),
                      ("hf://me/text/README.md", "is not a model this project can load")):
        proc = run_cli("zoo", "download", ref)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert "removed from the Hub cache" in proc.stderr and "pwned" not in proc.stdout
    cached = [p for p in (tmp_path / "hf").rglob("*") if p.name in ("latest_net_G.pth",
                                                                     "README.md")]
    assert not [p for p in cached if "evil" in str(p) or "text" in str(p)], cached
    for name in ("day", "night"):
        run_cli("zoo", "download", f"hf://me/two/{name}.safetensors", check=True)
    listed = json.loads((tmp_path / "cache" / "hub_models.json").read_text())
    assert sorted(i["ref"].rsplit("/", 1)[1] for i in listed) == ["day.safetensors",
                                                                   "night.safetensors"]


def test_a_damaged_hub_cache_is_said_plainly(hub, tmp_path):
    hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
    assert convert("hf://me/night", tmp_path / "first").returncode == 0
    refs = next((tmp_path / "hf").rglob("models--me--night")) / "refs" / "main"
    refs.unlink()
    refs.mkdir()  # a folder where the commit's name belongs
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        proc = convert("hf://me/night", tmp_path / "again")
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "hf://me/night" in proc.stderr


def test_a_hub_that_never_answers_or_trickles_is_given_up(hub, tmp_path, monkeypatch):
    """huggingface_hub waits for ever on a server that accepts and never answers, and on
    one that sends 64 bytes a second: convert stops when less than 16 KiB came within
    TRANSLATE_HUB_TIMEOUT (here 2 s), or when a download that began well falls under
    1 KiB/s over twice that, and says so; a file that flows at a normal rate is fetched
    (the other tests)."""
    import socket
    import threading
    import time

    monkeypatch.setenv("TRANSLATE_HUB_TIMEOUT", "2")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(16)],
                     daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    started = time.monotonic()
    proc = convert("hf://me/night", tmp_path / "silent")
    assert proc.returncode == 2 and "did not answer" in proc.stderr, proc.stderr
    assert "within 2 s" in proc.stderr
    assert time.monotonic() - started < 30
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
    hub.trickle[("me/night", "generator_a2b.safetensors")] = (0, 64)
    started = time.monotonic()
    proc = convert("hf://me/night", tmp_path / "trickle")
    assert proc.returncode == 2 and "within 2 s" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 40
    hub.trickle[("me/night", "generator_a2b.safetensors")] = (256 * 1024, 64)
    proc = convert("hf://me/night", tmp_path / "slowed")  # fast at first, then a trickle
    assert proc.returncode == 2 and "under 1024 a second" in proc.stderr, proc.stderr
    silent.close()


def test_push_refuses_what_it_should_not_publish_and_leaves_nothing_half_done(hub, run,
                                                                              tmp_path):
    """A linked sample grid (to a secrets file) is not staged; NaN weights, a revision or
    file in OWNER/REPO, a --dry-run path that is a file or a dangling link are refused
    (exit 2, nothing written); this machine's paths leave the config; an evaluation of
    10**400 does not stop the card."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    secret = tmp_path / "secrets.txt"
    secret.write_text("token=hunter2")
    (run / "samples" / "step_999999.png").symlink_to(secret)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "eval_psnr": 10 ** 400, "eval_ssim": 0.5}) + "\n")
    out = tmp_path / "staged"
    proc = run_cli("push", str(run), "me/shapes", "--dry-run", str(out))
    assert proc.returncode == 0, proc.stderr
    assert b"hunter2" not in (out / "samples" / "latest.png").read_bytes()
    assert str(run) not in (out / "config.yaml").read_text()
    assert "held this machine's paths" in proc.stderr
    assert "| ssim | 0.5 |" in (out / "README.md").read_text()

    bad = tmp_path / "nan" / "generator_a2b.safetensors"
    bad.parent.mkdir()
    with safe_open(str(run / "generator_a2b.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    first = sorted(tensors)[0]
    tensors[first] = tensors[first].clone().fill_(float("nan"))
    save_file(tensors, str(bad), metadata=meta)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for args, said in (((str(bad), "me/x", "--dry-run", str(tmp_path / "n")), "nothing was "
                        "published"),
                       ((str(run), "me/x@v1", "--dry-run", str(tmp_path / "r")), "not a "
                        "revision"),
                       ((str(run), "me/x/g.safetensors", "--dry-run", str(tmp_path / "f")),
                        "not a revision or a file"),
                       ((str(run), "me/x", "--dry-run", str(tmp_path / "a_file")), "is a file"),
                       ((str(run), "me/x", "--dry-run", str(tmp_path / "dangling")), "a link")):
        proc = run_cli("push", *args)
        assert proc.returncode == 2 and said in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "n").exists() and not (tmp_path / "r").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-staged


@pytest.mark.parametrize("signum, status", [(2, 130), (15, 143)])
def test_push_stopped_by_a_signal_leaves_no_copy(run, tmp_path, monkeypatch, signum, status):
    """A push waiting on a Hub that never answers, stopped by Ctrl-C or SIGTERM: a short
    message, no traceback, and no staged copy left in the temporary folder."""
    import socket
    import subprocess
    import sys
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}",
               HF_HOME=str(tmp_path / "hf"), HF_TOKEN="hf_test_token", TMPDIR=str(temp))
    # Ctrl-C's default action, even where the suite runs in the background (a shell starts
    # background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored)
    proc = subprocess.Popen([sys.executable, "-m", "translate", "push", str(run), "me/x"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(temp.glob("translate-push-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    silent.close()
    assert proc.returncode == status, err
    assert "interrupted: nothing was sent" in err and "Traceback" not in err, err
    assert list(temp.iterdir()) == []


def test_a_cached_hub_file_replaced_under_its_name_or_larger_than_listed_is_refused(
        hub, tmp_path, monkeypatch):
    """The file in the Hub cache is swapped for another model under the same name: the
    next use (online or offline) refuses it by its sha256, as zoo models are. A Hub that
    lists a small file and sends more than the limit is stopped when the bytes pass it."""
    hub.add("me/night", {"generator_a2b.safetensors": MODEL.read_bytes()})
    assert convert("hf://me/night", tmp_path / "first").returncode == 0
    cached = next((tmp_path / "hf").rglob("snapshots/*/generator_a2b.safetensors"))
    blob = cached.resolve()
    blob.unlink()
    blob.write_bytes((ROOT / "models" / "real2anime.safetensors").read_bytes())
    for offline in ("0", "1"):
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
        proc = convert("hf://me/night", tmp_path / f"again{offline}")
        assert proc.returncode == 2, proc.stderr
        assert "changed in the Hub cache since it was fetched" in proc.stderr, proc.stderr
    monkeypatch.delenv("HF_HUB_OFFLINE")
    from translate.hub.hf import HfRef, watched

    folder = tmp_path / "blobs"
    folder.mkdir()

    def sends_too_much():
        import time

        for k in range(40):
            (folder / "x.incomplete").write_bytes(b"0" * (k + 1) * 256 * 1024)
            time.sleep(0.05)
    with pytest.raises(HubError, match="sent more than 1 MB"):
        watched(sends_too_much, folder, HfRef("me/x"), max_bytes=1 << 20)


def test_push_to_a_hub_that_never_answers_is_given_up(run, tmp_path, monkeypatch):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("TRANSLATE_HUB_TIMEOUT", "2")
    started = time.monotonic()
    proc = run_cli("push", str(run), "me/x")
    silent.close()
    assert proc.returncode == 2 and "did not answer within 2 s" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30
