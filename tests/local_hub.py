"""A stand-in for the Hugging Face Hub on 127.0.0.1, for the hf:// and push tests: answers
the endpoints huggingface_hub's downloads and uploads use (``HF_ENDPOINT`` points at it).

- ``HEAD``/``GET /OWNER/REPO/resolve/REVISION/FILE``: the file, with ``ETag``,
  ``X-Repo-Commit`` and ``Content-Length`` (or a claimed ``X-Linked-Size``), ``Range``.
- ``GET /api/models/OWNER/REPO[/revision/REVISION]``: the repository's files and sizes.
- ``POST /api/repos/create``, ``POST /api/models/OWNER/REPO/preupload/REVISION`` (every file
  goes "regular", inline in the commit) and ``POST /api/models/OWNER/REPO/commit/REVISION``
  (NDJSON, base64 contents): a new commit of the repository.

``repos[repo]`` is ``{"commit": sha, "files": {path: bytes}, "private": bool}``;
``claimed_size[(repo, path)]`` makes the file announce another size than it has (a hostile
repository); ``requests`` lists ``(method, path, Range or None)``; ``tokens`` the
``Authorization`` headers seen on uploads; ``cards`` the model cards sent for validation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def commit_of(files: dict[str, bytes]) -> str:
    digest = hashlib.sha1()
    for name in sorted(files):
        digest.update(name.encode() + hashlib.sha1(files[name]).digest())
    return digest.hexdigest()


class HubServer:
    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.claimed_size: dict[tuple[str, str], int] = {}
        # (bytes sent at once, then bytes a second) for a file that trickles
        self.trickle: dict[tuple[str, str], tuple[int, int]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.tokens: list[str | None] = []
        self.cards: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub.requests.append(("HEAD", self.path, self.headers.get("Range")))
                hub._resolve(self, body=False)

            def do_GET(self):
                hub.requests.append(("GET", self.path, self.headers.get("Range")))
                path = urlsplit(self.path).path
                if path.startswith("/api/models/"):
                    return hub._info(self, unquote(path[len("/api/models/"):]))
                hub._resolve(self, body=True)

            def do_POST(self):
                hub.requests.append(("POST", self.path, None))
                hub.tokens.append(self.headers.get("Authorization"))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                hub._post(self, urlsplit(self.path).path, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # --- repositories -------------------------------------------------------------------

    def add(self, repo: str, files: dict[str, bytes], private: bool = False) -> str:
        self.repos[repo] = {"files": dict(files), "commit": commit_of(files),
                            "private": private}
        return self.repos[repo]["commit"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- answers --------------------------------------------------------------------------

    @staticmethod
    def _json(handler, status: int, payload, error_code: str = "") -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        if error_code:  # as the Hub marks its 404s
            handler.send_header("X-Error-Code", error_code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _find(self, repo: str, revision: str) -> dict | None:
        entry = self.repos.get(repo)
        if entry is None or revision not in ("main", entry["commit"]):
            return None
        return entry

    def _info(self, handler, rest: str) -> None:
        repo, _, revision = rest.partition("/revision/")
        entry = self._find(repo, revision or "main")
        if entry is None:
            return self._json(handler, 404, {"error": "Repository not found"},
                              "RevisionNotFound" if repo in self.repos else "RepoNotFound")
        siblings = [{"rfilename": name, "size": self.claimed_size.get((repo, name), len(data))}
                    for name, data in sorted(entry["files"].items())]
        self._json(handler, 200, {"id": repo, "modelId": repo, "sha": entry["commit"],
                                  "private": entry["private"], "siblings": siblings,
                                  "tags": [], "downloads": 0, "likes": 0})

    def _resolve(self, handler, body: bool) -> None:
        parts = unquote(urlsplit(handler.path).path).lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._json(handler, 404, {"error": "not found"})
        repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        entry = self._find(repo, revision)
        data = entry["files"].get(name) if entry else None
        if data is None:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound" if entry else "RepoNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-", 1)[0] or 0)
        size = self.claimed_size.get((repo, name), len(data))
        handler.send_response(206 if start else 200)
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("X-Repo-Commit", entry["commit"])
        handler.send_header("Content-Length", str(size - start))
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.end_headers()
        if body and (repo, name) in self.trickle:
            burst, rate = self.trickle[(repo, name)]
            pieces = [data[start:start + burst]] + [data[k:k + rate] for k in
                                                    range(start + burst, len(data), rate)]
            for piece in pieces:
                try:
                    handler.wfile.write(piece)
                    handler.wfile.flush()
                except OSError:  # the client gave up
                    return
                time.sleep(1)
        elif body:
            handler.wfile.write(data[start:])

    def _validate(self, handler, content: str) -> None:
        """The model card's YAML front matter must parse to a mapping."""
        import yaml

        self.cards.append(content)
        errors = []
        if content.startswith("---\n"):
            try:
                meta = yaml.safe_load(content[4:content.index("\n---", 4)])
                if not isinstance(meta, dict):
                    errors.append({"message": "the metadata is not a mapping"})
            except (ValueError, yaml.YAMLError) as err:
                errors.append({"message": f"invalid YAML: {err}"})
        return self._json(handler, 400 if errors else 200, {"errors": errors, "warnings": []})

    def _post(self, handler, path: str, body: bytes) -> None:
        if path == "/api/repos/create":
            spec = json.loads(body or b"{}")
            repo = f"{spec.get('organization') or 'user'}/{spec['name']}"
            if repo not in self.repos:
                self.add(repo, {}, bool(spec.get("private")))
            return self._json(handler, 200, {"url": f"{self.url}/{repo}", "name": repo})
        if path == "/api/validate-yaml":
            return self._validate(handler, json.loads(body)["content"])
        if path.startswith("/api/models/") and "/preupload/" in path:
            files = json.loads(body)["files"]
            return self._json(handler, 200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                for f in files]})
        if path.startswith("/api/models/") and "/commit/" in path:
            repo = unquote(path[len("/api/models/"):].split("/commit/")[0])
            entry = self.repos.setdefault(repo, {"files": {}, "commit": "", "private": False})
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item.get("key") == "file":
                    value = item["value"]
                    entry["files"][value["path"]] = base64.b64decode(value["content"])
                elif item.get("key") == "deletedFile":
                    entry["files"].pop(item["value"]["path"], None)
            entry["commit"] = commit_of(entry["files"])
            return self._json(handler, 200, {"commitUrl": f"{self.url}/{repo}/commit/"
                                             f"{entry['commit']}", "commitOid": entry["commit"]})
        self._json(handler, 404, {"error": f"no such endpoint {path}"})
