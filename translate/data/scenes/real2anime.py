"""``real2anime``: a head-and-shoulders portrait rendered photo-like (domain A) and anime-like
(domain B).

:func:`describe` draws the random portrait once (background, skin tone, face shape, pose,
eyes, brows, mouth, hair style and colour, clothes, key light); :func:`render` paints both
styles from one label map, so every region lies in the same place in both:

- photo: smooth shading from a height field under a soft key light, soft cast shadows
  (fringe on the forehead, chin on the neck), skin, hair-strand and fabric texture,
  sheen, a background out of focus, a slight lens softness, vignette and sensor noise;
- anime: flat cel shading in two or three tones (the same light, thresholded), hard cast
  shadows, ink outlines (heavier around the figure), larger eyes with a two-tone iris and
  white highlights, a ring of light on saturated hair, flat blush, line nose and mouth,
  flat background.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from translate.data.scenes.canvas import (ONE, SHIFT, Colour, blur, fixed, jitter, mix, reduce,
                                          smoothstep, supersample, to_uint8)

# labels of the map both styles are painted from
(BG, CLOTH, INNER, NECK, EAR, SKIN, HAIR_BACK, HAIR, BROW, WHITE, IRIS, PUPIL, SHINE, LASH,
 LIPS, MOUTH, NOSE) = range(17)
N_LABELS = 17
SKIN_TONES: list[Colour] = [(0.99, 0.86, 0.76), (0.95, 0.77, 0.64), (0.87, 0.65, 0.50),
                            (0.74, 0.52, 0.38), (0.56, 0.37, 0.25), (0.40, 0.26, 0.18)]
HAIR_COLOURS: list[Colour] = [(0.07, 0.06, 0.06), (0.20, 0.13, 0.09), (0.38, 0.24, 0.14),
                              (0.52, 0.24, 0.12), (0.80, 0.64, 0.40), (0.62, 0.60, 0.58),
                              (0.12, 0.10, 0.09), (0.30, 0.19, 0.11)]
DYED: list[Colour] = [(0.75, 0.35, 0.55), (0.30, 0.45, 0.75), (0.55, 0.35, 0.70)]
EYE_COLOURS: list[Colour] = [(0.30, 0.18, 0.10), (0.18, 0.11, 0.07), (0.25, 0.45, 0.70),
                             (0.30, 0.50, 0.30), (0.45, 0.35, 0.18), (0.45, 0.52, 0.58)]
CLOTHES: list[Colour] = [(0.80, 0.15, 0.18), (0.15, 0.25, 0.55), (0.92, 0.92, 0.90),
                         (0.12, 0.12, 0.14), (0.35, 0.55, 0.40), (0.95, 0.75, 0.25),
                         (0.55, 0.35, 0.60), (0.45, 0.62, 0.80), (0.60, 0.45, 0.30),
                         (0.85, 0.55, 0.60)]
BACKDROPS = ("studio", "bokeh", "room", "outdoor")
HAIR_STYLES = ("short", "bob", "long", "ponytail", "bun", "crop")
FRINGES = ("straight", "side", "parted", "spiky")
NECKLINES = ("crew", "vneck", "collar", "jacket")


@dataclass
class Portrait:
    backdrop: str
    bg: tuple[Colour, Colour]           # two background colours
    spots: np.ndarray                   # (N, 6): x, y, radius, r, g, b of background shapes
    light: tuple[float, float]          # key light direction in the image plane (x, y)
    warmth: Colour                      # key light colour
    skin: Colour
    blush: float
    head: tuple[float, float, float, float]   # centre x, y, half width, half height
    tilt: float                         # radians, clockwise
    yaw: float                          # -1..1: features shift sideways
    jaw: float                          # superellipse exponent of the lower face (2 = oval)
    chin: float                         # 0 round .. 0.35 pointed
    neck: float                         # half width, in head half-widths
    body: tuple[float, float, float]    # centre x, shoulder line y, half width
    neckline: str
    clothes: tuple[Colour, Colour]      # outer, inner
    stripes: float                      # 0 or the stripe pitch of the outer garment
    hair_style: str
    fringe: str
    part: int                           # -1 / +1: side of the parting or sweep
    hair: Colour
    volume: float                       # hair puff beyond the skull
    length: float                       # how far long hair falls (in head heights)
    eyes: tuple[float, float, float, float]   # spacing (u), height (v), half width, half height
    eye_colour: Colour
    brow: tuple[float, float]           # thickness, arch
    mouth: tuple[float, float, float]   # width, smile, lip fullness
    lips: Colour
    nose: float
    ink: Colour
    seed: int


@functools.lru_cache(maxsize=None)
def _table(labels: tuple[int, ...]) -> np.ndarray:
    table = np.zeros(N_LABELS, bool)
    table[list(labels)] = True
    return table


def _is(lab: np.ndarray, *labels: int) -> np.ndarray:
    """Boolean mask of the pixels of ``lab`` that carry one of ``labels``."""
    return _table(labels)[lab]


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def describe(rng: np.random.Generator) -> Portrait:
    """Draw one random portrait (resolution-free)."""
    backdrop = _pick(rng, BACKDROPS)
    bg0 = jitter(rng, _pick(rng, [(0.55, 0.62, 0.70), (0.80, 0.74, 0.66), (0.35, 0.40, 0.45),
                                  (0.70, 0.78, 0.72), (0.82, 0.70, 0.72), (0.45, 0.50, 0.62),
                                  (0.90, 0.88, 0.84)]), 0.12)
    bg1 = jitter(rng, mix(bg0, _pick(rng, [(1, 1, 1), (0.1, 0.1, 0.12), (0.9, 0.7, 0.4),
                                           (0.4, 0.6, 0.9)]), rng.uniform(0.3, 0.6)), 0.1)
    n = int(rng.integers(6, 14))
    spots = np.concatenate([rng.uniform(0, 1, (n, 2)), rng.uniform(0.03, 0.1, (n, 1)),
                            np.array([mix(bg1, _pick(rng, [(1.0, 0.9, 0.6), (1, 1, 1),
                                                           (0.7, 0.85, 1.0)]), 0.6)
                                      for _ in range(n)])], axis=1)
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    skin = jitter(rng, mix(SKIN_TONES[i], SKIN_TONES[i + 1], t - i), 0.04)
    rx = rng.uniform(0.15, 0.2)
    head = (rng.uniform(0.4, 0.6), rng.uniform(0.36, 0.44), rx, rx * rng.uniform(1.18, 1.34))
    hair = jitter(rng, _pick(rng, DYED) if rng.random() < 0.1 else _pick(rng, HAIR_COLOURS), 0.1)
    side = 1.0 if rng.random() < 0.5 else -1.0
    shoulder_y = head[1] + head[3] * rng.uniform(1.45, 1.7)
    outer = jitter(rng, _pick(rng, CLOTHES), 0.1)
    return Portrait(
        backdrop=backdrop, bg=(bg0, bg1), spots=spots,
        light=(side * rng.uniform(0.35, 0.8), -rng.uniform(0.3, 0.7)),
        warmth=jitter(rng, _pick(rng, [(1.0, 0.95, 0.88), (1.0, 1.0, 1.0), (0.95, 0.97, 1.0)]),
                      0.04),
        skin=skin, blush=rng.uniform(0.0, 1.0), head=head, tilt=rng.uniform(-0.18, 0.18),
        yaw=rng.uniform(-0.35, 0.35), jaw=rng.uniform(2.0, 3.2), chin=rng.uniform(0.0, 0.35),
        neck=rng.uniform(0.45, 0.6),
        body=(head[0] + rng.uniform(-0.05, 0.05), shoulder_y, rng.uniform(0.36, 0.5)),
        neckline=_pick(rng, NECKLINES),
        clothes=(outer, jitter(rng, _pick(rng, CLOTHES), 0.1)),
        stripes=rng.uniform(0.025, 0.05) if rng.random() < 0.2 else 0.0,
        hair_style=_pick(rng, HAIR_STYLES), fringe=_pick(rng, FRINGES),
        part=1 if rng.random() < 0.5 else -1, hair=hair, volume=rng.uniform(0.06, 0.18),
        length=rng.uniform(1.6, 2.6),
        eyes=(rng.uniform(0.36, 0.44), rng.uniform(0.08, 0.2), rng.uniform(0.16, 0.2),
              rng.uniform(0.06, 0.085)),
        eye_colour=jitter(rng, _pick(rng, EYE_COLOURS), 0.1),
        brow=(rng.uniform(0.035, 0.07), rng.uniform(0.0, 0.06)),
        mouth=(rng.uniform(0.22, 0.32), rng.uniform(-0.02, 0.06), rng.uniform(0.035, 0.06)),
        lips=jitter(rng, mix(skin, (0.75, 0.3, 0.35), rng.uniform(0.35, 0.6)), 0.05),
        nose=rng.uniform(0.8, 1.2),
        ink=jitter(rng, _pick(rng, [(0.16, 0.09, 0.08), (0.1, 0.08, 0.12), (0.2, 0.12, 0.1)]),
                   0.1),
        seed=int(rng.integers(2**31)))


# ---------------------------------------------------------------------------------------
# geometry: a label map per style (only the eyes and mouth differ)


class Labels:
    """A square map (uint8 labels, or a float mask) drawn with cv2 in resolution-free
    coordinates; shapes fill with a label value."""

    def __init__(self, array: np.ndarray):
        self.side = array.shape[0]
        self.map = array

    def poly(self, pts: np.ndarray, label: int, inside: tuple[int, ...] = ()) -> None:
        """Fill a polygon ((N, 2) fractions); with ``inside``, only over those labels."""
        pts = np.asarray(pts, np.float64)
        if not inside:
            cv2.fillPoly(self.map, [fixed(pts, self.side)], label, cv2.LINE_8, SHIFT)
            return
        self._clipped(lambda m, off: cv2.fillPoly(m, [fixed(pts, self.side) - off], 1,
                                                  cv2.LINE_8, SHIFT),
                      pts.min(0), pts.max(0), label, inside)

    def ellipse(self, c, axes, angle: float, label: int, inside: tuple[int, ...] = ()) -> None:
        """Fill an ellipse: centre and half axes in fractions, ``angle`` in radians."""
        centre = fixed(c, self.side)
        ax = tuple(max(int(v), ONE // 2) for v in fixed(axes, self.side))
        deg = float(np.degrees(angle))
        if not inside:
            cv2.ellipse(self.map, tuple(int(v) for v in centre), ax, deg, 0, 360, label, -1,
                        cv2.LINE_8, SHIFT)
            return
        r = max(axes)
        self._clipped(lambda m, off: cv2.ellipse(m, tuple(int(v) for v in centre - off), ax, deg,
                                                 0, 360, 1, -1, cv2.LINE_8, SHIFT),
                      np.array(c) - r, np.array(c) + r, label, inside)

    def _clipped(self, draw, lo, hi, label, inside) -> None:
        c0, r0 = max(int(lo[0] * self.side) - 1, 0), max(int(lo[1] * self.side) - 1, 0)
        c1 = min(int(hi[0] * self.side) + 2, self.side)
        r1 = min(int(hi[1] * self.side) + 2, self.side)
        if c1 <= c0 or r1 <= r0:
            return
        m = np.zeros((r1 - r0, c1 - c0), np.uint8)
        draw(m, np.array([c0, r0]) * ONE)
        region = self.map[r0:r1, c0:c1]
        region[(m > 0) & _is(region, *inside)] = label


class Head:
    """Head space: (u, v) in head half-widths / half-heights from the head centre, rotated
    by the tilt; ``pt`` maps (N, 2) head points to image fractions."""

    def __init__(self, p: Portrait):
        self.cx, self.cy, self.rx, self.ry = p.head
        self.cos, self.sin = np.cos(p.tilt), np.sin(p.tilt)
        self.tilt = p.tilt

    def pt(self, uv) -> np.ndarray:
        uv = np.atleast_2d(np.asarray(uv, np.float64))
        x, y = uv[:, 0] * self.rx, uv[:, 1] * self.ry
        return np.stack([self.cx + x * self.cos - y * self.sin,
                         self.cy + x * self.sin + y * self.cos], axis=1)

    def ellipse(self, lab: Labels, u, v, a, b, label, inside=()) -> None:
        lab.ellipse(self.pt([u, v])[0], (a * self.rx, b * self.ry), self.tilt, label, inside)


def _arc(t0: float, t1: float, n: int = 24) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _face_outline(p: Portrait) -> np.ndarray:
    """The face contour in head space: an oval forehead over a squarer jaw and a chin."""
    top = _arc(np.pi, 2 * np.pi, 28)
    t = np.linspace(0, np.pi, 36)
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2 / p.jaw) * (1 - p.chin * s ** 4)
    return np.concatenate([top, np.stack([x, s], axis=1)])


def _fringe(p: Portrait, u: np.ndarray) -> np.ndarray:
    """The lower edge of the fringe (v for each u), in head space."""
    if p.fringe == "straight":
        v = -0.3 + 0.06 * np.abs(np.sin(u * 9.0))
    elif p.fringe == "side":
        v = -0.62 + 0.45 * (p.part * u + 1) / 2 + 0.05 * np.abs(np.sin(u * 7.0))
    elif p.fringe == "parted":
        v = -0.75 + 0.55 * np.abs(u - 0.25 * p.part) ** 0.8
    else:
        v = -0.35 + 0.16 * np.abs(np.sin(u * 6.5 + 0.5))
    return np.minimum(v, 0.2)


def _hair(p: Portrait, h: Head, lab: Labels, front: bool) -> None:
    vol = 1 + p.volume
    if not front:
        style = p.hair_style
        if style in ("bob", "long"):
            bottom = 0.95 if style == "bob" else p.length
            w = vol * 1.08 + (0.15 if style == "long" else 0)
            tips = np.stack([np.linspace(w, -w, 11),
                             bottom - np.where(np.arange(11) % 2, 0.1, 0.0)], axis=1)
            pts = np.concatenate([_arc(np.pi, 2 * np.pi) * [vol * 1.05, vol], tips])
            lab.poly(h.pt(pts), HAIR_BACK)
        if style == "ponytail":
            h.ellipse(lab, -p.part * 1.05, 0.35, 0.32, 0.75, HAIR_BACK)
        if style == "bun":
            h.ellipse(lab, 0.0, -1.12 * vol, 0.42, 0.32, HAIR_BACK)
        h.ellipse(lab, 0.0, -0.08, 1.04 * vol if style != "crop" else 1.05, 0.98 * vol
                  if style != "crop" else 1.0, HAIR_BACK)
        return
    # the cap over the skull, down to the fringe
    cap = _arc(np.pi, 2 * np.pi, 30) * [1.04 * vol, 0.98 * vol] + [0, -0.08]
    if p.hair_style == "crop":
        cap = _arc(np.pi, 2 * np.pi, 30) * [1.05, 1.0] + [0, -0.06]
    u = np.linspace(0.98, -0.98, 40)
    edge = np.stack([u, _fringe(p, u) - (0.12 if p.hair_style == "crop" else 0.0)], axis=1)
    lab.poly(h.pt(np.concatenate([cap, [[1.0, -0.2]], edge, [[-1.0, -0.2]]])), HAIR)
    if p.hair_style in ("bob", "long"):  # locks framing the face
        for s in (-1, 1):
            lock = [[s * 1.08 * vol, -0.5], [s * 0.8, -0.4], [s * 0.78, 0.3],
                    [s * 0.9, 0.85 if p.hair_style == "bob" else 1.3], [s * 1.12 * vol, 0.8]]
            lab.poly(h.pt(lock), HAIR)


def _eye_shape(ew: float, eh: float, anime: bool) -> np.ndarray:
    """Eye opening in head space around (0, 0): an almond (photo) or a tall rounded one."""
    t = np.linspace(0, np.pi, 20)
    if anime:
        upper = np.stack([-np.cos(t) * ew, -np.sin(t) ** 0.6 * eh * 1.0 - 0.15 * eh], axis=1)
        lower = np.stack([np.cos(t) * ew * 0.9, np.sin(t) ** 0.8 * eh * 0.9], axis=1)
    else:
        upper = np.stack([-np.cos(t) * ew, -np.sin(t) * eh], axis=1)
        lower = np.stack([np.cos(t) * ew, np.sin(t) * eh * 0.8], axis=1)
    return np.concatenate([upper, lower])


def _features(p: Portrait, h: Head, lab: Labels, anime: bool) -> None:
    spacing, ev, ew, eh = p.eyes
    shift = p.yaw * 0.18
    if anime:
        ew, eh = ew * 1.25, eh * 2.3
    face = (SKIN,)
    for s in (-1, 1):
        # the eye on the far side of a turned head looks narrower
        k = 1 - 0.35 * max(0.0, s * p.yaw)
        cx = s * spacing * (1 - 0.3 * abs(p.yaw)) + shift
        shape = _eye_shape(ew * k, eh, anime) * [s, 1] + [cx, ev]
        lab.poly(h.pt(shape), WHITE, face)
        ix = cx + shift * 0.3  # the irises look where the head turns
        if anime:
            h.ellipse(lab, ix, ev + 0.05 * eh, 0.62 * ew * k, 0.85 * eh, IRIS, (WHITE,))
            h.ellipse(lab, ix, ev + 0.15 * eh, 0.3 * ew * k, 0.42 * eh, PUPIL, (IRIS,))
            h.ellipse(lab, ix - 0.25 * ew * k, ev - 0.3 * eh, 0.2 * ew, 0.2 * ew * h.rx / h.ry
                      * 1.4, SHINE, (IRIS, PUPIL, WHITE))
            h.ellipse(lab, ix + 0.28 * ew * k, ev + 0.35 * eh, 0.09 * ew, 0.09 * ew * 1.4, SHINE,
                      (IRIS, PUPIL))
            t = np.linspace(0, np.pi, 16)
            lid = np.stack([-np.cos(t) * ew * k * 1.08, -np.sin(t) ** 0.6 * eh - 0.15 * eh],
                           axis=1)
            thick = np.stack([lid[::-1, 0] * 1.02, lid[::-1, 1] - 0.22 * eh], axis=1)
            thick[0, 0] += 0.15 * ew * k  # a wing at the outer corner
            lash = np.concatenate([lid, thick]) * [s, 1] + [cx, ev]
            lab.poly(h.pt(lash), LASH, face + (WHITE, IRIS, PUPIL, SHINE))
        else:
            h.ellipse(lab, ix, ev - 0.05 * eh, 0.5 * ew * k, 0.5 * ew * h.rx / h.ry, IRIS,
                      (WHITE,))
            h.ellipse(lab, ix, ev - 0.05 * eh, 0.22 * ew * k, 0.22 * ew * h.rx / h.ry, PUPIL,
                      (IRIS,))
            h.ellipse(lab, ix - 0.15 * ew, ev - 0.3 * eh, 0.08 * ew, 0.08 * ew * h.rx / h.ry,
                      SHINE, (IRIS, PUPIL))
            lid = _eye_shape(ew * k * 1.05, eh * 1.05, False)[:20] * [s, 1] + [cx, ev]
            band = np.concatenate([lid, lid[::-1] + [0, -0.025]])
            lab.poly(h.pt(band), LASH, face + (WHITE, IRIS, PUPIL, SHINE))
        # the brow
        bw, arch = p.brow
        u = np.linspace(-0.2, 0.24, 12)
        v = ev - eh * (1.6 if not anime else 0.75) - 0.16 - arch * np.sin((u + 0.2) / 0.44 * np.pi)
        thick = bw * (0.55 if anime else 1.0) * (1 - 0.5 * (u + 0.2) / 0.44)
        pts = np.concatenate([np.stack([u, v], 1), np.stack([u[::-1], v[::-1] + thick[::-1]], 1)])
        lab.poly(h.pt(pts * [s, 1] + [cx, 0]), BROW, face)
    _nose_and_mouth(p, h, lab, anime, shift)


def _nose_and_mouth(p: Portrait, h: Head, lab: Labels, anime: bool, shift: float) -> None:
    face = (SKIN,)
    mw, smile, full = p.mouth
    u = np.linspace(-mw, mw, 16) + shift
    curve = 0.62 + smile * np.cos((u - shift) / mw * np.pi / 2)
    if anime:
        w = 0.022
        line = np.concatenate([np.stack([u * 0.7, curve], 1),
                               np.stack([u[::-1] * 0.7, curve[::-1] + w], 1)])
        lab.poly(h.pt(line), MOUTH, face)
        nx = shift * 1.3 - 0.04 * (1 if p.light[0] > 0 else -1)  # on the shadow side
        lab.poly(h.pt([[nx, 0.34], [nx + 0.05, 0.38], [nx, 0.4]]), NOSE, face)
    else:
        arch = np.clip(np.sin((u - shift + mw) / (2 * mw) * np.pi), 0, 1)
        up = curve - full * arch ** 0.7
        down = curve + 1.3 * full * arch
        lab.poly(h.pt(np.concatenate([np.stack([u, up], 1), np.stack([u[::-1], down[::-1]], 1)])),
                 LIPS, face)
        gap = np.concatenate([np.stack([u * 0.95, curve - 0.006], 1),
                              np.stack([u[::-1] * 0.95, curve[::-1] + 0.008], 1)])
        lab.poly(h.pt(gap), MOUTH, (LIPS,))


def _body(p: Portrait, h: Head, lab: Labels) -> None:
    bx, sy, sw = p.body
    nw = p.neck * h.rx
    chin = h.pt([[0.0, 0.9]])[0]
    lab.poly([[chin[0] - nw, chin[1] - 0.05], [chin[0] + nw, chin[1] - 0.05],
              [bx + nw * 1.1, sy + 0.02], [bx - nw * 1.1, sy + 0.02]], NECK)
    t = np.linspace(np.pi, 2 * np.pi, 24)
    shoulders = np.stack([bx + np.cos(t) * sw, sy + 0.09 + np.sin(t) * 0.11], 1)
    lab.poly(np.concatenate([shoulders, [[bx + sw * 1.08, 1.02], [bx - sw * 1.08, 1.02]]]), CLOTH)
    if p.neckline == "crew":
        lab.ellipse((bx, sy - 0.005), (nw * 1.2, 0.03), 0, NECK, (CLOTH,))
    elif p.neckline == "vneck":
        lab.poly([[bx - nw * 1.3, sy - 0.02], [bx + nw * 1.3, sy - 0.02], [bx, sy + 0.11]], NECK,
                 (CLOTH,))
    elif p.neckline == "collar":
        lab.poly([[bx - nw * 1.2, sy - 0.02], [bx + nw * 1.2, sy - 0.02], [bx, sy + 0.07]], NECK,
                 (CLOTH,))
        for s in (-1, 1):
            lab.poly([[bx + s * nw * 1.35, sy - 0.035], [bx, sy + 0.075],
                      [bx + s * nw * 2.4, sy + 0.07]], INNER)
    else:  # an open jacket over a shirt
        lab.poly([[bx - nw * 1.9, sy - 0.01], [bx + nw * 1.9, sy - 0.01], [bx + nw * 0.9, 1.02],
                  [bx - nw * 0.9, 1.02]], INNER, (CLOTH,))
        lab.ellipse((bx, sy + 0.0), (nw * 1.1, 0.025), 0, NECK, (INNER,))


def _labels(p: Portrait, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The (photo, anime) label maps, uint8 (side, side): the same figure, with the style's
    own eyes, brows, nose and mouth under the same fringe."""
    h = Head(p)
    base = Labels(np.zeros((side, side), np.uint8))
    _hair(p, h, base, front=False)
    _body(p, h, base)
    for s in (-1, 1):
        h.ellipse(base, s * 0.97 + p.yaw * 0.1, 0.12, 0.17, 0.22, EAR)
    base.poly(h.pt(_face_outline(p)), SKIN)
    maps = []
    for anime in (False, True):
        lab = Labels(base.map.copy())
        _features(p, h, lab, anime)
        _hair(p, h, lab, front=True)
        maps.append(lab.map)
    return maps[0], maps[1]


# ---------------------------------------------------------------------------------------
# painting


def _saturate(c: Colour, amount: float, lift: float, hair: bool = False) -> Colour:
    """A livelier version of ``c``: saturation times ``amount``, value lifted towards 1.
    Neutral colours stay neutral, except hair: black turns deep blue, grey turns silver."""
    hh, s, v = colorsys.rgb_to_hsv(*c)
    if hair and s < 0.3 and v < 0.2:
        hh, s = 0.66, 0.4
    elif hair and s < 0.15:
        hh, s = 0.62, 0.12
    elif s > 0.12:
        s = min(1.0, s * amount + 0.1)
    return colorsys.hsv_to_rgb(hh, s, min(1.0, v * (1 - lift) + lift))


def _palettes(p: Portrait) -> tuple[np.ndarray, np.ndarray]:
    """(photo, anime) base colours, float32 (3, N_LABELS)."""
    photo = np.zeros((N_LABELS, 3), np.float32)
    photo[[CLOTH, INNER]] = p.clothes
    photo[[NECK, EAR, SKIN]] = p.skin
    photo[HAIR] = p.hair
    photo[HAIR_BACK] = np.asarray(p.hair) * 0.78  # the hair behind lies in shadow
    photo[BROW] = mix(p.hair, (0.05, 0.04, 0.04), 0.4)
    photo[WHITE] = (0.86, 0.84, 0.82)
    photo[IRIS] = p.eye_colour
    photo[PUPIL] = (0.03, 0.03, 0.03)
    photo[SHINE] = (0.95, 0.95, 0.95)
    photo[LASH] = mix(p.skin, (0.05, 0.03, 0.03), 0.75)
    photo[LIPS] = p.lips
    photo[MOUTH] = mix(p.lips, (0.1, 0.02, 0.02), 0.6)
    photo[NOSE] = p.skin
    anime = photo.copy()
    anime[[NECK, EAR, SKIN]] = mix(p.skin, (1.0, 0.9, 0.86), 0.2)
    anime[HAIR] = _saturate(p.hair, 1.5, 0.18, hair=True)
    anime[HAIR_BACK] = anime[HAIR] * 0.82
    anime[BROW] = mix(anime[HAIR], (0.1, 0.05, 0.05), 0.3)
    anime[[CLOTH, INNER]] = [_saturate(c, 1.25, 0.05) for c in p.clothes]
    anime[WHITE] = (1.0, 1.0, 1.0)
    anime[IRIS] = _saturate(p.eye_colour, 1.4, 0.25)
    anime[PUPIL] = mix(anime[IRIS], (0.02, 0.02, 0.05), 0.8)
    anime[SHINE] = (1.0, 1.0, 1.0)
    anime[[LASH, MOUTH, NOSE]] = p.ink
    return photo.T.copy(), anime.T.copy()


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved by (dx, dy) pixels, zeros shifted in."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _shading(lab: np.ndarray, p: Portrait) -> tuple[np.ndarray, np.ndarray]:
    """Lambert shading (side, side) in [0, 1] under the key light, from analytic normals (an
    ellipsoid for the face, a larger one for the hair, cylinders for the neck and body), and
    the hard cast-shadow mask (fringe on the forehead, head on the neck)."""
    side = lab.shape[0]
    c = (np.arange(side, dtype=np.float32) + 0.5) / side
    x, y = c[None, :], c[:, None]
    cx, cy, rx, ry = p.head
    cos, sin = np.float32(np.cos(p.tilt)), np.float32(np.sin(p.tilt))
    u = ((x - cx) * cos + (y - cy) * sin) / rx
    v = (-(x - cx) * sin + (y - cy) * cos) / ry
    hair = _is(lab, HAIR, HAIR_BACK)
    head = ~hair & _is(lab, SKIN, EAR, BROW, WHITE, IRIS, PUPIL, SHINE, LASH, LIPS, MOUTH,
                                 NOSE)
    r = 1 + p.volume
    hu, hv = np.where(hair, u / r, 0.85 * u), np.where(hair, (np.minimum(v, 0.4) + 0.08) / r,
                                                       0.8 * v)
    # head-space normal turned back into the image plane
    nx, ny = hu * cos - hv * sin, hu * sin + hv * cos
    bx, sy, sw = p.body
    neck = lab == NECK
    body = _is(lab, CLOTH, INNER)
    nx = np.where(neck, 0.8 * (x - bx) / (p.neck * rx * 1.2), nx)
    ny = np.where(neck, 0.0, ny)
    nx = np.where(body, 0.75 * (x - bx) / sw, nx)
    ny = np.where(body, -0.7 * np.clip((sy + 0.1 - y) / 0.1, 0, 1), ny)
    nx, ny = np.clip(nx, -0.98, 0.98), np.clip(ny, -0.98, 0.98)
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.0, 1.0))
    lx, ly = p.light
    lz = 0.9
    norm = float(np.sqrt(lx * lx + ly * ly + lz * lz))
    shade = np.clip((nx * lx + ny * ly + nz * lz) / norm, 0, 1)
    shade = np.where(head | hair | neck | body, shade, 1.0).astype(np.float32)
    dx, dy = int(round(-lx * side * 0.012)), int(round(side * 0.018))
    front = lab == HAIR
    on_face = _shift(front, dx, dy) & head
    chin = _shift(_is(lab, SKIN, HAIR, HAIR_BACK, EAR), dx, int(round(side * 0.045)))
    on_neck = chin & neck
    return shade, (on_face | on_neck).astype(np.float32)


def _backdrop(p: Portrait, side: int, anime: bool) -> np.ndarray:
    """The background, float32 (3, side, side)."""
    y = ((np.arange(side, dtype=np.float32) + 0.5) / side)
    c0, c1 = (np.asarray(c, np.float32)[:, None, None] for c in p.bg)
    if p.backdrop == "outdoor":
        t = smoothstep(0.45, 0.75, y)[None, :, None]
        t = np.round(t * 2) / 2 if anime else t
        img = c0 + (c1 - c0) * t + np.zeros((1, 1, side), np.float32)
    else:
        xx = (np.arange(side, dtype=np.float32) + 0.5) / side
        d = np.sqrt((xx[None, :] - p.head[0]) ** 2 + (y[:, None] - p.head[1]) ** 2)
        t = np.clip(d / 0.8, 0, 1)
        t = np.round(t * 3) / 3 if anime else t
        img = c1 + (c0 - c1) * t[None]
    img = np.ascontiguousarray(img, np.float32)
    if p.backdrop in ("bokeh", "outdoor"):
        a = np.float32(0.5 if anime else 0.6)
        for x, yv, r, *rgb in p.spots:
            c0, c1 = max(int((x - r) * side) - 1, 0), min(int((x + r) * side) + 2, side)
            r0, r1 = max(int((yv - r) * side) - 1, 0), min(int((yv + r) * side) + 2, side)
            if c1 <= c0 or r1 <= r0:
                continue
            m = np.zeros((r1 - r0, c1 - c0), np.uint8)
            cv2.circle(m, tuple(int(v) for v in fixed([x, yv], side) - np.array([c0, r0]) * ONE),
                       int(r * side * ONE), 1, -1, cv2.LINE_8, SHIFT)
            region = img[:, r0:r1, c0:c1]
            k = m.astype(np.float32) * a
            region[:] = region * (1 - k) + np.asarray(rgb, np.float32)[:, None, None] * k
    elif p.backdrop == "room":
        x0 = p.spots[0, 0] * 0.6
        w0 = int(side * x0), int(side * (x0 + 0.35))
        img[:, int(side * 0.08):int(side * 0.6), w0[0]:w0[1]] = np.asarray(
            mix(p.bg[1], (1, 1, 0.95), 0.5), np.float32)[:, None, None]
        img[:, int(side * 0.7):] *= 0.8
    if not anime:
        img = np.stack([blur(ch, side * 0.02) for ch in img])
    return img


def _crown_ring(p: Portrait, h: Head, side: int) -> np.ndarray:
    """A wavy band across the crown of the hair, (side, side) float32 0/1: where the hair
    catches the light (a soft sheen in the photo, the ring of light of anime hair)."""
    u = np.linspace(-0.8, 0.8, 24)
    wave = 0.05 * np.sin(u * 14)
    ring = np.concatenate([np.stack([u, -0.62 - p.volume * 0.5 + wave], 1),
                           np.stack([u[::-1], -0.5 - p.volume * 0.5 + wave[::-1] * 0.5], 1)])
    mask = np.zeros((side, side), np.float32)
    Labels(mask).poly(h.pt(ring), 1)
    return mask


def _photo(p: Portrait, lab: np.ndarray, shade: np.ndarray, cast: np.ndarray,
           ring: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photo-like colours (3, side, side): smooth key light with soft shadows and ambient
    occlusion, skin, hair and fabric texture, facial modelling, a blurred backdrop."""
    side = lab.shape[0]
    h = Head(p)
    hair, skin = _is(lab, HAIR, HAIR_BACK), _is(lab, SKIN, NECK, EAR)
    half = max(side // 2, 8)
    near_hair = cv2.resize(hair.astype(np.float32), (half, half), interpolation=cv2.INTER_AREA)
    near_hair = cv2.resize(blur(near_hair, half * 0.02), (side, side),
                           interpolation=cv2.INTER_LINEAR)
    occlusion = near_hair * _is(lab, SKIN, EAR, NECK, CLOTH, INNER, BROW, LIPS)
    light = (0.42 + 0.7 * shade * (1 - 0.55 * blur(cast, side * 0.012))) * (1 - 0.3 * occlusion)
    warmth = np.asarray(p.warmth, np.float32)[:, None, None]
    photo = np.take(_palettes(p)[0], lab, axis=1) * light * warmth
    grain = blur(rng.standard_normal((side, side), dtype=np.float32), side * 0.003)
    grain /= grain.std() + 1e-6
    # hair strands: noise stretched along y (drawn on a quarter of the rows, then stretched)
    strands = blur(rng.standard_normal((max(side // 4, 8), side), dtype=np.float32),
                   side * 0.002, side * 0.0075)
    strands = cv2.resize(strands / (strands.std() + 1e-6), (side, side),
                         interpolation=cv2.INTER_LINEAR)
    mottle = blur(rng.standard_normal((side // 8, side // 8), dtype=np.float32), 1.5)
    mottle = cv2.resize(mottle / (mottle.std() + 1e-6), (side, side))
    tex = np.where(hair, 0.14 * strands + 0.35 * blur(ring, side * 0.02) * shade,
                   np.where(skin, 0.015 * grain + 0.012 * mottle, 0.0))
    tex += _is(lab, CLOTH, INNER) * 0.035 * mottle
    photo *= 1 + tex
    photo += np.where(skin, np.clip(shade - 0.75, 0, None) * 0.5, 0).astype(np.float32)
    broad, fine, bright, cheeks = _relief(p, h, side)
    face = _is(lab, SKIN, LIPS, BROW)
    photo *= 1 - (0.2 * broad + 0.4 * fine) * face
    photo += bright * 0.12 * face * warmth
    photo += (cheeks * face * 0.1 * p.blush) * np.array([0.25, -0.12, -0.08],
                                                        np.float32)[:, None, None]
    photo = np.where(lab == CLOTH, photo * (1 - 0.25 * _stripes(p, side)), photo)
    return np.where(lab == BG, _backdrop(p, side, anime=False), photo)


def _anime(p: Portrait, lab: np.ndarray, shade: np.ndarray, cast: np.ndarray,
           ring: np.ndarray, size: int) -> np.ndarray:
    """Anime-like colours (3, side, side): two flat tones from the same light (three on the
    hair, with its ring of light), hard cast shadows, flat blush, flat backdrop, ink."""
    side = lab.shape[0]
    dark = (shade < 0.42) | (cast > 0)
    shadow_tint = np.array([0.82, 0.72, 0.80], np.float32)[:, None, None]
    anime = np.take(_palettes(p)[1], lab, axis=1) * np.where(dark, shadow_tint, 1.0)
    anime = np.where(_is(lab, HAIR, HAIR_BACK) & (ring > 0) & ~dark, anime * 0.6 + 0.4, anime)
    if p.blush > 0.3:
        cheek = np.zeros((side, side), np.uint8)
        for s in (-1, 1):
            Head(p).ellipse(Labels(cheek), s * 0.5 + p.yaw * 0.15, 0.42, 0.2, 0.08, 1)
        pink = np.array([0.95, 0.45, 0.5], np.float32)[:, None, None]
        anime = np.where((cheek > 0) & (lab == SKIN), anime * 0.75 + pink * 0.25, anime)
    anime = np.where(lab == CLOTH, anime * (1 - 0.25 * _stripes(p, side)), anime)
    anime = np.where(lab == BG, _backdrop(p, side, anime=True), anime)
    return _ink(anime, lab, p, size, side // size)


def render(p: Portrait, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Both renders of a portrait: (photo, anime), uint8 (size, size, 3)."""
    side = size * supersample(size)
    lab_a, lab_b = _labels(p, side)
    shade, cast = _shading(lab_a, p)
    ring = _crown_ring(p, Head(p), side)
    rng = np.random.default_rng(p.seed)  # texture and noise: a function of the portrait
    photo = reduce(_photo(p, lab_a, shade, cast, ring, rng), size)
    anime = reduce(_anime(p, lab_b, shade, cast, ring, size), size)
    # lens softness, vignette and sensor noise (luminance and a little chroma)
    photo = blur(photo, 0.45)
    c = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    photo *= (1 - 0.45 * (c[:, None] ** 2 + c[None, :] ** 2))[..., None]
    noise = rng.standard_normal((size, size, 1), dtype=np.float32) * 0.018
    noise = noise + rng.standard_normal((size, size, 3), dtype=np.float32) * 0.008
    return to_uint8(photo + noise), to_uint8(anime)


def _relief(p: Portrait, h: Head, side: int) -> tuple[np.ndarray, ...]:
    """Soft photo-only modelling of the face, each (side, side) in [0, 1]: broad shadows
    (eye sockets, under the lip), fine shadows (side of the nose, nostrils), highlights
    (bridge and tip of the nose, the lit cheekbone) and the cheeks' flush."""
    out, side = side, side // 2  # soft shapes: drawn at half resolution
    maps = [np.zeros((side, side), np.float32) for _ in range(4)]
    broad, fine, bright, cheeks = (Labels(m) for m in maps)
    spacing, ev, ew, eh = p.eyes
    shift, away = p.yaw * 0.18, -1.0 if p.light[0] > 0 else 1.0
    nx = shift * 1.3
    for s in (-1, 1):
        cx = s * spacing * (1 - 0.3 * abs(p.yaw)) + shift
        h.ellipse(broad, cx, ev - 0.03, ew * 1.4, eh * 2.4, 1)
        h.ellipse(fine, nx + s * 0.075, 0.45, 0.035, 0.02, 1)
        h.ellipse(cheeks, s * 0.45 + shift * 0.8, 0.42, 0.22, 0.12, 1)
    h.ellipse(fine, nx + away * 0.075, 0.28, 0.025, 0.15, 1)
    h.ellipse(fine, nx, 0.5, 0.09, 0.02, 1)
    mw, smile, full = p.mouth
    h.ellipse(broad, shift, 0.66 + smile + 1.3 * full + 0.05, mw * 0.55, 0.035, 1)
    h.ellipse(bright, nx - away * 0.02, 0.27, 0.02, 0.12, 1)
    h.ellipse(bright, nx, 0.4, 0.04, 0.03, 1)
    h.ellipse(bright, -away * 0.5, 0.25, 0.15, 0.08, 1)
    sigmas = (0.025, 0.006, 0.01, 0.02)
    return tuple(cv2.resize(blur(m, side * k), (out, out), interpolation=cv2.INTER_LINEAR)
                 for m, k in zip(maps, sigmas))


def _stripes(p: Portrait, side: int) -> np.ndarray:
    if not p.stripes:
        return np.zeros((side, side), np.float32)
    y = (np.arange(side, dtype=np.float32) + 0.5) / side
    return ((y / p.stripes) % 1.0 < 0.4).astype(np.float32)[:, None] * np.ones(side, np.float32)


def _ink(img: np.ndarray, lab: np.ndarray, p: Portrait, size: int, ss: int) -> np.ndarray:
    """Ink outlines along the label boundaries: heavier around the figure."""
    group = np.arange(N_LABELS, dtype=np.uint8)
    group[[PUPIL, SHINE]] = IRIS     # no line inside the iris
    group[[LASH, MOUTH, NOSE]] = SKIN  # lines already
    group[HAIR_BACK] = HAIR
    g = group[lab]
    edge = np.zeros(g.shape, np.uint8)
    edge[1:] |= g[1:] != g[:-1]
    edge[:, 1:] |= g[:, 1:] != g[:, :-1]
    fig = np.zeros(g.shape, np.uint8)
    person = lab != BG
    fig[1:] |= person[1:] != person[:-1]
    fig[:, 1:] |= person[:, 1:] != person[:, :-1]
    width = max(size / 128.0, 0.5) * ss
    thin = max(int(round(width * 0.9)), 1)
    thick = max(int(round(width * 1.6)), 1)
    line = cv2.dilate(edge, np.ones((thin, thin), np.uint8)) | \
        cv2.dilate(fig, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thick, thick)))
    ink = np.asarray(p.ink, np.float32)[:, None, None]
    return np.where(line[None] > 0, ink, img)


def real2anime_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (photo, anime) pair of the same random portrait, uint8 (size, size, 3) each."""
    return render(describe(rng), size)
