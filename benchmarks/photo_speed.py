"""Seconds to translate one photo with each shipped model, by size, in one process.

    python benchmarks/photo_speed.py [--threads 2] [--sizes 1224x816,4000x3000] [--repeat 3]

The photo is apps/photos/picosdeeuropa.jpg scaled to each size (content does not change the
cost). Each model translates it ``--repeat`` times after one warm-up run, through the same
call the converter and the demo use (``Translator.translate_array``: whole image, tiled
above 4 megapixels); the median is reported, with megapixels per second. CPU, in each of
``--precisions`` (default ``fp32,auto``; auto is what convert and the demo run by default).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import torch

from translate.images import load_rgb
from translate.infer.engine import Translator

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="1224x816,4000x3000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photo = load_rgb(ROOT / "apps" / "photos" / "picosdeeuropa.jpg")
    print(f"{cpu_name()}, {args.threads} threads, torch {torch.__version__}")
    for task, precision in ((t, p) for t in ("day2night", "real2anime")
                            for p in args.precisions.split(",")):
        engine = Translator.from_checkpoint(ROOT / "models" / f"{task}.safetensors",
                                            device="cpu", precision=precision)
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC)
            engine.translate_array(img)  # warm-up
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                engine.translate_array(img)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            print(f"{task:10s} {precision:4s} ({engine.precision}) {w}x{h} "
                  f"({w * h / 1e6:.1f} MP): {median:.2f} s "
                  f"({w * h / 1e6 / median:.2f} MP/s)")


if __name__ == "__main__":
    main()
