"""Procedural tasks: determinism, the three layouts and their true counterparts, any size,
and properties that make day2night and real2anime worth learning (night is dark but has
lights, anime is flat and inked, A and B show the same scene in the same place)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from translate.images import list_images, load_rgb
from translate.data.synth import TASKS, render_dataset, sample_sheet
from translate.data.synth import main as synth_main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ("day2night", "real2anime")
# sha256 of shapes_pair's output for seed 0 (4 pairs at 32, 33 and 64 px), as rendered before
# the scenes moved into translate.data.scenes: recorded numbers rely on these exact images
SHAPES_DIGEST = "4b365fb3650fc109b7fe84768ace93063e9c422befcd03a339956d964426d485"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def pairs(task: str, n: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [TASKS[task](rng, size) for _ in range(n)]


def luminance(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def gradient(img: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(img, cv2.CV_32F, 1, 0), cv2.Sobel(img, cv2.CV_32F, 0, 1))


def rank_edges(img: np.ndarray) -> np.ndarray:
    """Edges of the luminance ranks: blind to how bright or dark the picture is overall."""
    lum = luminance(img)
    ranks = lum.ravel().argsort().argsort().reshape(lum.shape).astype(np.float32) / lum.size
    return gradient(ranks)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


# ---------------------------------------------------------------------------------------
# determinism and layouts


def test_shapes_unchanged():
    h = hashlib.sha256()
    rng = np.random.default_rng(0)
    for size in (32, 33, 64):
        for _ in range(4):
            a, b = TASKS["shapes"](rng, size)
            h.update(a.tobytes())
            h.update(b.tobytes())
    assert h.hexdigest() == SHAPES_DIGEST


@pytest.mark.parametrize("task", DEMO)
@pytest.mark.parametrize("layout", ["paired", "aligned", "unpaired"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, task, layout):
    args = dict(task=task, size=33, train=2, test=2, layout=layout)
    first = tree(render_dataset(tmp_path / "one", seed=3, **args))
    second = tree(render_dataset(tmp_path / "two", seed=3, **args))
    other = tree(render_dataset(tmp_path / "three", seed=4, **args))
    assert first and list(first) == list(second) == list(other)
    assert first == second
    assert all(first[name] != other[name] for name in first)


@pytest.mark.parametrize("task", DEMO)
def test_global_random_state_is_neither_used_nor_changed(task):
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    a1, b1 = TASKS[task](np.random.default_rng(5), 40)
    assert np.array_equal(np.random.get_state()[1], state)
    np.random.seed(2)
    a2, b2 = TASKS[task](np.random.default_rng(5), 40)
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)


@pytest.mark.parametrize("task", DEMO)
def test_paired_and_aligned_layouts(tmp_path, task):
    paired = render_dataset(tmp_path / "p", task, size=33, train=3, test=2, seed=1)
    aligned = render_dataset(tmp_path / "a", task, size=33, train=3, test=2, seed=1,
                             layout="aligned")
    for split, count in (("train", 3), ("test", 2)):
        names_a = [p.name for p in list_images(paired / split / "A")]
        names_b = [p.name for p in list_images(paired / split / "B")]
        assert names_a == names_b and len(names_a) == count
        for name in names_a:
            a, b = load_rgb(paired / split / "A" / name), load_rgb(paired / split / "B" / name)
            ab = load_rgb(aligned / split / name)
            assert a.shape == b.shape == (33, 33, 3)
            assert ab.shape == (33, 66, 3)  # A | B side by side, the same pair as `paired`
            assert np.array_equal(ab[:, :33], a) and np.array_equal(ab[:, 33:], b)


@pytest.mark.parametrize("task", DEMO)
def test_unpaired_layout_writes_true_counterparts(tmp_path, task):
    root = render_dataset(tmp_path, task, size=32, train=2, test=3, seed=9, layout="unpaired")
    folders = sorted(p.name for p in root.iterdir())
    assert folders == ["testA", "testA_to_B", "testB", "testB_to_A", "trainA", "trainB"]
    counts = {f: len(list_images(root / f)) for f in folders}
    assert counts == {"trainA": 2, "trainB": 2, "testA": 3, "testB": 3, "testA_to_B": 3,
                      "testB_to_A": 3}
    # replay the stream: every image is scene i in one style, B shows another scene than A
    rng = np.random.default_rng(9)
    render = TASKS[task]
    for split, count in (("train", 2), ("test", 3)):
        for i in range(count):
            name = f"{i:05d}.png"
            a, b = render(rng, 32)
            a2, b2 = render(rng, 32)
            assert np.array_equal(load_rgb(root / f"{split}A" / name), a)
            assert np.array_equal(load_rgb(root / f"{split}B" / name), b2)
            assert not np.array_equal(a, a2)
            if split == "test":
                assert np.array_equal(load_rgb(root / "testA_to_B" / name), b)
                assert np.array_equal(load_rgb(root / "testB_to_A" / name), a2)


@pytest.mark.parametrize("task", DEMO)
@pytest.mark.parametrize("size", [32, 33, 100, 512])
def test_any_size(task, size):
    a, b = TASKS[task](np.random.default_rng(0), size)
    assert a.shape == b.shape == (size, size, 3)
    assert a.dtype == b.dtype == np.uint8
    assert a.std() > 10 and b.std() > 10  # a picture, not a flat fill


def test_same_scene_at_two_sizes_looks_the_same():
    """Scenes are described in resolution-free units: a 64 px render is a 128 px render
    shrunk (the night sky's stars and the photo's noise aside)."""
    for task in DEMO:
        small = TASKS[task](np.random.default_rng(2), 64)
        large = TASKS[task](np.random.default_rng(2), 128)
        for s, big in zip(small, large):
            shrunk = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
            assert np.abs(s.astype(float) - shrunk).mean() < 12


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of shapes"):
        render_dataset(tmp_path, "nope")
    with pytest.raises(ValueError, match="layout must be one of"):
        render_dataset(tmp_path, "day2night", layout="zigzag")
    with pytest.raises(ValueError, match="size must be"):
        render_dataset(tmp_path, "day2night", size=4)
    with pytest.raises(ValueError, match="counts must be"):
        render_dataset(tmp_path, "real2anime", train=-1)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------
# what makes the tasks worth learning


def test_night_is_dark_but_lit():
    rendered = pairs("day2night", 12, 64)
    day = np.array([luminance(a).mean() for a, _ in rendered])
    night = np.array([luminance(b).mean() for _, b in rendered])
    assert (night < 0.6 * day).all()
    assert night.mean() < 0.4 * day.mean()
    # lit windows, lamps, the moon: every night has bright spots
    assert all(np.percentile(luminance(b), 99.5) > 0.55 for _, b in rendered)
    # and the night sky (top rows) is darker and bluer than red
    for _, b in rendered:
        top = b[:6].reshape(-1, 3).astype(float).mean(0)
        assert top.mean() < 80 and top[2] >= top[0]


def test_anime_is_flat_and_inked():
    rendered = pairs("real2anime", 12, 64)
    colours = [(len(np.unique(a.reshape(-1, 3), axis=0)), len(np.unique(b.reshape(-1, 3),
                                                                         axis=0)))
               for a, b in rendered]
    assert all(nb < 0.3 * na for na, nb in colours)
    strong = [((gradient(luminance(a)) > 0.8).mean(), (gradient(luminance(b)) > 0.8).mean())
              for a, b in rendered]
    assert all(sb > sa for sa, sb in strong)
    # ink: thin dark lines (a morphological black-hat finds them) run around anime regions
    lines = [[(cv2.morphologyEx(luminance(x), cv2.MORPH_BLACKHAT, np.ones((3, 3), np.uint8))
               > 0.15).mean() for x in pair] for pair in rendered]
    assert all(lb > 2 * la and lb > 0.01 for la, lb in lines)


@pytest.mark.parametrize("task,least", [("day2night", 0.5), ("real2anime", 0.9)])
def test_a_and_b_differ_but_are_aligned(task, least):
    """Each A's edge map matches its own B's better than any other B's (chance: 1/12)."""
    rendered = pairs(task, 12, 64, seed=1)
    for a, b in rendered:
        assert np.abs(a.astype(float) - b).mean() > 8
    ea = [rank_edges(a) for a, _ in rendered]
    eb = [rank_edges(b) for _, b in rendered]
    scores = np.array([[corr(x, y) for y in eb] for x in ea])
    assert (scores.argmax(1) == np.arange(12)).mean() >= least
    assert np.diag(scores).mean() > 2 * scores[~np.eye(12, dtype=bool)].mean()


def test_scenes_vary():
    for task in DEMO:
        imgs = [a for a, _ in pairs(task, 8, 48)]
        means = np.array([a.reshape(-1, 3).mean(0) for a in imgs])
        assert means.std(0).mean() > 5  # colours differ from scene to scene
        diffs = [np.abs(imgs[i].astype(float) - imgs[i + 1]).mean() for i in range(7)]
        assert min(diffs) > 10


# ---------------------------------------------------------------------------------------
# sample sheets


def test_sample_sheet(tmp_path):
    path = sample_sheet("real2anime", tmp_path / "sheet.png", pairs=3, size=32, seed=0)
    sheet = load_rgb(path)
    assert sheet.shape == (2 * 32 + 4, 3 * 32 + 2 * 4, 3)
    a, b = TASKS["real2anime"](np.random.default_rng(0), 32)
    assert np.array_equal(sheet[:32, :32], a) and np.array_equal(sheet[36:, :32], b)


def test_sheet_script_writes_both_demo_sheets(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "translate.data.synth", "--sheet", "--out",
                           str(tmp_path), "--pairs", "2", "--size", "32"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth_day2night.png",
                                                          "synth_real2anime.png"]
    assert load_rgb(tmp_path / "synth_day2night.png").shape == (68, 68, 3)


def test_sheet_script_refuses_unknown_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        synth_main(["--sheet", "nope", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "unknown task 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        synth_main(["--sheet", "--pairs", "0", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "--pairs must be >= 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
