"""Face mode: translate the largest face of a photo, as face models expect it.

Published face models (AnimeGANv2 ``face_paint_512``) were trained on centred face crops at
512 x 512 and do badly on a whole frame. Face mode finds faces with OpenCV's frontal-face
Haar cascade, which the ``opencv-python-headless`` 4.x wheels bundle (nothing is
downloaded), takes a square around the largest face with room for hair and chin, resizes it
to the model's size, translates it, and then either returns that crop (``crop``) or resizes
it back and blends it into the whole photo with a soft edge (``paste``).

Of several faces, the one a person means is taken: large, sharp and central
(:func:`rank_faces`: a blurred face near the lens or a small one at the edge of a group
loses to the face in focus in the middle). Where the frontal cascade finds no face, the
profile cascade is tried, both ways round (it knows faces turned one way), with the skin
check in colour pictures. ``paste`` blends the face square back only when its
translation agrees with the whole picture's translation there (:data:`PASTE_MAX_LEVELS`);
otherwise the whole translation is kept and the result says so.

Detection runs on a copy scaled to at most :data:`DETECT_SIDE` pixels (the cascade is
slow on large images and finds the same faces), histogram-equalised gray. The frontal-face
cascade alone takes rock, leaves and window blinds for faces (7 of the 34 landscape photos
of ``translate data photos``), so a candidate counts as a face only when it is at least
:data:`MIN_FACE_SHARE` of the picture's shorter side, a second cascade (``alt2``, trained
apart) finds a face around it too, and, in colour pictures, at least :data:`MIN_SKIN` of its
centre is skin-coloured (measured: faces 0.89 to 0.96, false candidates at most 0.13).
Every result says what was done: :meth:`FaceResult.describe` and :data:`NO_FACE`.
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
CHECK_CASCADE = "haarcascade_frontalface_alt2.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"
FOCUS_SIDE = 96        # faces are compared for sharpness at this size
# the face square's translation may differ from the whole picture's translation there by
# this much (mean 8-bit levels of their blurred colours) and still be pasted
PASTE_MAX_LEVELS = 40.0
DETECT_SIDE = 1024
MIN_FACE_SHARE = 0.05  # of the shorter side (and at least 20 px of the detection copy)
MIN_SKIN = 0.40        # share of skin-coloured pixels in the centre of a face box
NO_FACE = "no face found: translated whole"
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
    pasted: bool = True  # paste: whether the square was blended in (see PASTE_MAX_LEVELS)

    def describe(self) -> str:
        """What was done, for people: where the face is, in the photo's pixels."""
        f = self.faces[0]
        more = (f" (of {len(self.faces)} faces, the largest, sharpest and most central)"
                if len(self.faces) > 1 else "")
        said = f"face found at {f.x0},{f.y0} ({f.w} x {f.h}){more}"
        if self.mode == "paste" and not self.pasted:
            said += ("; its translation came out unlike the rest of the picture, so the "
                     "picture was translated whole instead")
        return said

    def alpha(self, plane: np.ndarray | None) -> np.ndarray | None:
        """The photo's alpha plane (uint8 (H, W)) for ``image``: the face square's, at
        the output's size, for ``crop``; the whole plane for ``paste``."""
        if plane is None or self.mode == "paste":
            return plane
        b = self.crop
        return cv2.resize(np.ascontiguousarray(plane[b.y0:b.y1, b.x0:b.x1]),
                          self.image.shape[1::-1], interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=2)
def _detector(name: str = CASCADE) -> cv2.CascadeClassifier:
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / name
    detector = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    if detector is None or detector.empty():
        raise FaceError(f"face mode needs OpenCV's bundled face detector ({name}), which "
                        f"this OpenCV {cv2.__version__} lacks; install the 4.x wheels: pip "
                        "install 'opencv-python-headless>=4.9,<5'")
    return detector


def skin_share(rgb: np.ndarray, box: Box) -> float:
    """Share of skin-coloured pixels (CIELAB hue 10 to 75 degrees, chroma 6 to 55,
    lightness 12 to 95: light to very dark skin) in the centre of ``box`` (its middle 60 %
    each way)."""
    dx, dy = box.w // 5, box.h // 5
    centre = rgb[box.y0 + dy:box.y1 - dy, box.x0 + dx:box.x1 - dx, :3]
    if centre.size == 0:
        return 0.0
    lab = cv2.cvtColor(centre.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    hue, chroma = np.degrees(np.arctan2(b, a)), np.hypot(a, b)
    skin = ((hue > 10) & (hue < 75) & (chroma > 6) & (chroma < 55) & (lightness > 12)
            & (lightness < 95))
    return float(skin.mean())


def _confirmed(gray: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    """Whether the second cascade finds a face around the candidate (x, y, w, h)."""
    y0, x0 = max(0, y - h // 4), max(0, x - w // 4)
    around = gray[y0:y + h + h // 4, x0:x + w + w // 4]
    return len(_detector(CHECK_CASCADE).detectMultiScale(
        around, scaleFactor=1.1, minNeighbors=3, minSize=(w // 2, h // 2))) > 0


def detect_faces(rgb: np.ndarray) -> list[Box]:
    """Faces in uint8 RGB (H, W, 3) (or gray), the one a person means first
    (:func:`rank_faces`); [] when none. Frontal faces count where both frontal cascades
    agree and, in colour, the centre is skin-coloured; where there is none, faces in
    profile (either way round), in colour with a skin-coloured centre."""
    colour = rgb.ndim == 3 and not (np.array_equal(rgb[..., 0], rgb[..., 1])
                                    and np.array_equal(rgb[..., 1], rgb[..., 2]))
    gray = to_channels(rgb, 1)[..., 0] if rgb.ndim == 3 else rgb
    h, w = gray.shape
    scale = min(1.0, DETECT_SIDE / max(h, w))
    if scale < 1:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    smallest = max(20, int(MIN_FACE_SHARE * min(gray.shape)))

    def boxes(found) -> list[Box]:
        return [Box(round(x / scale), round(y / scale), round((x + fw) / scale),
                    round((y + fh) / scale)) for x, y, fw, fh in found]

    frontal = [(x, y, fw, fh) for x, y, fw, fh in _cascade(CASCADE, gray, smallest, 5)
               if _confirmed(gray, x, y, fw, fh)]
    faces = [b for b in boxes(frontal) if not colour or skin_share(rgb, b) >= MIN_SKIN]
    if not faces:
        faces = [b for b in boxes(_profiles(gray, smallest))
                 if not colour or skin_share(rgb, b) >= MIN_SKIN]
    return rank_faces(rgb, faces)


def _cascade(name: str, gray: np.ndarray, smallest: int, neighbours: int) -> list[tuple]:
    found = _detector(name).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=neighbours,
                                             minSize=(smallest, smallest))
    return [tuple(int(v) for v in row) for row in np.asarray(found).reshape(-1, 4)]


def _profiles(gray: np.ndarray, smallest: int) -> list[tuple]:
    """Faces in profile, facing either way (the cascade knows one way: the picture is also
    searched mirrored), as (x, y, w, h) in ``gray``; overlapping finds kept once."""
    width = gray.shape[1]
    found = _cascade(PROFILE_CASCADE, gray, smallest, 6)
    found += [(width - x - fw, y, fw, fh) for x, y, fw, fh in
              _cascade(PROFILE_CASCADE, np.ascontiguousarray(gray[:, ::-1]), smallest, 6)]
    kept: list[tuple] = []
    for f in sorted(found, key=lambda f: -f[2] * f[3]):
        box = Box(f[0], f[1], f[0] + f[2], f[1] + f[3])
        if all(box.iou(Box(k[0], k[1], k[0] + k[2], k[1] + k[3])) < 0.3 for k in kept):
            kept.append(f)
    return kept


def focus(rgb: np.ndarray, box: Box) -> float:
    """How sharp the face in ``box`` is: the variance of the Laplacian of its gray pixels
    at FOCUS_SIDE x FOCUS_SIDE (measured: faces in focus 250 to 2000, a blurred one 9)."""
    gray = to_channels(rgb, 1)[box.y0:box.y1, box.x0:box.x1, 0] if rgb.ndim == 3 else \
        rgb[box.y0:box.y1, box.x0:box.x1]
    if gray.size == 0:
        return 0.0
    small = cv2.resize(gray, (FOCUS_SIDE, FOCUS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(small.astype(np.float32), cv2.CV_32F).var())


def rank_faces(rgb: np.ndarray, faces: list[Box]) -> list[Box]:
    """``faces`` with the one a person means first: the score is the face's side over the
    largest one's, times the square root of its sharpness over the sharpest one's
    (:func:`focus`), times 1 at the centre of the picture falling to 0.5 at a corner."""
    if len(faces) < 2:
        return list(faces)
    h, w = rgb.shape[:2]
    sides = [max(b.w, b.h) for b in faces]
    sharpness = [focus(rgb, b) for b in faces]
    half_diagonal = np.hypot(w, h) / 2

    def score(i: int) -> float:
        b = faces[i]
        off = np.hypot((b.x0 + b.x1) / 2 - w / 2, (b.y0 + b.y1) / 2 - h / 2) / half_diagonal
        sharp = np.sqrt(sharpness[i] / max(max(sharpness), 1e-6))
        return sides[i] / max(sides) * sharp * (1 - 0.5 * min(off, 1.0))
    return [faces[i] for i in sorted(range(len(faces)), key=score, reverse=True)]


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
                   progress=None, scene=None) -> FaceResult | None:
    """Face mode on uint8 RGB (H, W, 3); None when no face is found. ``crop``: the
    translated square at ``size`` x ``size``; ``paste``: the whole photo translated by
    ``scene`` (default: ``engine`` too) with the face square blended in, so that head and
    body are in the same style."""
    if mode not in MODES:
        raise ValueError(f"face mode must be one of {', '.join(MODES)}")
    faces = detect_faces(rgb)
    if not faces:
        return None
    box = crop_box(faces[0], *rgb.shape[:2])
    square = rgb[box.y0:box.y1, box.x0:box.x1]
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA
                         if box.w > size else cv2.INTER_CUBIC)
    if mode == "crop":
        out = engine.translate_array(resized, progress=progress)
        return FaceResult(to_channels(out, 3), faces, box, resized, mode)
    try:
        out = to_channels(engine.translate_array(resized), 3)
    except RuntimeError:  # the model failed on the square: the whole picture will do
        out = None
    whole = to_channels((scene or engine).translate_array(rgb, progress=progress), 3).copy()
    region = whole[box.y0:box.y1, box.x0:box.x1].astype(np.float32)
    back = None if out is None else cv2.resize(
        out, (box.w, box.h), interpolation=cv2.INTER_AREA if size > box.w
        else cv2.INTER_CUBIC).astype(np.float32)
    if back is None or paste_difference(back, region) > PASTE_MAX_LEVELS:
        return FaceResult(whole, faces, box, resized, mode, pasted=False)
    weight = feather(box.h, box.w)
    blended = weight * back + (1 - weight) * region
    whole[box.y0:box.y1, box.x0:box.x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return FaceResult(whole, faces, box, resized, mode)


def paste_difference(square: np.ndarray, region: np.ndarray) -> float:
    """How unlike two translations of one square are: the mean absolute difference of
    their colours, blurred to about a sixteenth of the square so that the face model's own
    detail does not count, in 8-bit levels. A square that failed or came out garish (a
    red mask, a dark ring) differs by far more than PASTE_MAX_LEVELS."""
    sigma = max(1.0, square.shape[0] / 16)
    a = cv2.GaussianBlur(square.astype(np.float32), (0, 0), sigma)
    b = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigma)
    return float(np.abs(a - b).mean())
