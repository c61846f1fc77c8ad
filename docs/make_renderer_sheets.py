"""Sheets of the real2anime renderer (``translate data synth real2anime --from``) on the
held-out photos, beside the photo and a model's output, to judge the look and how much of
it a model learned:

    translate data photos --out datasets/photos      # once: the corpus and its test split
    python docs/make_renderer_sheets.py [--model models/real2anime.safetensors]

``renderer_real2anime.png``: each held-out photo whole (small ones at their own size, the
large ones reduced to about 1 megapixel), one row each: photo | renderer | model.
``renderer_real2anime_crops.png``: 100 % crops (no scaling) of the large photos rendered and
translated at full size (6 to 13 megapixels): sky and sun, cloud and rock, fur and a wall,
an interior, and a face, where rims, dots, specks and outlines on texture would be seen.
Credits: datasets/photos/SOURCES.md (and apps/photos/CREDITS.md for the same photos).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from translate.data.scenes.photo import anime_from_photo
from translate.images import list_images, load_rgb, save_image
from translate.infer.engine import Translator

from make_sheets import _row, _stack  # the layout of the models' sheets (docs/)

ROOT = Path(__file__).resolve().parent.parent
ROW = 240
MEGAPIXEL = 1_000_000
# photo -> (top, left) of a 400 x 400 crop at full size
CROPS = {"sunset.jpg": (1250, 1700), "picosdeeuropa.jpg": (150, 700),
         "friends.jpg": (850, 700), "wine.jpg": (1700, 600), "grace-hopper.jpg": (110, 120)}
CROP = 400


def _about_one_megapixel(photo: np.ndarray) -> np.ndarray:
    h, w = photo.shape[:2]
    scale = (MEGAPIXEL / (h * w)) ** 0.5
    if scale >= 1:
        return photo
    return cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(ROOT / "datasets" / "photos" / "test"))
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--model", default=str(ROOT / "models" / "real2anime.safetensors"),
                        help="anything --checkpoint takes")
    args = parser.parse_args()
    model = Translator.from_checkpoint(args.model, precision="auto")
    rows, crops = [], []
    for path in list_images(args.photos):
        photo = load_rgb(path)
        small = _about_one_megapixel(photo)
        rows.append(_row([small, anime_from_photo(small), model.translate_array(small)], ROW))
        if path.name in CROPS:
            start = time.perf_counter()
            rendered = anime_from_photo(photo)
            seconds = time.perf_counter() - start
            translated = model.translate_array(photo)
            top, left = CROPS[path.name]
            box = (slice(top, top + CROP), slice(left, left + CROP))
            crops.append(_row([photo[box], rendered[box], translated[box]], CROP))
            print(f"{path.name}: {photo.shape[1]}x{photo.shape[0]}, renderer {seconds:.1f} s")
    out = Path(args.out)
    save_image(_stack(rows), out / "renderer_real2anime.png")
    save_image(_stack(crops), out / "renderer_real2anime_crops.png")
    print(f"wrote {out / 'renderer_real2anime.png'} and {out / 'renderer_real2anime_crops.png'}")


if __name__ == "__main__":
    main()
