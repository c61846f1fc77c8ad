"""Score a generator on a dataset's test split.

- **PSNR / SSIM** against the true counterpart of every test input, where one exists: the
  other half of a pair (``paired``, ``aligned``), or the counterparts that
  ``translate data synth`` writes next to unpaired test splits (``testA_to_B``,
  ``testB_to_A``). The same scores for the untranslated input are reported as the
  *identity baseline*: a model that has learned something beats it. Beside them, the
  **sharpness** ratio and, where the counterparts draw thin dark lines, the **line
  continuity** (:mod:`translate.infer.lines`).
- **FID / KID** between the translated test inputs and the target domain's test images,
  with Inception-v3 features (torchmetrics + torch-fidelity, the ``metrics`` extra) when
  weights are at hand (``--inception-weights FILE``, or torch-fidelity's file in the torch
  hub cache). Any feature extractor mapping uint8 (N, 3, H, W) to (N, D) can stand in.

Inputs are translated whole, at their own size (tiled above the converter's threshold).
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from translate.data.datasets import (DatasetError, domain_items, paired_items, read_part,
                                     resolve_layout)
from translate.errors import UserError
from translate.images import ImageError, list_images, to_channels
from translate.infer.lines import line_continuity, sharpness

PSNR_CAP = 100.0  # dB; what an exact reproduction counts as in a mean
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


class EvalError(UserError, ValueError):
    """Nothing to score, or a metric that cannot be computed; the message says why."""


# ---------------------------------------------------------------------------------------
# PSNR and SSIM


STRIP_PIXELS = 1 << 20  # PSNR and SSIM work through images this many pixels at a time


def _strips(height: int, width: int):
    """(first row, rows) of horizontal strips of about STRIP_PIXELS pixels (``width``
    values a row) covering ``height`` rows."""
    rows = max(1, STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        yield top, min(rows, height - top)


def psnr(x: np.ndarray, y: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images of one shape:
    10 log10(peak^2 / MSE); infinite for identical images. Memory is bounded: the squared
    errors are summed strip by strip."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    total = 0.0
    for top, rows in _strips(x.shape[0], int(np.prod(x.shape[1:])) if x.ndim > 1 else 1):
        diff = x[top:top + rows].astype(np.float64) - y[top:top + rows].astype(np.float64)
        total += float(np.sum(diff * diff))
    mse = total / max(x.size, 1)
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The 1-D Gaussian (float64, sum 1) whose outer product is SSIM's window."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _blur(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) filtered by the separable window g g^T, valid part only."""
    return F.conv2d(F.conv2d(t, g[None, None, :, None]), g[None, None, None, :])


def ssim(x: np.ndarray, y: np.ndarray, peak: float = 255.0, window: int = 11,
         sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 images (H, W[, C]):

        SSIM = mean over windows and channels of
               (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

    with Gaussian windows (11 x 11, sigma 1.5), C1 = (0.01 peak)^2, C2 = (0.03 peak)^2,
    population (co)variances, and only windows that lie wholly inside the image. Images
    smaller than the window use a window of their smaller side (odd). Computed in float64
    with the window applied as two 1-D passes, over strips of about STRIP_PIXELS pixels
    per channel, so memory stays bounded (some hundred MB) at any size."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    h, w, channels = x.shape
    size = min(window, h, w)
    size -= 1 - size % 2
    g = _gaussian(size, sigma)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    total, count = 0.0, 0
    for top, rows in _strips(h - size + 1, w):  # rows of windows
        for c in range(channels):
            def part(img: np.ndarray) -> torch.Tensor:
                piece = np.ascontiguousarray(img[top:top + rows + size - 1, :, c],
                                             dtype=np.float64)
                return torch.from_numpy(piece)[None, None]
            a, b = part(x), part(y)
            mu_a, mu_b = _blur(a, g), _blur(b, g)
            var_a = _blur(a * a, g) - mu_a ** 2
            var_b = _blur(b * b, g) - mu_b ** 2
            cov = _blur(a * b, g) - mu_a * mu_b
            s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1)
                                                            * (var_a + var_b + c2))
            total += float(s.sum())
            count += s.numel()
    return total / count


# ---------------------------------------------------------------------------------------
# What to score


@dataclass(frozen=True)
class Case:
    """One test input, its true counterpart (or None) and a name for reports."""
    name: str
    source: Path
    part: str            # "whole", "left" or "right" (aligned files hold A | B)
    truth: Path | None
    truth_part: str = "whole"


def scoring_cases(root: str | Path, direction: str = "a2b", layout: str = "auto",
                  unusable: list[tuple[Path, str]] | None = None
                  ) -> tuple[list[Case], list[tuple[Path, str]]]:
    """The test inputs of ``direction`` with their true counterparts, and the target
    domain's test images (path, part) for FID/KID. Files left out (unreadable, too large,
    ambiguous) are added to ``unusable`` as (path, reason). Raises :class:`EvalError` when
    the dataset has no test split."""
    root = Path(root)
    try:
        layout = resolve_layout(root, layout, ("test", "val"))
    except DatasetError as err:
        raise EvalError(f"{root} has no test split to score on (test/ or val/; for unpaired "
                        f"data testA/ and testB/).\n{err}") from None
    src, dst = ("a", "b") if direction == "a2b" else ("b", "a")
    quiet = (unusable.extend if unusable is not None  # reported with the scores
             else lambda bad: None)
    cases: list[Case] = []
    if layout in ("paired", "aligned"):
        items = paired_items(root, layout, "test", report=quiet)
        for it in items:
            if it.side_by_side:
                parts = {"a": "left", "b": "right"}
                cases.append(Case(it.name, it.a, parts[src], it.a, parts[dst]))
            else:
                cases.append(Case(it.name, getattr(it, src), "whole", getattr(it, dst)))
        targets = [(c.truth, c.truth_part) for c in cases]
    else:
        test_a, test_b = domain_items(root, layout, "test", report=quiet)
        inputs = test_a if src == "a" else test_b
        truths = root / ("testA_to_B" if direction == "a2b" else "testB_to_A")
        by_stem = {p.stem: p for p in list_images(truths)} if truths.is_dir() else {}
        cases = [Case(it.path.stem, it.path, it.part, by_stem.get(it.path.stem))
                 for it in inputs]
        targets = [(it.path, it.part) for it in (test_b if dst == "b" else test_a)]
    if not cases:
        raise EvalError(f"{root} has no test split to score on (test/ or val/; for "
                        "unpaired data testA/ and testB/)")
    return cases, targets


# ---------------------------------------------------------------------------------------
# Inception features


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features (N, 2048) of uint8 images (N, 3, H, W), from
    torch-fidelity's network with weights read from ``weights`` (no download).

    torch-fidelity unpickles the file it is given (``weights_only=False``), so it is never
    given the user's file: that is read here with ``torch.load(weights_only=True)`` (tensors
    only, nothing runs) and its tensors are written to a private temporary file for it."""

    num_features = 2048

    def __init__(self, weights: str | Path):
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as err:
            raise EvalError("FID/KID need torchmetrics and torch-fidelity: "
                            "pip install 'translate[metrics]'") from err
        from translate.formats.checkpoint import CheckpointError
        from translate.formats.reference import as_state_dict, read_weights

        try:
            state = as_state_dict(read_weights(weights), weights)
        except CheckpointError as err:
            raise EvalError(f"Inception weights: {err}; delete the file or pass "
                            "--inception-weights with torch-fidelity's released file") from None
        with tempfile.TemporaryDirectory() as tmp:
            checked = Path(tmp) / "inception.pt"
            torch.save(state, checked)
            try:
                self.net = NoTrainInceptionV3(name="inception-v3-compat",
                                              features_list=["2048"],
                                              feature_extractor_weights_path=str(checked))
            except RuntimeError as err:  # load_state_dict: missing or misshapen tensors
                first = str(err).splitlines()[0]
                raise EvalError(f"{weights}: not torch-fidelity's Inception-v3 weights "
                                f"({first})") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def find_inception_weights(explicit: str | Path | None = None) -> Path | None:
    """``explicit`` if given (must exist), else torch-fidelity's cached file, else None."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise EvalError(f"--inception-weights {path} does not exist")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return cached if cached.is_file() else None


def distribution_scores(real: list[np.ndarray], fake: list[np.ndarray], features: nn.Module,
                        resize: int = 299, batch_size: int = 16) -> dict[str, float]:
    """FID and KID (mean and std over subsets) between two image sets, uint8 (H, W, 3)
    each, of any sizes (resized to ``resize`` squared for the extractor)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError as err:
        raise EvalError("FID/KID need torchmetrics: pip install 'translate[metrics]'") from err
    if len(real) < 2 or len(fake) < 2:
        raise EvalError("FID/KID need at least 2 images on each side")
    subset = min(1000, len(real), len(fake))
    fid = FrechetInceptionDistance(feature=features, reset_real_features=True)
    with warnings.catch_warnings():  # "will save all extracted features": that is the plan
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=features, subsets=50, subset_size=subset)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            batch = torch.stack([_resized(im, resize) for im in images[i:i + batch_size]])
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


def _resized(rgb: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                      align_corners=False)
    return t[0].round().clamp(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------
# The evaluation


def reference_figures(y: np.ndarray, truth: np.ndarray, identity: np.ndarray
                      ) -> dict[str, float | None]:
    """The figures of a translation ``y`` against its true counterpart, and of the
    untranslated input (``identity``) against it; None where a figure is undefined."""
    return {"psnr": psnr(y, truth), "ssim": ssim(y, truth),
            "identity_psnr": psnr(identity, truth), "identity_ssim": ssim(identity, truth),
            "sharpness": sharpness(y, truth), "line_continuity": line_continuity(y, truth)}


def evaluate(engine, root: str | Path, direction: str | None = None, layout: str = "auto",
             limit: int | None = None, features: nn.Module | None = None,
             tile: int = 0) -> dict:
    """Translate the test inputs of ``root`` with ``engine`` (an :class:`~translate.
    inference.Engine`) and score them. Returns a dict with ``images``, ``psnr``, ``ssim``
    and ``identity_psnr``/``identity_ssim``, ``sharpness`` and ``line_continuity`` (when
    counterparts exist; the last where they draw lines), ``fid``/``kid``/
    ``kid_std`` (when ``features`` is given), ``failed`` (unusable files) and ``notes``."""
    direction = direction or engine.direction
    unusable: list[tuple[Path, str]] = []
    cases, targets = scoring_cases(root, direction, layout, unusable)
    if limit:
        cases = cases[:limit]
    out_channels = int(engine.info.get("kwargs", {}).get("out_channels", 3))
    scores: dict[str, list[float]] = {}
    fakes, notes = [], []
    failed = [f"{path}: {reason}" for path, reason in unusable]
    for case in cases:
        try:
            x = read_part(case.source, case.part)
            truth = read_part(case.truth, case.truth_part) if case.truth else None
        except ImageError as err:
            failed.append(str(err))
            continue
        y = engine.translate_array(x, tile=tile)
        fakes.append(to_channels(y, 3))
        if truth is None:
            continue
        truth = to_channels(truth, out_channels)
        if truth.shape != y.shape:
            failed.append(f"{case.truth}: counterpart is {truth.shape[1]}x{truth.shape[0]}, "
                          f"input is {y.shape[1]}x{y.shape[0]}")
            continue
        for key, value in reference_figures(y, truth, to_channels(x, out_channels)).items():
            if value is not None:  # sharpness and lines: undefined for some counterparts
                scores.setdefault(key, []).append(value)
    result: dict = {"direction": direction, "images": len(fakes)}
    for key, values in scores.items():
        if values:  # identical images have infinite PSNR: counted as PSNR_CAP
            result[key] = round(float(np.mean([min(v, PSNR_CAP) for v in values])), 4)
    if not scores.get("psnr"):
        notes.append("no true counterparts in the test split: PSNR/SSIM not computed")
    if features is None:
        notes.append("FID/KID not computed: no Inception weights (pass --inception-weights "
                     f"FILE, or place torch-fidelity's {INCEPTION_FILE} in the torch hub "
                     "cache)")
    else:
        real = []
        for path, part in (targets[:limit] if limit else targets):
            try:
                real.append(read_part(path, part))
            except ImageError as err:
                failed.append(str(err))
        result.update({k: round(v, 6) for k, v in
                       distribution_scores(real, fakes, features).items()})
    result["failed"] = failed
    result["notes"] = notes
    return result


def _translation_of(photo: Path, photos: Path, translated: Path) -> Path | None:
    """The file under ``translated`` with ``photo``'s relative path and stem, any image
    extension (a convert run may have changed the format)."""
    rel = photo.relative_to(photos)
    folder = translated / rel.parent
    if not folder.is_dir():
        return None
    return next((p for p in list_images(folder) if p.stem == rel.stem), None)


def score_artefacts(photos: str | Path, translated: str | Path | None = None, engine=None,
                    limit: int | None = None, tile: int = 0) -> dict:
    """No-reference artefact figures (:mod:`translate.infer.artefacts`) of every photo under
    ``photos`` against its translation: the file of the same relative path and name under
    ``translated``, or ``engine``'s translation made now. Returns ``photos``, ``images``,
    the medians and worst values, ``per_image`` rows and ``failed`` (unreadable files,
    missing or wrongly sized translations)."""
    from translate.infer.artefacts import artefact_figures, summarise
    from translate.images import load_rgb

    photos = Path(photos)
    if not photos.is_dir():
        raise EvalError(f"--photos {photos} is not a folder")
    paths = list_images(photos, recursive=True)[:limit or None]
    if not paths:
        raise EvalError(f"--photos {photos} holds no images")
    rows, failed = [], []
    for path in paths:
        try:
            x = load_rgb(path)
            if engine is not None:
                y = to_channels(engine.translate_array(x, tile=tile), 3)
            else:
                found = _translation_of(path, photos, Path(translated))
                if found is None:
                    failed.append(f"{path}: no translation of it under {translated}")
                    continue
                y = load_rgb(found)
            rows.append({"name": str(path.relative_to(photos)), **artefact_figures(x, y)})
        except (ImageError, ValueError) as err:
            failed.append(f"{path}: {err}")
    result = {"photos": str(photos), "images": len(rows)}
    if rows:
        result.update({k: round(v, 4) if isinstance(v, float) else v
                       for k, v in summarise(rows).items()})
    result["per_image"] = [{k: (round(v, 4) if isinstance(v, float) else v)
                            for k, v in row.items()} for row in rows]
    result["failed"] = failed
    return result
