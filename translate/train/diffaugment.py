"""Differentiable augmentation of the discriminator's inputs (``loss.diffaugment``), after
Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training".

With few training images a discriminator memorises them and its feedback to the generator
degrades. Augmenting *every* image the discriminator sees, real and generated alike, in its
own update and in the generator's, with operations that gradients pass through, lets it
learn from many variants without the generator learning to produce the augmentations.

A policy is a comma-separated list of operations, applied in its order:

==============  ===========================================================================
``color``       brightness + U(-0.5, 0.5); saturation * U(0, 2) around each pixel's channel
                mean; contrast * U(0.5, 1.5) around the image mean
``translation`` shift by up to 1/8 of the height and width, in whole pixels; uncovered
                pixels are 0
``cutout``      a random rectangle of half the height and width set to 0 (it may reach past
                the border)
==============  ===========================================================================

Every image of a call gets the same transformation (drawn once per batch row), so the
condition and the output of a conditional pair, ``diff_augment(policy, x, y)``, stay aligned.
Random numbers come from torch's generator of the images' device, which checkpoints save.
"""

from __future__ import annotations

from typing import Callable

import torch

Images = tuple[torch.Tensor, ...]


def _rand(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=like.device, dtype=torch.float32)


def color(images: Images) -> Images:
    n = images[0].shape[0]
    brightness, saturation, contrast = (_rand(n, images[0]) - 0.5, _rand(n, images[0]) * 2,
                                        _rand(n, images[0]) + 0.5)
    out = []
    for x in images:
        x = x + brightness
        pixel_mean = x.mean(1, keepdim=True)
        x = (x - pixel_mean) * saturation + pixel_mean
        mean = x.mean((1, 2, 3), keepdim=True)
        out.append((x - mean) * contrast + mean)
    return tuple(out)


def _grid(images: Images) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices (1, H, 1) and (1, 1, W) of the images' size."""
    h, w = images[0].shape[-2:]
    device = images[0].device
    return (torch.arange(h, device=device).view(1, h, 1),
            torch.arange(w, device=device).view(1, 1, w))


def translation(images: Images, ratio: float = 0.125) -> Images:
    n, _, h, w = images[0].shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    device = images[0].device
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=device)
    rows, cols = _grid(images)
    src_r, src_c = rows - dy, cols - dx  # output pixel (r, c) shows input (r - dy, c - dx)
    inside = ((src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < w)).unsqueeze(1)
    src_r, src_c = src_r.clamp(0, h - 1), src_c.clamp(0, w - 1)
    batch = torch.arange(n, device=device).view(n, 1, 1)
    out = []
    for x in images:
        moved = x.permute(0, 2, 3, 1)[batch, src_r, src_c].permute(0, 3, 1, 2)
        out.append(moved * inside.to(x.dtype))
    return tuple(out)


def cutout(images: Images, ratio: float = 0.5) -> Images:
    n, _, h, w = images[0].shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    device = images[0].device
    top = torch.randint(-(ch // 2), h - ch // 2 + 1, (n, 1, 1), device=device)
    left = torch.randint(-(cw // 2), w - cw // 2 + 1, (n, 1, 1), device=device)
    rows, cols = _grid(images)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    keep = (~hole).unsqueeze(1)
    return tuple(x * keep.to(x.dtype) for x in images)


OPERATIONS: dict[str, Callable[[Images], Images]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); "" -> (). Unknown names raise
    ValueError listing the valid ones."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; choose "
                         f"from {', '.join(OPERATIONS)} (comma-separated)")
    return names


def diff_augment(policy: tuple[str, ...], *images: torch.Tensor) -> Images:
    """Apply ``policy`` to ``images`` (each (N, C_i, H, W), same N, H, W), the same random
    transformation for all of them; returns them in order. An empty policy returns the
    inputs untouched and draws no random numbers."""
    if not policy:
        return images
    shape = (images[0].shape[0], *images[0].shape[-2:])
    if any((x.shape[0], *x.shape[-2:]) != shape for x in images):
        raise ValueError("diff_augment: images of one call must share batch size and size")
    for name in policy:
        images = OPERATIONS[name](images)
    return images
