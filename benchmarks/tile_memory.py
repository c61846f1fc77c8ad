"""Peak memory of converting one large image in tiles, against the image size.

    python benchmarks/tile_memory.py [--ngf 64] [--tile 1024] [--sizes 1500x1000,3000x2000,6000x4000]

For each size, a smooth synthetic JPEG is converted by ``translate convert`` in a fresh
process with a CycleGAN ResNet-9 generator (random weights: speed and memory do not depend
on them), and that process's peak resident memory is reported. With tiling, the peak should
grow with the image's own pixels (the decoded input and the output, 3 bytes per pixel each)
and not with the network's activations over the whole image.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from translate.formats.checkpoint import export_generator
from translate.networks import build_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--sizes", default="1500x1000,3000x2000,6000x4000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kwargs = {"in_channels": 3, "out_channels": 3, "ngf": args.ngf, "depth": 9,
                  "norm": "instance", "dropout": False}
        model = export_generator(build_generator("resnet", kwargs), tmp / "g.safetensors",
                                 arch="resnet", kwargs=kwargs, direction="a2b",
                                 norm_stats="running", method="cyclegan", step=0)
        print(f"ResNet-9 ngf {args.ngf}, tile {args.tile}, {torch.get_num_threads()} threads")
        print("| image | megapixels | peak RSS (MB) | image bytes in+out (MB) | seconds |")
        print("| --- | --- | --- | --- | --- |")
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            src = tmp / f"in_{size}"
            src.mkdir()
            small = np.random.default_rng(0).integers(0, 255, (h // 16, w // 16, 3), np.uint8)
            Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(
                src / "big.jpg", quality=90)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "translate", "convert", "--checkpoint",
                            str(model), "--input", str(src), "--output", str(tmp / "out"),
                            "--tile", str(args.tile), "--workers", "0", "--quiet"],
                           check=True)
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            note = "" if peak > before else " (not above an earlier run)"
            print(f"| {w}x{h} | {w * h / 1e6:.1f} | {peak / 1024:.0f}{note} | "
                  f"{2 * 3 * w * h / 2 ** 20:.0f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
