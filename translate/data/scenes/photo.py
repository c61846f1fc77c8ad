"""Paired targets rendered from real photographs: the same scene in another style.

Each renderer takes a photo, uint8 (H, W, 3) RGB, and returns its counterpart of the same
shape and type, deterministically (the same photo gives the same bytes). Every operation
works at a fixed pixel scale (kernel sizes in pixels, not in fractions of the image), so the
mapping is local and a fully convolutional generator can learn it once and apply it at any
size; ``translate data synth TASK --from PHOTOS`` renders a photo at several scales for that.

- :func:`night_from_photo` (``day2night``): day for night, as film crews grade it. Exposure
  down by about 3.5 stops in linear light; the loss of colour and the blue shift of night
  vision (Purkinje shift); the sky, found as the smooth bright region that touches the top
  edge, replaced by a dark blue gradient that keeps the clouds faintly; the photo's own
  small bright sources (lamps, sparkles, highlights) kept bright and given a warm glow;
  crushed shadows and a little sensor noise. Nothing is drawn that the photo does not hold.
- :func:`anime_from_photo` (``real2anime``): the look of anime backgrounds and cel-shaded
  stills (specified in docs/models.md), after White-box Cartoonization's surface and
  structure representations (Wang and Yu 2020): edge-preserving smoothing and mean-shift
  regions flatten every surface (walls, roads and sky too) to two or three tones with crisp
  boundaries; greens move toward emerald, highlights warm and shadows cool; a blue sky
  becomes an anime blue with white, softly shaded clouds and no dark rims; skin keeps two
  smooth tones; thin dark line art follows region contours, never texture.
- :func:`sketch_from_photo` (``sketch``): a line drawing (XDoG) of the flattened photo;
  :func:`gray_from_photo` (``gray``), :func:`noisy_from_photo` (``noise``) and
  :func:`jpeg_from_photo` (``jpeg``): the photo degraded, for colourisation, denoising and
  deblocking, which train from B to A (``data.direction=b2a``); B to A of ``sketch`` is
  sketch to photo.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np


def _linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB [0, 1] -> linear light [0, 1] (IEC 61966-2-1)."""
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB, both [0, 1] (values clipped first)."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92,
                    1.055 * np.power(linear, 1 / 2.4) - 0.055)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _seed(rgb: np.ndarray) -> int:
    """A seed drawn from the pixels, so that the noise of a photo is always the same."""
    return int.from_bytes(hashlib.sha256(rgb.tobytes()).digest()[:8], "little")


# ------------------------------------------------------------------------------ day2night

NIGHT_EXPOSURE = 0.09             # about -3.5 stops in linear light
NIGHT_TINT = np.array([0.62, 0.82, 1.30], np.float32)   # blue shift of night vision
NIGHT_SATURATION = 0.35           # what is left of the day's colour
SKY_TOP = np.array([0.0016, 0.0030, 0.0105], np.float32)       # linear night sky, zenith
SKY_HORIZON = np.array([0.0075, 0.0105, 0.0240], np.float32)   # ... and near the horizon
LIGHT_COLOUR = np.array([1.0, 0.72, 0.42], np.float32)         # tungsten-like glow


def sky_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] of the sky: bright, blue or grey, smooth pixels in
    regions that touch the top edge of the image."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value = x.max(axis=2)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    texture = _blur(np.hypot(gx, gy), 2.0)
    chroma = value - x.min(axis=2)
    skyish = ((value > 0.42) & (b >= r - 0.03) & (b >= g - 0.08) & (texture < 0.10)) | \
             ((value > 0.72) & (chroma < 0.12) & (texture < 0.06))
    count, labels = cv2.connectedComponents(skyish.astype(np.uint8), connectivity=8)
    top = max(1, rgb.shape[0] // 50)
    touching = np.unique(labels[:top][skyish[:top]])
    mask = np.isin(labels, touching[touching > 0]).astype(np.float32)
    return np.clip(_blur(mask, 1.5), 0.0, 1.0)


def bright_sources(rgb: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: small very bright spots (lamps, sparkles, highlights) that
    stand out from their surroundings, outside the sky."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    tophat = gray - cv2.morphologyEx(gray, cv2.MORPH_OPEN, kernel)
    return (_smoothstep(0.25, 0.45, tophat) * _smoothstep(0.88, 0.98, gray)
            * (1.0 - sky)).astype(np.float32)


def night_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The day photo ``rgb`` (H, W, 3) uint8 as the same scene by night, uint8."""
    lin = _linear(rgb.astype(np.float32) / 255.0)
    luma = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    grey = luma[..., None]
    night = (grey + NIGHT_SATURATION * (lin - grey)) * NIGHT_TINT * NIGHT_EXPOSURE
    night = night * _smoothstep(0.0, 0.02, night.mean(axis=2, keepdims=True) + 0.004)
    sky = sky_mask(rgb)[..., None]
    rows = np.linspace(0.0, 1.0, rgb.shape[0], dtype=np.float32)[:, None, None]
    depth = np.clip(rows / 0.6, 0.0, 1.0)
    night_sky = SKY_TOP + (SKY_HORIZON - SKY_TOP) * depth + 0.05 * grey * NIGHT_TINT
    night = night * (1.0 - sky) + night_sky * sky
    source = bright_sources(rgb, sky[..., 0])[..., None]
    warm = source * (0.5 * lin + 0.5 * LIGHT_COLOUR)
    glow = 0.45 * _blur(warm, 2.0) + 0.25 * _blur(warm, 6.0) + 0.15 * _blur(warm, 16.0)
    night = night * (1.0 - source) + 0.85 * warm + 0.6 * glow
    out = _srgb(night)
    noise = np.random.default_rng(_seed(rgb)).normal(0.0, 0.008, rgb.shape[:2])
    return _uint8(out + noise[..., None].astype(np.float32))


# ----------------------------------------------------------------------------- real2anime

# anime backgrounds and cel-shaded stills (the look is specified in docs/models.md): regions
# flattened to a few tones with crisp boundaries, an anime palette, clouds as soft white
# shapes, thin dark line art on contours only (after White-box Cartoonization's surface and
# structure representations, Wang and Yu 2020). Every size below is in pixels.
REGION_RADIUS = 8          # mean shift: spatial radius of a region's flattening ...
REGION_COLOUR = 18         # ... and its colour radius (8-bit RGB levels)
CEL_TONES = 6              # lightness steps of the cel shading (a region spans 2 or 3)
TONE_SOFTNESS = 0.2        # width of a step's transition, as a share of one step
KEEP_SHADING = 0.1         # share of the smooth lightness kept beside the steps
SHADOW_GAMMA = 0.9         # shadows lifted a little, as anime backgrounds are
SKIN_TONES = 2             # skin: two smooth tones, from the edge-preserved photo ...
SKIN_SOFTNESS = 0.8        # ... with a soft step ...
SKIN_KEEP_SHADING = 0.5    # ... and more of its own shading, ...
SKIN_GAMMA = 0.8           # ... lifted by this gamma (light, not bruised)
GREEN_HUES = (88, 100, 175, 195)   # CIELAB hue (degrees) of foliage and grass, soft edges
EMERALD = 140.0            # the hue greens are moved toward ...
GREEN_SHIFT = 0.35         # ... by this share of the way
GREEN_CHROMA = 0.45        # greens: chroma x (1 + this), lightness lifted a little
CHROMA_MAX = 80.0          # no colour beyond this CIELAB chroma
WARM_LIGHT = (2.0, 7.0)    # CIELAB (a*, b*) added to the lightest tones: warm highlights
COOL_SHADOW = (3.0, -8.0)  # ... and to the darkest: shadows lean blue-violet
SKY_DEEP = np.array([48.0, 14.0, -60.0], np.float32)   # CIELAB anime sky, where the photo's
SKY_PALE = np.array([86.0, -8.0, -16.0], np.float32)   # is darkest and where lightest
CLOUD_LIGHT = (0.82, 0.98)  # clouds: white, lightness in this range, lightly shaded ...
CLOUD_TINT = (2.0, -7.0)    # ... and a little cool
INK = 0.75                  # darkness of the line art, drawn on the dark side of an edge:
LINE_DARK_SIDE = (0.002, 0.010)  # the difference of Gaussians there (lightness units)
LINE_CANNY = (40, 90)       # Canny thresholds (8-bit lightness) of a contour ...
LINE_MIN_PIXELS = 30        # ... kept only as a stroke of this many pixels ...
LINE_MIN_SPAN = 24          # ... spanning this far
TEXTURE_CANNY = (20, 40)    # weak edges of the edge-preserved photo ...
TEXTURE_WINDOW = 25         # ... counted in this window: where their density ...
TEXTURE_DENSITY = (0.09, 0.15)  # ... passes this, it is texture and gets no lines
LINE_STRENGTH = (0.06, 0.14)       # lines only where the photo's lightness gradient (per
SKIN_LINE_STRENGTH = (0.10, 0.18)  # px, at sigma 2) reaches this; on skin (eyes, mouth) this


def _gradient(img: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def flatten(rgb: np.ndarray) -> np.ndarray:
    """Edge-preserving smoothing: bilateral filters then a recursive edge-preserving filter;
    uint8 (H, W, 3) in and out."""
    out = rgb
    for _ in range(2):
        out = cv2.bilateralFilter(out, 7, 40, 5)
    return cv2.edgePreservingFilter(out, flags=cv2.RECURS_FILTER, sigma_s=20, sigma_r=0.25)


def regions(flat: np.ndarray) -> np.ndarray:
    """Flat regions with crisp boundaries: mean-shift filtering (radius REGION_RADIUS px,
    REGION_COLOUR levels) of the edge-preserved photo, uint8 (H, W, 3) in and out."""
    return cv2.pyrMeanShiftFiltering(flat, REGION_RADIUS, REGION_COLOUR)


def sky_and_clouds(rgb: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft masks (H, W) float32 in [0, 1]: the sky (of :func:`sky_mask`, with the bluish
    and the bright grey untextured pixels connected to it, gaps closed) and the clouds in
    it (brighter and greyer than the sky around them, or nearly white)."""
    base = sky_mask(rgb) > 0.5
    x = flat.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value, chroma = x.max(axis=2), x.max(axis=2) - x.min(axis=2)
    gray = cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    texture = _blur(_gradient(gray), 3.0)
    cloudish = (value > 0.70) & ((chroma < 0.18) | (b >= r)) & (chroma < 0.32) & (texture < 0.3)
    bluish = (value > 0.45) & (chroma > 0.10) & (b >= r) & (b >= g - 0.08) & (texture < 0.2)
    _, labels = cv2.connectedComponents((base | cloudish | bluish).astype(np.uint8),
                                        connectivity=8)
    touching = np.unique(labels[base])
    mask = np.isin(labels, touching[touching > 0]).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    sky = np.clip(_blur(mask.astype(np.float32), 1.2), 0.0, 1.0)
    blue = (sky * (chroma > 0.12)).astype(np.float32)  # the sky's blue, around a cloud
    weight = _blur(blue, 24.0)
    around = np.where(weight > 0.02, _blur(value * blue, 24.0) / np.maximum(weight, 1e-4),
                      value)
    grey = 1.0 - _smoothstep(0.12, 0.24, chroma)
    cloud = sky * _smoothstep(0.03, 0.10, value - around) * grey
    white = sky * _smoothstep(0.85, 0.95, value) * (1.0 - _smoothstep(0.08, 0.16, chroma))
    return sky, _blur(np.maximum(cloud, white).astype(np.float32), 1.5)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] of skin-coloured pixels: CIELAB hue 18-68 degrees
    (orange-red, not the yellow of earth or grass), chroma 8-60, lightness 25-97."""
    lab = _lab(rgb)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    hue, chroma = np.degrees(np.arctan2(b, a)), np.hypot(a, b)
    mask = (_smoothstep(18, 28, hue) * (1 - _smoothstep(58, 68, hue))
            * _smoothstep(8, 14, chroma) * (1 - _smoothstep(52, 62, chroma))
            * _smoothstep(25, 40, lightness) * (1 - _smoothstep(92, 97, lightness)))
    return _blur(mask.astype(np.float32), 2.0)


def _cel(lightness: np.ndarray, tones: int | None = None, keep: float | None = None,
         softness: float | None = None) -> np.ndarray:
    """Lightness [0, 1] -> ``tones`` steps (transitions ``softness`` of a step wide), mixed
    with ``keep`` of the value (defaults: CEL_TONES, KEEP_SHADING, TONE_SOFTNESS)."""
    tones = CEL_TONES if tones is None else tones
    keep = KEEP_SHADING if keep is None else keep
    softness = TONE_SOFTNESS if softness is None else softness
    scaled = lightness * tones
    step = np.floor(scaled)
    half = softness / 2
    stepped = (step + _smoothstep(0.5 - half, 0.5 + half, scaled - step)) / tones
    return keep * lightness + (1.0 - keep) * stepped


def ink_lines(lightness: np.ndarray, photo_lightness: np.ndarray, sky: np.ndarray,
              cloud: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: thin line art on the contours of the flat regions
    (``lightness``, [0, 1]), drawn on the dark side of the photo's own edge (difference of
    Gaussians of ``photo_lightness``, so a line lies where the photo's edge is). A contour is
    a Canny edge kept only as a stroke (LINE_MIN_PIXELS, LINE_MIN_SPAN), where the photo's
    gradient is strong (LINE_STRENGTH; on skin SKIN_LINE_STRENGTH: eyes, mouth), never where
    the edge-preserved photo is textured (its weak edges dense), on a cloud or inside the
    sky, so texture draws no lines and clouds get no dark rims."""
    edges = cv2.Canny(_uint8(lightness), *LINE_CANNY, L2gradient=True) > 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8),
                                                           connectivity=8)
    span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    stroke = (stats[:, cv2.CC_STAT_AREA] >= LINE_MIN_PIXELS) & (span >= LINE_MIN_SPAN)
    stroke[0] = False
    contour = cv2.dilate(stroke[labels].astype(np.uint8), np.ones((3, 3), np.uint8))
    contour = _blur(contour.astype(np.float32), 0.6)
    weak = cv2.Canny(_uint8(photo_lightness), *TEXTURE_CANNY, L2gradient=True)
    texture = cv2.boxFilter(weak.astype(np.float32) / 255.0, -1,
                            (TEXTURE_WINDOW, TEXTURE_WINDOW))
    gradient = _gradient(_blur(photo_lightness, 2.0))
    strong = _smoothstep(*LINE_STRENGTH, gradient)
    strong = strong + skin * (_smoothstep(*SKIN_LINE_STRENGTH, gradient) - strong)
    near_cloud = cv2.dilate((cloud > 0.2).astype(np.uint8), np.ones((7, 7), np.uint8))
    clear = np.clip(_blur(near_cloud.astype(np.float32), 1.5) + sky * (sky > 0.99), 0, 1)
    smooth = _blur(photo_lightness, 0.8)
    dark_side = _smoothstep(*LINE_DARK_SIDE, _blur(smooth, 1.6) - _blur(smooth, 1.0))
    return (dark_side * contour * (1.0 - _smoothstep(*TEXTURE_DENSITY, texture)) * strong
            * (1.0 - clear)).astype(np.float32)


def _palette(lab: np.ndarray, tone: np.ndarray, sky: np.ndarray, skin: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anime palette off the sky: greens toward emerald (hue, some chroma, a little
    light), warm highlights, cool shadows, chroma capped. Returns (tone, a*, b*)."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    lo, lo_end, hi, hi_end = GREEN_HUES
    green = (_smoothstep(lo, lo_end, hue) * (1 - _smoothstep(hi, hi_end, hue))
             * _smoothstep(14, 24, chroma))
    hue = hue + green * GREEN_SHIFT * (EMERALD - hue)
    chroma = np.minimum(chroma * (1 + GREEN_CHROMA * green), CHROMA_MAX)
    tone = tone + 0.05 * green * (1 - tone)
    a, b = np.cos(np.radians(hue)) * chroma, np.sin(np.radians(hue)) * chroma
    warm = _smoothstep(0.7, 0.9, tone) * (1 - sky)
    cool = (1 - _smoothstep(0.2, 0.45, tone)) * (1 - sky) * (1 - skin)
    a = a + WARM_LIGHT[0] * warm + COOL_SHADOW[0] * cool
    b = b + WARM_LIGHT[1] * warm + COOL_SHADOW[1] * cool
    return tone, a, b


def _mix_lch(lab0: np.ndarray, lab1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """CIELAB (H, W, 3) colours ``lab0`` -> ``lab1`` by ``t`` (H, W) in [0, 1]: lightness
    and chroma linearly, hue along the shorter arc."""
    c0, c1 = np.hypot(lab0[..., 1], lab0[..., 2]), np.hypot(lab1[..., 1], lab1[..., 2])
    h0 = np.arctan2(lab0[..., 2], lab0[..., 1])
    turn = np.arctan2(lab1[..., 2], lab1[..., 1]) - h0
    turn = (turn + np.pi) % (2 * np.pi) - np.pi
    chroma, hue = c0 + t * (c1 - c0), h0 + t * turn
    light = lab0[..., 0] + t * (lab1[..., 0] - lab0[..., 0])
    return np.stack([light, chroma * np.cos(hue), chroma * np.sin(hue)], -1)


def _sky_colours(flat: np.ndarray, photo_lightness: np.ndarray, a: np.ndarray,
                 b: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """CIELAB (H, W, 3) of the sky: where the photo's sky is blue, an anime blue between
    SKY_DEEP and SKY_PALE chosen by the photo's own lightness (so the gradient toward the
    horizon is the photo's); elsewhere (overcast, sunset) its own colour in 4 soft tones,
    the two mixed in CIELAB LCh along the shorter way round the hue circle (blue turns to
    a sunset's orange through violet and pink, not through grey); clouds white in soft
    tones, mixed in by their soft mask so an edge is never darker than the sky or the
    cloud beside it."""
    smooth = _blur(photo_lightness, 2.0)
    anime = SKY_DEEP + (SKY_PALE - SKY_DEEP) * _smoothstep(0.45, 0.95, smooth)[..., None]
    x = flat.astype(np.float32) / 255.0
    blue = _blur(_smoothstep(0.02, 0.10, x[..., 2] - x[..., 0]), 3.0)[..., None]
    own = np.stack([100 * _cel(smooth, 4, 0.3, 0.4), a, b], -1)
    colour = _mix_lch(own, anime, blue[..., 0])
    shade = _cel(smooth, 3, 0.2, 0.6)
    light = 100 * np.clip(CLOUD_LIGHT[0] + 0.6 * (shade - 0.8), *CLOUD_LIGHT)
    white = np.stack([light, np.full_like(light, CLOUD_TINT[0]),
                      np.full_like(light, CLOUD_TINT[1])], -1)
    return colour + cloud[..., None] * (white - colour)


def anime_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The photo ``rgb`` (H, W, 3) uint8 as an anime background or cel-shaded still, uint8.

    Surfaces: edge-preserving smoothing, then mean-shift regions with crisp boundaries;
    lightness in CEL_TONES crisp steps (skin: two smooth tones). Palette: greens toward
    emerald, warm highlights, cool shadows; a blue sky made an anime blue, with white
    soft-shaded clouds. Structure: thin dark line art on region contours, never on texture,
    on a cloud or inside the sky."""
    flat = flatten(rgb)
    lab = _lab(regions(flat))
    photo_lightness = _lab(flat)[..., 0] / 100.0
    sky, cloud = sky_and_clouds(rgb, flat)
    skin = skin_mask(flat)
    value = np.clip(lab[..., 0] / 100.0, 0.0, 1.0) ** SHADOW_GAMMA
    tone = _cel(value)
    skin_tone = _cel(_blur(photo_lightness, 3.0) ** SKIN_GAMMA, SKIN_TONES,
                     SKIN_KEEP_SHADING, SKIN_SOFTNESS)
    tone = tone + skin * (skin_tone - tone)
    tone, a, b = _palette(lab, tone, sky, skin)
    sky_lab = _sky_colours(flat, photo_lightness, a, b, cloud)
    ink = ink_lines(_blur(value, 0.7), photo_lightness, sky, cloud, skin)
    out = np.stack([100.0 * tone, a, b], -1)
    out = out + sky[..., None] * (sky_lab - out)
    out[..., 0] *= 1.0 - INK * ink
    return _uint8(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB))


def cel_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The earlier real2anime renderer (``cel``), kept because the quality benchmark's
    real2anime tasks were measured on it: the flattened photo in 5 soft tones keeping 30% of
    its shading, chroma x1.45, flat areas blurred, and dark outlines wherever the difference
    of Gaussians of the lightness crosses a threshold, texture included."""
    flat = flatten(rgb)
    lab = cv2.cvtColor(flat.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lightness = lab[..., 0] / 100.0
    calm = 1.0 - _smoothstep(0.01, 0.05, _blur(_gradient(lightness), 3.0))
    lab = lab + calm[..., None] * (_blur(lab, 4.0) - lab)
    scaled = np.clip(lab[..., 0] / 100.0, 0.0, 1.0) * 5
    step = np.floor(scaled)
    stepped = (step + _smoothstep(0.41, 0.59, scaled - step)) / 5
    cel = 0.3 * scaled / 5 + 0.7 * stepped
    ink = _smoothstep(0.006, 0.022, _blur(lightness, 2.4) - _blur(lightness, 1.2))
    lab[..., 0] = 100.0 * cel * (1.0 - 0.85 * ink)
    lab[..., 1:] *= 1.45
    return _uint8(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


# ----------------------------------------------------------- restoration and line tasks

SKETCH_SIGMA = 1.0        # XDoG: scale of the finer Gaussian, pixels
SKETCH_K = 1.6            # ratio of the coarser Gaussian's scale
SKETCH_TAU = 1.0          # weight of the coarser one (1: flat areas stay white, unfilled)
SKETCH_EPSILON = -0.008   # threshold of the difference (lightness units): the dark side
SKETCH_PHI = 200.0        # sharpness of the soft threshold (lines 1-3 px, anti-aliased)
NOISE_SIGMA = 25 / 255    # the denoising task's Gaussian noise
NOISE_SHOT = 0.02         # its signal-dependent (shot) part, at full white
JPEG_QUALITY = 10         # the deblocking task's JPEG quality


def gray_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The photo's luminance (Rec. 601, as JPEG keeps it) in three equal channels: the
    input of colourisation (gray -> colour)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[..., None], 3, axis=2)


def sketch_from_photo(rgb: np.ndarray) -> np.ndarray:
    """A pencil line drawing of the photo: thin continuous dark lines on white, from the
    extended difference of Gaussians of its lightness (XDoG, Winnemoeller et al. 2012:
    D = G_s - tau G_ks; white where D >= epsilon, else 1 + tanh(phi (D - epsilon))), after
    the edge-preserving smoothing of :func:`flatten` so texture draws no lines."""
    flat = flatten(rgb)
    lightness = cv2.cvtColor(flat.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0] / 100
    d = _blur(lightness, SKETCH_SIGMA) - SKETCH_TAU * _blur(lightness,
                                                            SKETCH_SIGMA * SKETCH_K)
    e = np.where(d >= SKETCH_EPSILON, 1.0, 1.0 + np.tanh(SKETCH_PHI * (d - SKETCH_EPSILON)))
    return np.repeat(_uint8(e.astype(np.float32))[..., None], 3, axis=2)


def noisy_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The photo with sensor noise (Gaussian, sigma 25/255, plus a little shot noise),
    the same for the same photo: the input of denoising."""
    x = rgb.astype(np.float32) / 255.0
    rng = np.random.default_rng(_seed(rgb))
    sigma = np.sqrt(NOISE_SIGMA ** 2 + NOISE_SHOT ** 2 * x)
    return _uint8(x + sigma * rng.standard_normal(x.shape).astype(np.float32))


def jpeg_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The photo saved as a JPEG of quality 10 (8x8 blocks, ringing, colour bleeding) and
    decoded again: the input of deblocking."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# task -> renderer of B from the photo A; restoration tasks train B -> A (data.direction=b2a)
PHOTO_TASKS = {"day2night": night_from_photo, "real2anime": anime_from_photo,
               "cel": cel_from_photo,
               "sketch": sketch_from_photo, "gray": gray_from_photo,
               "noise": noisy_from_photo, "jpeg": jpeg_from_photo}
