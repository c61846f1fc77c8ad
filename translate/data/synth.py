"""Procedural datasets: every image is rendered together with its true counterpart, so
models trained on them can be scored against the right answer.

Tasks (``TASKS``; the scenes live in :mod:`translate.data.scenes`):

- ``shapes``: discs and boxes (A) under a fixed colour mapping (B).
- ``day2night``: a street, park or waterfront scene by day (A) and the same scene by night
  (B): dark sky with moon and stars, lit windows, glowing lamps and car lights.
- ``real2anime``: a head-and-shoulders portrait, photo-like (A: smooth shading, texture,
  soft light, sensor noise) and anime-like (B: flat cel shading, ink outlines, larger eyes).

Layouts: ``paired`` and ``aligned`` write the pairs; ``unpaired`` renders different scenes
for each domain (trainA, trainB, testA, testB) and also writes the true counterparts of the
test images (``testA_to_B/NAME`` is the B version of ``testA/NAME``; ``testB_to_A`` the
reverse).

From real photographs (:func:`render_from_photos`, ``translate data synth TASK --from
PHOTOS``): ``day2night`` and ``real2anime`` also render targets from any folder of photos
(:mod:`translate.data.scenes.photo`). Training photos are scaled to several sizes and cut into
square tiles, so a model sees the same content at many pixel scales; held-out photos
(``PHOTOS/test``) are written whole.

Sample sheets (``docs/synth_<task>.png``) are regenerated with::

    python -m translate.data.synth --sheet            # both demo tasks into docs/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from translate.images import ImageError, list_images, load_rgb, save_image
from translate.data.scenes.day2night import day2night_pair
from translate.data.scenes.photo import PHOTO_TASKS
from translate.data.scenes.real2anime import real2anime_pair
from translate.data.scenes.shapes import shapes_mapping, shapes_pair

__all__ = ["LAYOUTS", "PHOTO_TASKS", "TASKS", "TASK_HELP", "render_dataset",
           "render_from_photos", "sample_sheet", "shapes_pair", "shapes_mapping"]

LAYOUTS = ("paired", "aligned", "unpaired")
MIN_SIZE = 8

TASKS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "shapes": shapes_pair,
    "day2night": day2night_pair,
    "real2anime": real2anime_pair,
}
TASK_HELP: dict[str, str] = {
    "shapes": "discs and boxes (A) under a fixed colour mapping (B)",
    "day2night": "street, park or waterfront scenes by day (A) and by night (B)",
    "real2anime": "head-and-shoulders portraits, photo-like (A) and anime-like (B)",
}
# the sheets in docs/: task -> seed
SHEET_SEEDS: dict[str, int] = {"day2night": 0, "real2anime": 2}


def render_dataset(root: str | Path, task: str = "shapes", size: int = 64, train: int = 64,
                   test: int = 16, seed: int = 0, layout: str = "paired") -> Path:
    """Render ``train`` + ``test`` images per domain under ``root`` in ``layout``, each
    (size, size) RGB PNG. Deterministic for ``seed``: the same arguments write the same
    bytes. Raises ValueError for an unknown task or layout, a size below 8 or a negative
    count."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be a whole number of pixels, at least {MIN_SIZE}; got {size}")
    if train < 0 or test < 0:
        raise ValueError(f"image counts must be >= 0; got train={train}, test={test}")
    root, render = Path(root), TASKS[task]
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            name = f"{i:05d}.png"
            a, b = render(rng, size)
            if layout == "paired":
                save_image(a, root / split / "A" / name)
                save_image(b, root / split / "B" / name)
            elif layout == "aligned":
                save_image(np.concatenate([a, b], axis=1), root / split / name)
            else:  # a different scene for domain B
                a2, b2 = render(rng, size)
                save_image(a, root / f"{split}A" / name)
                save_image(b2, root / f"{split}B" / name)
                if split == "test":
                    save_image(b, root / "testA_to_B" / name)
                    save_image(a2, root / "testB_to_A" / name)
    return root


PHOTO_SCALES = (384, 768, 1536, 3072)   # long sides the training photos are scaled to


def _scaled(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """``rgb`` resized (area averaging) so that its longer side is ``long_side``."""
    h, w = rgb.shape[:2]
    factor = long_side / max(h, w)
    if factor >= 1.0:
        return rgb
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def photo_splits(photos: str | Path) -> dict[str, list[Path]]:
    """The photos of a folder by split: ``PHOTOS/train`` and ``PHOTOS/test`` when it has
    them (anything else under it is ignored), else every image under it as ``train``."""
    photos = Path(photos)
    if not photos.is_dir():
        raise ValueError(f"{photos} is not a folder of photos")
    splits = {s: list_images(photos / s, recursive=True) for s in ("train", "test")
              if (photos / s).is_dir()}
    if not splits:
        splits = {"train": list_images(photos, recursive=True)}
    if not splits.get("train"):
        raise ValueError(f"{photos} holds no training photos (put them in {photos}/train, or "
                         "anywhere under the folder when it has no train/ and test/)")
    return splits


def _tiles(a: np.ndarray, b: np.ndarray, tile: int, count: int, rng: np.random.Generator):
    h, w = a.shape[:2]
    for _ in range(count if min(h, w) >= tile else 0):
        y, x = int(rng.integers(0, h - tile + 1)), int(rng.integers(0, w - tile + 1))
        yield a[y:y + tile, x:x + tile], b[y:y + tile, x:x + tile]


def render_from_photos(root: str | Path, task: str, photos: str | Path, tile: int = 288,
                       tiles: int = 6, scales: tuple[int, ...] = PHOTO_SCALES,
                       test_size: int = 768, seed: int = 0, log=print) -> dict[str, int]:
    """Paired data (``root/{train,test}/{A,B}``) from real photos: A the photo, B its
    counterpart rendered by ``PHOTO_TASKS[task]``.

    Each training photo is scaled to every long side in ``scales`` (one at most at or
    above its own size: the photo as it is), its target rendered at that size, and
    ``tiles`` random ``tile`` x ``tile`` crops of both are written. Test photos are scaled to
    a long side of ``test_size`` (never up) and written whole. Unreadable photos are
    reported through ``log`` and skipped. Returns the pairs written per split.
    """
    if task not in PHOTO_TASKS:
        raise ValueError(f"task '{task}' has no renderer for photos; choose one of "
                         f"{', '.join(PHOTO_TASKS)}")
    if tile < MIN_SIZE or tiles < 1 or test_size < MIN_SIZE or not scales:
        raise ValueError(f"need --size >= {MIN_SIZE}, at least one tile and one scale")
    root, render = Path(root), PHOTO_TASKS[task]
    rng = np.random.default_rng(seed)
    written = {}
    for split, paths in photo_splits(photos).items():
        written[split] = 0
        for index, path in enumerate(paths):
            try:
                rgb = load_rgb(path)
            except ImageError as err:
                log(f"skipped: {err}")
                continue
            stem = f"{index:04d}-{path.stem}"
            if split == "test":
                a = _scaled(rgb, test_size)
                save_image(a, root / split / "A" / f"{stem}.png")
                save_image(render(a), root / split / "B" / f"{stem}.png")
                written[split] += 1
                continue
            before = written[split]
            sizes = sorted({min(s, max(rgb.shape[:2])) for s in scales})
            for side in sizes:
                a = _scaled(rgb, side)
                if min(a.shape[:2]) < tile:
                    continue  # no tile fits at this scale
                pairs = _tiles(a, render(a), tile, tiles, rng)
                for k, (ta, tb) in enumerate(pairs):
                    name = f"{stem}-{side}-{k:02d}.png"
                    save_image(ta, root / split / "A" / name)
                    save_image(tb, root / split / "B" / name)
                    written[split] += 1
            if written[split] == before:
                h, w = rgb.shape[:2]
                log(f"skipped: {path}: {w}x{h}, and at the scales asked for (--scales "
                    f"{' '.join(map(str, scales))}) its shorter side is below the tile size "
                    f"(--size {tile})")
    return written


def sample_sheet(task: str, path: str | Path, pairs: int = 6, size: int = 128,
                 seed: int = 0, gap: int = 4) -> Path:
    """Write a sheet of ``pairs`` rendered pairs to ``path``: domain A in the top row, the
    true B counterparts under them, ``gap`` white pixels between images."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if pairs < 1 or size < MIN_SIZE:
        raise ValueError(f"a sheet needs at least 1 pair of at least {MIN_SIZE} px; "
                         f"got {pairs} pairs of {size} px")
    rng = np.random.default_rng(seed)
    rendered = [TASKS[task](rng, size) for _ in range(pairs)]
    sheet = np.full((2 * size + gap, pairs * size + (pairs - 1) * gap, 3), 255, np.uint8)
    for i, (a, b) in enumerate(rendered):
        x = i * (size + gap)
        sheet[:size, x:x + size] = a
        sheet[size + gap:, x:x + size] = b
    return save_image(sheet, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translate.data.synth",
                                     description="Write sample sheets of the procedural tasks.")
    parser.add_argument("--sheet", nargs="*", metavar="TASK", required=True,
                        help=f"tasks to draw (default: {' '.join(SHEET_SEEDS)})")
    parser.add_argument("--out", default="docs", help="folder for synth_<task>.png (docs)")
    parser.add_argument("--pairs", type=int, default=6, help="pairs per sheet (6)")
    parser.add_argument("--size", type=int, default=128, help="pixels per image (128)")
    parser.add_argument("--seed", type=int, help="(default: the seed of the docs/ sheets)")
    args = parser.parse_args(argv)
    tasks = args.sheet or list(SHEET_SEEDS)
    for task in tasks:
        if task not in TASKS:
            parser.error(f"unknown task '{task}'; choose from {', '.join(TASKS)}")
    if args.pairs < 1 or args.size < MIN_SIZE:
        parser.error(f"--pairs must be >= 1 and --size >= {MIN_SIZE}")
    for task in tasks:
        seed = args.seed if args.seed is not None else SHEET_SEEDS.get(task, 0)
        path = sample_sheet(task, Path(args.out) / f"synth_{task}.png", args.pairs, args.size,
                            seed)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
