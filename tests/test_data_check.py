"""``translate data check`` on folders built here: good data, unmatched names, garbage and
truncated files, odd widths, and datasets training would refuse; its verdict agrees with the
data loader's."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from translate.data.datasets import DatasetError, domain_items, paired_items
from translate.data.check import check_dataset, format_report
from translate.data.synth import render_dataset

from conftest import run_cli


def write_png(path: Path, width: int, height: int, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(width * 1000 + height)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, fmt)
    return path


def truncate(path: Path) -> Path:
    """Cut the file at three quarters: headers intact, image data incomplete."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])
    return path


def loader_pairs(root: Path, layout: str) -> int | None:
    """What training would get: the number of pairs, or None when it refuses the data."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return len(paired_items(root, layout, "train", report=lambda bad: None))
        except DatasetError:
            return None


def test_synth_then_check_cli(tmp_path):
    root = tmp_path / "good"
    made = run_cli("data", "synth", "shapes", "--out", str(root), "--size", "24",
                   "--train", "6", "--test", "2", "--seed", "3")
    assert made.returncode == 0, made.stderr
    assert "train/A/  6 images" in made.stdout and f"translate data check {root}" in made.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["good"]  # no temporary folder left
    before = {p: p.read_bytes() for p in root.rglob("*.png")}
    again = run_cli("data", "synth", "shapes", "--out", str(root), "--seed", "4")
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    assert {p: p.read_bytes() for p in root.rglob("*.png")} == before

    proc = run_cli("data", "check", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["layout"] == "paired" and report["mode"] == "header"
    train, test = report["splits"]
    assert (train["split"], train["pairs"], test["split"], test["pairs"]) == ("train", 6,
                                                                                "test", 2)
    assert train["domains"]["A"]["width"] == {"min": 24, "median": 24, "max": 24}
    assert train["domains"]["B"]["aspect"]["median"] == 1.0
    assert report["trainable"] == {"pix2pix": True, "cyclegan": True}
    assert report["unreadable"] == [] and report["warnings"] == []


def test_unmatched_garbage_and_truncated_files(tmp_path):
    root = render_dataset(tmp_path / "mixed", size=24, train=5, test=0)
    write_png(root / "train" / "A" / "only_in_a.png", 24, 24)
    write_png(root / "train" / "B" / "only_in_b.png", 24, 24)
    (root / "train" / "A" / "00001.png").write_bytes(b"not an image at all" * 10)
    (root / "train" / "B" / "00002.png").unlink()
    truncate(write_png(root / "train" / "B" / "00002.jpg", 48, 48, "JPEG"))
    truncate(root / "train" / "B" / "00003.png")  # headers intact: only the end is missing
    (root / "train" / "A" / "notes.txt").write_text("labels from the survey")

    report = check_dataset(root)
    train = report["splits"][0]
    assert train["only_a"] == ["only_in_a"] and train["only_b"] == ["only_in_b"]
    assert [u["path"] for u in report["unreadable"]] == ["train/A/00001.png"]
    assert [s["path"] for s in report["suspect"]] == ["train/B/00002.jpg",
                                                      "train/B/00003.png"]
    assert train["domains"]["A"]["ignored_files"] == 1 and train["size_mismatch"] == 1
    # header check: 00000, 00002, 00003 (headers intact) and 00004 pair up, as in the loader
    assert train["pairs"] == 4 == loader_pairs(root, "paired")
    assert report["ok"] and any("no test" in w for w in report["warnings"])
    text = format_report(report)
    assert "only in A: only_in_a" in text and "train/A/00001.png" in text
    assert "look truncated" in text and text.endswith("ok: trainable with pix2pix and "
                                                      "cyclegan")

    full = check_dataset(root, full=True, workers=2)
    assert [u["path"] for u in full["unreadable"]] == ["train/A/00001.png",
                                                      "train/B/00002.jpg",
                                                      "train/B/00003.png"]
    assert full["suspect"] == [] and full["splits"][0]["pairs"] == 2


def test_aligned_sizes_and_odd_widths(tmp_path):
    root = tmp_path / "aligned"
    for i, (w, h) in enumerate([(32, 16), (33, 16), (65, 30), (64, 32)]):
        write_png(root / "train" / f"{i}.png", w, h)
    write_png(root / "val" / "0.jpg", 48, 24, "JPEG")
    truncate(root / "val" / "0.jpg")
    report = check_dataset(root)
    assert report["layout"] == "aligned" and report["ok"]
    train, val = report["splits"]
    stats = train["domains"]["A|B"]
    assert stats["odd_width"] == 2 and train["pairs"] == 4
    assert stats["width"] == {"min": 32, "median": 48.5, "max": 65}
    assert stats["height"] == {"min": 16, "median": 23, "max": 32}
    assert stats["aspect"] == {"min": 2.0, "median": 2.031, "max": 2.167}
    assert val["folder"] == "val" and val["split"] == "test"
    assert [s["path"] for s in report["suspect"]] == ["val/0.jpg"]
    assert any("odd width" in w for w in report["warnings"])


def test_unpaired_domain_without_readable_images_fails(tmp_path):
    root = render_dataset(tmp_path / "u", size=24, train=3, test=1, layout="unpaired")
    for path in (root / "trainB").iterdir():
        path.write_bytes(b"\x89PNG garbage")
    report = check_dataset(root)
    assert not report["ok"] and report["trainable"] == {"pix2pix": False, "cyclegan": False}
    assert report["problems"] == ["domain B of the train split has no readable images"]
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(DatasetError):
        domain_items(root, "unpaired", "train", report=lambda bad: None)


def test_paired_without_matching_names_fails(tmp_path):
    root = tmp_path / "p"
    for i in range(3):
        write_png(root / "train" / "A" / f"a{i}.png", 16, 16)
        write_png(root / "train" / "B" / f"b{i}.png", 16, 16)
    report = check_dataset(root)
    assert not report["ok"] and loader_pairs(root, "paired") is None
    assert "no usable training pairs" in report["problems"][0]
    assert report["trainable"] == {"pix2pix": False, "cyclegan": True}


def test_aligned_all_unreadable_fails(tmp_path):
    root = tmp_path / "bad"
    (root / "train").mkdir(parents=True)
    for i in range(3):
        (root / "train" / f"{i}.jpg").write_bytes(b"\xff\xd8 broken")
    report = check_dataset(root)
    assert not report["ok"] and loader_pairs(root, "aligned") is None
    assert len(report["unreadable"]) == 3


def test_cli_exit_statuses_for_bad_folders(tmp_path):
    root = tmp_path / "nolayout"
    write_png(root / "pictures" / "x.png", 16, 16)
    write_png(root / "test" / "A" / "x.png", 16, 16)  # a test split alone is not enough
    proc = run_cli("data", "check", str(root))
    assert proc.returncode == 1
    assert "training would fail" in proc.stdout and "pictures/" in proc.stdout
    missing = run_cli("data", "check", str(tmp_path / "missing"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
