"""A real HTTP server on 127.0.0.1 for download tests: serves in-memory files, answers
``Range: bytes=N-`` requests (or ignores them), can cut a response short, and records every
request."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """``files`` maps a path (without the leading slash) to its bytes.

    ``range_support``: answer ``Range`` with 206 (else ignore it and send 200 with the whole
    file). ``drop_after[name] = n``: the next response for ``name`` announces its full length
    but the connection is closed after ``n`` body bytes (once). ``chunk_delay[name] = s``:
    the body is sent in 64 KiB pieces ``s`` seconds apart (a slow server).
    ``trickle[name] = s``: one byte every ``s`` seconds. ``endless``: names answered with
    zeros for ever, without a Content-Length. ``redirects[name] = url``: answered with a
    302 to ``url``. ``requests`` lists ``(path, Range header or None)``.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.range_support = True
        self.drop_after: dict[str, int] = {}
        self.chunk_delay: dict[str, float] = {}
        self.trickle: dict[str, float] = {}
        self.endless: set[str] = set()
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                wanted = self.headers.get("Range")
                server.requests.append((name, wanted))
                if name in server.endless:
                    return self.zeros()
                if name in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[name])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files.get(name)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if wanted and server.range_support:
                    start = int(wanted.split("=", 1)[1].split("-", 1)[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                cut = server.drop_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if name in server.trickle:
                    return self.trickle(body, server.trickle[name])
                delay = server.chunk_delay.get(name, 0.0)
                for at in range(0, len(body), 1 << 16):
                    self.wfile.write(body[at:at + (1 << 16)])
                    if delay:
                        self.wfile.flush()
                        time.sleep(delay)

            def zeros(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(bytes(1 << 16))
                except OSError:  # the client hung up
                    pass

            def trickle(self, body: bytes, delay: float):
                try:
                    for at in range(len(body)):
                        self.wfile.write(body[at:at + 1])
                        self.wfile.flush()
                        time.sleep(delay)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
