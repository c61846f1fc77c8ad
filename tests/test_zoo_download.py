"""The model zoo against a real HTTP server on 127.0.0.1: registry contents, cache folder,
sidecars with sha256, verification on use (a tampered file is found), files placed by hand,
offline errors, and ``translate zoo`` end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from translate.hub import zoo
from translate.hub.download import DownloadError

from conftest import run_cli
from local_http import FileServer, closed_port_url

PIX2PIX = ["edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"]
CYCLEGAN = ["apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite",
            "horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne",
            "style_ukiyoe", "style_vangogh", "sat2map", "map2sat", "cityscapes_photo2label",
            "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
            "iphone2dslr_flower"]
ANIME = ["face_paint_512_v1", "face_paint_512_v2", "celeba_distill", "paprika"]

HORSE = b"weights of horse2zebra " * 2000
PAPRIKA = b"weights of paprika " * 500


@pytest.fixture
def server():
    srv = FileServer()
    srv.files["cyclegan-horse2zebra.pth"] = HORSE
    srv.files["animeganv2-paprika.pth"] = PAPRIKA
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path, monkeypatch, server) -> Path:
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(zoo.ZOO_URL_ENV, server.base)
    return tmp_path / "cache" / "zoo"


def test_registry_lists_every_published_model():
    assert set(zoo.REGISTRY) == ({f"pix2pix-{n}" for n in PIX2PIX}
                                 | {f"cyclegan-{n}" for n in CYCLEGAN}
                                 | {f"animeganv2-{n}" for n in ANIME})
    r = zoo.REGISTRY
    assert r["pix2pix-day2night"].url == ("https://efrosgans.eecs.berkeley.edu/pix2pix/"
                                          "models-pytorch/day2night.pth")
    assert r["cyclegan-sat2map"].url == ("https://efrosgans.eecs.berkeley.edu/cyclegan/"
                                         "pretrained_models/sat2map.pth")
    assert r["animeganv2-paprika"].url == ("https://github.com/bryandlee/animegan2-pytorch/"
                                           "raw/main/weights/paprika.pt")
    assert r["pix2pix-day2night"].task == "day2night"
    assert {e.task for n, e in r.items() if n.startswith("animeganv2-")} == {"real2anime"}
    assert r["cyclegan-zebra2horse"].task == "horse2zebra"
    assert r["cyclegan-zebra2horse"].direction == "zebra -> horse"
    for name, entry in r.items():
        assert entry.name == name and entry.kind in zoo.KINDS
        assert entry.kind.split("-")[-1] in name or entry.kind == "animeganv2"
        assert entry.description and entry.direction and entry.task and entry.size
        assert set(entry.sidecar("0" * 64, entry.url)) == set(zoo.SIDECAR_KEYS)


def test_names_cache_dir_and_url_override(tmp_path, monkeypatch):
    assert zoo.lookup("horse2zebra").name == "cyclegan-horse2zebra"
    with pytest.raises(zoo.ZooError, match="ambiguous: pix2pix-sat2map or cyclegan-sat2map"):
        zoo.lookup("sat2map")
    with pytest.raises(zoo.ZooError, match="cyclegan-horse2zebra"):
        zoo.lookup("cyclegan-hors2zebra")
    monkeypatch.delenv(zoo.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zoo.cache_dir() == tmp_path / "home" / ".cache" / "translate"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "translate"
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "mine"))
    assert zoo.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(zoo.ZOO_URL_ENV, "http://mirror.example/zoo/")
    assert (zoo.REGISTRY["animeganv2-paprika"].source_url()
            == "http://mirror.example/zoo/animeganv2-paprika.pth")


def test_download_writes_file_and_sidecar(cache, server):
    meta, what = zoo.download("horse2zebra", progress=False)
    path = cache / "cyclegan-horse2zebra.pth"
    assert what == "downloaded" and meta["path"] == str(path)
    assert path.read_bytes() == HORSE
    side = json.loads((cache / "cyclegan-horse2zebra.json").read_text())
    assert set(side) == set(zoo.SIDECAR_KEYS)
    assert side["sha256"] == hashlib.sha256(HORSE).hexdigest()
    assert (side["kind"], side["task"], side["direction"]) == ("reference-cyclegan",
                                                              "horse2zebra", "horse -> zebra")
    assert side["url"] == server.url("cyclegan-horse2zebra.pth")
    assert zoo.installed() == [dict(side, path=str(path))]
    assert zoo.installed(cache) == zoo.installed()

    again, what = zoo.download("cyclegan-horse2zebra", progress=False)
    assert what == "present" and again == meta
    assert len(server.requests) == 1  # verified, not fetched again


def test_tampered_file_is_detected_and_replaced(cache, server):
    zoo.download("animeganv2-paprika", progress=False)
    path = cache / "animeganv2-paprika.pth"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert zoo.installed() == []
    assert zoo.file_state("animeganv2-paprika") == "corrupt"
    states = {row["name"]: row["state"] for row in zoo.status()}
    assert states["animeganv2-paprika"] == "corrupt" and states["pix2pix-day2night"] == "missing"
    meta, what = zoo.download("paprika", progress=False)
    assert what == "downloaded" and path.read_bytes() == PAPRIKA
    assert [m["name"] for m in zoo.installed()] == ["animeganv2-paprika"]


def test_known_sha256_must_match(cache, server, monkeypatch):
    entry = zoo.REGISTRY["cyclegan-horse2zebra"]
    monkeypatch.setitem(zoo.REGISTRY, entry.name, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(DownloadError, match="sha256"):
        zoo.download(entry.name, progress=False)
    assert not cache.exists() or list(cache.iterdir()) == []
    good = hashlib.sha256(HORSE).hexdigest()
    monkeypatch.setitem(zoo.REGISTRY, entry.name, dataclasses.replace(entry, sha256=good))
    meta, _ = zoo.download(entry.name, progress=False)
    assert meta["sha256"] == good


def test_file_placed_by_hand_is_registered_offline(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_URL_ENV, closed_port_url())
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "pix2pix-day2night.pth").write_bytes(b"weights copied by hand")
    assert zoo.file_state("pix2pix-day2night", folder) == "unregistered"
    assert zoo.installed(folder) == []
    meta, what = zoo.download("pix2pix-day2night", folder, progress=False)
    assert what == "registered" and meta["url"] == zoo.REGISTRY["pix2pix-day2night"].url
    assert [m["name"] for m in zoo.installed(folder)] == ["pix2pix-day2night"]


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    base = closed_port_url()
    monkeypatch.setenv(zoo.ZOO_URL_ENV, base)
    with pytest.raises(DownloadError) as err:
        zoo.download("paprika", tmp_path, progress=False)
    text = str(err.value)
    assert f"{base}/animeganv2-paprika.pth" in text and "offline" in text
    assert str(tmp_path / "animeganv2-paprika.pth") in text
    assert list(tmp_path.iterdir()) == []


def test_zoo_cli(cache, server, tmp_path):
    folder = tmp_path / "zoo_cli"
    # one served, one not: the first is installed, the command reports the second, exit 1
    proc = run_cli("zoo", "download", "cyclegan-horse2zebra", "animeganv2-face_paint_512_v2",
                   "--dir", str(folder), "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert "cyclegan-horse2zebra: downloaded" in proc.stdout and "404" in proc.stderr
    assert (folder / "cyclegan-horse2zebra.pth").read_bytes() == HORSE

    (folder / "cyclegan-horse2zebra.pth").write_bytes(b"tampered")
    listing = run_cli("zoo", "list", "--dir", str(folder), "--json")
    states = {r["name"]: r["state"] for r in json.loads(listing.stdout)}
    assert listing.returncode == 0 and states["cyclegan-horse2zebra"] == "corrupt"
    assert states["animeganv2-face_paint_512_v2"] == "missing"

    unknown = run_cli("zoo", "download", "zebra2hose", "--dir", str(folder))
    assert unknown.returncode == 2 and "cyclegan-zebra2horse" in unknown.stderr


def test_zoo_cli_offline(tmp_path, monkeypatch):
    base = closed_port_url()
    monkeypatch.setenv(zoo.ZOO_URL_ENV, base)
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    proc = run_cli("zoo", "download", "pix2pix-edges2shoes")
    assert proc.returncode == 1
    assert f"{base}/pix2pix-edges2shoes.pth" in proc.stderr and "offline" in proc.stderr
    assert str(tmp_path / "cache" / "zoo" / "pix2pix-edges2shoes.pth") in proc.stderr
