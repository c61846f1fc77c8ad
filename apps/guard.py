"""Upload limits the web framework does not have: an ASGI middleware in front of the demo.

Gradio stores every upload in its upload folder before any event handler sees it, outside
the queue, so a client sending large files quickly fills the disk however the handlers
check them. :class:`UploadGuard` answers an upload request with HTTP 429 before reading its
body when the client (by IP address) has sent more than ``upload_bytes_per_minute`` in the
last minute, and with HTTP 507 when the upload folder holds more than
``max_upload_folder_bytes``. Sizes are taken from ``Content-Length``; an upload without one
counts as the largest accepted file.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path

WINDOW = 60.0  # seconds over which a client's uploads are counted
FOLDER_SCAN_EVERY = 2.0  # seconds between measurements of the upload folder


class UploadGuard:
    """ASGI middleware refusing uploads beyond the per-client rate and the folder budget.

    ``limits``: a :class:`~translate.apps.service.Limits`; ``folder``: the upload folder."""

    def __init__(self, app, limits, folder: str | Path):
        self.app, self.limits, self.folder = app, limits, Path(folder)
        self.sent: dict[str, deque[tuple[float, int]]] = {}
        self.folder_bytes, self.scanned = 0, 0.0

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].rstrip("/").endswith("/upload")):
            refusal = self.refusal(scope)
            if refusal is not None:
                return await _answer(send, *refusal)
        await self.app(scope, receive, send)

    def refusal(self, scope) -> tuple[int, str] | None:
        """(status, message) refusing this upload, or None (it is then counted)."""
        client = (scope.get("client") or ("unknown",))[0]
        size = _content_length(scope) or self.limits.largest_upload
        now = time.monotonic()
        recent = self.sent.setdefault(client, deque())
        while recent and now - recent[0][0] > WINDOW:
            recent.popleft()
        if sum(n for _, n in recent) + size > self.limits.upload_bytes_per_minute:
            return 429, (f"too many uploads: at most "
                         f"{self.limits.upload_bytes_per_minute / 2**20:g} MB a minute; "
                         "wait a minute and try again")
        if self.used(now) + size > self.limits.max_upload_folder_bytes:
            return 507, "the demo's upload space is full; try again in a few minutes"
        recent.append((now, size))
        self.folder_bytes += size
        return None

    def used(self, now: float) -> int:
        """Bytes in the upload folder, measured at most every ``FOLDER_SCAN_EVERY`` s."""
        if now - self.scanned > FOLDER_SCAN_EVERY:
            self.folder_bytes = _folder_bytes(self.folder)
            self.scanned = now
        return self.folder_bytes


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
