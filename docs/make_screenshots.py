"""Refresh the demo screenshots in docs/: each task tab (demo_real2anime.png,
demo_day2night.png), a bad upload (demo_bad_upload.png), tile progress on a 12-megapixel
photo (demo_progress.png), a model downloaded from the page (demo_zoo_download.png), face
mode (demo_face_mode.png), a clip (demo_video.png), and on a 1366 x 768 laptop screen: a
portrait translated (demo_laptop.png), a batch before and after (demo_batch.png), a Hub
model that cannot be had
(demo_hub_unreachable.png) and the zoo's table (demo_zoo_laptop.png). Runs the browser
tests against the shipped models with their screenshots sent here.

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
        [sys.executable, "-m", "pytest", "-q", "tests/test_demo_browser.py"], cwd=DOCS.parent,
        env=env))
