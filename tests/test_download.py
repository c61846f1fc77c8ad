"""Downloads against a real HTTP server on 127.0.0.1: resume with Range, servers without
Range, dropped connections, sha256, offline errors; safe unpacking of dataset archives and
``translate data download`` end to end."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from translate.data.datasets import detect_layout
from translate.hub.datasets import (DATASETS, DATASETS_URL_ENV, DataUsageError,
                                         download_dataset, lookup)
from translate.hub.download import ArchiveError, DownloadError, extract_archive, fetch
from translate.data.synth import render_dataset

from conftest import run_cli
from local_http import FileServer, closed_port_url

BLOB = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()


@pytest.fixture
def server():
    srv = FileServer()
    srv.files["blob.bin"] = BLOB
    yield srv
    srv.close()


# ------------------------------------------------------------------------------ fetch


def test_fetch_whole_file(server, tmp_path):
    got = fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert got.sha256 == hashlib.sha256(BLOB).hexdigest() and got.size == len(BLOB)
    assert not (tmp_path / "blob.bin.part").exists()
    assert server.requests == [("blob.bin", None)]


def test_partial_download_resumes_with_range(server, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(BLOB[:100_000])
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests == [("blob.bin", "bytes=100000-")]
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.range_support = False
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes from another file" * 100)
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests == [("blob.bin", "bytes=2900-")]  # asked, got 200: started over
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_complete_part_file_is_finished_without_body(server, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(BLOB)  # killed between last byte and rename
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests == [("blob.bin", f"bytes={len(BLOB)}-")]  # answered 416
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_dropped_connection_is_resumed(server, tmp_path):
    server.drop_after["blob.bin"] = 120_000
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests == [("blob.bin", None), ("blob.bin", "bytes=120000-")]
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_dropped_connection_keeps_part_for_the_next_run(server, tmp_path):
    server.drop_after["blob.bin"] = 120_000
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        fetch(server.url("blob.bin"), tmp_path / "blob.bin", attempts=1, progress=False)
    assert (tmp_path / "blob.bin.part").stat().st_size == 120_000
    assert not (tmp_path / "blob.bin").exists()
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", progress=False)
    assert server.requests[-1] == ("blob.bin", "bytes=120000-")
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_sha256_mismatch_deletes_the_download(server, tmp_path):
    with pytest.raises(DownloadError, match="sha256"):
        fetch(server.url("blob.bin"), tmp_path / "blob.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []
    good = hashlib.sha256(BLOB).hexdigest().upper()  # case does not matter
    fetch(server.url("blob.bin"), tmp_path / "blob.bin", sha256=good, progress=False)


def test_http_error_names_status_and_url(server, tmp_path):
    with pytest.raises(DownloadError, match="404") as err:
        fetch(server.url("missing.bin"), tmp_path / "missing.bin", progress=False)
    assert server.url("missing.bin") in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_offline_message_says_how_to_install_by_hand(tmp_path):
    url = closed_port_url() + "/blob.bin"
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "blob.bin", timeout=5, progress=False)
    text = str(err.value)
    assert url in text and "connection refused" in text and "offline" in text
    assert str(tmp_path / "blob.bin") in text and "by hand" in text


# --------------------------------------------------------------------------- archives


def aligned_tarball(folder: Path, top: str = "facades") -> bytes:
    """A small pix2pix-style archive: TOP/train/*.png (A|B side by side) and TOP/val."""
    render_dataset(folder / top, size=16, train=4, test=2, layout="aligned")
    (folder / top / "test").rename(folder / top / "val")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder / top, arcname=top)
    return buf.getvalue()


def unpaired_zip(folder: Path, top: str) -> bytes:
    """A small CycleGAN-style archive: TOP/trainA, trainB, testA, testB."""
    render_dataset(folder / top, size=16, train=3, test=1, layout="unpaired")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted((folder / top).rglob("*")):
            zf.write(path, str(path.relative_to(folder)))
    return buf.getvalue()


def hidden_or_leftover(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_data_download_cli_end_to_end(server, tmp_path, monkeypatch):
    server.files["facades.tar.gz"] = aligned_tarball(tmp_path / "src")
    target = tmp_path / "datasets"
    monkeypatch.setenv(DATASETS_URL_ENV, server.base)
    proc = run_cli("data", "download", "facades", "--dir", str(target), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert detect_layout(target / "facades") == "aligned"
    assert len(list((target / "facades" / "train").glob("*.png"))) == 4
    assert (target / "facades" / "val").is_dir()
    assert not (target / "facades.tar.gz").exists()  # downloaded archive removed
    assert hidden_or_leftover(target) == []
    assert server.requests == [("facades.tar.gz", None)]

    again = run_cli("data", "download", "facades", "--dir", str(target))
    assert again.returncode == 0 and "already present" in again.stdout
    assert len(server.requests) == 1  # not fetched again


def test_cyclegan_zip_with_a_colliding_name(server, tmp_path, monkeypatch):
    assert lookup("facades").layout == "aligned"
    assert lookup("facades_unpaired").archive == "facades.zip"
    server.files["facades.zip"] = unpaired_zip(tmp_path / "src", "facades")
    monkeypatch.setenv(DATASETS_URL_ENV, server.base)
    folder, what = download_dataset("facades_unpaired", tmp_path / "d", progress=False)
    assert what == "downloaded" and folder == tmp_path / "d" / "facades_unpaired"
    assert detect_layout(folder) == "unpaired"
    assert len(list((folder / "trainB").iterdir())) == 3


def test_archive_placed_by_hand_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.setenv(DATASETS_URL_ENV, closed_port_url())
    target = tmp_path / "d"
    target.mkdir()
    (target / "horse2zebra.zip").write_bytes(unpaired_zip(tmp_path / "src", "horse2zebra"))
    folder, what = download_dataset("horse2zebra", target, progress=False)
    assert what == "unpacked" and detect_layout(folder) == "unpaired"
    assert (target / "horse2zebra.zip").exists()  # the user's file is kept


def test_data_download_offline_exit_status(tmp_path, monkeypatch):
    base = closed_port_url()
    monkeypatch.setenv(DATASETS_URL_ENV, base)
    proc = run_cli("data", "download", "horse2zebra", "--dir", str(tmp_path / "d"))
    assert proc.returncode == 1
    assert f"{base}/horse2zebra.zip" in proc.stderr and "offline" in proc.stderr
    assert str(tmp_path / "d" / "horse2zebra.zip") in proc.stderr
    assert not (tmp_path / "d" / "horse2zebra").exists()


def test_unknown_name_and_occupied_folder_are_usage_errors(tmp_path):
    with pytest.raises(DataUsageError, match="horse2zebra"):
        lookup("hors2zebra")
    (tmp_path / "facades").mkdir()
    (tmp_path / "facades" / "notes.txt").write_text("mine")
    with pytest.raises(DataUsageError, match="no dataset layout"):
        download_dataset("facades", tmp_path, progress=False)
    assert (tmp_path / "facades" / "notes.txt").read_text() == "mine"


def test_registry_urls_and_override(monkeypatch):
    assert DATASETS["night2day"].url == ("https://efrosgans.eecs.berkeley.edu/pix2pix/"
                                         "datasets/night2day.tar.gz")
    assert DATASETS["maps_unpaired"].url.endswith("/cyclegan/datasets/maps.zip")
    assert {e.layout for e in DATASETS.values()} == {"aligned", "unpaired"}
    monkeypatch.setenv(DATASETS_URL_ENV, "http://mirror.example/data/")
    assert DATASETS["maps"].url == "http://mirror.example/data/maps.tar.gz"


def test_damaged_archive_and_archive_without_dataset(tmp_path):
    good = aligned_tarball(tmp_path / "src")
    (tmp_path / "cut.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ArchiveError, match="damaged"):
        extract_archive(tmp_path / "cut.tar.gz", tmp_path / "out" / "ds")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    (tmp_path / "empty.zip").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match="no dataset layout"):
        extract_archive(tmp_path / "empty.zip", tmp_path / "out" / "ds",
                        check=_layout_check)
    assert list((tmp_path / "out").iterdir()) == []


def _layout_check(folder):
    from translate.hub.datasets import _check_layout

    _check_layout(lookup("facades"))(folder)


# ------------------------------------------------------------------- hostile archives


def _tar(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"evil"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _hostile(kind: str, outside: Path) -> tuple[str, bytes]:
    ok = _file("ds/train/0.png", b"fine")
    device = tarfile.TarInfo("ds/train/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    archives = {
        "tar-dotdot": lambda: _tar([ok, _file("ds/../../outside/evil.txt")]),
        "tar-absolute": lambda: _tar([ok, _file(str(outside / "evil.txt"))]),
        "tar-symlink-escape": lambda: _tar([ok, _link("ds/train/out", "../../../outside"),
                                            _file("ds/train/out/evil.txt")]),
        "tar-symlink-absolute": lambda: _tar([ok, _link("ds/train/out", str(outside)),
                                              _file("ds/train/out/evil.txt")]),
        "tar-hardlink-escape": lambda: _tar([ok, _link("ds/train/evil.txt",
                                                       str(outside / "sentinel.txt"),
                                                       tarfile.LNKTYPE)]),
        "tar-device": lambda: _tar([ok, (device, None)]),
        "zip-dotdot": lambda: _zip([("ds/train/0.png", b"fine", 0),
                                    ("../outside/evil.txt", b"evil", 0)]),
        "zip-absolute": lambda: _zip([("ds/train/0.png", b"fine", 0),
                                      (str(outside / "evil.txt"), b"evil", 0)]),
        "zip-symlink": lambda: _zip([("ds/train/out", str(outside),
                                      stat.S_IFLNK | 0o777)]),
    }
    suffix = ".zip" if kind.startswith("zip") else ".tar.gz"
    return suffix, archives[kind]()


@pytest.mark.parametrize("kind", ["tar-dotdot", "tar-absolute", "tar-symlink-escape",
                                  "tar-symlink-absolute", "tar-hardlink-escape", "tar-device",
                                  "zip-dotdot", "zip-absolute", "zip-symlink"])
def test_hostile_archives_are_refused(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("keep me")
    work = tmp_path / "work" / "datasets"
    work.mkdir(parents=True)
    suffix, data = _hostile(kind, outside)
    archive = tmp_path / f"hostile{suffix}"
    archive.write_bytes(data)
    with pytest.raises(ArchiveError, match="refused"):
        extract_archive(archive, work / "ds")
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    assert (outside / "sentinel.txt").read_text() == "keep me"
    assert list(work.iterdir()) == []  # no dataset, no leftover temporary folder
    assert not (tmp_path / "evil.txt").exists() and not Path("/evil.txt").exists()
    assert os.listdir(tmp_path / "work") == ["datasets"]


def test_hostile_download_exits_1(server, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    server.files["facades.tar.gz"] = _hostile("tar-dotdot", outside)[1]
    monkeypatch.setenv(DATASETS_URL_ENV, server.base)
    proc = run_cli("data", "download", "facades", "--dir", str(tmp_path / "d"), "--quiet")
    assert proc.returncode == 1 and "refused" in proc.stderr
    assert list(outside.iterdir()) == [] and not (tmp_path / "d" / "facades").exists()


def test_progress_is_reported_to_a_function_across_a_resume(server, tmp_path):
    server.drop_after["blob.bin"] = 120_000
    seen = []
    fetch(server.url("blob.bin"), tmp_path / "blob.bin",
          progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(BLOB), len(BLOB))
    assert all(b[0] > a[0] for a, b in zip(seen, seen[1:]))  # growing, also after resuming
    assert all(total == len(BLOB) for _, total in seen)


def test_a_server_streaming_without_end_stops_at_the_cap(server, tmp_path):
    """Zeros for ever used to fill the disk and leave the .part behind."""
    from translate.hub.download import Limits

    server.endless.add("zeros.bin")
    with pytest.raises(DownloadError, match="more than the cap of 5000000 bytes") as info:
        fetch(server.url("zeros.bin"), tmp_path / "z.bin", progress=False,
              limits=Limits(max_bytes=5_000_000))
    assert "partial file was deleted" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_announced_size_above_the_cap_is_refused_before_the_body(server, tmp_path):
    from translate.hub.download import Limits

    with pytest.raises(DownloadError, match="announces 300000 bytes, above the cap"):
        fetch(server.url("blob.bin"), tmp_path / "b.bin", progress=False,
              limits=Limits(max_bytes=100_000))
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_server_is_given_up_on(server, tmp_path):
    """One byte every few seconds used to keep a download alive for ever: below the
    minimum rate over a window it counts as a dropped connection, resumed, then given up
    with the bytes kept."""
    import time

    from translate.hub.download import Limits

    server.files["slow.bin"] = b"x" * 1000
    server.trickle["slow.bin"] = 0.05
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"below 100 bytes/s.*kept in") as info:
        fetch(server.url("slow.bin"), tmp_path / "s.bin", progress=False, attempts=2,
              limits=Limits(min_rate=100, window=0.5))
    assert time.monotonic() - start < 10
    assert "failed after 2 attempt(s)" in str(info.value)
    assert (tmp_path / "s.bin.part").stat().st_size > 0


def test_the_overall_deadline_ends_a_download(server, tmp_path):
    from translate.hub.download import Limits

    server.files["slow.bin"] = b"x" * 1000
    server.trickle["slow.bin"] = 0.05
    with pytest.raises(DownloadError, match="the deadline of 1 s passed"):
        fetch(server.url("slow.bin"), tmp_path / "s.bin", progress=False, attempts=4,
              limits=Limits(deadline=1, min_rate=1, window=100))


def test_registry_downloads_use_https_and_carry_a_cap():
    from translate.hub.datasets import DATASETS
    from translate.hub.download import approx_bytes, cap_for
    from translate.hub.photos import PACKAGES
    from translate.hub.zoo import REGISTRY

    urls = ([e.url for e in REGISTRY.values()] + [e.url for e in DATASETS.values()]
            + [p.url for p in PACKAGES.values()])
    assert all(u.startswith("https://") for u in urls), [u for u in urls if "https" not in u]
    assert approx_bytes("~1.9 GB") == int(1.9 * 1024 ** 3)
    assert approx_bytes("16 MB") == 16 << 20
    assert cap_for("~9 MB") == 64 << 20 and cap_for("~8 GB") == 16 << 30


def test_a_full_disk_is_explained_and_the_bytes_kept(server, tmp_path):
    """The write fails as on a full disk (a file-size limit in a child process stands in
    for it): a DownloadError saying so, the partial file kept for a resume."""
    import subprocess
    import sys

    script = f"""
import resource, signal, sys
from translate.hub.download import DownloadError, fetch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    fetch({server.url('blob.bin')!r}, {str(tmp_path / 'b.bin')!r}, progress=False)
except DownloadError as err:
    print(err)
    sys.exit(1)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "the disk is full" in proc.stdout and "kept there" in proc.stdout
    assert (tmp_path / "b.bin.part").stat().st_size <= 100_000
    assert not (tmp_path / "b.bin").exists()


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/blob.bin", "file:///etc/hostname",
                                    "data:,hello"])
def test_redirects_leave_http_only_for_https(server, tmp_path, target):
    """A redirect away from http(s) (ftp://, file://, data:) is refused with the URL named;
    nothing is written."""
    server.redirects["moved.bin"] = target
    with pytest.raises(DownloadError, match="redirected .* only redirects from https to "
                                            "https are followed"):
        fetch(server.url("moved.bin"), tmp_path / "out.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_redirects_within_http_are_followed_and_https_is_never_downgraded(server, tmp_path):
    from translate.hub.download import redirect_allowed

    server.redirects["moved.bin"] = server.url("blob.bin")
    fetch(server.url("moved.bin"), tmp_path / "blob.bin", progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == BLOB
    assert redirect_allowed("https://a.example/x", "https://b.example/y")
    assert redirect_allowed("https://a.example/x", "HTTPS://b.example/y")
    for downgrade in ("http://b.example/y", "ftp://b.example/y", "file:///etc/passwd"):
        assert not redirect_allowed("https://a.example/x", downgrade)
