"""Face mode: translate the largest face of a photo, as face models expect it.

Published face models (AnimeGANv2 ``face_paint_512``) were trained on centred face crops at
512 x 512 and do badly on a whole frame. Face mode finds faces with OpenCV's frontal-face
Haar cascade, which the ``opencv-python-headless`` 4.x wheels bundle (nothing is
downloaded), takes a square around the largest face with room for hair and chin, resizes it
to the model's size, translates it, and then either returns that crop (``crop``) or resizes
it back and blends it into the whole photo with a soft edge (``paste``).

Detection runs on a copy scaled to at most :data:`DETECT_SIDE` pixels (the cascade is
slow on large images and finds the same faces), histogram-equalised gray.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from translate.errors import UserError
from translate.images import to_channels

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 1024
FACE_SIZE = 512       # the crop size face models are trained at (AnimeGANv2 face_paint_512)
MODES = ("crop", "paste")


class FaceError(UserError):
    """Face mode cannot run here (no face detector installed)."""


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels: columns x0..x1, rows y0..y1 (end exclusive)."""
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 to 1)."""
        w = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        h = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        both = w * h
        return both / (self.w * self.h + other.w * other.h - both)


@dataclass
class FaceResult:
    """What face mode did (``mode``): the output image, the faces found (largest first),
    the square that was translated and that square of the photo as the model saw it
    (size x size)."""
    image: np.ndarray
    faces: list[Box]
    crop: Box
    square: np.ndarray
    mode: str = "crop"

    def alpha(self, plane: np.ndarray | None) -> np.ndarray | None:
        """The photo's alpha plane (uint8 (H, W)) for ``image``: the face square's, at
        the output's size, for ``crop``; the whole plane for ``paste``."""
        if plane is None or self.mode == "paste":
            return plane
        b = self.crop
        return cv2.resize(np.ascontiguousarray(plane[b.y0:b.y1, b.x0:b.x1]),
                          self.image.shape[1::-1], interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=1)
def _detector() -> cv2.CascadeClassifier:
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / CASCADE
    detector = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    if detector is None or detector.empty():
        raise FaceError(f"face mode needs OpenCV's bundled face detector ({CASCADE}), which "
                        f"this OpenCV {cv2.__version__} lacks; install the 4.x wheels: pip "
                        "install 'opencv-python-headless>=4.9,<5'")
    return detector


def detect_faces(rgb: np.ndarray) -> list[Box]:
    """Frontal faces in uint8 RGB (H, W, 3) (or gray), largest first; [] when none."""
    gray = to_channels(rgb, 1)[..., 0] if rgb.ndim == 3 else rgb
    h, w = gray.shape
    scale = min(1.0, DETECT_SIDE / max(h, w))
    if scale < 1:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    smallest = max(20, int(0.05 * min(gray.shape)))
    found = _detector().detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1,
                                         minNeighbors=5, minSize=(smallest, smallest))
    boxes = [Box(round(x / scale), round(y / scale), round((x + fw) / scale),
                 round((y + fh) / scale)) for x, y, fw, fh in np.asarray(found).reshape(-1, 4)]
    return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


def crop_box(face: Box, h: int, w: int, context: float = 2.2) -> Box:
    """The square translated for ``face``: ``context`` times the face box's side, centred
    a little above the face's centre (hair is above, the chin below the box), kept inside
    the h x w image (shifted, and smaller only where the image is)."""
    side = min(h, w, round(context * max(face.w, face.h)))
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2 - 0.04 * side
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    return Box(x0, y0, x0 + side, y0 + side)


def feather(side_h: int, side_w: int, edge: float = 0.08) -> np.ndarray:
    """float (h, w, 1) blending weight: 1 inside, falling smoothly to 0 over the outer
    ``edge`` of the square."""
    def ramp(n: int) -> np.ndarray:
        t = (np.arange(n) + 0.5) / n
        d = np.minimum(t, 1 - t) / edge
        return np.clip(d, 0, 1) ** 2 * (3 - 2 * np.clip(d, 0, 1))
    return (ramp(side_h)[:, None] * ramp(side_w)[None, :])[..., None].astype(np.float32)


def translate_face(engine, rgb: np.ndarray, mode: str = "crop", size: int = FACE_SIZE,
                   progress=None) -> FaceResult | None:
    """Face mode on uint8 RGB (H, W, 3); None when no face is found. ``crop``: the
    translated square at ``size`` x ``size``; ``paste``: the photo at its own size with
    the translated square blended in."""
    if mode not in MODES:
        raise ValueError(f"face mode must be one of {', '.join(MODES)}")
    faces = detect_faces(rgb)
    if not faces:
        return None
    box = crop_box(faces[0], *rgb.shape[:2])
    square = rgb[box.y0:box.y1, box.x0:box.x1]
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA
                         if box.w > size else cv2.INTER_CUBIC)
    out = to_channels(engine.translate_array(resized, progress=progress), 3)
    if mode == "crop":
        return FaceResult(out, faces, box, resized, mode)
    back = cv2.resize(out, (box.w, box.h), interpolation=cv2.INTER_AREA
                      if size > box.w else cv2.INTER_CUBIC).astype(np.float32)
    weight = feather(box.h, box.w)
    whole = rgb[..., :3].copy() if rgb.ndim == 3 else to_channels(rgb, 3)
    region = whole[box.y0:box.y1, box.x0:box.x1].astype(np.float32)
    blended = weight * back + (1 - weight) * region
    whole[box.y0:box.y1, box.x0:box.x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return FaceResult(whole, faces, box, resized, mode)
