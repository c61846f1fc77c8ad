"""Refresh the demo screenshots in docs/ (docs/demo_real2anime.png, docs/demo_day2night.png):
runs the browser test against the shipped models with its screenshots sent here.

    python docs/make_screenshots.py

Needs what the browser test needs (Chromium and chromium-driver, the dev extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent

if __name__ == "__main__":
    env = dict(os.environ, TRANSLATE_DEMO_SCREENSHOTS=str(DOCS), OMP_NUM_THREADS="2")
    raise SystemExit(subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "tests/test_demo_browser.py", "-k",
         "translate_an_example"], cwd=DOCS.parent, env=env))
