"""Sheets of benchmarks/quality.py's generators on a task's held-out photos: input | one
column per recipe | target, and under it the same 4x enlarged (nearest neighbour) on the
crop where the target draws the most lines, so dots, a lattice or a blur can be seen.

    python benchmarks/quality.py --photos P --data D --keep K --only photo2sketch ...
    python benchmarks/quality_sheets.py --data D --keep K --task photo2sketch \\
        --recipes reference resize --out docs/quality_photo2sketch.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import PAIRED, UNPAIRED  # noqa: E402
from translate.images import list_images, load_rgb, save_image  # noqa: E402
from translate.infer.engine import Translator  # noqa: E402
from translate.infer.lines import line_mask  # noqa: E402

GAP = 4
CROP = (64, 64)  # rows, columns of the enlarged crop (4x: as wide as a 256 px photo)
ZOOM = 4


def _pairs(data: Path, task: str) -> list[tuple[Path, Path]]:
    """(input, target) of the task's held-out photos."""
    renderer, direction, _ = {**PAIRED, **UNPAIRED}[task]
    root = data / f"paired-{renderer}" / "test"
    a, b = list_images(root / "A"), list_images(root / "B")
    return list(zip(a, b)) if direction == "a2b" else list(zip(b, a))


def _busiest_crop(target: np.ndarray) -> tuple[int, int]:
    """Top-left corner of the CROP where the target has the most line pixels (or detail)."""
    mask = line_mask(target).astype(np.float32)
    if mask.mean() < 0.002:
        gray = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY).astype(np.float32)
        mask = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    h, w = CROP
    sums = cv2.boxFilter(mask, -1, (w, h), normalize=False, borderType=cv2.BORDER_CONSTANT)
    sums = sums[h // 2:target.shape[0] - h // 2 + 1, w // 2:target.shape[1] - w // 2 + 1]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)


def _join(images: list[np.ndarray], axis: int) -> np.ndarray:
    parts = []
    for img in images:
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[axis] = (0, GAP)
        parts.append(np.pad(img, pad, constant_values=255))
    return np.concatenate(parts, axis=axis)


def sheet(data: Path, keep: Path, task: str, recipes: list[str], photos: int = 3
          ) -> np.ndarray:
    engines = [Translator.from_checkpoint(next(keep.glob(f"{task}-{r}-generator_*")),
                                          device="cpu") for r in recipes]
    rows = []
    for source, truth in _pairs(data, task)[:photos]:
        x, target = load_rgb(source), load_rgb(truth)
        columns = [x] + [e.translate_array(x)[..., :3] for e in engines] + [target]
        y0, x0 = _busiest_crop(target)
        crops = [cv2.resize(c[y0:y0 + CROP[0], x0:x0 + CROP[1]], None, fx=ZOOM, fy=ZOOM,
                            interpolation=cv2.INTER_NEAREST) for c in columns]
        rows += [_join(columns, 1), _join(crops, 1)]
    width = max(r.shape[1] for r in rows)
    return _join([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                  for r in rows], 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--task", required=True, choices=[*PAIRED, *UNPAIRED])
    parser.add_argument("--recipes", nargs="+", required=True)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    save_image(sheet(args.data, args.keep, args.task, args.recipes, args.photos), args.out)
    print(args.out)


if __name__ == "__main__":
    main()
