"""Procedural datasets: every image is rendered together with its true counterpart, so
models trained on them can be scored against the right answer.

Tasks (``TASKS``; the scenes live in :mod:`translate.scenes`):

- ``shapes``: discs and boxes (A) under a fixed colour mapping (B).
- ``day2night``: a street, park or waterfront scene by day (A) and the same scene by night
  (B): dark sky with moon and stars, lit windows, glowing lamps and car lights.
- ``real2anime``: a head-and-shoulders portrait, photo-like (A: smooth shading, texture,
  soft light, sensor noise) and anime-like (B: flat cel shading, ink outlines, larger eyes).

Layouts: ``paired`` and ``aligned`` write the pairs; ``unpaired`` renders different scenes
for each domain (trainA, trainB, testA, testB) and also writes the true counterparts of the
test images (``testA_to_B/NAME`` is the B version of ``testA/NAME``; ``testB_to_A`` the
reverse).

Sample sheets (``docs/synth_<task>.png``) are regenerated with::

    python -m translate.synth --sheet            # both demo tasks into docs/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np

from .images import save_image
from .scenes.day2night import day2night_pair
from .scenes.real2anime import real2anime_pair
from .scenes.shapes import shapes_mapping, shapes_pair

__all__ = ["LAYOUTS", "TASKS", "TASK_HELP", "render_dataset", "sample_sheet", "shapes_pair",
           "shapes_mapping"]

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
    parser = argparse.ArgumentParser(prog="python -m translate.synth",
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
