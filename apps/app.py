"""The demo as a script, the layout Gradio users and Hugging Face Spaces expect:
``python apps/app.py [translate demo options]`` starts the same server as ``translate demo``.

Run from a clone, the repository's own ``translate`` package is used (the folder above this
one goes first on the import path), and this folder is ``translate.apps`` even where the
package is not installed.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def register_apps() -> None:
    """Make this folder importable as ``translate.apps`` if no installed copy provides it."""
    if importlib.util.find_spec("translate.apps") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "translate.apps", HERE / "__init__.py", submodule_search_locations=[str(HERE)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["translate.apps"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    if (HERE.parent / "translate").is_dir():  # a clone: its own package first
        sys.path.insert(0, str(HERE.parent))
    register_apps()
    from translate.cli.main import main

    raise SystemExit(main(["demo", *sys.argv[1:]]))
