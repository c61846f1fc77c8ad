"""Models on the Hugging Face Hub: ``hf://OWNER/REPO[@REVISION][/FILE]`` references.

:func:`resolve` turns a reference into a local file in huggingface_hub's own cache
(``HF_HOME``; ``HF_ENDPOINT`` names another server) and the same reference with the
revision pinned to the commit it came from (``hf://OWNER/REPO@COMMIT/FILE``), which is what
commands print and record. Without ``/FILE`` the repository's model file is chosen: a
``generator_*.safetensors`` of this project (``a2b`` first), else any ``.safetensors``, else
one ``.pth``/``.pt`` (a reference pix2pix/CycleGAN generator or AnimeGANv2 weights). The
file is then loaded by the same code as a local one: safetensors are read without running
code, ``.pth`` files with ``torch.load(weights_only=True)``. The repository's ``README.md``
(its model card, under 1 MB) is fetched beside it.

Before anything large is read, the size the Hub announces for the file is checked against
``MAX_BYTES``. With ``HF_HUB_OFFLINE=1`` a file already in the cache is used; a missing one
fails with the command that fetches it. Needs the ``hub`` extra (huggingface_hub).
"""

from __future__ import annotations

import importlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from translate.errors import UserError

PREFIX = "hf://"
MAX_BYTES = 2 * 1024 ** 3  # the largest generator the project builds is about 1 GB in fp32
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt")
_REF = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+?))?"
                  r"(?:/(?P<file>[^@]+))?$")


class HubError(UserError):
    """A Hub reference that cannot be used; ``ref`` is the reference as given."""

    def __init__(self, message: str, ref: str = ""):
        super().__init__(message)
        self.ref = ref


@dataclass(frozen=True)
class HfRef:
    repo: str
    revision: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        text = PREFIX + self.repo + (f"@{self.revision}" if self.revision else "")
        return text + (f"/{self.filename}" if self.filename else "")


def is_hf(ref: str | os.PathLike) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


def parse(ref: str) -> HfRef:
    """``hf://OWNER/REPO[@REVISION][/FILE]`` -> :class:`HfRef`. A revision ends at the
    first ``/`` (``@main/x.pth`` is revision ``main``, file ``x.pth``), except a pull
    request's, ``refs/pr/N`` (``@refs/pr/1/x.pth``: revision ``refs/pr/1``)."""
    pull = re.fullmatch(r"hf://[\w.-]+/[\w.-]+@(?P<revision>refs/pr/\d+)"
                        r"(?:/(?P<file>[^@]+))?", ref)
    if pull and ".." not in ref:  # a pull request's revision has slashes of its own
        return HfRef(ref[len(PREFIX):].split("@")[0], pull["revision"], pull["file"])
    found = _REF.match(ref)
    if not found or ".." in ref:
        raise HubError(f"{ref}: not a Hub reference; expected hf://OWNER/REPO, "
                       "hf://OWNER/REPO@REVISION or hf://OWNER/REPO[@REVISION]/FILE", ref)
    return HfRef(found["repo"], found["revision"], found["file"])


WRITE_CHUNK = 16 * 1024  # bytes huggingface_hub writes at a time (see :func:`watched`)


def hub_module():
    """huggingface_hub, or a :class:`HubError` that says how to install it. Its downloads
    are set to write every WRITE_CHUNK bytes (not every 10 MB), so that their progress
    shows in the cache as they go."""
    try:
        hf = importlib.import_module("huggingface_hub")
    except ImportError:
        raise HubError("hf:// models need the 'huggingface_hub' package: pip install "
                       "'translate[hub]' (or pip install -e '.[hub]' in a checkout)") from None
    constants = importlib.import_module("huggingface_hub.constants")
    if hasattr(constants, "DOWNLOAD_CHUNK_SIZE"):
        constants.DOWNLOAD_CHUNK_SIZE = WRITE_CHUNK
    return hf


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def safe_name(name: str) -> bool:
    """Whether a file name from a repository's listing is a plain relative path (no
    ``..``, no absolute path, no backslash or control characters)."""
    return (bool(name) and not name.startswith("/") and "\\" not in name
            and ".." not in name.split("/") and name.isprintable())


def choose_file(names: list[str], ref: HfRef) -> str:
    """The model file of a repository holding ``names`` (names that are not plain
    relative paths are never chosen)."""
    names = [n for n in names if safe_name(n)]
    ours = sorted(n for n in names if re.fullmatch(r"(.*/)?generator_(a2b|b2a)\.safetensors",
                                                   n))
    if ours:
        return next((n for n in ours if n.endswith("a2b.safetensors")), ours[0])
    for suffix in MODEL_SUFFIXES:
        found = sorted(n for n in names if n.endswith(suffix))
        if len(found) == 1:
            return found[0]
        if found:
            raise HubError(f"{ref} holds several {suffix} files ({', '.join(found[:6])}); "
                           f"name one: {ref}/{found[0]}", str(ref))
    raise HubError(f"{ref} holds no model file (.safetensors, .pth or .pt): "
                   f"{', '.join(sorted(names)[:8]) or 'nothing'}", str(ref))


def _fetch_hint(ref: HfRef) -> str:
    return f"HF_HUB_OFFLINE=0 translate zoo download {ref}"


def resolve(ref: str, max_bytes: int = MAX_BYTES) -> tuple[Path, str]:
    """(local path, pinned reference) of the model file ``ref`` names, downloaded into the
    Hub cache unless it is there already."""
    hf, parsed = hub_module(), parse(ref)
    errors = importlib.import_module("huggingface_hub.errors")
    try:
        if offline():
            path, pinned = _cached(hf, parsed)
            return path, checked_hash(pinned, path)
        path, info, name = watched(lambda: _download(hf, parsed, ref, max_bytes),
                                   hub_cache_folder(parsed) / "blobs", parsed, max_bytes)
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        raise HubError(f"{parsed} is not in the Hub cache and the Hub cannot be reached"
                       f"{' (HF_HUB_OFFLINE is set)' if offline() else ''}; fetch it "
                       f"with: {_fetch_hint(parsed)}", ref) from None
    except errors.HFValidationError:
        raise HubError(f"{ref}: not a valid repository name (OWNER and REPO are letters, "
                       "digits, '-', '_' and '.', not starting or ending with '-' or '.')",
                       ref) from None
    except errors.RepositoryNotFoundError:
        raise HubError(f"{parsed}: no such repository on {endpoint()} (or it is private: "
                       "log in with `hf auth login` or set HF_TOKEN)", ref) from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{parsed}: no revision {parsed.revision}", ref) from None
    except errors.EntryNotFoundError:
        raise HubError(f"{parsed}: the repository has no such file", ref) from None
    except errors.HfHubHTTPError as err:
        raise HubError(f"{parsed}: the Hub answered {err}", ref) from None
    except Exception as err:  # noqa: BLE001 - the HTTP library's own errors are checked
        if not unreachable(err):
            raise
        return _from_cache_when_unreachable(hf, parsed, ref, err)
    pinned = str(HfRef(parsed.repo, _commit_of(path) or info.sha, name))
    listed = next((getattr(getattr(s, "lfs", None), "sha256", None)
                   for s in info.siblings or [] if s.rfilename == name), None)
    return path, checked_hash(pinned, path, listed)


HASHES = "hub_hashes.json"


def checked_hash(pinned: str, path: Path, listed: str | None = None) -> str:
    """``pinned``, once ``path``'s sha256 matches what the Hub lists for it (``listed``)
    and what it was when first fetched (kept in ``cache_dir()/hub_hashes.json``): a file
    of the Hub cache replaced under the same name is refused, as zoo models are."""
    import json

    from translate.files import atomic_write, cache_dir
    from translate.hub.download import sha256_of

    digest = sha256_of(path)
    if listed and digest != listed:
        discard(path)
        raise HubError(f"{pinned}: the file received does not match the sha256 the Hub "
                       "lists for it; it was removed, try again", pinned)
    store = cache_dir() / HASHES
    try:
        known = json.loads(store.read_text()) if store.is_file() else {}
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    if known.get(pinned) not in (None, digest):
        raise HubError(f"{pinned}: {path} changed in the Hub cache since it was fetched "
                       f"(sha256 {digest[:16]}..., was {str(known[pinned])[:16]}...); remove "
                       "it and fetch it again", pinned)
    if pinned not in known:
        known[pinned] = digest
        try:
            atomic_write(store, lambda tmp: Path(tmp).write_text(json.dumps(known, indent=1)))
        except OSError:
            pass  # a read-only cache: checked against the Hub's listing only
    return pinned


HTTP_LIBRARIES = ("httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3", "h11")


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` means the Hub could not be reached or stopped answering (no
    connection, a timeout, a dropped connection), whichever HTTP library huggingface_hub
    uses underneath."""
    library = type(err).__module__.split(".")[0]
    return (isinstance(err, (ConnectionError, TimeoutError, socket.gaierror))
            or library in HTTP_LIBRARIES)


def _from_cache_when_unreachable(hf, parsed: HfRef, ref: str, err: BaseException
                                 ) -> tuple[Path, str]:
    """The cached copy of ``parsed`` when the Hub cannot be reached, else a
    :class:`HubError` that says why."""
    errors = importlib.import_module("huggingface_hub.errors")
    try:
        return _cached(hf, parsed)
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, OSError, HubError):
        pass
    reason = str(err).strip() or type(err).__name__
    raise HubError(f"{parsed}: the Hub at {endpoint()} cannot be reached ({reason[:200]}) "
                   "and the model is not in the Hub cache; check the connection (or "
                   "HF_ENDPOINT) and try again", ref) from None


def _download(hf, parsed: HfRef, ref: str, max_bytes: int):
    """(path, the repository's info, file name): the model file (and the repository's
    card) fetched into the Hub cache."""
    api = hf.HfApi(endpoint=endpoint())
    info = api.model_info(parsed.repo, revision=parsed.revision, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    name = parsed.filename or choose_file(list(sizes), parsed)
    if not safe_name(name):
        raise HubError(f"{parsed}: {name[:80]!r} is not a plain file name in the "
                       "repository", ref)
    if name not in sizes:
        raise HubError(f"{parsed}: the repository has no file {name}", ref)
    if (sizes[name] or 0) > max_bytes:
        raise HubError(f"{parsed}: {name} is {sizes[name] / 1e9:.1f} GB, more than "
                       f"{max_bytes / 1e9:.1f} GB (a generator of this project is at most "
                       "about 1 GB); refused before downloading", ref)
    path = Path(hf.hf_hub_download(parsed.repo, name, revision=parsed.revision,
                                   endpoint=endpoint()))
    if "README.md" in sizes and (sizes["README.md"] or 0) < 1 << 20:  # its card
        hf.hf_hub_download(parsed.repo, "README.md", revision=parsed.revision,
                           endpoint=endpoint())
    return path, info, name


TIMEOUT_ENV = "TRANSLATE_HUB_TIMEOUT"
STALL_RATE = 1024  # bytes a second, on average over a window of twice the timeout


def hub_timeout() -> float:
    """Seconds the Hub may take to answer (``$TRANSLATE_HUB_TIMEOUT``, default 30)."""
    try:
        return max(0.5, float(os.environ.get(TIMEOUT_ENV, "") or 30))
    except ValueError:
        return 30.0


def _bytes_in(folder: Path) -> int:
    try:
        return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file())
    except OSError:
        return 0


def watched(work, folder: Path, ref: HfRef, max_bytes: int = MAX_BYTES):
    """``work()`` (talking to the Hub, writing into ``folder``), stopped with a
    :class:`HubError` when nothing reaches ``folder`` within :func:`hub_timeout` or, once
    bytes flow, less than STALL_RATE a second does over a window of twice that:
    huggingface_hub itself waits for ever on a server that accepts and never answers, or
    trickles; and when more than ``max_bytes`` arrive (the listing's size is the Hub's
    claim, not a bound). The work runs in a thread of its own, left to end with its
    connection (a command exits; the demo's thread ends when the server closes it)."""
    import time

    thread, outcome = _in_thread(work)
    timeout, window = hub_timeout(), 2 * hub_timeout()
    start = mark = time.monotonic()
    first = mark_bytes = _bytes_in(folder)
    while thread.is_alive():
        thread.join(0.2)
        now, size = time.monotonic(), _bytes_in(folder)
        if size - first > max_bytes + (1 << 20) and thread.is_alive():
            raise HubError(f"{ref}: the Hub sent more than {max_bytes / 2**20:,.0f} MB, the "
                           "most a model may take here; stopped", str(ref))
        if size == first and now - start > timeout and thread.is_alive():
            raise HubError(f"{ref}: the Hub at {endpoint()} did not answer, or sent under "
                           f"{WRITE_CHUNK // 1024} KiB, within {timeout:g} s; try again later "
                           "(TRANSLATE_HUB_TIMEOUT sets the wait)", str(ref))
        if size != first and now - mark >= window:
            if size - mark_bytes < STALL_RATE * window and thread.is_alive():
                raise HubError(f"{ref}: the Hub at {endpoint()} sent "
                               f"{(size - mark_bytes) / window:.0f} bytes a second over "
                               f"{window:g} s, under {STALL_RATE} a second; stopped, try "
                               "again later", str(ref))
            mark, mark_bytes = now, size
    return outcome()


def answered(work, ref: str):
    """``work()``, a short exchange with the Hub (creating a repository), given up with a
    :class:`HubError` when it has not answered within :func:`hub_timeout`."""
    import time

    thread, outcome = _in_thread(work)
    deadline = time.monotonic() + hub_timeout()
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.2)  # in slices: Ctrl-C or SIGTERM is acted on within 0.2 s even when
        # the kernel hands it to the waiting thread, which a single long join would not see
    if thread.is_alive():
        raise HubError(f"{ref}: the Hub at {endpoint()} did not answer within "
                       f"{hub_timeout():g} s; nothing was sent (TRANSLATE_HUB_TIMEOUT sets "
                       "the wait)", ref)
    return outcome()


def _in_thread(work):
    """(thread, outcome): ``work()`` started in a daemon thread (one stuck on a silent
    server never holds up the exit); ``outcome()`` returns its value or raises its error
    once the thread has ended."""
    import threading

    box: dict = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    def outcome():
        if "error" in box:
            raise box["error"]
        return box.get("value")
    thread = threading.Thread(target=run, daemon=True, name="hub")
    thread.start()
    return thread, outcome


def _commit_of(path: Path) -> str | None:
    """The commit a file of the Hub cache came from: its snapshot folder's name."""
    for folder in path.parents:
        if folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name):
            return folder.name
    return None


def _cached(hf, ref: HfRef) -> tuple[Path, str]:
    """The file from the cache alone (offline); a damaged cache (a folder where a file
    belongs) is a :class:`HubError`."""
    try:
        return _from_cache(hf, ref)
    except (IsADirectoryError, NotADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise HubError(f"{ref}: the Hub cache holds it damaged ({err}); remove "
                       f"{hub_cache_folder(ref)} and fetch it again", str(ref)) from None


def hub_cache_folder(ref: HfRef) -> Path:
    """The Hub cache's folder of ``ref``'s repository."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / ("models--" + ref.repo.replace("/", "--"))


def _from_cache(hf, ref: HfRef) -> tuple[Path, str]:
    if ref.filename is None:
        folder = hf.snapshot_download(ref.repo, revision=ref.revision, local_files_only=True)
        names = [str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()]
        ref = HfRef(ref.repo, ref.revision, choose_file(names, ref))
    path = Path(hf.hf_hub_download(ref.repo, ref.filename, revision=ref.revision,
                                   local_files_only=True))
    return path, str(HfRef(ref.repo, _commit_of(path) or ref.revision, ref.filename))


def endpoint() -> str:
    """``$HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


HUB_LIST = "hub_models.json"


def remember(pinned: str, path: Path) -> None:
    """Add a downloaded Hub model to the list the demo offers (``cache_dir()/hub_models.json``;
    ``translate zoo download hf://...`` and ``translate demo --models-from-zoo hf://...``
    call this)."""
    import json

    from translate.files import atomic_write, cache_dir

    def model(ref: str) -> tuple[str, str | None]:  # (repository, file)
        parsed = parse(ref)
        return parsed.repo, parsed.filename

    items = [i for i in remembered() if model(i["ref"]) != model(pinned)]
    items.append({"ref": pinned, "path": str(path)})
    atomic_write(cache_dir() / HUB_LIST,
                 lambda tmp: Path(tmp).write_text(json.dumps(items, indent=1) + "\n"))


def forget(pinned: str) -> None:
    """Take the model ``pinned`` off the demo's list and remove its file from the Hub
    cache."""
    import json

    from translate.files import atomic_write, cache_dir

    items = remembered()
    for item in items:
        if item["ref"] == pinned:
            discard(Path(item["path"]))
    kept = [i for i in items if i["ref"] != pinned]
    atomic_write(cache_dir() / HUB_LIST,
                 lambda tmp: Path(tmp).write_text(json.dumps(kept, indent=1) + "\n"))


def remembered() -> list[dict]:
    """The Hub models :func:`remember` kept whose files are still in the cache: dicts with
    ``ref`` (pinned) and ``path``."""
    import json

    from translate.files import cache_dir

    try:
        items = json.loads((cache_dir() / HUB_LIST).read_text())
    except (OSError, ValueError):
        return []
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("ref"), str)
            and isinstance(i.get("path"), str) and Path(i["path"]).is_file()]


def fetch_model(ref: str, check, max_bytes: int = MAX_BYTES) -> tuple[Path, str]:
    """:func:`resolve` ``ref`` (files above ``max_bytes`` refused), then ``check(path)`` (a
    loader that raises for a file it cannot use): a usable model is remembered for the
    demo (:func:`remember`); an unusable one (a pickle with code, NaN weights, not a model
    at all) is removed from the Hub cache and is a :class:`HubError` that says why."""
    path, pinned = resolve(ref, max_bytes)
    try:
        check(path)
    except (UserError, ValueError, OSError, RuntimeError) as err:
        discard(path)
        raise HubError(f"{pinned}: {path.name} is not a model this project can load "
                       f"({str(err)[:300]}); it was removed from the Hub cache", ref) from None
    remember(pinned, path)
    return path, pinned


def discard(path: Path) -> None:
    """Remove a file of the Hub cache: its snapshot entry and the blob it points to."""
    try:
        blob = path.resolve() if path.is_symlink() else None
        path.unlink(missing_ok=True)
        if blob is not None and blob.parent.name == "blobs":
            blob.unlink(missing_ok=True)
    except OSError:
        pass
