"""Writing files safely: readers never see a partial file, and a kill mid-write leaves the
previous version intact."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from translate.errors import UserError


# What a write that fails for want of room or permission raises (errno): a full disk, a
# quota, a file-size limit, a read-only or forbidden folder.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                errno.EPERM)


class OccupiedError(UserError):
    """The folder to create already holds something; nothing was written."""


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# What a plain open(path, "w") gives: 0o666 minus the umask. Read once, at import, because
# reading the umask means setting it, which must not race with other threads.
DEFAULT_MODE = 0o666 & ~_read_umask()


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto
    ``path``. The file gets the usual permissions (``mkstemp`` alone would make it
    private to the owner)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, DEFAULT_MODE)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write names no file: name the one meant
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class KeptErrors:
    """A binary file for writers that replace the OSError of a failed write with their own
    error (torch.save raises RuntimeError on a full disk): ``error`` keeps the OSError, so
    the caller can raise it instead."""

    def __init__(self, path: str | Path):
        self.file = open(path, "wb")
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def write_with(writer, tmp: str | Path) -> None:
    """``writer(file)`` on a :class:`KeptErrors` file at ``tmp``; a write that failed raises
    its OSError (disk full, ...), whatever the writer made of it."""
    out = KeptErrors(tmp)
    try:
        writer(out)
        out.flush()
    except Exception:
        if out.error is not None:
            raise out.error from None
        raise
    finally:
        out.close()


@contextlib.contextmanager
def new_folder(out: str | Path, label: str):
    """Build a folder that appears whole or not at all: yields an empty temporary folder
    beside ``out`` that is renamed to ``out`` when the block ends without an error, and
    removed otherwise. ``out`` must not exist, or be an empty folder (else
    :class:`OccupiedError`, before anything is written)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OccupiedError(f"{out} already exists and is not an empty folder; choose a new "
                            "--out (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.{label}-", dir=out.parent))
    try:
        yield work
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.rename(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


CACHE_ENV = "TRANSLATE_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$TRANSLATE_CACHE``, else ``$XDG_CACHE_HOME/translate``, else
    ``~/.cache/translate``. The model zoo keeps its files in ``zoo/``, inference its
    precision checks in ``precision.json``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "translate"
