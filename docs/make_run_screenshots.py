"""Screenshots of watching a run, for the README: the HTML report (docs/run_report.png) and
TensorBoard's scalars page (docs/run_tensorboard.png), of the quickstart recipe trained
with TensorBoard logging and periodic evaluation.

    python docs/make_run_screenshots.py

Needs Chromium and chromium-driver (as the browser tests) and the dev extra (matplotlib,
tensorboard). Trains in a temporary folder (about a minute on 2 cores)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The scalars page filtered to G's terms, D's total and D's scores (URL-encoded regex
# "loss/(g_l1|g_gan|d_total)|scores/"): the curves one watches, six to a screen.
SCALARS = "loss%2F(g_l1%7Cg_gan%7Cd_total)%7Cscores%2F"


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def translate(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "translate", *args], cwd=ROOT, check=True)


def main() -> None:
    from translate.data.synth import render_dataset

    work = Path(tempfile.mkdtemp(prefix="translate-shots-"))
    data, run = work / "data", work / "runs" / "quickstart"
    render_dataset(data, size=64, train=200, test=16, seed=0)
    translate("train", str(ROOT / "configs" / "quickstart_shapes.yaml"), f"data.root={data}",
              f"train.out={run}", "train.tensorboard=true", "train.eval_every=100",
              "train.eval_images=16", "--quiet")
    translate("report", str(run))
    driver = browser(1400, 1700)
    try:
        driver.get((run / "report.html").as_uri())
        time.sleep(1)
        driver.save_screenshot(str(DOCS / "run_report.png"))
    finally:
        driver.quit()
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir",
                              str(work / "runs"), "--host", "127.0.0.1", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = browser(1400, 1150)
    try:
        time.sleep(8)
        driver.get(f"http://127.0.0.1:{port}/#scalars&tagFilter={SCALARS}")
        time.sleep(10)
        driver.save_screenshot(str(DOCS / "run_tensorboard.png"))
    finally:
        driver.quit()
        board.terminate()
        board.wait()
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {DOCS / 'run_report.png'} and {DOCS / 'run_tensorboard.png'}")


if __name__ == "__main__":
    main()
