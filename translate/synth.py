"""Procedural paired datasets: every image is rendered together with its true counterpart.

``shapes``: random discs and boxes on a shaded background (A) and the same picture under a
fixed colour mapping (B): red inverted, green and blue swapped. It is quick to learn and its
answer is known exactly, so tests and the quickstart can measure whether a model learned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import save_image

TASKS = ("shapes",)


def shapes_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (A, B) pair, uint8 (size, size, 3) each."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) % 1.0
    img = c0 + (c1 - c0) * t[..., None]
    for _ in range(rng.integers(2, 6)):
        colour = rng.uniform(0, 255, 3)
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


def write_paired(root: str | Path, task: str = "shapes", size: int = 64, train: int = 64,
                 test: int = 16, seed: int = 0, layout: str = "paired") -> Path:
    """Render ``train`` + ``test`` pairs under ``root`` in the ``paired`` or ``aligned``
    layout. Deterministic for ``seed``."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if layout not in ("paired", "aligned"):
        raise ValueError("layout must be paired or aligned")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            a, b = shapes_pair(rng, size)
            name = f"{i:05d}.png"
            if layout == "paired":
                save_image(a, root / split / "A" / name)
                save_image(b, root / split / "B" / name)
            else:
                save_image(np.concatenate([a, b], axis=1), root / split / name)
    return root
