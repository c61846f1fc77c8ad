"""Fetching files over HTTP(S) and unpacking archives safely; shared by the dataset and
model-zoo downloaders.

:func:`fetch` downloads ``url`` to ``DEST.part`` and renames it onto ``DEST`` only once it
is complete (and its sha256 matches, when one is known). A ``.part`` left by an interrupted
run is resumed with an HTTP ``Range`` request; a server that ignores ``Range`` (answers 200)
or answers with another range makes the download start over cleanly. A connection that drops
mid-body is resumed a few times before giving up. When the server cannot be reached the
error names the URL and says where to put the file by hand: the next run uses a file found
at ``DEST`` without downloading it.

Bounds (:class:`Limits`): a download stops at ``max_bytes`` (the partial file is deleted),
when the disk cannot hold what the server announces, when less than ``min_rate`` bytes per
second arrive over a ``window`` (a stalled or trickling server; resumed like a dropped
connection) and at an overall ``deadline``. A full disk stops it with the partial file kept
for a later resume.

:func:`extract_archive` unpacks a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` into a fresh
hidden folder beside its destination and renames the result into place, so a half-extracted
dataset never appears under its final name. Archives are refused as a whole, before
anything lands outside that hidden folder, when a member has an absolute path, a ``..``
component, is a link whose target leaves the folder, or is a device file or FIFO.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from translate import __version__

CHUNK = 1 << 20
_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
# Room kept free on the disk while extracting, beyond the member being written.
DISK_MARGIN = 64 << 20


class DownloadError(Exception):
    """A file could not be fetched; the message names the URL and what to do."""


class ArchiveError(Exception):
    """An archive that is damaged, unsafe to unpack, or holds no dataset."""


@dataclass
class Limits:
    """Bounds on one download. ``max_bytes``: the most the file may hold (None: no cap);
    ``deadline``: seconds for the whole download, resumes included; ``min_rate``: bytes per
    second that must arrive, on average over every ``window`` seconds."""

    max_bytes: int | None = None
    deadline: float = 6 * 3600.0
    min_rate: float = 1024.0
    window: float = 60.0
    started: float = field(default_factory=time.monotonic)

    def time_left(self) -> float:
        return self.deadline - (time.monotonic() - self.started)


def approx_bytes(size: str) -> int:
    """Bytes in a size written for humans (``~220 MB``, ``1.9 GB``)."""
    found = re.match(r"\s*~?\s*([\d.]+)\s*([KMG]?)B", size, re.I)
    if not found:
        raise ValueError(f"not a size: {size!r}")
    return int(float(found.group(1)) * 1024 ** " KMG".index(found.group(2).upper() or " "))


def cap_for(size: str) -> int:
    """The byte cap for a file announced as ``size``: twice that, at least 64 MiB."""
    return max(2 * approx_bytes(size), 64 << 20)


@dataclass(frozen=True)
class Fetched:
    """A completed download: where it is, its sha256 (hex) and its size in bytes."""

    path: Path
    sha256: str
    size: int


# How a message tells a person to try once more; the demo page says it its own way
AGAIN = "run the same command again"


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def by_hand(url: str, dest: Path) -> str:
    """How to install ``dest`` without this machine reaching ``url``."""
    return (f"To install it by hand, download\n  {url}\non a machine that can reach it, copy "
            f"the file to\n  {dest}\nand {AGAIN}; it then uses that file.")


class _Interrupted(Exception):
    """The body stopped before its end (connection lost, timeout); resumable."""


class _Restart(Exception):
    """The partial file cannot be continued (server ignored or mangled the range)."""


class _TooLarge(Exception):
    """The server sends more than the cap; the partial file is worthless."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes A-B/N`` (or ``bytes */N``)."""
    found = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not found:
        return None, None
    start, total = found.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _unreachable(url: str, dest: Path, err: Exception) -> DownloadError:
    reason = getattr(err, "reason", err)
    if isinstance(reason, ConnectionRefusedError):
        what = "connection refused"
    elif isinstance(reason, socket.gaierror):
        what = f"host name not found ({reason})"
    elif isinstance(reason, (TimeoutError, socket.timeout)):
        what = "timed out"
    else:
        what = str(reason) or type(reason).__name__
    return DownloadError(f"download of {url} failed: cannot reach the server: {what}. Is this "
                         f"machine offline?\n{by_hand(url, dest)}")


def redirect_allowed(old: str, new: str) -> bool:
    """Whether a download from ``old`` may follow a redirect to ``new``: from https only to
    https (never to plain http, ftp or a local file); from http (a local server) to http or
    https."""
    allowed = {"https"} if urlsplit(old).scheme == "https" else {"http", "https"}
    return urlsplit(new).scheme.lower() in allowed


class _Redirects(HTTPRedirectHandler):
    """Follows only the redirects :func:`redirect_allowed` allows (checked before urllib's
    own scheme check, so every refusal says the same)."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        if not redirect_allowed(req.full_url, target):
            fp.close()
            raise _Refused(f"the server redirected {req.full_url} to {target[:200]}; only "
                           "redirects from https to https are followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Refused(Exception):
    """A redirect that is not followed."""


_OPENER = build_opener(_Redirects)


def _fetch_once(url: str, part: Path, dest: Path, timeout: float, progress,
                limits: Limits) -> int:
    """One request: append to (or restart) ``part``. Returns the complete size in bytes.
    ``progress``: True for a bar, or a function told (bytes so far, total or None)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"translate/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = _OPENER.open(Request(url, headers=headers), timeout=timeout)
    except _Refused as why:
        raise DownloadError(f"download of {url} failed: {why}\n{by_hand(url, dest)}") from None
    except HTTPError as err:
        if err.code == 416 and offset:  # the part is complete already, or longer than the file
            _, total = _content_range(err.headers.get("Content-Range"))
            err.close()
            if total == offset:
                return total
            raise _Restart(f"the server's file ({total} bytes) is shorter than the partial "
                           f"download ({offset} bytes)") from None
        err.close()
        raise DownloadError(f"download of {url} failed: the server answered {err.code} "
                            f"{err.reason}\n{by_hand(url, dest)}") from None
    except (URLError, OSError, HTTPException) as err:
        raise _unreachable(url, dest, err) from None

    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Restart(f"the server answered a range starting at {start}, "
                               f"not at {offset}")
            mode = "ab"
        else:
            if offset:
                print(f"note: {url} does not support resuming; starting over",
                      file=sys.stderr)
            offset, total, mode = 0, length, "wb"
        if total is None and length is not None:
            total = offset + length
        _check_room(url, part, total, offset, limits)
        received = _copy_body(response, part, mode, offset, total, dest.name, progress, limits)
        if total is not None and received < total:
            raise _Interrupted(f"connection closed at {received} of {total} bytes")
        if total is not None and received > total:
            raise _Restart(f"received {received} bytes, more than the announced {total}")
        return received


def _check_room(url: str, part: Path, total: int | None, offset: int, limits: Limits) -> None:
    """Refuse, before the body, a file above the cap or one the disk cannot hold."""
    if total is not None and limits.max_bytes is not None and total > limits.max_bytes:
        raise _TooLarge(f"the server announces {total} bytes, above the cap of "
                        f"{limits.max_bytes} for this file")
    free = shutil.disk_usage(part.parent).free
    if total is not None and total - offset + DISK_MARGIN > free:
        raise DownloadError(f"download of {url} failed: it needs {total - offset} more bytes "
                            f"and the disk holding {part.parent} has {free} free")


def _copy_body(response, part: Path, mode: str, received: int, total: int | None,
               label: str, progress, limits: Limits) -> int:
    """Write the response body to ``part`` within ``limits``; returns the bytes it then
    holds."""
    bar = _progress_bar(total, received, label, progress is True)
    report = progress if callable(progress) else None
    window_start, window_bytes = time.monotonic(), 0
    try:
        with open(part, mode) as f:
            while True:
                try:
                    chunk = response.read1(CHUNK)  # what has arrived, up to CHUNK
                except (OSError, HTTPException) as err:  # reset, timeout, bad chunking
                    raise _Interrupted(f"{type(err).__name__}: {err}") from None
                if not chunk:
                    break
                received += len(chunk)
                if limits.max_bytes is not None and received > limits.max_bytes:
                    raise _TooLarge(f"the server sent more than the cap of {limits.max_bytes} "
                                    "bytes for this file")
                _write(f, chunk, part, received - len(chunk))
                bar.update(len(chunk))
                if report is not None:
                    report(received, total)
                window_bytes += len(chunk)
                now = time.monotonic()
                if limits.time_left() < 0:
                    raise _Interrupted(f"the deadline of {limits.deadline:.0f} s passed")
                if now - window_start >= limits.window:
                    if window_bytes < limits.min_rate * (now - window_start):
                        raise _Interrupted(f"the server sent {window_bytes} bytes in "
                                           f"{now - window_start:.0f} s, below "
                                           f"{limits.min_rate:.0f} bytes/s")
                    window_start, window_bytes = now, 0
    finally:
        bar.close()
    return received


def _write(f, chunk: bytes, part: Path, kept: int) -> None:
    try:
        f.write(chunk)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise DownloadError(f"cannot write {part}: the disk is full (or the file size "
                                f"limit reached); the {kept} bytes received are kept there: "
                                f"free some space and {AGAIN} to resume") from None
        raise


def _progress_bar(total: int | None, initial: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, file=sys.stderr, leave=False,
                mininterval=0.5)


def fetch(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 30.0,
          attempts: int = 4, progress=True, limits: Limits | None = None) -> Fetched:
    """Download ``url`` to ``dest`` atomically, resuming ``dest.part`` when one exists.
    ``progress``: a bar on stderr (True), none (False), or a function called with (bytes
    received, total bytes or None) after every chunk.

    ``timeout`` (seconds) bounds the connection and every read. A body cut short is resumed
    up to ``attempts`` times in total. With ``sha256`` (hex) the completed file must match
    it; otherwise the partial file is deleted and :class:`DownloadError` raised. Raises
    :class:`DownloadError` (with instructions for installing the file by hand) when the
    server is unreachable or answers with an error. ``limits``: see :class:`Limits` (the
    defaults when None: no cap, 6 hours, 1 KiB/s over each minute).
    """
    limits = limits or Limits()
    limits.started = time.monotonic()
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    restarted = False
    for attempt in range(1, attempts + 1):
        try:
            size = _fetch_once(url, part, dest, timeout, progress, limits)
            break
        except _TooLarge as why:
            part.unlink(missing_ok=True)
            raise DownloadError(f"download of {url} failed: {why}; the partial file was "
                                "deleted. Check the URL.") from None
        except _Restart as why:
            if restarted:
                raise DownloadError(f"download of {url} failed: {why}") from None
            print(f"note: {why}; starting over", file=sys.stderr)
            part.unlink(missing_ok=True)
            restarted = True
        except _Interrupted as why:
            if attempt == attempts or limits.time_left() < 0:
                kept = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"download of {url} failed after {attempt} attempt(s) ({why}). The "
                    f"{kept} bytes received are kept in {part}; {AGAIN} to resume.\n"
                    f"{by_hand(url, dest)}") from None
            print(f"note: {why}; resuming", file=sys.stderr)
    else:  # the last attempt had to start over
        raise DownloadError(f"download of {url} failed: the server keeps changing the file")
    digest = sha256_of(part)
    if sha256 and digest != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} failed: its sha256 is {digest}, expected "
                            f"{sha256.lower()}; the file was deleted. The server may be "
                            "serving a different file; check the URL.")
    os.replace(part, dest)
    return Fetched(dest, digest, size)


# --------------------------------------------------------------------------- archives


def archive_kind(path: str | Path) -> str:
    """'zip' or 'tar', from the file's contents (not its name)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    raise ArchiveError(f"{path} is neither a zip nor a tar archive (damaged or incomplete "
                       "download?); delete it and download again")


def _checked_name(name: str, archive: Path) -> PurePosixPath:
    """A member name as a safe relative path, or ArchiveError."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", name) or name.startswith("/"):
        raise ArchiveError(f"{archive}: refused: member '{name}' has an absolute path")
    if ".." in pure.parts:
        raise ArchiveError(f"{archive}: refused: member '{name}' points outside the archive "
                           "folder ('..')")
    return pure


def _inside(root: Path, path: Path) -> bool:
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _check_space(folder: Path, size: int, archive: Path) -> None:
    free = shutil.disk_usage(folder).free
    if size + DISK_MARGIN > free:
        raise ArchiveError(f"{archive}: not enough disk space in {folder} to unpack "
                           f"({size} more bytes needed, {free} free)")


def _unpack_failure(archive: Path, into: Path, err: Exception) -> ArchiveError:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchiveError(f"{archive}: the disk holding {into.parent} is full")
    return ArchiveError(f"{archive}: damaged, encrypted or incomplete archive ({err}); delete "
                        "it and download again")


def _extract_tar(archive: Path, into: Path) -> None:
    data_filter = getattr(tarfile, "data_filter", None)  # Python >= 3.11.4 / 3.10.12
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one pass: members are checked as they stream by
                rel = _checked_name(member.name, archive)
                target = into / rel
                if member.isdev() or member.isfifo():
                    raise ArchiveError(f"{archive}: refused: member '{member.name}' is a "
                                       "device file or FIFO")
                if member.issym() or member.islnk():
                    link = PurePosixPath(member.linkname)
                    base = target.parent if member.issym() else into
                    if link.is_absolute() or not _inside(into, base / link):
                        raise ArchiveError(f"{archive}: refused: link '{member.name}' -> "
                                           f"'{member.linkname}' points outside the archive "
                                           "folder")
                if not _inside(into, target.parent):  # written through an earlier link
                    raise ArchiveError(f"{archive}: refused: member '{member.name}' would "
                                       "be written outside the archive folder")
                if member.isfile():
                    _check_space(into, member.size, archive)
                if data_filter is not None:
                    tar.extract(member, into, filter="data")
                else:
                    tar.extract(member, into)
    except _FILTER_ERRORS as err:
        raise ArchiveError(f"{archive}: refused: {err}") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise _unpack_failure(archive, into, err) from None


def _extract_zip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:  # zip has a central directory: check everything first
                _checked_name(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise ArchiveError(f"{archive}: refused: member '{info.filename}' is a "
                                       "symbolic link")
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) \
                        or stat.S_ISSOCK(mode):
                    raise ArchiveError(f"{archive}: refused: member '{info.filename}' is a "
                                       "device file, FIFO or socket")
            _check_space(into, sum(i.file_size for i in members), archive)
            for info in members:
                target = into / _checked_name(info.filename, archive)
                if not _inside(into, target.parent):
                    raise ArchiveError(f"{archive}: refused: member '{info.filename}' would "
                                       "be written outside the archive folder")
                zf.extract(info, into)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
            NotImplementedError, RuntimeError, zlib.error) as err:
        raise _unpack_failure(archive, into, err) from None


def _single_top(folder: Path) -> Path:
    """``folder``'s only subfolder when the archive wrapped everything in one (ignoring
    macOS resource forks and hidden files), else ``folder`` itself."""
    entries = [p for p in folder.iterdir()
               if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return folder


def extract_archive(archive: str | Path, dest: str | Path, check=None) -> Path:
    """Unpack ``archive`` and move its content to the folder ``dest`` (which must not
    exist). A single top-level folder in the archive is unwrapped: ``NAME/train/...``
    becomes ``dest/train/...``.

    ``check(folder)`` may inspect the unpacked folder before it is moved into place and
    raise to refuse it. The work happens in a hidden temporary folder beside ``dest``, which
    is removed on any failure. Raises :class:`ArchiveError`.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise ArchiveError(f"{dest} already exists; not unpacking over it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    kind = archive_kind(archive)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(archive, work)
        top = _single_top(work)
        if check is not None:
            check(top)
        os.rename(top, dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return dest
