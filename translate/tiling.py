"""Translate large images in overlapping tiles, in memory bounded by the tile size.

The image is cut into ``tile`` x ``tile`` tiles (a multiple of the network's stride) that
overlap by ``overlap`` pixels. Each translated tile is weighted by a window that ramps
linearly from 0 to 1 across the parts it shares with its neighbours and is 1 elsewhere
(also at the image border); the weighted tiles are summed and divided by the summed weights,
so neighbouring tiles fade into each other without seams.

Memory: tiles are cut from the uint8 image and converted one batch at a time, and the
weighted sums are kept only for one row of tiles (``tile`` rows x image width); finished
rows go straight into the uint8 output. Beyond the input and output images themselves,
memory grows with the tile size and the image width, not the image area.

Normalisation: layers that normalise by per-image statistics (instance norm, batch norm in
'image' mode) must not compute them per tile, or tiles would differ in tone. The engine's
``shared_statistics(image)`` records them once over the whole image (downscaled so its
longer side is at most ``stats_size``) and every tile is normalised with those numbers. For
an image no larger than ``stats_size`` the statistics are exactly those of an untiled run.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .images import to_tensor, to_uint8


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least
    ``overlap`` shared pixels between neighbours; the last tile ends at ``length``."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def ramp(size: int, before: int, after: int) -> np.ndarray:
    """1-D blending weights of a tile of ``size`` sharing ``before`` pixels with the previous
    tile and ``after`` with the next: linear 0 -> 1 -> 0 ramps there, 1 elsewhere."""
    w = np.ones(size, np.float32)
    if before > 0:
        w[:before] = (np.arange(before, dtype=np.float32) + 0.5) / before
    if after > 0:
        w[size - after:] = np.minimum(w[size - after:],
                                      (np.arange(after, 0, -1, dtype=np.float32) - 0.5) / after)
    return w


def _weights(starts: list[int], i: int, size: int) -> np.ndarray:
    before = starts[i - 1] + size - starts[i] if i > 0 else 0
    after = starts[i] + size - starts[i + 1] if i + 1 < len(starts) else 0
    return ramp(size, before, after)


def translate_tiled(engine, rgb: np.ndarray, tile: int, overlap: int, batch_size: int = 4,
                    stats_size: int = 1024) -> np.ndarray:
    """Translate uint8 (H, W, C) with ``engine`` tile by tile; returns uint8 (H, W, C_out).

    ``engine(x)`` maps (N, C, h, w) in [-1, 1] to (N, C_out, h, w); tiles smaller than the
    tile size (images smaller than a tile) are padded by the engine itself.
    """
    h, w = rgb.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    wx = [_weights(xs, j, tw) for j in range(len(xs))]
    out: np.ndarray | None = None
    acc = wsum = None
    stats = getattr(engine, "shared_statistics", None)
    with stats(rgb, stats_size) if stats else contextlib.nullcontext():
        for r, y in enumerate(ys):
            wy = _weights(ys, r, th)
            crops = [rgb[y:y + th, x:x + tw] for x in xs]
            results = []
            for k in range(0, len(crops), batch_size):
                x_in = torch.stack([to_tensor(c) for c in crops[k:k + batch_size]])
                results += list(engine(x_in))
            if out is None:
                c_out = results[0].shape[0]
                out = np.empty((h, w, c_out), np.uint8)
                acc = np.zeros((th, w, c_out), np.float32)
                wsum = np.zeros((th, w, 1), np.float32)
            for j, (x, t) in enumerate(zip(xs, results)):
                weight = (wy[:, None] * wx[j][None, :])[..., None]
                acc[:, x:x + tw] += t.float().permute(1, 2, 0).cpu().numpy() * weight
                wsum[:, x:x + tw] += weight
            done = ys[r + 1] - y if r + 1 < len(ys) else th  # rows no later tile touches
            out[y:y + done] = _finish(acc[:done] / wsum[:done])
            keep = th - done
            acc[:keep], wsum[:keep] = acc[done:].copy(), wsum[done:].copy()
            acc[keep:], wsum[keep:] = 0, 0
    return out


def _finish(values: np.ndarray) -> np.ndarray:
    """float (h, w, C) in [-1, 1] -> uint8, exactly as :func:`images.to_uint8` rounds."""
    return to_uint8(torch.from_numpy(values).permute(2, 0, 1))
