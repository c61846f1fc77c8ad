"""``day2night``: a street, park or waterfront scene by day (domain A) and the same scene by
night (domain B).

:func:`describe` draws the random scene once (sky and time of day, sun, clouds, a hazy far
skyline, buildings with windows and roofs, shops, trees, street lamps, cars, the ground),
in resolution-free units; :func:`render` draws it both ways on the same geometry:

- by day: sky gradient of the time of day (noon, morning, golden hour, overcast), sun with
  halo, sunlit walls with a shaded corner, shadows cast away from the sun, glass that
  reflects the sky;
- by night: dark sky with a city glow at the horizon, stars, the moon where the sun was,
  surfaces lit only by a faint moonlight and by the lamps, some windows lit (the ones whose
  panes look a little warmer by day), shop windows, car lights and antenna beacons, with
  glow around every light. Water reflects either picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from translate.data.scenes.canvas import (ONE, SHIFT, Colour, blur, fixed, gauss, jitter, mix,
                                          reduce, smoothstep, supersample, to_uint8)

KINDS = ("street", "street", "park", "waterfront")
# day sky: zenith, horizon, sunlight colour, sun strength (0 = fully overcast)
TIMES: dict[str, tuple[Colour, Colour, Colour, float]] = {
    "noon": ((0.20, 0.45, 0.86), (0.66, 0.82, 0.96), (1.00, 0.98, 0.92), 1.0),
    "morning": ((0.32, 0.54, 0.85), (0.92, 0.86, 0.80), (1.00, 0.93, 0.82), 0.9),
    "golden": ((0.27, 0.40, 0.72), (1.00, 0.74, 0.47), (1.00, 0.80, 0.55), 0.85),
    "overcast": ((0.56, 0.61, 0.67), (0.80, 0.82, 0.85), (0.92, 0.93, 0.95), 0.25),
}
WALLS: dict[str, list[Colour]] = {
    "brick": [(0.62, 0.30, 0.22), (0.54, 0.26, 0.20), (0.70, 0.42, 0.30), (0.50, 0.33, 0.28)],
    "concrete": [(0.74, 0.72, 0.68), (0.82, 0.75, 0.62), (0.62, 0.64, 0.67), (0.86, 0.81, 0.71),
                 (0.76, 0.62, 0.52), (0.62, 0.69, 0.73), (0.88, 0.86, 0.80)],
    "glass": [(0.36, 0.46, 0.56), (0.30, 0.40, 0.44), (0.46, 0.50, 0.55), (0.26, 0.33, 0.48)],
    "house": [(0.88, 0.80, 0.60), (0.70, 0.80, 0.74), (0.92, 0.88, 0.82), (0.78, 0.56, 0.46),
              (0.62, 0.72, 0.84), (0.93, 0.75, 0.70)],
}
WINDOW_LIGHTS: list[Colour] = [(1.0, 0.80, 0.45), (1.0, 0.70, 0.35), (1.0, 0.90, 0.70),
                               (0.82, 0.90, 1.0), (1.0, 0.85, 0.60)]
LAMP_LIGHTS: list[Colour] = [(1.0, 0.78, 0.45), (1.0, 0.88, 0.65), (0.85, 0.92, 1.0)]
CAR_PAINT: list[Colour] = [(0.75, 0.10, 0.10), (0.12, 0.25, 0.60), (0.90, 0.90, 0.88),
                           (0.15, 0.15, 0.17), (0.55, 0.57, 0.60), (0.95, 0.75, 0.15),
                           (0.20, 0.45, 0.30), (0.45, 0.20, 0.45)]
BLACK: Colour = (0.0, 0.0, 0.0)


@dataclass
class Windows:
    """A grid of panes: pane (r, c) covers x0 + c * pitch_x + [0, fill_x * pitch_x), and the
    same along y. ``day``/``night`` hold each pane's colour (rows, cols, 3)."""
    x0: float
    y0: float
    pitch_x: float
    pitch_y: float
    fill_x: float
    fill_y: float
    day: np.ndarray
    night: np.ndarray


@dataclass
class Building:
    x0: float
    x1: float
    top: float
    base: float
    wall: Colour
    haze: float                 # 0 near .. 1 lost in the haze
    roof: str                   # flat, ledge, antenna, tank, gable, spire
    windows: Windows | None
    shop: Colour | None = None  # awning colour of a ground-floor shop
    roof_colour: Colour = (0.3, 0.3, 0.32)


@dataclass
class Tree:
    x: float
    base: float
    trunk_h: float
    trunk_w: float
    blobs: np.ndarray           # (N, 3): dx, dy (from the crown centre), radius
    leaves: Colour


@dataclass
class Lamp:
    x: float
    base: float
    height: float
    style: str                  # arm or globe
    side: int                   # the arm points this way (+1 right, -1 left)
    light: Colour


@dataclass
class Car:
    x: float                    # centre
    ground: float               # y of the wheels' bottom
    length: float
    paint: Colour
    facing: int                 # +1 drives right, -1 left


@dataclass
class Scene:
    kind: str
    time: str
    horizon: float              # y where buildings stand
    ground_top: float           # y where the street, grass or water begins
    zenith: Colour
    sky_horizon: Colour
    sunlight: Colour
    sun_strength: float
    sun: tuple[float, float, float]          # x, y, radius (the moon takes its place)
    night_zenith: Colour
    night_horizon: Colour
    city_glow: Colour
    moonlight: Colour
    moon_phase: float           # offset of the shadow disc, in moon radii (>= 2: full)
    stars: np.ndarray           # (N, 3): x, y, brightness
    clouds: list[np.ndarray]    # each (N, 4): cx, cy, rx, ry of one cloud's puffs
    far: list[tuple[float, float, float, Colour]]   # x0, x1, top, wall: hazy silhouettes
    far_lights: np.ndarray      # (N, 2): lit windows of the far skyline at night
    buildings: list[Building]
    trees: list[Tree]
    lamps: list[Lamp]
    cars: list[Car]
    ground: dict = field(default_factory=dict)  # colours and bands of the ground kind
    seed: int = 0


# ---------------------------------------------------------------------------------------
# the random description


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _windows(rng, b: Building, kind: str, scale: float, sky: Colour, ground_floor: float
             ) -> Windows | None:
    if kind == "glass":
        px, py = rng.uniform(0.018, 0.028) * scale, rng.uniform(0.024, 0.034) * scale
        fx, fy = rng.uniform(0.75, 0.88), rng.uniform(0.70, 0.82)
    elif kind == "house":
        px, py = rng.uniform(0.05, 0.07) * scale, rng.uniform(0.06, 0.08) * scale
        fx, fy = rng.uniform(0.45, 0.6), rng.uniform(0.5, 0.65)
    else:
        px, py = rng.uniform(0.03, 0.05) * scale, rng.uniform(0.04, 0.06) * scale
        fx, fy = rng.uniform(0.4, 0.62), rng.uniform(0.45, 0.65)
    margin = 0.5 * px
    width, height = b.x1 - b.x0 - 2 * margin, b.base - ground_floor - b.top - 1.2 * py
    cols, rows = int((width + px * (1 - fx)) // px), int((height + py * (1 - fy)) // py)
    if cols < 1 or rows < 1:
        return None
    x0 = b.x0 + (b.x1 - b.x0 - (cols - 1) * px - fx * px) / 2
    y0 = b.top + 0.9 * py
    p_lit = rng.uniform(0.15, 0.65)
    if kind == "glass":  # office floors light up together
        lit = (rng.random((rows, 1)) < p_lit) & (rng.random((rows, cols)) < 0.9)
    else:
        lit = rng.random((rows, cols)) < p_lit
    glass = mix(sky, (0.12, 0.15, 0.2), rng.uniform(0.35, 0.65) if kind == "glass" else
                rng.uniform(0.5, 0.75))
    shade = 1 + 0.12 * rng.standard_normal((rows, cols, 1))
    # tonight's lit panes have their curtains open by day: a little warmer and lighter
    day = np.asarray(glass) * shade + lit[..., None] * np.array([0.07, 0.045, 0.0])
    day *= 1 - 0.25 * np.linspace(0, 1, rows)[:, None, None] * (kind == "glass")
    light = np.asarray(WINDOW_LIGHTS)[rng.integers(0, len(WINDOW_LIGHTS), 4)][
        rng.integers(0, 4, (rows, cols))]
    strength = rng.uniform(0.7, 1.0, (rows, cols, 1))
    dark = np.array([0.025, 0.03, 0.05]) * (1 + 0.3 * rng.standard_normal((rows, cols, 1)))
    night = np.where(lit[..., None], light * strength, dark)
    return Windows(x0, y0, px, py, fx, fy, day.clip(0, 1), night.clip(0, 1))


def _row(rng, x_from: float, x_to: float, widths: tuple[float, float], gaps: tuple[float, float],
         tops: tuple[float, float], base: float, kinds, haze: float, scale: float, sky: Colour,
         shops: float) -> list[Building]:
    out, x = [], x_from
    while x < x_to:
        w = rng.uniform(*widths)
        kind = _pick(rng, kinds)
        top = rng.uniform(*tops)
        if kind == "house":
            top = max(top, base - rng.uniform(0.12, 0.2))
        if kind == "glass":
            top = min(top, rng.uniform(*tops))
        roof = _pick(rng, {"glass": ["flat", "spire", "antenna", "ledge"],
                           "house": ["gable"],
                           "brick": ["ledge", "tank", "flat", "antenna"],
                           "concrete": ["ledge", "flat", "antenna", "tank"]}[kind])
        b = Building(x, x + w, top, base, jitter(rng, _pick(rng, WALLS[kind]), 0.08), haze,
                     roof, None, roof_colour=jitter(rng, _pick(rng, [(0.45, 0.2, 0.15),
                                                                    (0.3, 0.3, 0.33),
                                                                    (0.4, 0.3, 0.22)]), 0.1))
        ground_floor = 0.0
        if shops and kind != "glass" and rng.random() < shops:
            b.shop = jitter(rng, _pick(rng, [(0.8, 0.15, 0.15), (0.15, 0.45, 0.25),
                                            (0.15, 0.3, 0.6), (0.9, 0.6, 0.1)]), 0.1)
            ground_floor = 0.075
        b.windows = _windows(rng, b, kind, scale, sky, ground_floor)
        out.append(b)
        x += w + rng.uniform(*gaps)
    return out


def _trees(rng, n: int, base: tuple[float, float], size: float) -> list[Tree]:
    out = []
    for _ in range(n):
        x = rng.uniform(0.0, 1.0)
        s = size * rng.uniform(0.7, 1.3)
        k = int(rng.integers(4, 8))
        blobs = np.stack([rng.uniform(-0.45, 0.45, k) * s, rng.uniform(-0.4, 0.3, k) * s,
                          rng.uniform(0.28, 0.45, k) * s], axis=1)
        leaves = _pick(rng, [(0.25, 0.45, 0.15), (0.18, 0.38, 0.16), (0.32, 0.5, 0.2),
                             (0.22, 0.42, 0.25)] * 3 + [(0.75, 0.45, 0.12), (0.8, 0.6, 0.2)])
        out.append(Tree(x, rng.uniform(*base), s * rng.uniform(0.35, 0.6), s * 0.09,
                        blobs, jitter(rng, leaves, 0.1)))
    return out


def _street(rng: np.random.Generator, scene: Scene) -> None:
    """Two rows of buildings (shops on the ground floor), sidewalk, road, lamps, cars."""
    horizon, hor = scene.horizon, scene.sky_horizon
    scene.ground = {"sidewalk": rng.uniform(0.04, 0.07),
                    "paving": jitter(rng, (0.6, 0.58, 0.55), 0.08),
                    "road": jitter(rng, (0.3, 0.3, 0.32), 0.15),
                    "dash": _pick(rng, [(0.92, 0.92, 0.88), (0.92, 0.75, 0.2)])}
    curb = horizon + scene.ground["sidewalk"]
    scene.buildings += _row(rng, -rng.uniform(0.0, 0.1), 1.0, (0.1, 0.22), (-0.03, 0.03),
                            (0.05, horizon - 0.35), horizon, ["glass", "concrete", "brick"],
                            0.35, 0.8, hor, 0.0)
    scene.buildings += _row(rng, -rng.uniform(0.0, 0.15), 1.0, (0.16, 0.32), (0.0, 0.0),
                            (horizon - 0.45, horizon - 0.18), horizon,
                            ["brick", "concrete", "house", "concrete", "brick"], 0.0, 1.0,
                            hor, 0.5)
    n_lamps = int(rng.integers(1, 4))
    xs = (np.arange(n_lamps) + rng.uniform(0.2, 0.8, n_lamps)) / n_lamps
    light = _pick(rng, LAMP_LIGHTS)
    scene.lamps = [Lamp(float(x), curb - 0.01, rng.uniform(0.22, 0.32),
                        _pick(rng, ["arm", "globe"]), int(rng.choice([-1, 1])), light)
                   for x in xs]
    scene.trees = _trees(rng, int(rng.integers(0, 4)), (curb - 0.015, curb - 0.005), 0.17)
    road = 1.0 - curb
    for _ in range(int(rng.integers(0, 3))):
        scene.cars.append(Car(rng.uniform(0.05, 0.95), curb + road * rng.uniform(0.45, 0.9),
                              rng.uniform(0.2, 0.28), jitter(rng, _pick(rng, CAR_PAINT), 0.06),
                              int(rng.choice([-1, 1]))))
    scene.cars.sort(key=lambda c: c.ground)


def _skyline(rng: np.random.Generator, scene: Scene) -> None:
    scene.buildings += _row(rng, -rng.uniform(0.0, 0.1), 1.05, (0.05, 0.11), (-0.01, 0.03),
                            (scene.horizon - 0.42, scene.horizon - 0.15), scene.horizon,
                            ["glass", "concrete", "glass", "brick"], 0.3, 0.65,
                            scene.sky_horizon, 0.0)


def _park(rng: np.random.Generator, scene: Scene) -> None:
    """A skyline behind a lawn with a path, trees and lamps."""
    _skyline(rng, scene)
    scene.ground = {"grass": jitter(rng, (0.32, 0.52, 0.2), 0.1),
                    "path": jitter(rng, (0.72, 0.66, 0.55), 0.08),
                    "path_y": scene.horizon + rng.uniform(0.08, 0.16),
                    "path_h": rng.uniform(0.04, 0.07)}
    base = (scene.horizon + 0.02, scene.ground["path_y"])
    scene.trees = _trees(rng, int(rng.integers(2, 6)), base, 0.16)
    light = _pick(rng, LAMP_LIGHTS)
    for x in rng.uniform(0.05, 0.95, int(rng.integers(1, 3))):
        scene.lamps.append(Lamp(float(x), scene.ground["path_y"], rng.uniform(0.18, 0.26),
                                "globe", 1, light))
    scene.trees.sort(key=lambda t: t.base)


def _waterfront(rng: np.random.Generator, scene: Scene) -> None:
    """A skyline on an embankment with lamps, mirrored in the water below."""
    _skyline(rng, scene)
    horizon = scene.horizon
    emb = rng.uniform(0.015, 0.03)
    scene.ground_top = horizon + emb
    scene.ground = {"stone": jitter(rng, (0.55, 0.53, 0.5), 0.08),
                    "water": jitter(rng, (0.12, 0.25, 0.32), 0.15),
                    "night_water": (0.01, 0.015, 0.03)}
    light = _pick(rng, LAMP_LIGHTS)
    n_lamps = int(rng.integers(2, 6))
    xs = (np.arange(n_lamps) + 0.5) / n_lamps + rng.uniform(-0.03, 0.03)
    scene.lamps = [Lamp(float(x), horizon + emb * 0.5, rng.uniform(0.08, 0.12), "globe", 1,
                        light) for x in xs]
    scene.trees = _trees(rng, int(rng.integers(0, 3)), (horizon, horizon + 0.005), 0.09)


# what stands in each kind of scene
FURNISH: dict[str, Callable[[np.random.Generator, Scene], None]] = {
    "street": _street, "park": _park, "waterfront": _waterfront}


def describe(rng: np.random.Generator) -> Scene:
    """Draw one random scene (resolution-free)."""
    kind = _pick(rng, KINDS)
    time = _pick(rng, list(TIMES))
    zen, hor, sunlight, strength = TIMES[time]
    zen, hor = jitter(rng, zen, 0.06), jitter(rng, hor, 0.05)
    horizon = rng.uniform(*{"street": (0.6, 0.72), "park": (0.55, 0.68),
                            "waterfront": (0.5, 0.62)}[kind])
    sun_y = {"noon": (0.08, 0.25), "morning": (0.15, 0.35), "golden": (0.3, horizon - 0.12),
             "overcast": (0.1, 0.3)}[time]
    sun = (rng.uniform(0.08, 0.92), rng.uniform(*sun_y), rng.uniform(0.03, 0.05))
    nz = jitter(rng, (0.012, 0.02, 0.06), 0.3)
    scene = Scene(kind=kind, time=time, horizon=horizon, ground_top=horizon, zenith=zen,
                  sky_horizon=hor, sunlight=sunlight, sun_strength=strength, sun=sun,
                  night_zenith=nz, night_horizon=jitter(rng, (0.07, 0.07, 0.15), 0.25),
                  city_glow=jitter(rng, (0.28, 0.14, 0.06), 0.3) if rng.random() < 0.7
                  else jitter(rng, (0.08, 0.08, 0.14), 0.3),
                  moonlight=jitter(rng, (0.08, 0.095, 0.15), 0.2),
                  moon_phase=rng.uniform(0.6, 2.5), stars=np.zeros((0, 3)), clouds=[],
                  far=[], far_lights=np.zeros((0, 2)), buildings=[], trees=[], lamps=[],
                  cars=[], seed=int(rng.integers(2**31)))
    n = int(rng.integers(60, 160))
    scene.stars = np.stack([rng.random(n), rng.random(n) * horizon * 0.95,
                            rng.uniform(0.25, 1.0, n) ** 2], axis=1)
    n_clouds = int(rng.integers(3, 7)) if time == "overcast" else int(rng.integers(0, 4))
    for _ in range(n_clouds):
        cx, cy = rng.uniform(-0.1, 1.1), rng.uniform(0.05, horizon * 0.55)
        w = rng.uniform(0.12, 0.3)
        k = int(rng.integers(4, 9))
        puffs = np.stack([cx + rng.uniform(-0.5, 0.5, k) * w, cy + rng.uniform(-0.15, 0.1, k) * w,
                          rng.uniform(0.15, 0.3, k) * w, rng.uniform(0.1, 0.2, k) * w], axis=1)
        scene.clouds.append(puffs)
    # the far skyline, lost in the haze
    x = -0.05
    while x < 1.05:
        w = rng.uniform(0.03, 0.09)
        scene.far.append((x, x + w, horizon - rng.uniform(0.05, 0.3),
                          jitter(rng, (0.5, 0.52, 0.56), 0.1)))
        x += w + rng.uniform(-0.01, 0.02)
    lights = []
    for x0, x1, top, _ in scene.far:
        k = int(rng.poisson((x1 - x0) * (horizon - top) * 900))
        lights.append(np.stack([rng.uniform(x0 + 0.005, x1 - 0.005, k),
                                rng.uniform(top + 0.01, horizon, k)], axis=1))
    scene.far_lights = np.concatenate(lights)
    FURNISH[kind](rng, scene)
    return scene


# ---------------------------------------------------------------------------------------
# drawing (canvases are channel-first, (3, side, side): numpy broadcasts fastest that way)


def _c(colour) -> np.ndarray:
    """A colour as a float32 (3, 1, 1) array."""
    return np.asarray(colour, np.float32).reshape(3, 1, 1)


class Painter:
    """Three canvases drawn together, so both renders share every edge: ``day`` (final day
    colour), ``alb`` (albedo, lit at night by moonlight and lamps), ``emit`` (night light
    sources and sky), each float32 (3, side, side) in [0, 1]; plus ``solid`` (side, side),
    1 where something stands in front of the sky."""

    def __init__(self, side: int):
        self.side = side
        self.day = np.zeros((3, side, side), np.float32)
        self.alb = np.zeros((3, side, side), np.float32)
        self.emit = np.zeros((3, side, side), np.float32)
        self.solid = np.zeros((side, side), np.uint8)

    def px(self, v: float) -> int:
        """A fraction -> the nearest pixel boundary, clamped to the canvas."""
        p = int(v * self.side + 0.5) if v > 0 else 0
        return p if p < self.side else self.side

    def rect(self, x0, y0, x1, y1, day, alb=BLACK, emit=BLACK, solid=True) -> None:
        """Fill [x0, x1) x [y0, y1); colours are triples or arrays that broadcast to
        (3, h, w)."""
        c0, r0, c1, r1 = self.px(x0), self.px(y0), self.px(x1), self.px(y1)
        if c1 <= c0 or r1 <= r0:
            return
        for canvas, colour in ((self.day, day), (self.alb, alb), (self.emit, emit)):
            canvas[:, r0:r1, c0:c1] = colour if isinstance(colour, np.ndarray) and \
                colour.ndim == 3 else _c(colour)
        if solid:
            self.solid[r0:r1, c0:c1] = 1

    def _fill(self, draw, lo: np.ndarray, hi: np.ndarray, day, alb, emit) -> None:
        """Run ``draw(mask, offset)`` on a uint8 mask of the box [lo, hi) (fractions) and fill
        the covered pixels."""
        c0, r0 = self.px(lo[0]) - 1, self.px(lo[1]) - 1
        c1, r1 = self.px(hi[0]) + 1, self.px(hi[1]) + 1
        c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, self.side), min(r1, self.side)
        if c1 <= c0 or r1 <= r0:
            return
        mask = np.zeros((r1 - r0, c1 - c0), np.uint8)
        draw(mask, np.array([c0, r0]) * ONE)
        m = mask.astype(bool)
        for canvas, colour in ((self.day, day), (self.alb, alb), (self.emit, emit)):
            np.copyto(canvas[:, r0:r1, c0:c1], _c(colour), where=m)
        self.solid[r0:r1, c0:c1] |= mask

    def poly(self, points, day, alb=BLACK, emit=BLACK) -> None:
        pts = np.asarray(points, np.float64)
        self._fill(lambda m, off: cv2.fillPoly(m, [fixed(pts, self.side) - off], 1, cv2.LINE_8,
                                               SHIFT),
                   pts.min(0), pts.max(0), day, alb, emit)

    def ellipse(self, cx, cy, rx, ry, day, alb=BLACK, emit=BLACK) -> None:
        centre = fixed([cx, cy], self.side)
        axes = tuple(max(int(v), ONE // 2) for v in fixed([rx, ry], self.side))
        self._fill(lambda m, off: cv2.ellipse(m, tuple(int(v) for v in centre - off), axes, 0, 0,
                                              360, 1, -1, cv2.LINE_8, SHIFT),
                   np.array([cx - rx, cy - ry]), np.array([cx + rx, cy + ry]), day, alb, emit)

    def shadow(self, x0, y0, x1, y1, day_factor: float, alb_factor: float, oval=False) -> None:
        """Darken what is already solid inside a box (or the oval inscribed in it)."""
        c0, r0, c1, r1 = self.px(x0), self.px(y0), self.px(x1), self.px(y1)
        if c1 <= c0 or r1 <= r0:
            return
        mask = self.solid[r0:r1, c0:c1].astype(np.float32)
        if oval:
            cx, cy = (x0 + x1) / 2 * self.side, (y0 + y1) / 2 * self.side
            yy, xx = np.ogrid[r0:r1, c0:c1]
            u = (xx + 0.5 - cx) / ((x1 - x0) / 2 * self.side)
            v = (yy + 0.5 - cy) / ((y1 - y0) / 2 * self.side)
            mask *= smoothstep(1.0, 0.5, u * u + v * v).astype(np.float32)
        self.day[:, r0:r1, c0:c1] *= 1 - (1 - day_factor) * mask
        self.alb[:, r0:r1, c0:c1] *= 1 - (1 - alb_factor) * mask


def _sky(p: Painter, s: Scene, ss: int) -> None:
    side = p.side
    y = ((np.arange(side, dtype=np.float32) + 0.5) / side)[None, :, None]
    t = np.clip(y / s.horizon, 0, 1) ** 1.6
    p.day[:] = _c(s.zenith) + (_c(s.sky_horizon) - _c(s.zenith)) * t
    p.emit[:] = _c(s.night_zenith) + (_c(s.night_horizon) - _c(s.night_zenith)) * t
    p.emit += _c(s.city_glow) * np.exp(-np.clip(s.horizon - y, 0, None) / 0.09)
    sx, sy, r = s.sun
    glow = gauss(side, sx, sy, 4 * r, 4 * r) * (0.35 * s.sun_strength + 0.1)
    glow += gauss(side, sx, sy, 12 * r, 10 * r) * 0.2 * s.sun_strength
    p.day += glow * _c(s.sunlight)
    # stars: one output pixel each, fading towards the city glow; small images show fewer
    # and fainter ones, as a pixel there covers more sky
    size = side // ss
    scale = min(1.0, size / 128)
    shown = s.stars[: int(len(s.stars) * scale)]
    stars = np.zeros((size, size), np.float32)
    fade = (1 - smoothstep(0.5, 0.95, shown[:, 1] / s.horizon)) * (0.4 + 0.6 * scale)
    np.add.at(stars, ((shown[:, 1] * size).astype(int), (shown[:, 0] * size).astype(int)),
              (0.9 * shown[:, 2] * fade).astype(np.float32))
    p.emit += np.repeat(np.repeat(stars, ss, 0), ss, 1)
    # the sun by day, the moon (a crescent while moon_phase < 2) by night, in the same place
    r0, r1, c0, c1 = p.px(sy - 1.2 * r), p.px(sy + 1.2 * r), p.px(sx - 1.2 * r), p.px(sx + 1.2 * r)
    yy, xx = np.ogrid[r0:r1, c0:c1]
    xx, yy = (xx + np.float32(0.5)) / side, (yy + np.float32(0.5)) / side
    disc = smoothstep(1.0, 0.9, np.sqrt((xx - sx) ** 2 + (yy - sy) ** 2) / r).astype(np.float32)
    sun = _c([1.0, 1.0, 0.92] if s.time != "golden" else [1.0, 0.9, 0.6])
    k = 0.3 + 0.7 * s.sun_strength
    day, emit = p.day[:, r0:r1, c0:c1], p.emit[:, r0:r1, c0:c1]
    day[:] = day * (1 - disc * k) + sun * disc * k
    shadow = np.sqrt((xx - sx - s.moon_phase * r * 0.8) ** 2 + (yy - sy + 0.3 * r) ** 2) / r
    lit = (disc * smoothstep(0.9, 1.0, shadow)).astype(np.float32)
    moon = _c([0.96, 0.94, 0.84])
    emit[:] = emit * (1 - disc) + disc * (emit * 1.3 + 0.04) * (1 - lit) + moon * lit
    p.emit += gauss(side, sx, sy, 3 * r, 3 * r) * np.float32(0.12) * moon
    for puffs in s.clouds:
        lo = (puffs[:, :2] - puffs[:, 2:] * 1.5).min(0)
        hi = (puffs[:, :2] + puffs[:, 2:] * 1.5).max(0)
        c0, r0, c1, r1 = p.px(lo[0]), p.px(lo[1]), p.px(hi[0]), p.px(hi[1])
        if c1 <= c0 or r1 <= r0:
            continue
        off = np.array([c0, r0]) * ONE
        mask = np.zeros((r1 - r0, c1 - c0), np.float32)
        top = np.zeros((r1 - r0, c1 - c0), np.float32)
        for cx, cy, rx, ry in puffs:
            axes = tuple(int(v) for v in fixed([rx, ry], side))
            centre = tuple(int(v) for v in fixed([cx, cy], side) - off)
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1, cv2.LINE_8, SHIFT)
            up = tuple(int(v) for v in fixed([cx, cy - 0.35 * ry], side) - off)
            cv2.ellipse(top, up, axes, 0, 0, 360, 1.0, -1, cv2.LINE_8, SHIFT)
        soft = side * 0.006
        mask, top = blur(mask, soft), blur(top * mask, soft)
        under = _c(mix(s.sky_horizon, (0.62, 0.64, 0.68), 0.5))
        over = _c(mix(s.sunlight, (1, 1, 1), 0.4)) * 0.97
        day, emit = p.day[:, r0:r1, c0:c1], p.emit[:, r0:r1, c0:c1]
        day[:] = day * (1 - mask) + mask * (under + (over - under) * top)
        n_under = _c(s.night_zenith) * 1.4 + 0.015
        n_over = n_under + np.float32(0.6) * _c(s.moonlight)
        emit[:] = emit * (1 - 0.9 * mask) + 0.9 * mask * (n_under + (n_over - n_under) * top)


def _lit(s: Scene, colour: Colour, haze: float = 0.0) -> np.ndarray:
    """The day colour of a sunlit surface of albedo ``colour``, float32 (3, 1, 1)."""
    sun = np.asarray(s.sunlight) * (0.72 + 0.28 * s.sun_strength)
    c = np.asarray(colour) * sun * 1.05
    return _c(mix(c, s.sky_horizon, haze))


def _building(p: Painter, s: Scene, b: Building) -> None:
    away = 1 if s.sun[0] < 0.5 else -1  # the side facing away from the sun
    k = s.sun_strength
    if b.haze < 0.2:  # cast a shadow on what stands behind, away from the sun
        d = 0.04 * k
        x = b.x1 if away > 0 else b.x0 - d
        p.shadow(x, b.top + 0.03, x + d, b.base, 1 - 0.35 * k, 1.0)
    h = p.px(b.base) - p.px(b.top)
    grad = (1 - 0.18 * np.linspace(0, 1, max(h, 1), dtype=np.float32))[None, :, None]
    wall, alb = _lit(s, b.wall, b.haze), _c(b.wall)
    p.rect(b.x0, b.top, b.x1, b.base, wall * grad, alb)
    edge = min(0.012, (b.x1 - b.x0) * 0.12)
    ex = b.x1 - edge if away > 0 else b.x0
    p.rect(ex, b.top, ex + edge, b.base, wall * grad * (1 - 0.3 * k), alb * 0.8)
    roof, roof_alb = _lit(s, b.roof_colour, b.haze), b.roof_colour
    w, cx = b.x1 - b.x0, (b.x0 + b.x1) / 2
    if b.roof == "ledge":
        p.rect(b.x0 - 0.004, b.top - 0.006, b.x1 + 0.004, b.top + 0.004, wall * 0.8, alb * 0.8)
    elif b.roof == "gable":
        p.poly([(b.x0 - 0.01, b.top + 0.003), (cx, b.top - 0.45 * w), (b.x1 + 0.01, b.top + 0.003)],
               roof, roof_alb)
    elif b.roof == "spire":
        p.poly([(cx - 0.2 * w, b.top), (cx, b.top - 0.6 * w), (cx + 0.2 * w, b.top)],
               wall * 0.9, alb)
    elif b.roof == "tank":
        tx = b.x0 + 0.25 * w
        p.rect(tx, b.top - 0.05, tx + 0.045, b.top - 0.018, roof, roof_alb)
        p.rect(tx + 0.005, b.top - 0.02, tx + 0.009, b.top, roof * 0.6, roof_alb)
        p.rect(tx + 0.036, b.top - 0.02, tx + 0.04, b.top, roof * 0.6, roof_alb)
    elif b.roof == "antenna":
        ax, top = b.x0 + 0.7 * w, b.top - 0.06 - 0.3 * w
        p.rect(ax, top, ax + 0.004, b.top, roof * 0.7, (0.3, 0.3, 0.3))
        p.ellipse(ax + 0.002, top, 0.005, 0.005, roof * 0.7, BLACK, (1.0, 0.15, 0.1))
    if b.windows is not None:
        _windows_draw(p, b.windows)
    if b.shop is not None:
        g, a0, a1 = b.base - 0.075, b.x0 + 0.01, b.x1 - 0.01
        stripes = np.arange(p.px(a1) - p.px(a0)) // max(1, p.px(0.012)) % 2
        awning = _lit(s, b.shop) * (1 - 0.35 * stripes).astype(np.float32)[None, None, :]
        p.rect(a0, g, a1, g + 0.02, awning, b.shop)
        glass = _c(mix(s.sky_horizon, (0.1, 0.12, 0.15), 0.7))
        p.rect(b.x0 + 0.02, g + 0.025, cx - 0.01, b.base, glass, BLACK, (1.0, 0.88, 0.65))
        p.rect(cx + 0.01, g + 0.025, cx + 0.035, b.base, glass * 0.6, BLACK, (0.5, 0.4, 0.3))


def _windows_draw(p: Painter, win: Windows) -> None:
    rows, cols = win.day.shape[:2]
    side = p.side

    def index(origin, pitch, fill, count, start, stop):
        centres = (np.arange(start, stop) + 0.5) / side
        rel = (centres - origin) / pitch
        i = np.floor(rel).astype(np.int64)
        inside = (rel - i < fill) & (i >= 0) & (i < count)
        return np.where(inside, i, -1)

    c0, c1 = p.px(win.x0), p.px(win.x0 + cols * win.pitch_x)
    r0, r1 = p.px(win.y0), p.px(win.y0 + rows * win.pitch_y)
    ci = index(win.x0, win.pitch_x, win.fill_x, cols, c0, c1)
    ri = index(win.y0, win.pitch_y, win.fill_y, rows, r0, r1)
    m = (ri[:, None] >= 0) & (ci[None, :] >= 0)
    if not m.any():
        return
    rr, cc = np.broadcast_to(ri[:, None], m.shape)[m], np.broadcast_to(ci[None, :], m.shape)[m]
    for canvas, values in ((p.day, win.day), (p.emit, win.night)):
        canvas[:, r0:r1, c0:c1][:, m] = values[rr, cc].T
    p.alb[:, r0:r1, c0:c1][:, m] = 0.02


def _tree(p: Painter, s: Scene, t: Tree) -> None:
    away = 1 if s.sun[0] < 0.5 else -1
    k = s.sun_strength
    crown_y = t.base - t.trunk_h
    r = float(t.blobs[:, 2].max())
    shift = away * 0.6 * r * k
    p.shadow(t.x - 1.2 * r + shift, t.base - 0.015, t.x + 1.2 * r + shift, t.base + 0.02,
             1 - 0.45 * k - 0.1, 0.6, oval=True)
    trunk = (0.35, 0.24, 0.16)
    p.rect(t.x - t.trunk_w / 2, crown_y, t.x + t.trunk_w / 2, t.base, _lit(s, trunk) * 0.8, trunk)
    dark = _lit(s, t.leaves) * (0.62 + 0.1 * (1 - k))
    light = _lit(s, t.leaves) * 1.05
    top = dark + (light - dark) * (0.4 + 0.6 * k)
    for dx, dy, br in t.blobs:
        p.ellipse(t.x + dx, crown_y + dy, br, br * 0.92, dark, t.leaves)
    for dx, dy, br in t.blobs:
        if dy < 0.1 * r:
            p.ellipse(t.x + dx - away * br * 0.25, crown_y + dy - br * 0.2, br * 0.62,
                      br * 0.58, top, np.asarray(t.leaves) * 1.1)


def _lamp(p: Painter, s: Scene, lamp: Lamp) -> tuple[float, float]:
    """Draw a street lamp; returns where its light is (x, y)."""
    metal, steel = (0.18, 0.19, 0.21), _lit(s, (0.18, 0.19, 0.21))
    w = lamp.height * 0.04
    top = lamp.base - lamp.height
    p.shadow(lamp.x - 0.05, lamp.base - 0.006, lamp.x + 0.05, lamp.base + 0.008,
             1 - 0.3 * s.sun_strength, 1.0, oval=True)
    p.rect(lamp.x - w / 2, top, lamp.x + w / 2, lamp.base, steel, metal)
    p.rect(lamp.x - w, lamp.base - 0.02, lamp.x + w, lamp.base, steel, metal)
    head = _c(mix(_lit(s, (0.8, 0.8, 0.75)).ravel(), s.sky_horizon, 0.3))
    if lamp.style == "arm":
        hx = lamp.x + lamp.height * 0.28 * lamp.side
        p.rect(min(lamp.x, hx), top, max(lamp.x, hx), top + w, steel, metal)
        hw, hh = lamp.height * 0.09, lamp.height * 0.05
        p.poly([(hx - hw, top + hh), (hx - hw * 0.5, top), (hx + hw * 0.5, top),
                (hx + hw, top + hh)],
               steel, metal)
        p.rect(hx - hw * 0.8, top + hh, hx + hw * 0.8, top + hh * 1.4, head, BLACK, lamp.light)
        return hx, top + hh * 1.2
    rad = lamp.height * 0.07
    p.ellipse(lamp.x, top - rad * 0.8, rad, rad, head, BLACK, lamp.light)
    return lamp.x, top - rad * 0.8


def _car(p: Painter, s: Scene, car: Car) -> list[tuple[float, float, Colour, float]]:
    """Draw a car; returns its lights as (x, y, colour, strength)."""
    L, g, f = car.length, car.ground, car.facing
    x0, x1 = car.x - L / 2, car.x + L / 2
    hgt, wheel = L * 0.3, L * 0.1
    p.shadow(x0 - 0.01, g - 0.012, x1 + 0.01, g + 0.012, 1 - 0.5 * s.sun_strength, 0.5, oval=True)
    paint, body = car.paint, _lit(s, car.paint)
    sill, belt, roof_y = g - wheel * 0.7, g - hgt * 0.55, g - hgt
    front, back = (x1, x0) if f > 0 else (x0, x1)
    p.poly([(x0, sill), (x0 + 0.01, belt), (x1 - 0.01, belt), (x1, sill)], body, paint)
    cab = [(back + f * L * 0.12, belt), (back + f * L * 0.25, roof_y),
           (back + f * L * 0.62, roof_y), (back + f * L * 0.78, belt)]
    p.poly(cab, body * 0.95, paint)
    glass = _c(mix(s.sky_horizon, (0.15, 0.18, 0.22), 0.55))
    inset = [(cab[0][0] + f * L * 0.04, belt - 0.003),
             (cab[1][0] + f * L * 0.02, roof_y + L * 0.03),
             (cab[2][0] - f * L * 0.02, roof_y + L * 0.03),
             (cab[3][0] - f * L * 0.05, belt - 0.003)]
    p.poly(inset, glass, BLACK, (0.02, 0.02, 0.03))
    p.rect(x0, sill - L * 0.02, x1, sill, body * 0.7, np.asarray(paint) * 0.7)
    for wx in (x0 + L * 0.2, x1 - L * 0.2):
        p.ellipse(wx, g - wheel, wheel, wheel, (0.08, 0.08, 0.09), (0.06, 0.06, 0.06))
        p.ellipse(wx, g - wheel, wheel * 0.5, wheel * 0.5, _lit(s, (0.6, 0.6, 0.62)),
                  (0.4, 0.4, 0.4))
    ly = belt + (sill - belt) * 0.35
    head_x, tail_x = front - f * 0.008, back + f * 0.006
    p.ellipse(head_x, ly, 0.008, 0.006, _lit(s, (0.9, 0.9, 0.85)), BLACK, (1.0, 0.97, 0.85))
    p.ellipse(tail_x, ly, 0.006, 0.006, _lit(s, (0.7, 0.1, 0.08)), BLACK, (1.0, 0.15, 0.08))
    return [(head_x + f * 0.02, ly, (1.0, 0.95, 0.8), 0.8), (tail_x, ly, (1.0, 0.1, 0.05), 0.4)]


def _ground(p: Painter, s: Scene) -> None:
    g = s.ground
    if s.kind == "street":
        curb = s.horizon + g["sidewalk"]
        tiles = (np.arange(p.side) // max(1, p.px(0.05)) % 2).astype(np.float32)
        p.rect(0, s.horizon, 1, curb, _lit(s, g["paving"]) * (1 - 0.05 * tiles), g["paving"])
        p.rect(0, curb, 1, curb + 0.008, _lit(s, g["paving"]) * 1.1, g["paving"])
        n = max(p.side - p.px(curb + 0.008), 1)
        grad = (0.85 + 0.15 * np.linspace(0, 1, n, dtype=np.float32))[None, :, None]
        p.rect(0, curb + 0.008, 1, 1, _lit(s, g["road"]) * grad, g["road"])
        lane = curb + (1 - curb) * 0.4
        for x in np.arange(-0.02, 1.0, 0.12):
            p.rect(x, lane, x + 0.06, lane + 0.008, _lit(s, g["dash"]), g["dash"])
    elif s.kind == "park":
        n = max(p.side - p.px(s.horizon), 1)
        grad = (0.8 + 0.25 * np.linspace(0, 1, n, dtype=np.float32))[None, :, None]
        p.rect(0, s.horizon, 1, 1, _lit(s, g["grass"]) * grad, g["grass"])
        y, h = g["path_y"], g["path_h"]
        p.rect(0, y - h / 2, 1, y + h / 2, _lit(s, g["path"]), g["path"])
    else:
        p.rect(0, s.horizon, 1, s.ground_top, _lit(s, g["stone"]), g["stone"])
        p.rect(0, s.ground_top - 0.004, 1, s.ground_top, _lit(s, g["stone"]) * 0.7,
               np.asarray(g["stone"]) * 0.7)


def _water(img: np.ndarray, top: float, tint: Colour, seed: int) -> np.ndarray:
    """Mirror everything above ``top`` into the water below it, broken by ripples.
    ``img`` is (3, side, side); the ripples depend only on ``seed`` and the size."""
    side = img.shape[1]
    y0 = int(round(top * side))
    n = side - y0
    if n <= 0:
        return img
    rng = np.random.default_rng(seed)
    depth = np.arange(n, dtype=np.float32) + 0.5
    wobble = blur(rng.standard_normal((n, 1)).astype(np.float32), side * 0.004, side * 0.004)
    wobble = wobble / (wobble.std() + 1e-6) * (0.4 + depth[:, None] / n * 2.5) * side / 256
    map_x = np.ascontiguousarray(np.arange(side, dtype=np.float32)[None, :] + wobble * 2.0)
    map_y = np.ascontiguousarray(np.broadcast_to((y0 - depth)[:, None], (n, side)), np.float32)
    fade = (0.55 - 0.2 * depth / n)[:, None]
    out = img.copy()
    for plane, t in zip(out, tint):
        mirrored = cv2.remap(np.ascontiguousarray(plane), map_x, map_y, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        plane[y0:] = blur(mirrored, side * 0.001, side * 0.006) * fade + t * (1 - fade)
    return out


def render(s: Scene, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Both renders of a scene: (day, night), uint8 (size, size, 3)."""
    ss = supersample(size)
    side = size * ss
    p = Painter(side)
    _sky(p, s, ss)
    for x0, x1, top, wall in s.far:
        p.rect(x0, top, x1, s.horizon, _lit(s, wall, 0.7), np.asarray(wall) * 0.4)
    scale = min(1.0, size / 128)  # as for the stars: fewer, fainter lights when small
    far = s.far_lights[: int(len(s.far_lights) * scale)]
    r, c = (far[:, 1] * size).astype(int), (far[:, 0] * size).astype(int)
    keep = (c >= 0) & (c < size) & (r < size)
    r, c = r[keep], c[keep]
    keep = p.solid[r * ss, c * ss] > 0
    dots = np.zeros((size, size), np.float32)
    dots[r[keep], c[keep]] = 1
    dots = np.repeat(np.repeat(dots, ss, 0), ss, 1)
    p.emit[:] = p.emit * (1 - dots) + dots * _c((0.55, 0.45, 0.3)) * (0.5 + 0.5 * scale)
    for b in s.buildings:
        _building(p, s, b)
    _ground(p, s)
    lights = []  # (x, y, colour, strength, spread)
    for t in s.trees:
        _tree(p, s, t)
    for lamp in s.lamps:
        x, y = _lamp(p, s, lamp)
        lights.append((x, y, lamp.light, 1.0, lamp.height))
    for car in s.cars:
        for x, y, colour, k in _car(p, s, car):
            lights.append((x, y, colour, k, 0.05))
    # night: albedo under moonlight and lamplight, plus what glows by itself
    light = np.broadcast_to(_c(s.moonlight), (3, side, side)).copy()
    for x, y, colour, k, h in lights:
        pool = gauss(side, x, y + 0.45 * h, 0.5 * h, 0.55 * h) * 0.75
        near = gauss(side, x, y, 0.12 * h + 0.01, 0.12 * h + 0.01) * 0.45
        light += k * (pool + near) * _c(colour)
    night, day = p.alb * light + p.emit, p.day
    if s.kind == "waterfront":
        tint = np.asarray(s.ground["water"]) * np.asarray(s.sunlight)
        day = _water(day, s.ground_top, tint, s.seed)
        night = _water(night, s.ground_top, s.ground["night_water"], s.seed)
    day, night = reduce(day, size), reduce(night, size)
    # glow around every light, and a slight vignette at night
    bright = np.clip(night - 0.6, 0, None)
    night = night + 0.4 * blur(bright, size * 0.012) + 0.5 * blur(bright, size * 0.04)
    halo = np.zeros((size, size, 3), np.float32)
    for x, y, colour, k, h in lights:
        g = gauss(size, x, y, 0.02 + 0.1 * h, 0.02 + 0.1 * h) * (0.2 * k)
        halo += g[..., None] * np.asarray(colour, np.float32)
    c = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    night = (night + halo) * (1 - 0.5 * (c[:, None] ** 2 + c[None, :] ** 2))[..., None]
    return to_uint8(day), to_uint8(night)


def day2night_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (day, night) pair of the same random scene, uint8 (size, size, 3) each."""
    return render(describe(rng), size)
