"""Procedural datasets: every image is rendered together with its true counterpart, so
models trained on them can be scored against the right answer.

``shapes``: discs and boxes on a shaded background (A) and the same picture under a fixed
colour mapping (B): red inverted, green and blue swapped. A's colours are skewed (warm
reds, muted blues), so the two domains differ in distribution and the mapping can be found
from unpaired data too.

Layouts: ``paired`` and ``aligned`` write the pairs; ``unpaired`` renders different scenes
for each domain (trainA, trainB, testA, testB) and also writes the true counterparts of the
test images (``testA_to_B/NAME`` is the B version of ``testA/NAME``; ``testB_to_A`` the
reverse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .images import save_image

LAYOUTS = ("paired", "aligned", "unpaired")


def _colour(rng: np.random.Generator) -> np.ndarray:
    return 255 * np.array([rng.beta(5, 1.5), rng.beta(2, 3), rng.beta(1.2, 5)])


def shapes_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (A, B) pair, uint8 (size, size, 3) each."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    c0, c1 = _colour(rng), _colour(rng)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) % 1.0
    img = c0 + (c1 - c0) * t[..., None]
    for _ in range(rng.integers(2, 6)):
        colour = _colour(rng)
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35)
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            mask = (abs(xx - cx) < r) & (abs(yy - cy) < r * rng.uniform(0.4, 1.0))
        img[mask] = colour
    a = img.clip(0, 255).astype(np.uint8)
    return a, shapes_mapping(a)


def shapes_mapping(a: np.ndarray) -> np.ndarray:
    """The true A -> B mapping of ``shapes``: (255 - R, B, G)."""
    return np.stack([255 - a[..., 0], a[..., 2], a[..., 1]], axis=-1)


TASKS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "shapes": shapes_pair,
}


def render_dataset(root: str | Path, task: str = "shapes", size: int = 64, train: int = 64,
                   test: int = 16, seed: int = 0, layout: str = "paired") -> Path:
    """Render ``train`` + ``test`` images per domain under ``root`` in ``layout``.
    Deterministic for ``seed``."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
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
