"""``translate demo``: start the browser demo, :mod:`translate.apps` (the ``apps/`` folder of
the repository, installed inside the package). It needs the ``demo`` extra (gradio)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
from pathlib import Path

from translate.cli.args import positive, positive_number
from translate.errors import UserError


class DemoError(UserError):
    """The demo cannot start; the message says what to do."""


def load_app():
    """The ``translate.apps.demo`` module."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if importlib.util.find_spec("gradio") is None:
        raise DemoError("the demo needs gradio: pip install -e '.[demo]'")
    return importlib.import_module("translate.apps.demo")


def run_demo(models: str | None, host: str, port: int, share: bool, device: str,
             limits: dict, queue_size: int) -> None:
    """Start the demo server and serve until interrupted; ``limits``: the fields of
    :class:`translate.apps.service.Limits` to set."""
    from translate.devices import pick_device

    if models and not Path(models).is_dir():
        raise DemoError(f"--models {models} is not a folder")
    try:
        pick_device(device)
    except ValueError as err:  # --device cuda without CUDA
        raise DemoError(str(err)) from None
    app = load_app()
    from translate.apps.service import Limits

    limits = Limits(**limits)
    # SIGTERM (a service manager, `kill`) stops the server the way Ctrl-C does, so the
    # demo's temporary folders are removed at exit instead of being left behind
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        app.serve(models, host=host, port=port, share=share, device=device, limits=limits,
                  queue_size=queue_size)
    except OSError as err:
        raise DemoError(f"cannot serve on {host}:{port} ({err}); choose another --port") \
            from None
    except KeyboardInterrupt:  # stopped while starting; once serving, Gradio handles it
        print("stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_demo(args) -> int:
    if args.models_from_zoo:
        install_zoo_models(args.models_from_zoo)
    run_demo(args.models, args.host, args.port, args.share, args.device, demo_limits(args),
             args.queue_size)  # DemoError: exit 2
    return 0


def demo_limits(args) -> dict:
    """The demo's limits (fields of :class:`translate.apps.service.Limits`) from its
    options."""
    return {"max_file_bytes": int(args.max_upload_mb * 2**20),
            "max_pixels": int(args.max_megapixels * 1e6),
            "max_video_bytes": int(args.max_video_mb * 2**20),
            "max_video_seconds": args.max_video_seconds,
            "max_video_job_seconds": args.video_budget_seconds,
            "upload_bytes_per_minute": int(args.upload_mb_per_minute * 2**20),
            "upload_files_per_minute": args.upload_files_per_minute,
            "max_hub_bytes": int(args.max_hub_mb * 2**20),
            "max_hub_models": args.max_hub_models,
            "hub_fetches_per_hour": args.hub_fetches_per_hour}


def install_zoo_models(names: list[str]) -> None:
    """Download zoo models before the demo starts (they then appear in its tabs)."""
    from translate.hub.download import DownloadError
    from translate.hub.hf import fetch_model, is_hf
    from translate.hub.zoo import download
    from translate.infer.engine import load_any

    for name in names:
        if is_hf(name):  # HubError (also for a file no loader takes): exit 2, no demo
            path, pinned = fetch_model(name, load_any)
            print(f"{pinned}: {path}", file=sys.stderr)
            continue
        try:
            meta, what = download(name)
        except DownloadError as err:
            raise DemoError(f"{name} could not be downloaded, so the demo was not started: "
                            f"{err}") from None
        print(f"{meta['name']}: {what} ({meta['path']})", file=sys.stderr)


def register(sub) -> None:
    """The ``demo`` command."""
    p = sub.add_parser("demo", help="start the browser demo (needs the demo extra)",
                       description="Start the Gradio demo: Real -> Anime and Day -> Night tabs "
                       "with a before/after slider, a batch tab, and the API endpoints "
                       "/real2anime, /day2night and /batch for gradio_client. Serves on "
                       "127.0.0.1 only, unless --host says otherwise.")
    p.add_argument("--models-from-zoo", nargs="+", metavar="NAME",
                   help="download these published models first (translate zoo list shows "
                   "them; each tab also offers its task's models for download)")
    p.add_argument("--models", metavar="DIR",
                   help="folder of exported generators (default: the repository's models/)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=positive, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true",
                   help="also open a public share link (off by default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-upload-mb", type=positive_number, default=20,
                   help="largest accepted upload, per file (default 20)")
    p.add_argument("--max-megapixels", type=positive_number, default=40,
                   help="largest accepted image, width x height (default 40)")
    p.add_argument("--max-video-mb", type=positive_number, default=100,
                   help="largest accepted clip in the Video tab (default 100)")
    p.add_argument("--max-video-seconds", type=positive_number, default=60,
                   help="longest accepted clip, in seconds (default 60)")
    p.add_argument("--video-budget-seconds", type=positive_number, default=600,
                   help="work one clip may take; a clip still being translated then is "
                   "stopped with a message (default 600)")
    p.add_argument("--upload-mb-per-minute", type=positive_number, default=200,
                   help="request bodies (uploads, pasted images) one client (IP address) "
                   "may send in a minute; more are refused with HTTP 429 (default 200)")
    p.add_argument("--upload-files-per-minute", type=positive, default=500,
                   help="files one client may upload in a minute (at most 100 per "
                   "upload); more are refused with HTTP 429 (default 500)")
    p.add_argument("--max-hub-mb", type=positive_number, default=512,
                   help="largest file a visitor may have the server fetch from the Hugging "
                   "Face Hub (hf:// in Get more models; default 512)")
    p.add_argument("--max-hub-models", type=positive, default=8,
                   help="Hub models fetched by the page kept at once; past that the oldest "
                   "is removed from the Hub cache (default 8)")
    p.add_argument("--hub-fetches-per-hour", type=positive, default=6,
                   help="Hub models one client (IP address) may have fetched in an hour "
                   "(default 6)")
    p.add_argument("--queue-size", type=positive, default=16,
                   help="requests that may wait for the model (default 16)")
    p.set_defaults(func=cmd_demo)
