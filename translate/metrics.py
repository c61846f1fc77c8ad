"""Image quality against known targets."""

from __future__ import annotations

import numpy as np


def psnr(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images of the same shape:
    10 log10(peak^2 / MSE); infinite for identical images."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))
