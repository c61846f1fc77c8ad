"""translate report RUN: one self-contained HTML page per training run, for finished runs,
runs in progress or stopped, and run folders of earlier versions; opened in headless
Chromium with its plots and sample grids drawn."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, run_cli, tiny_config

from translate.train.loop import train
from translate.train.report import chosen_samples, read_run, smooth, write_report

LEGACY = ROOT / "tests" / "data" / "legacy_v0"


@pytest.fixture(scope="module")
def finished_run(shapes32, tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    config = tiny_config(shapes32, run, generator={"ngf": 8, "depth": 5},
                         discriminator={"ndf": 8},
                         train={"iterations": 40, "batch_size": 4, "log_every": 5,
                                "sample_every": 10, "eval_every": 20, "eval_images": 4,
                                "checkpoint_every": 40})
    train(config, progress=False)
    return run


def _images(page: str, kind: str) -> list[str]:
    return re.findall(rf"src='data:image/{kind};base64,", page)


def test_report_of_a_finished_run_from_the_cli(finished_run, tmp_path):
    out = tmp_path / "page.html"
    proc = run_cli("report", str(finished_run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stderr
    page = out.read_text()
    assert "finished: 40 of 40 iterations, exported generator_a2b.safetensors" in page
    # plots: generator terms, discriminator terms, D scores, gradient norms, evaluation,
    # lr and speed
    assert len(_images(page, "png")) == 6
    assert len(_images(page, "jpeg")) == 4  # the grids of steps 10, 20, 30, 40
    assert page.index("step 40</figcaption>") < page.index("step 10</figcaption>")
    assert "best evaluation" in page and "checkpoints/best.pt" in page
    assert "No health events" in page and "iterations: 40" in page  # the config
    assert "http://" not in page and "https://" not in page  # nothing fetched


def test_report_of_earlier_versions_run_folders(tmp_path):
    for name in ("pix2pix_run", "cyclegan_run"):
        out = write_report(LEGACY / name, tmp_path / f"{name}.html")
        page = out.read_text()
        assert "exported generator_a2b.safetensors" in page
        assert "No sample grids" in page and len(_images(page, "png")) >= 2


def test_report_of_a_stopped_run_shows_its_events(shapes32, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(shapes32, run, train={"iterations": 10, "log_every": 2,
                                               "sample_every": 0, "checkpoint_every": 4})
    train(config, progress=False)
    for export in run.glob("generator_*.safetensors"):  # as if it were still running
        export.unlink()
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "event": "d_wins", "message": "D <wins>", "advice": "a"}\n')
        f.write('{"step": 11, "d_real": 0.5, "g_l')  # a line torn by a kill
    page = write_report(run).read_text()
    assert (run / "report.html").is_file()
    assert "in progress or stopped: 10 of 10 iterations logged" in page
    assert "<td>d_wins</td>" in page and "D &lt;wins&gt;" in page  # escaped


def test_not_a_run_folder_is_explained(tmp_path):
    proc = run_cli("report", str(tmp_path))
    assert proc.returncode == 2 and "is not a run folder" in proc.stderr


def test_smoothing_and_sample_choice():
    assert smooth([1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0]  # bias-corrected: no pull towards 0
    curve = smooth([float(i % 2) for i in range(400)])
    assert abs(curve[-1] - 0.5) < 0.1  # long curves are averaged
    grids = [(i, ROOT) for i in range(100)]
    chosen = chosen_samples(grids)
    assert len(chosen) == 24 and chosen[0][0] == 99 and chosen[-1][0] == 0


def test_the_page_opens_in_chromium_with_plots_and_samples(finished_run, tmp_path):
    from test_demo_browser import chromium

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    page = write_report(finished_run, tmp_path / "report.html")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.as_uri())
        sizes = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(sizes) == 10 and all(done and width > 0 for done, width in sizes)
        assert driver.title.endswith("training report")
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_read_run_sorts_lines_by_kind(finished_run):
    record = read_run(finished_run)
    assert [r["step"] for r in record.rows] == list(range(5, 41, 5))
    assert [r["step"] for r in record.evals] == [20, 40] and record.events == []
    assert [s for s, _ in record.samples] == [10, 20, 30, 40]


def test_report_never_replaces_what_it_did_not_write(finished_run, tmp_path):
    """--out at a run's own files, a user's file, a link, a folder or a FIFO: refused with
    exit status 2 and the file left as it was; a report written before is replaced, and
    --overwrite replaces a regular file (never anything else)."""
    import os

    latest = finished_run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    link = tmp_path / "link.html"
    link.symlink_to(mine)
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    (tmp_path / "folder.html").mkdir()
    for target, said in ((latest, "is not a report written by translate report"),
                         (finished_run / "metrics.jsonl", "is not a report"),
                         (mine, "add --overwrite"), (link, "is a symbolic link"),
                         (fifo, "not a regular file"), (tmp_path / "folder.html", "a folder")):
        proc = run_cli("report", str(finished_run), "--out", str(target), timeout=60)
        assert proc.returncode == 2 and said in proc.stderr, (target, proc.stderr)
    assert latest.read_bytes() == before and mine.read_text() == "<p>my notes</p>"
    assert fifo.is_fifo() and link.is_symlink()
    for target in (link, fifo):
        proc = run_cli("report", str(finished_run), "--out", str(target), "--overwrite",
                       timeout=60)
        assert proc.returncode == 2, proc.stderr
    assert fifo.is_fifo() and link.is_symlink() and mine.read_text() == "<p>my notes</p>"
    assert run_cli("report", str(finished_run), "--out", str(mine), "--overwrite").returncode == 0
    assert "Training run" in mine.read_text()
    again = run_cli("report", str(finished_run), "--out", str(mine))  # its own page now
    assert again.returncode == 0, again.stderr


def test_sigterm_while_the_report_is_written_leaves_nothing(finished_run, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import shutil

    import numpy as np
    from PIL import Image

    run = tmp_path / "run"  # with 24 large sample grids, the page takes seconds to build
    shutil.copytree(finished_run, run)
    noise = np.random.default_rng(0).integers(0, 255, (1600, 1600, 3), np.uint8)
    for k in range(1, 25):
        Image.fromarray(noise).save(run / "samples" / f"step_{1000 * k:06d}.png",
                                    compress_level=1)
    pages = tmp_path / "pages"
    pages.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "translate", "report", str(run),
                             "--out", str(pages / "page.html")], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # past the imports, while the grids are read and the page written
    while proc.poll() is None:  # until it stops, wherever the signal lands
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    err = proc.stderr.read()
    left = [p.name for p in pages.iterdir()]
    assert left in ([], ["page.html"]), left  # never a .tmp beside it
    if left:  # written whole before the signal landed
        assert (pages / "page.html").read_text().endswith("</html>")
    if proc.returncode == 143:  # stopped while writing
        assert "no report was written" in err and not left, err


def _run_folder(root, rows: list[dict]):
    import json

    root.mkdir(parents=True)
    (root / "config.yaml").write_text("model: pix2pix\ntrain:\n  iterations: 100\n")
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_a_report_of_hostile_metrics_is_bounded(tmp_path):
    """3000 metric names, names with $...$ (matplotlib's mathtext), integers like 10**400,
    a 2 MB event line and a 100 KB event message: the report is written in seconds, plots
    at most MAX_TERMS curves per plot, and says what it left out."""
    import time

    from translate.train.report import MAX_TERMS

    many = {f"g_term_{i}": float(i) for i in range(3000)}
    rows = [{"step": 1, **many, "g_$\\frac{1}{0$": 1.0, "d_big": 10 ** 400, "seconds": 1},
            {"step": 2, **many, "g_$\\frac{1}{0$": 2.0, "d_big": 10 ** 400, "seconds": 1},
            {"step": 2, "event": "exploding", "message": "x" * 100_000, "advice": "y"},
            {"step": 2, "event": "huge", "message": "z" * 2_000_000, "advice": "w"}]
    run = _run_folder(tmp_path / "run", rows)
    started = time.monotonic()
    out = write_report(run, tmp_path / "page.html")
    assert time.monotonic() - started < 60
    page = out.read_text()
    assert len(page) < 3_000_000, len(page)
    assert f"2977 more generator terms than the {MAX_TERMS} plotted" in page
    assert "1 line(s) of metrics.jsonl longer than 256 KB were left out" in page
    assert "x" * 2000 in page and "x" * 2001 not in page  # the long message, cut
    assert "huge" not in page.split("<h2>Health events</h2>")[1].split("<h2>")[0]


def test_bad_sample_grids_are_left_out_and_named(tmp_path):
    """A truncated PNG, a text file, a PNG declaring 900 megapixels, a 20000 x 8 grid,
    a folder and a FIFO among the grids: the report is written with the good one."""
    import os
    import struct
    import zlib

    from PIL import Image

    run = _run_folder(tmp_path / "run", [{"step": 10, "g_l1": 1.0, "seconds": 1}])
    samples = run / "samples"
    samples.mkdir()
    Image.new("RGB", (64, 32), "red").save(samples / "step_000010.png")
    good = (samples / "step_000010.png").read_bytes()
    (samples / "step_000020.png").write_bytes(good[:len(good) // 2])
    (samples / "step_000030.png").write_text("not a picture")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # 900 MP declared
    (samples / "step_000040.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                              + chunk(b"IEND", b""))
    Image.new("RGB", (20000, 8), "blue").save(samples / "step_000050.png")
    (samples / "step_000060.png").mkdir()
    os.mkfifo(samples / "step_000070.png")
    page = write_report(run, tmp_path / "page.html").read_text()
    assert page.count("<figure>") == 2  # the good grid and the 20000 x 8 one, scaled
    for name in ("step_000020.png", "step_000030.png", "step_000040.png"):
        assert f"samples/{name} is not a picture that can be read" in page, name
    for name in ("step_000060.png", "step_000070.png"):
        assert f"samples/{name} is not a plain file; left out" in page, name
