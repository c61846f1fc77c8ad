"""The line-continuity and sharpness figures (translate/infer/lines.py): a line drawn whole
scores 1, the same line as a row of dots or missing scores near 0, and blur lowers the
sharpness ratio."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import ROOT
from translate.data.scenes.photo import sketch_from_photo
from translate.images import load_rgb
from translate.infer.lines import line_continuity, line_mask, sharpness

PHOTOS = ROOT / "apps" / "photos"


def drawing() -> np.ndarray:
    """Thin dark lines on white: a circle, a slanted line, a curve."""
    img = np.full((160, 160, 3), 255, np.uint8)
    cv2.circle(img, (80, 80), 50, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.line(img, (10, 150), (150, 130), (20, 20, 20), 1, cv2.LINE_AA)
    cv2.ellipse(img, (80, 60), (30, 12), 15, 0, 200, (40, 40, 40), 2, cv2.LINE_AA)
    return img


def dotted(img: np.ndarray, period: int = 5) -> np.ndarray:
    """The lines of ``img`` kept only in every other ``period`` x ``period`` cell: dots a
    few pixels apart where the line was."""
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    keep = ((yy // period) % 2 == 0) & ((xx // period) % 2 == 0)
    out = np.full_like(img, 255)
    mask = line_mask(img) & keep
    out[mask] = img[mask]
    return out


def test_a_line_drawn_whole_scores_one_and_dots_score_near_zero():
    lines = drawing()
    assert line_continuity(lines, lines) == 1.0
    assert line_continuity(np.roll(lines, 1, axis=0), lines) > 0.9  # one pixel off
    assert line_continuity(dotted(lines), lines) < 0.1
    assert line_continuity(np.full_like(lines, 255), lines) == 0.0
    assert line_continuity(lines, np.full_like(lines, 200)) is None  # no lines to draw


def test_sharpness_is_one_for_the_target_and_lower_when_blurred():
    photo = load_rgb(PHOTOS / "coffee.jpg")
    assert sharpness(photo, photo) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(photo, (0, 0), 2.0)
    assert sharpness(blurred, photo) < 0.5
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 12, photo.shape), 0, 255)
    assert sharpness(noisy.astype(np.uint8), photo) > 1.1
    assert sharpness(photo, np.full_like(photo, 90)) is None


def test_a_sketch_of_a_photo_is_continuous_lines():
    """The sketch renderer draws lines the figure recognises as connected segments."""
    sketch = sketch_from_photo(load_rgb(PHOTOS / "astronaut.jpg"))
    mask = line_mask(sketch)
    assert 0.02 < mask.mean() < 0.3
    assert line_continuity(sketch, sketch) > 0.95  # all but its shortest strokes
    assert line_continuity(dotted(sketch), sketch) < 0.3
