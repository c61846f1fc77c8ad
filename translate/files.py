"""Writing files safely: readers never see a partial file, and a kill mid-write leaves the
previous version intact."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
