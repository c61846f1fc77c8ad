"""Request limits the web framework does not have: an ASGI middleware in front of the demo.

Gradio stores every upload in its upload folder before any event handler sees it, outside
the queue, and reads the JSON body of an API call (which may carry a pasted image as a
base64 data URL) whole into memory. :class:`RequestGuard` bounds every request that has a
body, before and while it is read:

- a body above its route's limit (an upload: the largest accepted file plus room for its
  form fields; anything else: :attr:`~translate.apps.service.Limits.max_request_bytes`) is
  answered with HTTP 413, from ``Content-Length`` before it is read, or as soon as the
  bytes counted while it streams pass the limit;
- HTTP 429 when the client (by IP address) sent more than ``upload_bytes_per_minute``
  bytes or ``upload_files_per_minute`` files in the last minute;
- an upload with more than ``max_files_per_request`` files (counted as the multipart body
  streams) is answered with HTTP 413;
- HTTP 507 when the upload folder uses more than ``max_upload_folder_bytes`` of disk (its
  files' blocks, so that thousands of tiny files count what they cost) or holds more than
  ``max_upload_folder_files`` files.

A refusal while a body streams stops it where it is: Gradio's upload parser is handed the
error it deletes its partial files for, whatever the app answers is dropped, and the client
gets the refusal instead.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path

WINDOW = 60.0  # seconds over which a client's uploads are counted
FOLDER_SCAN_EVERY = 2.0  # seconds between measurements of the upload folder
BODY_METHODS = ("POST", "PUT", "PATCH")
FORM_ROOM = 1 << 20  # bytes an upload's body may hold beyond its file: headers, fields


class Refused(Exception):
    """A request the guard answers itself: ``status`` and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _parser_error(refusal: Refused) -> Exception:
    """What a refusal raises inside Gradio's upload parser: the error it removes its
    partial files for (the refusal itself where that error cannot be found)."""
    try:
        from gradio.route_utils import MultiPartException
    except ImportError:
        return refusal
    return MultiPartException(refusal.message)


class _Window:
    """Amounts a client sent over the last :data:`WINDOW` seconds."""

    def __init__(self):
        self.items: deque[tuple[float, int]] = deque()

    def total(self, now: float) -> int:
        while self.items and now - self.items[0][0] > WINDOW:
            self.items.popleft()
        return sum(n for _, n in self.items)

    def add(self, now: float, amount: int) -> None:
        if amount:
            self.items.append((now, amount))


class RequestGuard:
    """ASGI middleware bounding request bodies, per-client rates and the upload folder.

    ``limits``: a :class:`~translate.apps.service.Limits`; ``folder``: the upload folder."""

    def __init__(self, app, limits, folder: str | Path):
        self.app, self.limits, self.folder = app, limits, Path(folder)
        self.sent: dict[str, _Window] = {}
        self.files: dict[str, _Window] = {}
        self.folder_bytes = self.folder_files = 0
        self.scanned = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        body = _Body(self, scope, receive, send)
        try:
            body.admit()
        except Refused as refusal:
            return await _answer(send, refusal.status, refusal.message)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if body.refusal is None:
                raise
        finally:
            body.settle()
        if body.refusal is not None and not body.started:
            await _answer(send, body.refusal.status, body.refusal.message)

    def client_of(self, scope) -> str:
        return (scope.get("client") or ("unknown",))[0]

    def check_rate(self, client: str, size: int, files: int, now: float) -> None:
        lim = self.limits
        if self.sent.setdefault(client, _Window()).total(now) + size \
                > lim.upload_bytes_per_minute:
            raise Refused(429, f"too many uploads: at most "
                          f"{lim.upload_bytes_per_minute / 2**20:g} MB a minute; wait a "
                          "minute and try again")
        if self.files.setdefault(client, _Window()).total(now) + files \
                > lim.upload_files_per_minute:
            raise Refused(429, f"too many files: at most {lim.upload_files_per_minute} a "
                          "minute; wait a minute and try again")

    def check_folder(self, size: int, files: int, now: float) -> None:
        lim = self.limits
        used, count = self.usage(now)
        if used + size > lim.max_upload_folder_bytes \
                or count + files > lim.max_upload_folder_files:
            raise Refused(507, "the demo's upload space is full; try again in a few minutes")

    def usage(self, now: float) -> tuple[int, int]:
        """(disk bytes, files) of the upload folder, measured at most every
        ``FOLDER_SCAN_EVERY`` s and counted up with what was admitted since."""
        if now - self.scanned > FOLDER_SCAN_EVERY:
            self.folder_bytes, self.folder_files = _folder_usage(self.folder)
            self.scanned = now
        return self.folder_bytes, self.folder_files


class _Body:
    """One request's body as it streams: its bytes and, for an upload, its files (the
    parts of the multipart form), checked against the limits chunk by chunk."""

    def __init__(self, guard: RequestGuard, scope, receive, send):
        self.guard, self.scope, self._receive, self._send = guard, scope, receive, send
        lim = guard.limits
        self.upload = scope["path"].rstrip("/").endswith("/upload")
        self.limit = lim.largest_upload + FORM_ROOM if self.upload else lim.max_request_bytes
        self.client = guard.client_of(scope)
        self.bytes = self.parts = 0
        self.charged = 0
        self.delimiter = _delimiter(scope) if self.upload else None
        self.tail = b"\r\n"  # the first delimiter of a form has no line break before it
        self.refusal: Refused | None = None
        self.started = False

    def admit(self) -> None:
        """Refuse from the headers alone: a declared size above the limit, a client over
        its rate, a full upload folder. The declared size is charged now."""
        declared = _content_length(self.scope)
        if declared is not None and declared > self.limit:
            raise Refused(413, f"the request is {declared / 2**20:.1f} MB; this demo accepts "
                          f"at most {self.limit / 2**20:.0f} MB in one request")
        size = declared if declared is not None else 0
        now = time.monotonic()
        self.guard.check_rate(self.client, size, 0, now)
        if self.upload:
            self.guard.check_folder(size, 1, now)
        self.charge(size)

    def charge(self, size: int) -> None:
        """Count ``size`` more bytes against the client's rate and the folder."""
        extra = max(0, size - self.charged)
        if extra:
            self.guard.sent.setdefault(self.client, _Window()).add(time.monotonic(), extra)
            if self.upload:
                self.guard.folder_bytes += extra
            self.charged += extra

    def settle(self) -> None:
        """At the end: the files of an upload that was kept are counted against the client
        and the folder (a refused one stored none)."""
        if self.upload and self.parts and self.refusal is None:
            self.guard.files.setdefault(self.client, _Window()).add(time.monotonic(),
                                                                    self.parts)
            self.guard.folder_files += self.parts

    async def receive(self):
        message = await self._receive()
        if message["type"] != "http.request" or self.refusal is not None:
            return message
        chunk = message.get("body", b"")
        self.bytes += len(chunk)
        try:
            self.check(chunk)
        except Refused as refusal:
            self.refusal = refusal
            raise _parser_error(refusal) if self.upload else refusal from None
        return message

    def check(self, chunk: bytes) -> None:
        lim, now = self.guard.limits, time.monotonic()
        if self.bytes > self.limit:
            raise Refused(413, f"the request holds more than {self.limit / 2**20:.0f} MB; "
                          "this demo accepts no more in one request")
        if self.bytes > self.charged:
            self.guard.check_rate(self.client, self.bytes - self.charged, 0, now)
            self.charge(self.bytes)
        if self.delimiter is None:
            return
        data = self.tail + chunk
        self.parts += data.count(self.delimiter)
        self.tail = data[-(len(self.delimiter) - 1):]
        files = max(0, self.parts - 1)  # the closing delimiter ends the last part
        if files > lim.max_files_per_request:
            raise Refused(413, f"the upload holds more than {lim.max_files_per_request} "
                          "files; send fewer at a time")
        self.guard.check_rate(self.client, 0, files, now)
        self.guard.check_folder(0, files, now)

    async def send(self, message):
        if self.refusal is not None and not self.started:
            return  # the app's answer to a body cut short; the refusal is sent instead
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _delimiter(scope) -> bytes | None:
    """``CRLF--boundary`` of a multipart body (None for any other body)."""
    for key, value in scope.get("headers", []):
        if key == b"content-type" and value.lower().startswith(b"multipart/"):
            for param in value.split(b";")[1:]:
                name, _, boundary = param.strip().partition(b"=")
                if name.lower() == b"boundary" and boundary:
                    return b"\r\n--" + boundary.strip(b'"')
    return None


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None


def _folder_usage(folder: Path) -> tuple[int, int]:
    """(bytes of disk its files use, by their blocks; number of files) under ``folder``."""
    used = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue
            used += max(info.st_blocks * 512, info.st_size)
            files += 1
    return used, files


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
