"""Quickstart: render a small paired dataset, train pix2pix on it, convert its test images.

    python examples/quickstart.py

Everything lands in ./quickstart/: data/ (the pairs), run/ (config, metrics, sample grids,
checkpoint, exported generator) and converted/ (the translated test images). Running it again
resumes or reuses what is there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from translate.cli.main import main as translate
from translate.images import list_images, load_rgb
from translate.infer.evaluate import psnr
from translate.data.synth import render_dataset

HERE = Path("quickstart")
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart_shapes.yaml"


def run(*args: str) -> None:
    print("$ translate " + " ".join(args), flush=True)
    code = translate(list(args))
    if code not in (0, None):
        sys.exit(code)


def main() -> None:
    data, run_dir, converted = HERE / "data", HERE / "run", HERE / "converted"
    if not (data / "train").is_dir():
        print(f"rendering 'shapes' pairs into {data}/ ...", flush=True)
        render_dataset(data, size=64, train=200, test=16, seed=0)
    if not (run_dir / "generator_a2b.safetensors").is_file():
        resume = ["--resume"] if (run_dir / "checkpoints" / "latest.pt").is_file() else []
        run("train", str(CONFIG), *resume)
    run("convert", "--checkpoint", str(run_dir), "--input", str(data / "test" / "A"),
        "--output", str(converted), "--quiet")

    model, identity = [], []
    for out in list_images(converted):
        target = load_rgb(data / "test" / "B" / out.name)
        model.append(psnr(load_rgb(out), target))
        identity.append(psnr(load_rgb(data / "test" / "A" / out.name), target))
    print(f"\nheld-out PSNR to the true targets: {np.mean(model):.1f} dB "
          f"(returning the input unchanged: {np.mean(identity):.1f} dB)")
    print(f"sample grids (input | output | target): {run_dir / 'samples'}/")
    print(f"translated test images: {converted}/")


if __name__ == "__main__":
    main()
