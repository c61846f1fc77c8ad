"""The demo page in headless Chromium: pick an example, translate it, see the before/after
slider, the full-resolution PNG and a card that opens its figures on a click; download a
published model from the page (from a local stand-in server) and translate a portrait in
face mode; watch tile progress on a 12-megapixel photo with the button disabled; get a
message as soon as a bad file is uploaded; fetch nothing from outside the server. Takes a
screenshot of each state.

Needs Chromium and its driver (Debian packages ``chromium`` and ``chromium-driver``, which
``.ci/run`` installs; elsewhere the tests skip with the reason) and selenium (the dev extra). The page runs the shipped
models (models/real2anime.safetensors, models/day2night.safetensors) when both are present,
else stand-in test models. Screenshots go to a temporary folder; ``docs/make_screenshots.py``
sets ``$TRANSLATE_DEMO_SCREENSHOTS=docs`` to refresh the README's pictures (tests never
write tracked files)."""

from __future__ import annotations

import os
import re
import shutil
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
    """Paths of chromium and chromedriver; the test skips, saying why, when they are missing
    (tests never install system packages; .ci/run installs the Debian packages first)."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    return found


def headless_chromium(width: int, height: int):
    """A headless Chromium driver with a window of width x height."""
    binary, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(1400, 1150)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(server, screenshot folder): the shipped models when both exist, else stand-ins."""
    temp = tmp_path_factory.mktemp("gradio")
    offline = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",  # the Hub: unreachable
               "HF_HOME": str(temp / "hf"), "TRANSLATE_CACHE": str(temp / "cache")}
    if all(p.is_file() for p in SHIPPED):
        server = DemoServer(temp=temp, **offline)
    else:
        models = stand_in_models(tmp_path_factory.mktemp("models"))
        server = DemoServer("--models", str(models), temp=temp, **offline)
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
        card = browser.find_element(By.ID, f"{task}-card")
        assert "Figures and details" in card.text and "File" not in card.text  # folded
        card.find_element(By.TAG_NAME, "summary").click()
        wait.until(lambda d: f"{task}.safetensors" in card.text or ".safetensors" in card.text)
        browser.execute_script("window.scrollTo(0, 0)")
        path = shots / f"demo_{task}.png"
        assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [r for r in resources if not r.startswith(server.url.rstrip("/"))
               and not r.startswith("data:")]
    assert not outside, f"the page fetched from elsewhere: {outside}"


def test_a_bad_upload_is_refused_at_once(browser, page, tmp_path):
    server, shots = page
    browser.get(server.url)
    wait = WebDriverWait(browser, 60)
    damaged = tmp_path / "holiday.jpg"
    damaged.write_text("a text file with an image's name\n" * 20)
    upload = "#real2anime-input input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    browser.find_element(By.CSS_SELECTOR, upload).send_keys(str(damaged))
    status = "#real2anime-status"
    wait.until(lambda d: "is not an image this demo can read" in d.find_element(
        By.CSS_SELECTOR, status).text)  # before anyone presses Translate
    assert "Not translated" in browser.find_element(By.CSS_SELECTOR, status).text
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#real2anime-input img"))
    browser.save_screenshot(str(shots / "demo_bad_upload.png"))
    browser.find_element(By.ID, "real2anime-run").click()  # nothing to translate now
    wait.until(lambda d: "Not translated: upload an image first" in d.find_element(
        By.CSS_SELECTOR, status).text)
    assert server.proc.poll() is None


def big_photo(folder: Path) -> Path:
    """A 12.2-megapixel JPEG (4272 x 2848) made from a held-out photo."""
    from PIL import Image

    path = folder / "sunset_12mp.jpg"
    with Image.open(ROOT / "apps" / "photos" / "sunset.jpg") as small:
        small.convert("RGB").resize((4272, 2848), Image.LANCZOS).save(path, quality=90)
    return path


def test_progress_tile_by_tile_with_the_button_disabled(browser, page, tmp_path):
    server, shots = page
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.ID, "tab-day2night-button"))[0].click()
    upload = "#day2night-input input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    browser.find_element(By.CSS_SELECTOR, upload).send_keys(str(big_photo(tmp_path)))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#day2night-input img"))
    run = browser.find_element(By.ID, "day2night-run")
    run.click()
    wait.until(lambda d: "tile" in d.find_element(By.ID, "day2night-result").text
               or "tile" in d.find_element(By.ID, "day2night-slider").text)
    assert not run.is_enabled()  # one job at a time from this page
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "demo_progress.png"))
    WebDriverWait(browser, 600).until(
        lambda d: ".png" in d.find_element(By.ID, "day2night-result").text)
    wait.until(lambda d: run.is_enabled())


@pytest.fixture(scope="module")
def zoo_page(tmp_path_factory):
    """A demo whose zoo downloads come from a local server holding a face model."""
    from test_demo_zoo import FACE, animegan_bytes
    from local_http import FileServer

    files = FileServer()
    files.files[f"{FACE}.pth"] = animegan_bytes(0)
    files.chunk_delay[f"{FACE}.pth"] = 0.01
    temp = tmp_path_factory.mktemp("zoo")
    server = DemoServer(temp=temp / "gradio", TRANSLATE_ZOO_URL=files.base,
                        TRANSLATE_CACHE=str(temp / "cache"))
    shots = Path(os.environ.get("TRANSLATE_DEMO_SCREENSHOTS") or temp / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    yield server, shots, FACE
    server.stop()
    files.close()


def test_download_a_published_model_and_use_face_mode(browser, zoo_page):
    server, shots, face_model = zoo_page
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#real2anime-zoo button"))[0].click()
    offers = wait.until(lambda d: d.find_element(By.ID, "real2anime-offers"))
    assert "face_paint_512_v2" in offers.text and "MIT" in offers.text
    offer = browser.find_element(By.CSS_SELECTOR, "#real2anime-offer input")
    offer.click()
    option = f"//ul//li[contains(., '{face_model}')]"
    wait.until(lambda d: d.find_elements(By.XPATH, option))[0].click()
    browser.find_element(By.ID, "real2anime-download").click()
    wait.until(lambda d: "is downloaded and selected" in d.find_element(
        By.ID, "real2anime-zoo-status").text)
    model = browser.find_element(By.CSS_SELECTOR, "#real2anime-model input")
    assert model.get_attribute("value") == f"zoo: {face_model}"
    checked = browser.find_element(By.CSS_SELECTOR, "#real2anime-face input:checked")
    assert checked.get_attribute("value") == "crop"  # face mode on for a face model
    assert "(installed)" in browser.find_element(By.ID, "real2anime-offers").text
    browser.save_screenshot(str(shots / "demo_zoo_download.png"))

    # face mode with the shipped model (the downloaded stand-in has random weights)
    model.click()
    shipped = "//ul//li[contains(., 'real2anime') and not(contains(., 'zoo'))]"
    wait.until(lambda d: d.find_elements(By.XPATH, shipped))[0].click()
    wait.until(lambda d: d.find_element(
        By.CSS_SELECTOR, "#real2anime-face input:checked").get_attribute("value") == "off")
    browser.find_element(By.CSS_SELECTOR, "#real2anime-face input[value=crop]").click()
    examples = "#real2anime-examples button.gallery-item"
    browser.find_elements(By.CSS_SELECTOR, examples)[0].click()  # the astronaut portrait
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#real2anime-input img"))
    browser.find_element(By.ID, "real2anime-run").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#real2anime-slider img")) >= 2
               and ".png" in d.find_element(By.ID, "real2anime-result").text)
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#real2anime-slider img')).map("
        "i => [i.naturalWidth, i.naturalHeight])")
    assert {tuple(s) for s in sizes} == {(512, 512)}, sizes  # the face square, both sides
    status = browser.find_element(By.ID, "real2anime-status")
    assert "face found at 177,66 (95 x 95)" in status.text  # it says what it did
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "demo_face_mode.png"))
    result = browser.find_element(By.ID, "real2anime-result").text
    browser.find_elements(By.CSS_SELECTOR, examples)[3].click()  # coffee: no face
    wait.until(lambda d: d.find_element(By.ID, "real2anime-result").text != result
               or "coffee" in d.find_element(By.ID, "real2anime-input").get_attribute(
                   "innerHTML"))
    browser.find_element(By.ID, "real2anime-run").click()
    wait.until(lambda d: "no face found: translated whole" in d.find_element(
        By.ID, "real2anime-status").text)


def test_a_clip_in_the_video_tab(browser, page, tmp_path):
    from test_video import make_clip

    server, shots = page
    clip = make_clip(tmp_path / "walk.mp4", 320, 192, frames=15, fps=15)
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.ID, "tab-video-button"))[0].click()
    upload = "#video-input input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    browser.find_element(By.CSS_SELECTOR, upload).send_keys(str(clip))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#video-input video"))
    browser.find_element(By.ID, "video-run").click()
    result = "#video-result video"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, result)
               and "_translated.mp4" in d.find_element(By.CSS_SELECTOR, result)
               .get_attribute("src"))
    size = browser.execute_script(
        "const v = document.querySelector(arguments[0]);"
        "return new Promise(done => { if (v.readyState >= 1) done([v.videoWidth, "
        "v.videoHeight]); v.onloadedmetadata = () => done([v.videoWidth, v.videoHeight]);"
        "v.onerror = () => done(null); setTimeout(() => done(null), 10000); });", result)
    if size is not None:  # a Chromium without H.264 cannot play it, but still offers it
        assert size == [320, 192]
    assert re.fullmatch(r"done: 15 frames in \d+\.\d s \(\d+\.\d frames/s\)",
                        browser.find_element(By.ID, "video-status").text)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "demo_video.png"))


def closed_port() -> int:
    """A local port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def laptop():
    """Chromium with a laptop's screen: 1366 x 768."""
    driver = headless_chromium(1366, 768)
    yield driver
    driver.quit()


def in_view(browser, element_id: str) -> bool:
    """Whether the element is wholly inside the window without scrolling."""
    return browser.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;", element_id)


def test_on_a_laptop_translate_stays_on_the_first_screen_after_a_portrait(laptop, page,
                                                                           tmp_path):
    from PIL import Image

    server, shots = page
    portrait = tmp_path / "portrait.jpg"
    with Image.open(ROOT / "apps" / "photos" / "grace-hopper.jpg") as small:
        small.convert("RGB").resize((1200, 1800)).save(portrait, quality=90)
    laptop.get(server.url)
    wait = WebDriverWait(laptop, 60)
    assert laptop.execute_script("return window.innerWidth") == 1366
    upload = "#real2anime-input input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    laptop.find_element(By.CSS_SELECTOR, upload).send_keys(str(portrait))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#real2anime-input img"))
    wait.until(lambda d: d.execute_script(
        "return document.querySelector('#real2anime-input img').complete"))
    assert in_view(laptop, "real2anime-run")
    laptop.find_element(By.ID, "real2anime-run").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#real2anime-slider img")) >= 2)
    assert in_view(laptop, "real2anime-run")
    laptop.save_screenshot(str(shots / "demo_laptop.png"))


def test_a_batch_shows_each_photo_before_and_after(laptop, page):
    server, shots = page
    laptop.get(server.url)
    wait = WebDriverWait(laptop, 120)
    wait.until(lambda d: d.find_elements(By.ID, "tab-batch-button"))[0].click()
    upload = "#batch-files input[type=file]"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
    photos = [ROOT / "apps" / "photos" / name for name in ("sunset.jpg", "coffee.jpg")]
    laptop.find_element(By.CSS_SELECTOR, upload).send_keys("\n".join(map(str, photos)))
    wait.until(lambda d: "coffee" in d.find_element(By.ID, "batch-files").text)
    assert in_view(laptop, "batch-run")
    laptop.find_element(By.ID, "batch-run").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#batch-gallery img")) >= 4)
    captions = [c.text for c in laptop.find_elements(
        By.CSS_SELECTOR, "#batch-gallery .caption-label")]
    assert captions[:4] == ["sunset.jpg: before", "sunset.jpg: after", "coffee.jpg: before",
                            "coffee.jpg: after"], captions
    assert "Translated **2**" not in laptop.find_element(By.ID, "batch-report").text
    assert "Translated 2 image(s)" in laptop.find_element(By.ID, "batch-report").text
    laptop.save_screenshot(str(shots / "demo_batch.png"))


def test_a_hub_model_that_cannot_be_had_leaves_the_tab_usable(laptop, page):
    """With the Hub unreachable, a typed hf:// model and an invalid name each end in a
    "Not downloaded" message that says why and wraps in the panel; Translate and Download
    work again afterwards, and the offers table's headers are whole words."""
    server, shots = page
    laptop.get(server.url)
    wait = WebDriverWait(laptop, 60)
    wait.until(lambda d: d.find_elements(By.ID, "tab-day2night-button"))[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#day2night-zoo button"))[0].click()
    status = "day2night-zoo-status"
    for typed, said in (("hf://someone/something", "cannot be reached"),
                        ("hf://-/-", "not a valid repository name")):
        offer = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#day2night-offer input"))
        offer.clear()
        offer.send_keys(typed)
        laptop.find_element(By.ID, "day2night-download").click()
        wait.until(lambda d: said in d.find_element(By.ID, status).text)
        text = laptop.find_element(By.ID, status).text
        assert text.startswith("Not downloaded.") and "Error" not in text, text
        wait.until(lambda d: d.find_element(By.ID, "day2night-run").is_enabled()
                   and d.find_element(By.ID, "day2night-download").is_enabled())
        assert laptop.execute_script(  # wrapped, not scrolling sideways
            "const e = document.getElementById(arguments[0]);"
            "return e.scrollWidth <= e.clientWidth + 1;", status)
    laptop.find_element(By.ID, status).location_once_scrolled_into_view
    laptop.save_screenshot(str(shots / "demo_hub_unreachable.png"))
    examples = "#day2night-examples button.gallery-item"
    laptop.find_elements(By.CSS_SELECTOR, examples)[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#day2night-input img"))
    laptop.find_element(By.ID, "day2night-run").click()
    wait.until(lambda d: ".png" in d.find_element(By.ID, "day2night-result").text)
    laptop.find_element(By.ID, "tab-real2anime-button").click()  # the longer table
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#real2anime-zoo button"))[0].click()
    wait.until(lambda d: d.find_element(By.ID, "real2anime-offers").is_displayed())
    laptop.find_element(By.ID, "real2anime-offers").location_once_scrolled_into_view
    laptop.save_screenshot(str(shots / "demo_zoo_laptop.png"))
    for task in ("day2night", "real2anime"):
        words = laptop.execute_script(  # each header word's pieces: one unless broken
            "return Array.from(document.querySelectorAll(arguments[0])).map(th => {"
            "  const r = document.createRange(); r.selectNodeContents(th);"
            "  const lines = new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top)));"
            "  return [th.textContent.trim(), lines.size,"
            "          th.textContent.trim().split(/\\s+/).length]; });",
            f"#{task}-offers th")
        assert words and all(lines <= count for _, lines, count in words), words
