"""``shapes``: discs and boxes on a shaded background (A) and the same picture under a fixed
colour mapping (B): red inverted, green and blue swapped. A's colours are skewed (warm reds,
muted blues), so the two domains differ in distribution and the mapping can be found from
unpaired data too."""

from __future__ import annotations

import numpy as np


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
