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
  stills, after White-box Cartoonization's surface and structure (Wang and Yu 2020).
  Strong edge-preserving smoothing flattens texture; lightness falls into a few soft-edged
  tones; the sky and its clouds are found and made smooth, bright and line-free; skin is
  smoothed and keeps more of its shading and its natural colour; chroma is boosted but
  capped; thin dark lines are drawn only along strong edges and only as strokes, never as
  the dots and specks texture would give.
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

# anime backgrounds and cel-shaded stills: surfaces (few tones per region), structure (clean
# lines on strong edges only), a clean sky (White-box Cartoonization, Wang and Yu 2020)
CEL_TONES = 5             # luminance steps of the cel shading
TONE_SOFTNESS = 0.25      # width of a step's transition, as a share of one step
KEEP_SHADING = 0.35       # share of the smooth luminance kept beside the steps
SKIN_TONES = 3            # skin: fewer, softer steps and more of its own shading kept
SKIN_KEEP_SHADING = 0.55
CHROMA_BOOST = 1.35       # a vivid palette ...
SKIN_CHROMA_BOOST = 1.10  # ... that leaves skin natural
CHROMA_MAX = 75.0         # ... and is not garish (CIELAB chroma)
SHADOW_BLUE = 6.0         # shadows lean blue (CIELAB b* in the darkest tone)
INK = 0.70                # darkness of the outlines
LINE_STRENGTH = (0.06, 0.14)       # lightness gradient (per px, at sigma 2.5) of a line edge
SKIN_LINE_STRENGTH = (0.09, 0.16)  # ... on skin: eyes, nose, mouth, not wrinkles
LINE_MIN_PIXELS = 24      # a line is a stroke: shorter marks (specks, dots) are dropped
LINE_MIN_SPAN = 14


def _gradient(img: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def flatten(rgb: np.ndarray) -> np.ndarray:
    """Edge-preserving smoothing: bilateral filters then a recursive edge-preserving filter;
    uint8 (H, W, 3) in and out."""
    out = rgb
    for _ in range(2):
        out = cv2.bilateralFilter(out, 7, 40, 5)
    return cv2.edgePreservingFilter(out, flags=cv2.RECURS_FILTER, sigma_s=20, sigma_r=0.25)


def sky_and_clouds(rgb: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1]: the sky of :func:`sky_mask` and the clouds in it
    (bright, grey or bluish, untextured pixels connected to it), gaps closed."""
    base = sky_mask(rgb) > 0.5
    x = flat.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value, chroma = x.max(axis=2), x.max(axis=2) - x.min(axis=2)
    gray = cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    texture = _blur(_gradient(gray), 3.0)
    bluish = (b >= r) & (b >= g - 0.08)
    candidate = base | ((value > 0.5) & ((chroma < 0.2) | bluish) & (texture < 0.25))
    _, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[base])
    mask = np.isin(labels, touching[touching > 0]).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11)))
    return np.clip(_blur(mask.astype(np.float32), 1.5), 0.0, 1.0)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] of skin-coloured pixels: CIELAB hue 18-68 degrees
    (orange-red, not the yellow of earth or grass), chroma 8-50, lightness 25-97."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    hue, chroma = np.degrees(np.arctan2(b, a)), np.hypot(a, b)
    mask = (_smoothstep(18, 28, hue) * (1 - _smoothstep(58, 68, hue))
            * _smoothstep(8, 14, chroma) * (1 - _smoothstep(40, 50, chroma))
            * _smoothstep(25, 40, lightness) * (1 - _smoothstep(92, 97, lightness)))
    return _blur(mask.astype(np.float32), 2.0)


def _masked_blur(img: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``img`` (H, W, C) over the pixels ``weight`` (H, W) selects
    (normalised convolution): smooth areas are smoothed without the colours of the edges
    and objects around them bleeding in."""
    w = weight.astype(np.float32) ** 4  # pixels half in the selection barely contribute
    return _blur(img * w[..., None], sigma) / np.maximum(_blur(w, sigma), 1e-4)[..., None]


def _cel(lightness: np.ndarray, tones: int = CEL_TONES, keep: float = KEEP_SHADING
         ) -> np.ndarray:
    """Lightness [0, 1] -> ``tones`` soft-edged steps, mixed with ``keep`` of the value."""
    scaled = lightness * tones
    step = np.floor(scaled)
    half = TONE_SOFTNESS / 2
    stepped = (step + _smoothstep(0.5 - half, 0.5 + half, scaled - step)) / tones
    return keep * lightness + (1.0 - keep) * stepped


def ink_lines(lightness: np.ndarray, sky: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: thin dark-side outlines (difference of Gaussians, soft),
    only along strong structural edges (stronger still on ``skin``; in the ``sky`` only
    crisp ones, such as a roof's, never a cloud's soft edge), and only as strokes: marks
    shorter than LINE_MIN_SPAN px are dropped, so texture draws neither dots nor specks."""
    smooth = _blur(lightness, 0.8)
    dark_side = _blur(smooth, 1.6) - _blur(smooth, 1.0)
    soft = _smoothstep(0.004, 0.016, dark_side)
    crisp = _smoothstep(0.02, 0.04, dark_side)
    strength = _gradient(_blur(lightness, 2.5))
    strong = (_smoothstep(*LINE_STRENGTH, strength) * (1 - skin)
              + _smoothstep(*SKIN_LINE_STRENGTH, strength) * skin)
    soft = (soft * strong * (1.0 - sky * (1.0 - crisp))).astype(np.float32)
    _, labels, stats, _ = cv2.connectedComponentsWithStats((soft > 0.35).astype(np.uint8),
                                                           connectivity=8)
    span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    stroke = (stats[:, cv2.CC_STAT_AREA] >= LINE_MIN_PIXELS) & (span >= LINE_MIN_SPAN)
    stroke[0] = False
    kept = cv2.dilate(stroke[labels].astype(np.uint8), np.ones((3, 3), np.uint8))
    return _blur(soft * kept, 0.7)


def anime_from_photo(rgb: np.ndarray) -> np.ndarray:
    """The photo ``rgb`` (H, W, 3) uint8 as an anime background or cel-shaded still, uint8.

    Surfaces: edge-preserving smoothing; flat areas (by their gradient relative to their
    lightness, so dark texture is not taken for flat) and the sky smoothed further without
    the colours around them bleeding in; lightness in CEL_TONES soft steps
    (skin: fewer, with more of its shading). Sky and clouds: smooth, in soft tones, no lines
    but crisp ones. Structure: thin dark lines only on strong edges, as strokes. Colour:
    chroma boosted and capped, shadows leaning blue, skin kept natural."""
    flat = flatten(rgb)
    sky = sky_and_clouds(rgb, flat)
    skin = skin_mask(flat)
    lab = cv2.cvtColor(flat.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lightness = lab[..., 0] / 100.0
    relative = _blur(_gradient(lightness), 3.0) / (_blur(lightness, 3.0) + 0.15)
    calm = 1.0 - _smoothstep(0.01, 0.04, relative)
    for weight, sigma in ((calm, 4.0), (sky, 3.0)):  # flat areas, then the sky, smoother
        lab = lab + weight[..., None] * (_masked_blur(lab, weight, sigma) - lab)
    lab = lab + (0.6 * skin)[..., None] * (cv2.bilateralFilter(lab, 9, 10, 5) - lab)
    value = np.clip(lab[..., 0] / 100.0, 0.0, 1.0)
    tone = _cel(value)
    tone = tone + skin * (_cel(value, SKIN_TONES, SKIN_KEEP_SHADING) - tone)
    sky_tone = 0.5 * _cel(value, 3, 0.1) + 0.5 * value
    tone = tone + sky * (sky_tone - tone)
    ink = ink_lines(lightness, sky, skin)
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b) + 1e-6
    boost = CHROMA_BOOST + skin * (SKIN_CHROMA_BOOST - CHROMA_BOOST)
    scale = np.minimum(chroma * boost, CHROMA_MAX) / chroma
    lab[..., 1] = a * scale
    lab[..., 2] = b * scale - SHADOW_BLUE * (1.0 - tone) * (1.0 - sky) * (1.0 - skin)
    lab[..., 0] = 100.0 * tone * (1.0 - INK * ink)
    return _uint8(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


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
