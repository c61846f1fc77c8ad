"""The demo page in headless Chromium: pick an example, translate it, see the before/after
slider and the full-resolution PNG, get a message for a bad upload, and fetch nothing from
outside the server. Takes a screenshot of each task tab.

Needs Chromium and its driver (Debian packages ``chromium`` and ``chromium-driver``, installed
here when missing and possible) and selenium (the dev extra). The page runs the shipped
models (models/real2anime.safetensors, models/day2night.safetensors) when both are present,
else stand-in test models. Screenshots go to a temporary folder; ``docs/make_screenshots.py``
sets ``$TRANSLATE_DEMO_SCREENSHOTS=docs`` to refresh the README's pictures (tests never
write tracked files)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_demo import ROOT, DemoServer, stand_in_models

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install -e '.[demo]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TASKS = ("real2anime", "day2night")
SHIPPED = [ROOT / "models" / f"{task}.safetensors" for task in TASKS]


def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages when missing."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium/chromium-driver missing and cannot be installed here "
                    "(needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(command)} took too long")
        if done.returncode != 0:
            pytest.skip(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.skip("chromium or chromedriver still missing after apt-get install")
    return found


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1150", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(server, screenshot folder): the shipped models when both exist, else stand-ins."""
    temp = tmp_path_factory.mktemp("gradio")
    if all(p.is_file() for p in SHIPPED):
        server = DemoServer(temp=temp)
    else:
        models = stand_in_models(tmp_path_factory.mktemp("models"))
        server = DemoServer("--models", str(models), temp=temp)
    shots = Path(os.environ.get("TRANSLATE_DEMO_SCREENSHOTS") or temp / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    yield server, shots
    server.stop()


def test_translate_an_example_in_each_tab(browser, page):
    server, shots = page
    browser.get(server.url)
    wait = WebDriverWait(browser, 60)
    for task in TASKS:
        wait.until(lambda d: d.find_elements(By.ID, f"tab-{task}-button"))[0].click()
        examples = f"#{task}-examples button.gallery-item"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, examples))
        browser.find_elements(By.CSS_SELECTOR, examples)[0].click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{task}-input img"))
        browser.find_element(By.ID, f"{task}-run").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{task}-slider img")) >= 2
                   and ".png" in d.find_element(By.ID, f"{task}-result").text)
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map("
            "i => [i.naturalWidth, i.naturalHeight])", f"#{task}-input img, #{task}-slider img")
        assert len(set(map(tuple, sizes))) == 1 and sizes[0][0] > 0, sizes  # input's size
        card = browser.find_element(By.ID, f"{task}-card").text
        assert "file:" in card
        browser.execute_script("window.scrollTo(0, 0)")
        path = shots / f"demo_{task}.png"
        assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [r for r in resources if not r.startswith(server.url.rstrip("/"))
               and not r.startswith("data:")]
    assert not outside, f"the page fetched from elsewhere: {outside}"


def test_a_bad_upload_shows_a_message(browser, page, tmp_path):
    server, _ = page
    browser.get(server.url)
    wait = WebDriverWait(browser, 60)
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10)
    upload = "#real2anime-input input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    browser.find_element(By.CSS_SELECTOR, upload).send_keys(str(damaged))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#real2anime-input img"))
    browser.find_element(By.ID, "real2anime-run").click()
    wait.until(lambda d: "is not an image this demo can read" in d.find_element(
        By.TAG_NAME, "body").text)
    assert server.proc.poll() is None
