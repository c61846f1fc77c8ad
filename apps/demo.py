"""The browser demo: a Gradio Blocks app with a tab per task and a batch tab.

Tabs **Real → Anime** and **Day → Night**: an image in (upload or paste), a model, a
strength; out comes a before/after slider at the input's own size and the full-resolution
PNG. **Batch**: image files or zips in, a gallery and a zip of the results out.

API (``gradio_client``): ``/real2anime`` and ``/day2night`` take ``image`` (a file) and
optionally ``model`` (a dropdown key; default: the tab's default model) and ``strength``
(0-1, default 1) and return the translated PNG at the input's size; ``/batch`` takes
``files``, ``model`` and ``strength`` and returns (gallery, zip, report).

Safety: every translation runs in one concurrency group (``device``, one at a time) behind
a queue of bounded size; uploads above the size limit are refused by the server, images
above the pixel limit are refused from their header; a bad upload is answered with a
message in the page (``gr.Error``) and affects no other request. No extra paths are
served (no ``allowed_paths``), there is no flagging, and the server binds 127.0.0.1 with no
share link unless :func:`serve` is told otherwise.
"""

from __future__ import annotations

import atexit
import html
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402

from translate.formats.checkpoint import CheckpointError  # noqa: E402
from translate.images import load_image, save_image  # noqa: E402

from .catalog import (TASKS, Catalog, TranslatorCache, UnknownModel,  # noqa: E402
                      card_markdown, scan)
from .examples import example_photos  # noqa: E402
from .service import (InputError, Limits, OutputFolder, check_strength,  # noqa: E402
                      decode_data_url, run_batch, translate_one)

DEVICE_GROUP = "device"          # the one concurrency group of everything that runs a model
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def user_error(message) -> gr.Error:
    """A message for the page (HTML-escaped: it may quote an uploaded file's name)."""
    return gr.Error(html.escape(str(message), quote=False), title="Not translated",
                    print_exception=False)


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


class Demo:
    """The state behind one app: its catalog, loaded translators, limits and outputs."""

    def __init__(self, catalog: Catalog, translators: TranslatorCache, limits: Limits,
                 outputs: OutputFolder):
        self.catalog, self.translators = catalog, translators
        self.limits, self.outputs = limits, outputs

    def translator(self, key: str | None, task: str | None):
        try:
            entry = self.catalog.lookup(key, task)
            return entry, self.translators.get(entry)
        except UnknownModel as err:
            raise user_error(err) from None
        except (CheckpointError, OSError) as err:
            raise user_error(f"the model could not be loaded: {err}") from None

    def translate_task(self, task: str):
        """The API function of a task tab: image file -> translated PNG path."""
        def translate(image, model=None, strength=1.0):
            """Translate one image at its own size; returns the PNG."""
            try:
                source, name = upload_source(image, self.limits)
                strength = check_strength(strength)
                entry, translator = self.translator(model, task)
                return str(translate_one(translator, source, name, strength, self.limits,
                                         self.outputs.new(), task))
            except InputError as err:
                raise user_error(err) from None
            except (RuntimeError, MemoryError) as err:  # out of memory on the device, ...
                raise user_error(f"the model failed on this image ({err})") from None
        translate.__name__ = task
        return translate

    def show_pair(self, image: str | None, result: str | None):
        """(before, after) for the slider; inputs a browser cannot show become PNGs."""
        if not image or not result:
            return None
        before = Path(image)
        if before.suffix.lower() not in BROWSER_FORMATS:
            rgb, alpha = load_image(before)
            before = save_image(rgb, self.outputs.new() / "input.png", alpha=alpha)
        return str(before), result

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

        result = run_batch(translator, paths, [p.name for p in paths], strength,
                           self.limits, self.outputs.new(), entry.task or "translated",
                           progress=report)
        lines = [f"Translated **{len(result.written)}** image(s) with `{entry.key}`."]
        if result.failed:
            lines += ["", f"Could not translate {len(result.failed)}:"]
            lines += [f"- {reason}" if reason.startswith(name) else f"- {name}: {reason}"
                      for name, reason in result.failed]
        gallery = [(str(png), name) for png, name in result.written]
        archive = str(result.archive) if result.archive else None
        return gallery, archive, "\n".join(lines)


def _task_tab(demo: Demo, task: str, examples: list[Path]) -> None:
    entries = demo.catalog.for_task(task)
    default = demo.catalog.defaults.get(task)
    default_entry = demo.catalog.entries.get(default) if default else None
    with gr.Tab(TASKS[task], id=task, elem_id=f"tab-{task}"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Input image (upload or paste)", type="filepath",
                                 image_mode=None, sources=["upload", "clipboard"],
                                 elem_id=f"{task}-input")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[image],
                                cache_examples=False, label="Examples (real photos the model never "
                                "saw; credits in apps/photos/CREDITS.md)",
                                elem_id=f"{task}-examples")
                model = gr.Dropdown([e.key for e in entries], value=default, label="Model",
                                    interactive=bool(entries), elem_id=f"{task}-model")
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     info="1: the model's output; 0: the input unchanged",
                                     elem_id=f"{task}-strength")
                run = gr.Button("Translate", variant="primary", interactive=bool(entries),
                                elem_id=f"{task}-run")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", type="filepath",
                                        format="png", interactive=False,
                                        elem_id=f"{task}-slider")
                result = gr.File(label="Result: full-resolution PNG", interactive=False,
                                 elem_id=f"{task}-result")
                card = gr.Markdown(card_markdown(default_entry), elem_id=f"{task}-card")

    def show_card(key):
        try:
            return card_markdown(demo.catalog.lookup(key, task))
        except UnknownModel as err:
            return str(err)

    model.change(show_card, model, card, queue=False, api_visibility="private")
    run.click(demo.translate_task(task), [image, model, strength], result, api_name=task,
              preprocess=False, concurrency_id=DEVICE_GROUP, concurrency_limit=1,
              api_description=f"{TASKS[task]}: an image file in, the translated PNG at "
              "its own size out") \
       .success(demo.show_pair, [image, result], slider, api_visibility="private")


def _batch_tab(demo: Demo) -> None:
    keys = list(demo.catalog.entries)
    default = next((demo.catalog.defaults[t] for t in TASKS if demo.catalog.defaults[t]),
                   keys[0] if keys else None)
    with gr.Tab("Batch", id="batch", elem_id="tab-batch"):
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images, or a .zip of images", file_count="multiple",
                                file_types=["image", ".zip"], type="filepath",
                                elem_id="batch-files")
                model = gr.Dropdown(keys, value=default, label="Model",
                                    interactive=bool(keys), elem_id="batch-model")
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     elem_id="batch-strength")
                run = gr.Button("Translate all", variant="primary", interactive=bool(keys),
                                elem_id="batch-run")
                report = gr.Markdown(label="Report", elem_id="batch-report")
            with gr.Column():
                gallery = gr.Gallery(label="Results", columns=4, elem_id="batch-gallery")
                archive = gr.File(label="All results (.zip)", interactive=False,
                                  elem_id="batch-zip")
    run.click(demo.batch, [files, model, strength], [gallery, archive, report],
              api_name="batch", concurrency_id=DEVICE_GROUP, concurrency_limit=1)


def build_app(models_dir: str | Path | None = None, *, device: str = "auto",
              limits: Limits = Limits(), queue_size: int = 16, examples: bool = True,
              zoo: bool = True) -> gr.Blocks:
    """The demo app, queued and ready to ``launch``. ``models_dir``: folder of exported
    generators (default: the source tree's ``models/``)."""
    catalog = scan(models_dir, zoo=zoo)
    Path(get_upload_folder()).mkdir(parents=True, exist_ok=True)
    outputs = OutputFolder(tempfile.mkdtemp(prefix="translate-demo-", dir=get_upload_folder()))
    atexit.register(outputs.remove)
    demo = Demo(catalog, TranslatorCache(device), limits, outputs)
    with gr.Blocks(title="translate: image-to-image demo", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as app:
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
    app.queue(max_size=queue_size, default_concurrency_limit=1)
    return app


def serve(models_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 7860,
          share: bool = False, device: str = "auto", limits: Limits = Limits(),
          queue_size: int = 16, block: bool = True):
    """Build the app and start its server (blocking unless ``block`` is False)."""
    app = build_app(models_dir, device=device, limits=limits, queue_size=queue_size)
    app.launch(server_name=host, server_port=port, share=share,
               max_file_size=limits.max_file_bytes, allowed_paths=None, show_error=False,
               ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
               footer_links=["api", "settings"], prevent_thread_lock=not block)
    return app
