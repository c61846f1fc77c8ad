"""Figures of a translation against its true counterpart beyond PSNR: is it as sharp as the
target, and are the target's thin dark lines drawn as lines?

- :func:`sharpness`: the output's gradient energy over the target's (mean squared Sobel
  gradient of the luminance). 1 when the output is as detailed as the target; well below 1
  when it is blurred (L1 alone averages what it is unsure of); above 1 for added noise or
  ringing.
- :func:`line_continuity`: the share of the target's line pixels that lie on (within one
  pixel of) a *connected segment* of the output's lines. Lines are thin dark structures:
  pixels at least :data:`LINE_CONTRAST` darker than the closing of their surroundings (a
  morphological black-hat of :data:`LINE_WIDTH` px). A segment is a connected group of
  line pixels spanning at least :data:`MIN_SEGMENT` px; a row of dots a few pixels apart
  draws no segment and covers nothing. 1: every line drawn whole; near 0: lines missing or
  dotted. Undefined (None) for a target with almost no lines.
"""

from __future__ import annotations

import cv2
import numpy as np

LINE_CONTRAST = 0.12   # of the luminance range: how much darker than around a line pixel is
LINE_WIDTH = 5         # px: the widest line (the black-hat's structuring element)
MIN_SEGMENT = 8        # px: the shortest span of output line pixels that counts as a line
MIN_LINES = 0.002      # share of the target's pixels that must be lines for the figure


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32) / 255
    if rgb.shape[2] == 1:
        return rgb[..., 0].astype(np.float32) / 255
    return cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


def line_mask(rgb: np.ndarray) -> np.ndarray:
    """bool (H, W): the thin dark lines of a uint8 image (see the module docstring)."""
    luma = _luma(rgb)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (LINE_WIDTH, LINE_WIDTH))
    return cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, kernel) > LINE_CONTRAST


def segments(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of ``mask`` in 8-connected groups spanning at least
    :data:`MIN_SEGMENT` px in width or height."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = span >= MIN_SEGMENT
    keep[0] = False  # the background
    return keep[labels]


def line_continuity(output: np.ndarray, target: np.ndarray) -> float | None:
    """Share in [0, 1] of the target's line pixels within one pixel of a segment of the
    output's lines; None when under :data:`MIN_LINES` of the target is lines."""
    wanted = line_mask(target)
    if wanted.mean() < MIN_LINES:
        return None
    drawn = segments(line_mask(output)).astype(np.uint8)
    near = cv2.dilate(drawn, np.ones((3, 3), np.uint8)) > 0
    return float((wanted & near).sum() / wanted.sum())


def _gradient_energy(rgb: np.ndarray) -> float:
    luma = _luma(rgb)
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def sharpness(output: np.ndarray, target: np.ndarray) -> float | None:
    """The output's mean squared luminance gradient over the target's; None for a target
    without any (a flat image)."""
    reference = _gradient_energy(target)
    return _gradient_energy(output) / reference if reference > 1e-8 else None
