"""Side-by-side sheets of the shipped models on held-out real photos (photo | night | anime):

    translate data photos --out datasets/photos      # once: the corpus and its test split
    python docs/make_sheets.py                         # writes docs/photos_*.png

Each photo is translated whole, at its own full size (up to 13 megapixels; large ones in
tiles), by models/day2night.safetensors and models/real2anime.safetensors. The sheet shows
every photo reduced to one row; ``photos_full_size.png`` shows a 100 % crop (no scaling) of
the largest photo's detailed foreground, where a lattice or a seam would be seen. Credits: the photos' sources and
licences are in datasets/photos/SOURCES.md (and apps/photos/CREDITS.md for the same photos).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from translate.images import list_images, load_rgb, save_image
from translate.infer.engine import Translator

ROOT = Path(__file__).resolve().parent.parent
ROW = 300       # pixels per row of the sheet
GAP = 6
CROP = (600, 400)


def _row(images: list[np.ndarray], height: int = ROW) -> np.ndarray:
    parts = []
    for img in images:
        w = round(img.shape[1] * height / img.shape[0])
        parts += [cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA),
                  np.full((height, GAP, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = []
    for r in rows:
        padded += [np.pad(r, ((0, GAP), (0, width - r.shape[1]), (0, 0)), constant_values=255)]
    return np.concatenate(padded, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(ROOT / "datasets" / "photos" / "test"))
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    night = Translator.from_checkpoint(ROOT / "models" / "day2night.safetensors", device="cpu")
    anime = Translator.from_checkpoint(ROOT / "models" / "real2anime.safetensors",
                                       device="cpu")
    rows, largest = [], None
    for path in list_images(args.photos):
        photo = load_rgb(path)
        start = time.perf_counter()
        results = [photo, night.translate_array(photo), anime.translate_array(photo)]
        print(f"{path.name}: {photo.shape[1]}x{photo.shape[0]} "
              f"({photo.shape[0] * photo.shape[1] / 1e6:.1f} MP), both models in "
              f"{time.perf_counter() - start:.1f} s")
        rows.append(_row(results))
        if largest is None or photo.size > largest[0].size:
            largest = results
    out = Path(args.out)
    save_image(_stack(rows), out / "photos_sheet.png")
    h, w = largest[0].shape[:2]
    y, x = int(h * 0.72) - CROP[1] // 2, int(w * 0.32) - CROP[0] // 2  # the foreground
    crops = [img[y:y + CROP[1], x:x + CROP[0]] for img in largest]
    save_image(_row(crops, CROP[1]), out / "photos_full_size.png")
    print(f"wrote {out / 'photos_sheet.png'} and {out / 'photos_full_size.png'}")


if __name__ == "__main__":
    main()
