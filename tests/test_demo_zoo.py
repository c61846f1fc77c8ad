"""Published models from the demo page: each tab offers its task's zoo models, downloads
one with progress from a (local stand-in) server that is slow and drops the connection,
then lists and selects it with face mode on for face models; failures say what happened and
where to put the file by hand; translate demo --models-from-zoo downloads before starting."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install -e '.[demo]'")
gradio_client = pytest.importorskip("gradio_client")

from PIL import Image  # noqa: E402

from local_http import FileServer  # noqa: E402
from test_demo import ROOT, DemoServer, stand_in_models  # noqa: E402
from translate.networks import build_generator  # noqa: E402

FACE = "animeganv2-face_paint_512_v2"
SCENE = "animeganv2-paprika"


def animegan_bytes(seed: int) -> bytes:
    """A state dict in AnimeGANv2's published layout, random weights (about 8 MB)."""
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(build_generator("animeganv2", {}).state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files():
    srv = FileServer()
    srv.files[f"{FACE}.pth"] = animegan_bytes(0)
    srv.files["animeganv2-celeba_distill.pth"] = animegan_bytes(1)
    srv.drop_after[f"{FACE}.pth"] = 3_000_000        # dropped once, then resumed
    srv.chunk_delay[f"{FACE}.pth"] = 0.005           # and slow
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def client(files, cache, tmp_path_factory):
    models = stand_in_models(tmp_path_factory.mktemp("models"))
    demo = DemoServer("--models", str(models), temp=tmp_path_factory.mktemp("gradio"),
                      TRANSLATE_ZOO_URL=files.base, TRANSLATE_CACHE=str(cache))
    yield gradio_client.Client(demo.url, verbose=False)
    demo.stop()


def test_download_lists_selects_and_translates_a_face_model(client, files):
    status, model, card, face = client.predict(FACE, api_name="/download_real2anime")[:4]
    assert f"**{FACE}** is downloaded and selected" in status
    assert model["value"] == f"zoo: {FACE}" and face == "crop"
    assert f"zoo: {FACE}" in [value for value, _ in model["choices"]]
    assert "Made for faces" in card and "MIT" in card
    assert (f"{FACE}.pth", "bytes=3000000-") in files.requests  # resumed after the drop
    photo = ROOT / "apps" / "photos" / "astronaut.jpg"
    out = client.predict(gradio_client.handle_file(str(photo)), model=f"zoo: {FACE}",
                         api_name="/real2anime")
    assert Image.open(out).size == (512, 512)  # face mode by default: the face square
    whole = client.predict(gradio_client.handle_file(str(photo)), model=f"zoo: {FACE}",
                           face="off", api_name="/real2anime")
    assert Image.open(whole).size == Image.open(photo).size
    cup = ROOT / "apps" / "photos" / "coffee.jpg"  # no face: translated whole
    out = client.predict(gradio_client.handle_file(str(cup)), model=f"zoo: {FACE}",
                         api_name="/real2anime")
    assert Image.open(out).size == Image.open(cup).size


def test_failed_download_says_what_to_do(client, cache):
    status, *_ = client.predict(SCENE, api_name="/download_real2anime")  # not served: 404
    assert status.startswith("**Not downloaded.**")
    assert "To install it by hand" in status and str(cache / "zoo" / f"{SCENE}.pth") in status
    status, *_ = client.predict("pix2pix-day2night", api_name="/download_real2anime")
    assert status.startswith("**Not downloaded.**")  # another task's model
    assert "is not a" in status


def test_a_damaged_cached_file_is_downloaded_again(client, files, cache):
    name = "animeganv2-celeba_distill"
    zoo = cache / "zoo"
    zoo.mkdir(exist_ok=True)
    (zoo / f"{name}.pth").write_bytes(b"damaged")
    sidecar = {"name": name, "task": "real2anime", "kind": "animeganv2", "url": "x",
               "sha256": "0" * 64, "description": "x", "direction": "x"}
    (zoo / f"{name}.json").write_text(json.dumps(sidecar))
    status, model, *_ = client.predict(name, api_name="/download_real2anime")
    assert "is downloaded and selected" in status and model["value"] == f"zoo: {name}"
    assert (zoo / f"{name}.pth").read_bytes() == files.files[f"{name}.pth"]


def test_models_from_zoo_before_the_demo_starts(files, tmp_path):
    env = {"TRANSLATE_ZOO_URL": files.base, "TRANSLATE_CACHE": str(tmp_path / "cache")}
    demo = DemoServer("--models-from-zoo", FACE, "--models", str(stand_in_models(tmp_path)),
                      temp=tmp_path / "gradio", **env)
    try:
        assert any(f"{FACE}: downloaded" in line for line in demo.lines)
        config = gradio_client.Client(demo.url, verbose=False).view_api(print_info=False,
                                                                          return_format="dict")
        assert config
    finally:
        demo.stop()
    import os

    proc = subprocess.run([sys.executable, "-m", "translate", "demo", "--models-from-zoo",
                           SCENE], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))
    assert proc.returncode == 2 and "could not be downloaded" in proc.stderr
    assert "To install it by hand" in proc.stderr


def test_a_model_typed_as_an_hf_reference_is_downloaded_and_selected(tmp_path):
    """The panel takes hf://OWNER/REPO as well as the zoo's names (a stand-in Hub)."""
    from local_hub import HubServer

    card = b"---\nlicense: mit\nlibrary_name: translate\n---\n# night\n"
    with HubServer() as hub:
        hub.add("me/night", {"generator_a2b.safetensors":
                             (ROOT / "models" / "day2night.safetensors").read_bytes(),
                             "README.md": card})
        (tmp_path / "models").mkdir()
        demo = DemoServer("--models", str(stand_in_models(tmp_path / "models")),
                          temp=tmp_path / "g",
                          HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"),
                          TRANSLATE_CACHE=str(tmp_path / "cache"))
        try:
            client = gradio_client.Client(demo.url, verbose=False)
            status, model, card_md, *_ = client.predict("hf://me/night",
                                                        api_name="/download_day2night")
        finally:
            demo.stop()
    assert "is downloaded and selected" in status and "licence: mit" in status, status
    assert model["value"].startswith("hf://me/night@")
    assert "night" in card_md.lower()  # the model's own card is shown


def test_what_the_page_may_fetch_from_the_hub_is_bounded(tmp_path):
    """A visitor may have the server fetch Hub files of at most --max-hub-mb, at most
    --hub-fetches-per-hour an hour, and the page keeps at most --max-hub-models of what it
    fetched (the oldest is removed from the Hub cache); a file no loader takes is removed
    at once."""
    from local_hub import HubServer

    weights = (ROOT / "models" / "day2night.safetensors").read_bytes()
    with HubServer() as hub:
        for name in ("one", "two", "three"):
            hub.add(f"me/{name}", {"generator_a2b.safetensors": weights})
        hub.add("me/huge", {"generator_a2b.safetensors": weights})
        hub.claimed_size[("me/huge", "generator_a2b.safetensors")] = 600 * 2**20
        hub.add("me/text", {"notes.pth": b"not a model"})
        (tmp_path / "models").mkdir()
        demo = DemoServer("--models", str(stand_in_models(tmp_path / "models")),
                          "--max-hub-models", "2", "--hub-fetches-per-hour", "5",
                          temp=tmp_path / "g", HF_ENDPOINT=hub.url,
                          HF_HOME=str(tmp_path / "hf"), TRANSLATE_CACHE=str(tmp_path / "c"))
        try:
            client = gradio_client.Client(demo.url, verbose=False)

            def fetch(ref: str) -> str:
                return client.predict(ref, api_name="/download_day2night")[0]
            assert "more than 0.5 GB" in fetch("hf://me/huge")
            said = fetch("hf://me/text")
            assert "is not a model this project can load" in said
            assert not list((tmp_path / "hf").rglob("notes.pth"))  # removed again
            for name in ("one", "two", "three"):
                assert "is downloaded and selected" in fetch(f"hf://me/{name}"), name
            assert "at most 5 Hub models an hour" in fetch("hf://me/one")
        finally:
            demo.stop()
    kept = {p.parent.parent.parent.name for p in (tmp_path / "hf").rglob("*.safetensors")}
    assert kept == {"models--me--two", "models--me--three"}, kept  # "one" removed
