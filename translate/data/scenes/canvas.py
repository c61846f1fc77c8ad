"""Drawing helpers shared by the procedural scenes.

Scenes are described in resolution-free units (x and y as fractions of the image side, y
pointing down), drawn on float32 canvases of ``side = size * supersample(size)`` pixels with
values in [0, 1], and reduced to ``size`` with area averaging, which anti-aliases every edge.
"""

from __future__ import annotations

import cv2
import numpy as np

Colour = tuple[float, float, float]
SHIFT = 4  # sub-pixel bits for cv2 drawing: coordinates are passed as fixed point x * 16
ONE = 1 << SHIFT


def supersample(size: int) -> int:
    """Canvas pixels per output pixel: at least 2, and a canvas of at least 192 px."""
    return max(2, -(-192 // size))


def reduce(canvas: np.ndarray, size: int) -> np.ndarray:
    """Area-average a channel-first float (3, side, side) canvas down to (size, size, 3)."""
    return np.dstack([cv2.resize(np.ascontiguousarray(plane), (size, size),
                                 interpolation=cv2.INTER_AREA) for plane in canvas])


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 [0, 255], rounded."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def fixed(points: np.ndarray, side: int) -> np.ndarray:
    """(N, 2) fractions -> int32 fixed-point pixel coordinates for cv2 drawing with SHIFT."""
    return np.round(np.asarray(points, dtype=np.float64) * side * ONE).astype(np.int32)


def gauss(side: int, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """Separable Gaussian bump (side, side) float32, peak 1 at (cx, cy); all in fractions."""
    c = (np.arange(side, dtype=np.float32) + 0.5) / side
    gx = np.exp(-0.5 * ((c - cx) / sx) ** 2)
    gy = np.exp(-0.5 * ((c - cy) / sy) ** 2)
    return np.outer(gy, gx).astype(np.float32)


def blur(img: np.ndarray, sigma_px: float, sigma_y_px: float | None = None) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, C) image with sigmas in pixels (a no-op below a
    tenth of a pixel). Wide isotropic blurs run on a reduced copy: the same look, far less
    work."""
    sy = sigma_px if sigma_y_px is None else sigma_y_px
    if max(sigma_px, sy) < 0.1:
        return img
    factor = int(min(sigma_px, sy) / 2.5)
    if factor >= 2:
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(w // factor, 1), max(h // factor, 1)),
                           interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma_px / factor, sigmaY=sy / factor,
                                 borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=max(sigma_px, 0.01), sigmaY=max(sy, 0.01),
                            borderType=cv2.BORDER_REFLECT)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def jitter(rng: np.random.Generator, colour: Colour, amount: float) -> Colour:
    """A colour with its brightness scaled by up to 1 +- ``amount`` and each channel by up to
    1 +- ``amount`` / 2, clipped to [0, 1]."""
    k = 1.0 + rng.uniform(-amount, amount, 4) * (1.0, 0.5, 0.5, 0.5)
    return tuple(min(max(float(c * k[0] * kc), 0.0), 1.0) for c, kc in zip(colour, k[1:]))


def mix(c0, c1, t: float) -> Colour:
    return tuple(float(a + (b - a) * t) for a, b in zip(c0, c1))
