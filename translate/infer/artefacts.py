"""No-reference artefact figures: how a translation compares with its own input, for users
who have no true counterpart to score against.

All three work on the luminance of the input and the output (uint8 RGB, same size):

- :func:`periodicity`: a lattice or checkerboard puts sharp peaks into the spectrum. The
  peakiness of an image is the largest ratio, over the frequencies above a low cut, of the
  power of a frequency to the median power of all frequencies at the same radius (a
  Hann-windowed, high-passed picture, at most a 1024 x 1024 centre crop). The figure is the
  output's peakiness over the input's: about 1 when the output has no rhythm of its own,
  10 or more for a visible lattice.
- :func:`hallucination`: the share of the output's edge energy (squared Sobel gradient)
  that lies where the input has no edge (input gradient below a tenth of its 99th
  percentile, edges widened by 3 px). About 0.1 for a colour grade; higher when the output
  draws structure that is not in the photo.
- :func:`fidelity`: the correlation of the input's and the output's edge maps (gradient
  magnitudes, lightly blurred). 1 when every edge is kept where it was; near 0 when the
  scene is lost.
- :func:`flattening`: the flat share of the output less the input's, where the flat share
  is the share of pixels whose luminance step (Sobel, after a sigma-1 blur) is below
  :data:`FLAT_SHARE` of the picture's own 99th-percentile step, so that darkening or a
  colour grade changes nothing. About 0 for a grade; positive when texture becomes flat
  areas (a cel or poster look: 0.2 to 0.4 for this project's anime renderer); negative
  when the output adds texture or noise.

Flat pictures: the spectrum's ring medians are floored at the power that 8-bit quantisation
noise puts into every frequency, and a picture without peaks has peakiness 1, so a flat
input or output (black to white, a constant grey) scores periodicity 1 unless the other
has a rhythm of its own; the figure stays finite. An input without edges (its 99th-percentile
gradient below that of a step of :data:`FLAT_STEP` grey levels) has no edges to keep or to
draw beside: its hallucination and fidelity are undefined, None, and :func:`summarise` leaves
them out and counts them. An output without edge energy (below that of quantisation noise)
draws nothing: hallucination 0.

:func:`artefact_figures` returns the four for one pair; :func:`summarise` the medians and
worst values over many.
"""

from __future__ import annotations

import cv2
import numpy as np

CROP = 1024
LOW_CUT = 0.01       # cycles per pixel below which frequencies are ignored
HIGH_PASS = 8.0      # sigma (pixels) of the blur subtracted before the spectrum
NO_EDGE = 0.10       # share of the input's 99th-percentile gradient
EDGE_MARGIN = 3      # pixels an input edge is widened by
FLAT_STEP = 2        # grey levels: a picture whose edges are all weaker is flat
QUANT_POWER = (1 / 255) ** 2 / 12  # variance of 8-bit quantisation noise, in [0, 1] units
SOBEL_GAIN = 4.0     # the 3x3 Sobel's response to a unit step
FLAT_SHARE = 0.03    # of the 99th-percentile step: a pixel whose step is below is flat


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


def _centre(gray: np.ndarray, side: int = CROP) -> np.ndarray:
    h, w = gray.shape
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return gray[y:y + side, x:x + side]


def peakiness(gray: np.ndarray) -> float:
    """Largest power / median power at the same radius of the high-passed spectrum of
    ``gray`` (H, W) float in [0, 1]."""
    g = _centre(gray)
    g = g - cv2.GaussianBlur(g, (0, 0), HIGH_PASS)
    h, w = g.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    power = np.abs(np.fft.rfft2(g * window)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fy, fx)
    keep = radius >= LOW_CUT
    bins = np.minimum((radius * 2 * min(h, w)).astype(np.int64), min(h, w))
    order = np.argsort(bins[keep], kind="stable")
    ring_of, values = bins[keep][order], power[keep][order]
    floor = QUANT_POWER * float((window.astype(np.float64) ** 2).sum())  # noise, per bin
    ratios = [ring.max() / max(float(np.median(ring)), floor)
              for ring in np.split(values, np.flatnonzero(np.diff(ring_of)) + 1)
              if ring.size >= 8]
    return max(1.0, float(max(ratios))) if ratios else 1.0


def _gradient(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def periodicity(photo: np.ndarray, output: np.ndarray) -> float:
    """Output peakiness / input peakiness (see the module docstring)."""
    return _periodicity(_luma(photo), _luma(output))


def hallucination(photo: np.ndarray, output: np.ndarray) -> float | None:
    """Share in [0, 1] of the output's edge energy where the input has no edge; None for
    an input without edges."""
    return _hallucination(_gradient(_luma(photo)), _gradient(_luma(output)))


def fidelity(photo: np.ndarray, output: np.ndarray) -> float | None:
    """Pearson correlation in [-1, 1] of the input's and the output's edge maps; None for
    an input without edges."""
    return _fidelity(_gradient(_luma(photo)), _gradient(_luma(output)))


def _periodicity(luma_in: np.ndarray, luma_out: np.ndarray) -> float:
    return peakiness(luma_out) / peakiness(luma_in)  # each at least 1


def _flat(g: np.ndarray) -> bool:
    """No edge stronger than a step of FLAT_STEP grey levels (99th percentile)."""
    return float(np.percentile(g, 99)) < SOBEL_GAIN * FLAT_STEP / 255


def _hallucination(g_in: np.ndarray, g_out: np.ndarray) -> float | None:
    if _flat(g_in):
        return None
    edge = g_in > NO_EDGE * float(np.percentile(g_in, 99))
    size = 2 * EDGE_MARGIN + 1
    edge = cv2.dilate(edge.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    energy = g_out ** 2
    total = float(energy.sum())
    noise = energy.size * SOBEL_GAIN ** 2 * QUANT_POWER  # what quantisation alone gives
    return float(energy[~edge].sum() / total) if total > noise else 0.0


def _fidelity(g_in: np.ndarray, g_out: np.ndarray) -> float | None:
    if _flat(g_in):
        return None
    a = cv2.GaussianBlur(g_in, (0, 0), 1.0).ravel()
    b = cv2.GaussianBlur(g_out, (0, 0), 1.0).ravel()
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def flat_share(gray: np.ndarray) -> float:
    """Share of the pixels of ``gray`` (H, W) float in [0, 1] whose luminance step after a
    sigma-1 blur is below FLAT_SHARE of the picture's 99th-percentile step (at least half
    a grey level)."""
    step = _gradient(cv2.GaussianBlur(gray, (0, 0), 1.0)) / SOBEL_GAIN
    limit = max(FLAT_SHARE * float(np.percentile(step, 99)), 0.5 / 255)
    return float((step < limit).mean())


def flattening(photo: np.ndarray, output: np.ndarray) -> float:
    """Flat share of the output less the input's (see the module docstring)."""
    return flat_share(_luma(output)) - flat_share(_luma(photo))


def artefact_figures(photo: np.ndarray, output: np.ndarray) -> dict[str, float | None]:
    """The four figures for one photo and its translation, uint8 (H, W, 3) of one size;
    each image's luminance and gradient are computed once for the first three."""
    if photo.shape[:2] != output.shape[:2]:
        raise ValueError(f"the translation is {output.shape[1]}x{output.shape[0]} but the "
                         f"photo is {photo.shape[1]}x{photo.shape[0]}")
    luma_in, luma_out = _luma(photo), _luma(output)
    g_in, g_out = _gradient(luma_in), _gradient(luma_out)
    return {"periodicity": _periodicity(luma_in, luma_out),
            "hallucination": _hallucination(g_in, g_out),
            "fidelity": _fidelity(g_in, g_out),
            "flattening": flat_share(luma_out) - flat_share(luma_in)}


def summarise(rows: list[dict[str, float | None]]) -> dict[str, float | int | None]:
    """Median and worst of each figure (worst: highest periodicity and hallucination,
    lowest fidelity and flattening) over the rows that define it (None: no row does), and
    ``flat_inputs``: the rows left out of hallucination and fidelity because their input has
    no edges."""
    out: dict[str, float | int | None] = {}
    for key, worst in (("periodicity", max), ("hallucination", max), ("fidelity", min),
                       ("flattening", min)):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[f"{key}_median"] = float(np.median(values)) if values else None
        out[f"{key}_worst"] = float(worst(values)) if values else None
    out["flat_inputs"] = sum(1 for r in rows if r["fidelity"] is None)
    return out
