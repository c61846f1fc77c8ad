"""The browser demo: a Gradio Blocks app with a tab per task and a batch tab.

Tabs **Real → Anime** and **Day → Night**: an image in (upload or paste), a model, a
strength; out comes a before/after slider at the input's own size and the full-resolution
PNG. **Batch**: image files or zips in, a gallery and a zip of the results out.

Each task tab also offers the zoo's published models for its task ("Get more models": a
download with progress, after which the model is listed and selected) and, for real to
anime, face mode (the largest face as a centred square, shown alone or pasted back; on by
default for face models). Large images report their progress tile by tile, the button is
disabled while its job runs, and uploads are checked as they arrive.

API (``gradio_client``): ``/real2anime`` and ``/day2night`` take ``image`` (a file) and
optionally ``model`` (a dropdown key; default: the tab's default model), ``strength``
(0-1, default 1) and ``face`` (off, crop or paste; default: crop for face models, else off)
and return the translated PNG (at the input's size, or the face square with crop);
``/batch`` takes ``files``, ``model`` and ``strength`` and returns (gallery, zip, report);
``/download_<task>`` takes a zoo model name and returns (status, model list, card, face).

Safety: every translation runs in one concurrency group (``device``, one at a time) behind
a queue of bounded size; uploads above the size limit are refused by the server, and so
are uploads beyond a client's rate or the upload folder's budget (:mod:`.guard`); uploads
and results are deleted after 15 minutes; images above the pixel limit are refused from
their header, and a batch has a pixel and a time budget; a bad upload is answered with a
message in the page (``gr.Error``) and affects no other request. No extra paths are
served (no ``allowed_paths``), there is no flagging, and the server binds 127.0.0.1 with no
share link unless :func:`serve` is told otherwise.
"""

from __future__ import annotations

import atexit
import html
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from translate.formats.checkpoint import CheckpointError  # noqa: E402
from translate.images import save_image  # noqa: E402

from .catalog import (TASKS, Catalog, ModelEntry, TranslatorCache,  # noqa: E402
                      UnknownModel, card_markdown, plain, scan, zoo_offers)
from .examples import example_photos  # noqa: E402
from .guard import RequestGuard  # noqa: E402
from .service import (FACE_MODES, InputError, Limits, OutputFolder,  # noqa: E402
                      check_face, check_strength, decode_data_url, read_image,
                      release_memory, run_batch, Translated, translate_one, translate_video)

ERROR_TITLE = "Not translated"
PREVIEW_HEIGHT = 300  # px: an image preview's height, so a tab fits a 1366 x 768 screen
# long paths and addresses in messages wrap instead of scrolling sideways; table headers
# break between words only
CSS = """
.wrap-anywhere, .wrap-anywhere * { overflow-wrap: anywhere; }
.offers th { word-break: normal; overflow-wrap: normal; hyphens: none; }
"""
FACE_TASKS = ("real2anime",)      # tabs that offer face mode

DEVICE_GROUP = "device"          # the one concurrency group of everything that runs a model
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def user_error(message, title: str = ERROR_TITLE) -> gr.Error:
    """A message for the page (HTML-escaped: it may quote an uploaded file's name)."""
    return gr.Error(html.escape(str(message), quote=False), title=title,
                    print_exception=False)


def page_text(message) -> str:
    """A message for a Markdown area of the page: HTML and Markdown characters shown as
    they are, its lines kept, and the command line's wording put as the page's."""
    from translate.hub.download import AGAIN

    text = plain(str(message).replace(AGAIN, "press Download again"))
    return "  \n".join(line.strip() for line in text.splitlines())


def client_of(request) -> str:
    """The address a request came from ("" when not known: a direct call)."""
    return str(getattr(getattr(request, "client", None), "host", "") or "")


def not_downloaded(reason) -> tuple:
    """The zoo panel's answer to a download that failed: the status, nothing else
    changed."""
    return (f"**Not downloaded.** {page_text(reason)}", *(gr.skip(),) * 4)


def face_default(entry: ModelEntry | None) -> str:
    """Face mode's setting when ``entry`` is chosen: crop for face models, else off."""
    return "crop" if entry is not None and entry.face_size else "off"


def tile_reporter(progress):
    """A ``progress(done, total)`` callback that moves a gr.Progress bar tile by tile."""
    def report(done: int, total: int) -> None:
        if total > 1:
            progress((done, total), desc=f"translating: tile {done} of {total}", unit="tiles")
        else:
            progress(1.0, desc="translated")
    return report


def upload_source(payload, limits: Limits) -> tuple[Path | bytes, str]:
    """(file inside the upload folder, or decoded bytes; original name) of an image
    payload as the browser or ``gradio_client`` sends it (unprocessed ImageData)."""
    if not payload:
        raise InputError("upload an image first")
    if not isinstance(payload, dict):
        raise InputError("send the image as a file (gradio_client: handle_file(path))")
    name = Path(str(payload.get("orig_name") or "image")).name
    if payload.get("path"):
        path = Path(payload["path"])
        if not _inside(path, Path(get_upload_folder())) or not path.is_file():
            raise InputError("the image must be uploaded to this server first")
        return path, name
    if str(payload.get("url") or "").startswith("data:"):
        return decode_data_url(payload["url"], limits), name
    raise InputError("the upload holds no file")


def video_source(payload) -> tuple[Path, str]:
    """(file inside the upload folder, original name) of a video payload (gr.Video's
    ``{"video": file, "subtitles": ...}`` or a bare file)."""
    if isinstance(payload, dict) and isinstance(payload.get("video"), dict):
        payload = payload["video"]
    if not payload:
        raise InputError("upload a clip first")
    if not isinstance(payload, dict) or not payload.get("path"):
        raise InputError("send the clip as a file (gradio_client: handle_file(path))")
    path = Path(payload["path"])
    if not _inside(path, Path(get_upload_folder())) or not path.is_file():
        raise InputError("the clip must be uploaded to this server first")
    return path, Path(str(payload.get("orig_name") or path.name)).name


def client_gone():
    """A check, for the event being run, of whether its client went away (closed the page
    or dropped the connection): Gradio then marks the event not alive, but cannot stop a
    function that is running; long jobs ask this and stop themselves."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)

    def gone() -> bool:
        if queue is None or event_id is None:
            return False
        for job in list(queue.active_jobs):
            for event in job or ():
                if event._id == event_id:
                    return not event.alive
        return False
    return gone


def check_temporal(value) -> int:
    try:
        n = int(value or 0)
    except (TypeError, ValueError):
        raise InputError(f"temporal smoothing must be a whole number, not {value!r}") from None
    if not 0 <= n <= 16:
        raise InputError(f"temporal smoothing must be from 0 to 16, not {n}")
    return n


class Demo:
    """The state behind one app: its catalog, loaded translators, limits and outputs."""

    def __init__(self, catalog: Catalog, translators: TranslatorCache, limits: Limits,
                 outputs: OutputFolder, models_dir: str | Path | None = None,
                 zoo: bool = True):
        self.catalog, self.translators = catalog, translators
        self.limits, self.outputs = limits, outputs
        self.models_dir, self.zoo = models_dir, zoo
        self.hub_fetches: dict[str, list[float]] = {}  # client -> times of its fetches
        self.hub_fetched: list[str] = []  # pinned references the page fetched, oldest first

    def refresh(self) -> Catalog:
        """List the models again (after a download)."""
        self.catalog = scan(self.models_dir, zoo=self.zoo)
        return self.catalog

    def translator(self, key: str | None, task: str | None):
        try:
            entry = self.catalog.lookup(key, task)
            return entry, self.translators.get(entry)
        except UnknownModel as err:
            raise user_error(err) from None
        except (CheckpointError, OSError) as err:
            raise user_error(f"the model could not be loaded: {err}") from None

    def translate_image(self, task: str, image, model, strength, face, progress
                        ) -> Translated:
        """One image of a task tab, at its own size (or its largest face); problems are
        :class:`gr.Error` for the person."""
        try:
            source, name = upload_source(image, self.limits)
            strength = check_strength(strength)
            entry, translator = self.translator(model, task)
            face = face_default(entry) if face in (None, "", "auto") else check_face(face)
            progress(0.0, desc="translating")
            return translate_one(translator, source, name, strength, self.limits,
                                 self.outputs.new(), task, face, entry.face_size or 512,
                                 tile_reporter(progress))
        except InputError as err:
            raise user_error(err) from None
        except (RuntimeError, MemoryError) as err:  # out of memory on the device, ...
            raise user_error(f"the model failed on this image ({err})") from None
        finally:
            release_memory()

    def translate_task(self, task: str):
        """The API function of a task tab: image file -> translated PNG path."""
        def translate(image, model=None, strength=1.0, face=None, progress=gr.Progress()):
            """Translate one image at its own size (or its largest face); returns the PNG."""
            return str(self.translate_image(task, image, model, strength, face, progress).png)
        translate.__name__ = task
        return translate

    def page_task(self, task: str):
        """What the page's Translate button runs: (PNG, message, before/after pair), with
        problems and notes in the tab's message area under this project's own title
        (Gradio's toasts title every error "Error")."""
        def translate(image, model, strength, face, progress=gr.Progress()):
            try:
                done = self.translate_image(task, image, model, strength, face, progress)
            except gr.Error as err:
                return None, f"**{ERROR_TITLE}:** {err.message}", None
            note = f"**Face mode:** {done.note}" if done.note else ""
            return str(done.png), note, self.show_pair(image, done)
        return translate

    def video(self, clip, model=None, temporal=0, progress=gr.Progress()):
        """Translate a clip frame by frame; returns the MP4 (H.264, the sound kept)."""
        return str(self._video(clip, model, temporal, progress)[0])

    def _video(self, clip, model, temporal, progress):
        """(MP4, its VideoStats, seconds taken) for a clip; problems are gr.Error."""
        started = time.monotonic()
        try:
            path, name = video_source(clip)
            temporal = check_temporal(temporal)
            entry, translator = self.translator(model, None)
            progress(0.0, desc="translating")

            def report(done: int, total: int | None) -> None:
                progress((done, total) if total else 0.0,
                         desc=f"translating: frame {done}" + (f" of {total}" if total else ""),
                         unit="frames")
            target, stats = translate_video(translator, path, name, self.limits,
                                            self.outputs.new(), temporal, report,
                                            client_gone())
            return target, stats, time.monotonic() - started
        except InputError as err:
            raise user_error(err) from None
        except (RuntimeError, MemoryError) as err:
            raise user_error(f"the model failed on this clip ({err})") from None
        finally:
            release_memory()

    def page_video(self, clip, model, temporal, progress=gr.Progress()):
        """The Video tab's button: the clip, and in the tab's message area what was done
        ("done: N frames in S s") or the problem."""
        try:
            target, stats, seconds = self._video(clip, model, temporal, progress)
        except gr.Error as err:
            return None, f"**{ERROR_TITLE}:** {err.message}"
        return str(target), (f"done: {stats.frames} frames in {seconds:.1f} s "
                             f"({stats.frames / max(seconds, 1e-9):.1f} frames/s)")

    def check_upload(self, image):
        """Check an upload as it arrives (size, pixels, decodable): ("", the image) when it
        is fine, else (a message, no image)."""
        if not image:
            return "", None
        try:
            source, name = upload_source(image, self.limits)
            read_image(source, name, self.limits)
        except InputError as err:
            message = html.escape(str(err), quote=False)
            return f"**{ERROR_TITLE}:** {message}", None
        return "", gr.skip()

    def download_task(self, task: str):
        """The function behind a tab's Download button (and ``/download_<task>``): every
        failure is a "Not downloaded" message with its reason, and the tab stays usable."""
        def download(name, request: gr.Request = None, progress=gr.Progress()):
            """Download the zoo model ``name``: (status, model list, card, face mode, run)."""
            from translate.errors import UserError

            name = str(name or "").strip()
            try:
                if name.startswith("hf://"):
                    return self._from_hub(task, name, client_of(request))
                return self._from_zoo(task, name, progress)
            except UserError as err:  # the zoo's, the downloader's and the Hub's errors
                return not_downloaded(err)
            except Exception as err:  # noqa: BLE001 - anything else: said, not a broken tab
                return not_downloaded(f"{type(err).__name__}: {err}")
        download.__name__ = f"download_{task}"
        return download

    def _from_zoo(self, task: str, name: str, progress):
        from translate.hub.zoo import ZooError, lookup
        from translate.hub.zoo import download as install

        offer = lookup(name)
        if offer.task != task:
            raise ZooError(f"{offer.name} is not a {TASKS[task]} model")
        progress(0.0, desc=f"downloading {offer.name}")
        meta, what = install(offer.name, progress=lambda done, total: progress(
            (done, total) if total else 0.0, desc=f"downloading {offer.name}", unit="bytes"))
        return self._installed(task, offer.name, Path(meta["path"]), what)

    def _from_hub(self, task: str, ref: str, client: str = ""):
        """A model typed as ``hf://OWNER/REPO[@REVISION][/FILE]``: downloaded into the Hub
        cache, listed and selected; its size and licence are said. What the page may fetch
        is bounded (:class:`Limits`): a file's size, fetches per client and hour, and the
        models it keeps (the oldest it fetched is removed past that)."""
        from translate.hub.hf import HubError, fetch_model, forget
        from translate.infer.engine import load_any

        now, limits = time.monotonic(), self.limits
        self.hub_fetches = {c: kept for c, times in self.hub_fetches.items()
                            if (kept := [t for t in times if now - t < 3600])}
        recent = self.hub_fetches.get(client, [])
        if len(recent) >= limits.hub_fetches_per_hour:
            raise HubError(f"this page fetches at most {limits.hub_fetches_per_hour} Hub "
                           "models an hour for each visitor; try again later", ref)
        self.hub_fetches[client] = recent + [now]
        started = time.time()
        path, pinned = fetch_model(ref, load_any, limits.max_hub_bytes)  # unusable: removed
        if path.resolve().stat().st_mtime >= started - 1:  # fetched now, not there before
            self.hub_fetched = [p for p in self.hub_fetched if p != pinned] + [pinned]
        while len(self.hub_fetched) > limits.max_hub_models:
            forget(self.hub_fetched.pop(0))
        status, *rest = self._installed(task, pinned, path, "downloaded")
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        licence = self._hub_licence(path)
        return (f"{status} ({size}; licence: {licence})", *rest)

    @staticmethod
    def _hub_licence(path: Path) -> str:
        """The licence a Hub model's card states (its README.md front matter beside it in
        the cache, when it was downloaded), else 'not stated'."""
        try:
            from huggingface_hub import ModelCard

            readme = path.parent / "README.md"
            meta = ModelCard.load(readme).data if readme.is_file() else None
            return str(getattr(meta, "license", None) or "not stated")
        except Exception:  # noqa: BLE001 - a missing or odd card is not an error here
            return "not stated"

    def _installed(self, task: str, name: str, path: Path, what: str):
        """The page's update after ``name`` was installed at ``path``: it is listed and
        selected."""
        catalog = self.refresh()
        key = next((e.key for e in catalog.for_task(task) if e.path.resolve() == path.resolve()),
                   None)
        if key is None:
            return (f"**{name}** was downloaded but cannot be used here: see the notes at the "
                    "top of the page", *(gr.skip(),) * 4)
        entry = catalog.entries[key]
        choices = [e.key for e in catalog.for_task(task)]
        said = {"present": "was already installed", "registered": "was found in the cache"}
        status = f"**{name}** {said.get(what, 'is downloaded')} and selected."
        return (status, gr.update(choices=choices, value=key, interactive=True),
                card_markdown(entry), face_default(entry), gr.update(interactive=True))

    def show_pair(self, image, done: Translated):
        """(before, after) for the slider: the square the face was compared with, or the
        upload (made a PNG when a browser cannot show it)."""
        before = done.before
        if before is None:
            source, name = upload_source(image, self.limits)
            if isinstance(source, Path) and source.suffix.lower() in BROWSER_FORMATS:
                before = source
            else:
                rgb, alpha = read_image(source, name, self.limits)
                before = save_image(rgb, self.outputs.new() / "input.png", alpha=alpha)
        return str(before), str(done.png)

    def batch(self, files, model, strength, progress=gr.Progress()):
        """Translate every image of the uploads (files and zips): gallery, zip, report."""
        if not files:
            raise user_error("add image files or a .zip first")
        entry, translator = self.translator(model, None)
        try:
            strength = check_strength(strength)
        except InputError as err:
            raise user_error(err) from None
        paths = [Path(f) for f in files]

        def report(done: int, total: int, name: str) -> None:
            progress((done, total), desc=f"translating {name}" if name else "done",
                     unit="images")

        try:
            result = run_batch(translator, paths, [p.name for p in paths], strength,
                               self.limits, self.outputs.new(), entry.task or "translated",
                               progress=report, cancelled=client_gone())
        finally:
            release_memory()
        lines = [f"Translated **{len(result.written)}** image(s) with `{entry.key}`."]
        if result.failed:
            lines += ["", f"Could not translate {len(result.failed)}:"]
            lines += [f"- {reason}" if reason.startswith(name) else f"- {name}: {reason}"
                      for name, reason in result.failed]
        gallery = [(str(picture), f"{name}: {side}") for png, name in result.written
                   for picture, side in ((result.before[png], "before"), (png, "after"))]
        archive = str(result.archive) if result.archive else None
        return gallery, archive, "\n".join(lines)


def _offers_markdown(demo: Demo, task: str) -> str:
    """The zoo's models for ``task`` as a table; those the catalog lists (verified when it
    was scanned) are marked installed."""
    installed = {e.path.stem for e in demo.catalog.entries.values() if e.source == "zoo"}
    rows = ["| Model | What it does | Source | Licence | Size |",
            "| --- | --- | --- | --- | --- |"]
    for e in zoo_offers(task):
        mark = " (installed)" if e.name in installed else ""
        rows.append(f"| `{e.name}`{mark} | {e.description} | [page]({e.homepage}) | "
                    f"{e.licence} | {e.size} |")
    return "\n".join(rows)


def _zoo_panel(demo: Demo, task: str) -> tuple:
    """"Get more models": the zoo's models for ``task``, a Download button and its status."""
    offers = [e.name for e in zoo_offers(task)]
    with gr.Accordion("Get more models (published, downloaded once)", open=False,
                      elem_id=f"{task}-zoo"):
        table = gr.Markdown(_offers_markdown(demo, task), elem_id=f"{task}-offers",
                            elem_classes=["offers"])
        with gr.Row():
            offer = gr.Dropdown(offers, value=offers[0] if offers else None,
                                label="Published model, or type hf://OWNER/REPO",
                                allow_custom_value=True, elem_id=f"{task}-offer")
            fetch = gr.Button("Download", elem_id=f"{task}-download")
        status = gr.Markdown(elem_id=f"{task}-zoo-status", elem_classes=["wrap-anywhere"])
    return table, offer, fetch, status


def _task_inputs(demo: Demo, task: str, examples: list[Path]) -> dict:
    """The left column of a task tab: the image (its preview bounded in height, so that
    Translate stays on a laptop's first screen), Translate, messages, model, face mode,
    strength, then the examples."""
    entries = demo.catalog.for_task(task)
    default = demo.catalog.defaults.get(task)
    ui = {"image": gr.Image(label="Input image (upload or paste)", type="filepath",
                            image_mode=None, sources=["upload", "clipboard"],
                            height=PREVIEW_HEIGHT, elem_id=f"{task}-input")}
    ui["run"] = gr.Button("Translate", variant="primary", interactive=bool(entries),
                          elem_id=f"{task}-run")
    ui["status"] = gr.Markdown(elem_id=f"{task}-status", elem_classes=["wrap-anywhere"])
    ui["model"] = gr.Dropdown([e.key for e in entries], value=default, label="Model",
                              interactive=bool(entries), elem_id=f"{task}-model")
    ui["face"] = gr.Radio(list(FACE_MODES), label="Face mode",
                          value=face_default(demo.catalog.entries.get(default or "")),
                          info="crop: the largest face as a square; paste: that square "
                          "blended back into the photo", visible=task in FACE_TASKS,
                          elem_id=f"{task}-face")
    ui["strength"] = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                               info="1: the model's output; 0: the input unchanged",
                               elem_id=f"{task}-strength")
    if examples:
        gr.Examples([[str(p)] for p in examples], inputs=[ui["image"]], cache_examples=False,
                    label="Examples (real photos the model never saw; credits in "
                    "apps/photos/CREDITS.md)", elem_id=f"{task}-examples")
    return ui


def _task_tab(demo: Demo, task: str, examples: list[Path]) -> None:
    default = demo.catalog.defaults.get(task)
    with gr.Tab(TASKS[task], id=task, elem_id=f"tab-{task}"):
        with gr.Row():
            with gr.Column():
                ui = _task_inputs(demo, task, examples)
            with gr.Column():
                ui["slider"] = gr.ImageSlider(label="Before / after", type="filepath",
                                              format="png", interactive=False,
                                              max_height=PREVIEW_HEIGHT + 120,
                                              elem_id=f"{task}-slider")
                ui["result"] = gr.File(label="Result: full-resolution PNG", interactive=False,
                                       elem_id=f"{task}-result")
                ui["card"] = gr.Markdown(card_markdown(demo.catalog.entries.get(default or "")),
                                         elem_id=f"{task}-card")
        ui["offers"], ui["offer"], ui["fetch"], ui["zoo_status"] = _zoo_panel(demo, task)
        _task_events(demo, task, ui)  # inside the tab: its hidden API trigger belongs here


def _task_events(demo: Demo, task: str, ui: dict) -> None:
    def show_card(key):
        try:
            entry = demo.catalog.lookup(key, task)
        except UnknownModel as err:
            return str(err), gr.skip()
        return card_markdown(entry), face_default(entry)

    private = {"queue": False, "api_visibility": "private"}
    ui["image"].upload(demo.check_upload, ui["image"], [ui["status"], ui["image"]],
                       preprocess=False, **private)
    ui["image"].clear(lambda: "", None, ui["status"], **private)
    ui["model"].change(show_card, ui["model"], [ui["card"], ui["face"]], **private)
    run, fetch = ui["run"], ui["fetch"]
    both = [run, fetch]
    idle = (lambda: [gr.update(interactive=True)] * 2)
    inputs = [ui["image"], ui["model"], ui["strength"], ui["face"]]
    api = gr.Button(visible=False, elem_id=f"{task}-api")  # the API endpoint's own trigger
    api.click(demo.translate_task(task), inputs, ui["result"], api_name=task,
              preprocess=False, concurrency_id=DEVICE_GROUP, concurrency_limit=1,
              api_description=f"{TASKS[task]}: an image file in, the translated PNG at its "
              "own size (or the face square) out")
    translated = run.click(lambda: [gr.update(interactive=False)] * 2, None, both, **private) \
        .then(demo.page_task(task), inputs, [ui["result"], ui["status"], ui["slider"]],
              preprocess=False,
              concurrency_id=DEVICE_GROUP, concurrency_limit=1, api_visibility="private")
    translated.then(idle, None, both, **private)
    fetched = fetch.click(lambda: [gr.update(interactive=False)] * 2, None, both, **private) \
        .then(demo.download_task(task), ui["offer"],
              [ui["zoo_status"], ui["model"], ui["card"], ui["face"], run],
              api_name=f"download_{task}", concurrency_id="downloads", concurrency_limit=1)
    fetched.then(lambda: gr.update(interactive=True), None, fetch, **private)
    fetched.then(lambda: _offers_markdown(demo, task), None, ui["offers"], **private)
    fetched.then(lambda: gr.update(interactive=bool(demo.catalog.for_task(task))), None, run,
                 **private)


def _any_model(demo: Demo) -> tuple[list[str], str | None]:
    """Every model's key, and the one preselected in tabs that take any model: the first
    task's default, else the first model."""
    keys = list(demo.catalog.entries)
    default = next((demo.catalog.defaults[t] for t in TASKS if demo.catalog.defaults[t]),
                   keys[0] if keys else None)
    return keys, default


def _batch_tab(demo: Demo) -> None:
    keys, default = _any_model(demo)
    with gr.Tab("Batch", id="batch", elem_id="tab-batch"):
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images, or a .zip of images", file_count="multiple",
                                file_types=["image", ".zip"], type="filepath",
                                height=PREVIEW_HEIGHT, elem_id="batch-files")
                run = gr.Button("Translate all", variant="primary", interactive=bool(keys),
                                elem_id="batch-run")
                report = gr.Markdown(label="Report", elem_id="batch-report",
                                     elem_classes=["wrap-anywhere"])
                model = gr.Dropdown(keys, value=default, label="Model",
                                    interactive=bool(keys), elem_id="batch-model")
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     elem_id="batch-strength")
            with gr.Column():
                gallery = gr.Gallery(label="Before and after", columns=2, height=560,
                                     object_fit="contain", elem_id="batch-gallery")
                archive = gr.File(label="All results (.zip)", interactive=False,
                                  elem_id="batch-zip")
    run.click(demo.batch, [files, model, strength], [gallery, archive, report],
              api_name="batch", concurrency_id=DEVICE_GROUP, concurrency_limit=1)


def _video_tab(demo: Demo) -> None:
    keys, default = _any_model(demo)
    with gr.Tab("Video", id="video", elem_id="tab-video"):
        with gr.Row():
            with gr.Column():
                clip = gr.Video(label=f"Clip ({demo.limits.describe_video()})",
                                sources=["upload"], height=PREVIEW_HEIGHT,
                                elem_id="video-input")
                run = gr.Button("Translate clip", variant="primary", interactive=bool(keys),
                                elem_id="video-run")
                status = gr.Markdown(elem_id="video-status")
                model = gr.Dropdown(keys, value=default, label="Model",
                                    interactive=bool(keys), elem_id="video-model")
                temporal = gr.Slider(0, 8, value=0, step=1, label="Temporal smoothing",
                                     info="0: off; N keeps N/(N+1) of the previous frame "
                                     "where the input barely changed (less flicker)",
                                     elem_id="video-temporal")
            with gr.Column():
                result = gr.Video(label="Result (H.264, the sound kept)", interactive=False,
                                  height=PREVIEW_HEIGHT, elem_id="video-result")
        api = gr.Button(visible=False, elem_id="video-api")
        api.click(demo.video, [clip, model, temporal], result, api_name="video",
                  preprocess=False, concurrency_id=DEVICE_GROUP, concurrency_limit=1,
                  api_description="a clip in, the translated MP4 (H.264, sound kept) out")
        private = {"queue": False, "api_visibility": "private"}
        run.click(lambda: gr.update(interactive=False), None, run, **private) \
            .then(demo.page_video, [clip, model, temporal], [result, status],
                  preprocess=False, concurrency_id=DEVICE_GROUP, concurrency_limit=1,
                  api_visibility="private") \
            .then(lambda: gr.update(interactive=True), None, run, **private)


def build_app(models_dir: str | Path | None = None, *, device: str = "auto",
              limits: Limits = Limits(), queue_size: int = 16, examples: bool = True,
              zoo: bool = True) -> gr.Blocks:
    """The demo app, queued and ready to ``launch``. ``models_dir``: folder of exported
    generators (default: the source tree's ``models/``)."""
    catalog = scan(models_dir, zoo=zoo)
    Path(get_upload_folder()).mkdir(parents=True, exist_ok=True)
    outputs = OutputFolder(tempfile.mkdtemp(prefix="translate-demo-", dir=get_upload_folder()))
    atexit.register(outputs.remove)
    demo = Demo(catalog, TranslatorCache(device), limits, outputs, models_dir, zoo)
    with gr.Blocks(title="translate: image-to-image demo", analytics_enabled=False,
                   delete_cache=(300, 900)) as app:
        gr.Markdown("# translate\nImage-to-image translation at your image's own size. "
                    f"Uploads: {limits.describe()}.")
        skipped = [f"skipped {p.name}: {why.replace(f'{p}: ', '')}"
                   for p, why in catalog.skipped]
        for note in catalog.notes + skipped:
            gr.Markdown(f"*{note}*")
        with gr.Tabs():
            for task in TASKS:
                paths = example_photos(task) if examples else []
                _task_tab(demo, task, paths)
            _batch_tab(demo)
            _video_tab(demo)
    app.queue(max_size=queue_size, default_concurrency_limit=1)
    return app


def serve(models_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 7860,
          share: bool = False, device: str = "auto", limits: Limits = Limits(),
          queue_size: int = 16, block: bool = True):
    """Build the app and start its server (blocking unless ``block`` is False)."""
    app = build_app(models_dir, device=device, limits=limits, queue_size=queue_size)
    guard = Middleware(RequestGuard, limits=limits, folder=get_upload_folder())
    app.launch(server_name=host, server_port=port, share=share, css=CSS,
               app_kwargs={"middleware": [guard]}, max_file_size=limits.largest_upload,
               allowed_paths=None, show_error=False,
               ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
               footer_links=["api", "settings"], prevent_thread_lock=True, quiet=True)
    print(startup_text(app, share), flush=True)
    if block:
        app.block_thread()
    return app


def startup_text(app: gr.Blocks, share: bool) -> str:
    """What the demo prints once it serves (instead of Gradio's own hints)."""
    lines = [f"* Running on local URL:  {app.local_url}"]
    if share and getattr(app, "share_url", None):
        lines.append(f"* Public link (--share): {app.share_url}")
    elif not share:
        lines.append("* Only this machine can open it; translate demo --host 0.0.0.0 serves "
                     "the network, --share opens a public link")
    lines.append("* Stop with Ctrl-C")
    return "\n".join(lines)
