"""``translate demo``: start the browser demo, which lives in ``apps/`` of the source tree.

The app needs the ``demo`` extra (``pip install -e '.[demo]'``). It is imported from the
``apps`` folder beside this package, so it works from a clone with an editable install.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
from pathlib import Path

from .errors import UserError

SOURCE_TREE = Path(__file__).resolve().parent.parent


class DemoError(UserError):
    """The demo cannot start; the message says what to do."""


def load_app():
    """The ``apps.demo`` module of the source tree."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if importlib.util.find_spec("gradio") is None:
        raise DemoError("the demo needs gradio: pip install -e '.[demo]'")
    package = SOURCE_TREE / "apps"
    if not (package / "demo.py").is_file():
        raise DemoError(f"the demo app is not in {package}; run translate demo from a clone "
                        "of the repository (pip install -e '.[demo]')")
    loaded = sys.modules.get("apps")
    if loaded is None or Path(getattr(loaded, "__file__", "")).parent != package:
        spec = importlib.util.spec_from_file_location(
            "apps", package / "__init__.py", submodule_search_locations=[str(package)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["apps"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("apps.demo")


def run_demo(models: str | None, host: str, port: int, share: bool, device: str,
             max_upload_mb: float, max_megapixels: float, queue_size: int) -> None:
    """Start the demo server and serve until interrupted."""
    from .inference import pick_device

    if models and not Path(models).is_dir():
        raise DemoError(f"--models {models} is not a folder")
    try:
        pick_device(device)
    except ValueError as err:  # --device cuda without CUDA
        raise DemoError(str(err)) from None
    app = load_app()
    from apps.service import Limits

    limits = Limits(max_file_bytes=int(max_upload_mb * 2**20),
                    max_pixels=int(max_megapixels * 1e6))
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
