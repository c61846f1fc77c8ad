"""Where bf16 autocast starts to pay on this CPU: training speed in fp32 and in bf16, in
the same process, for networks from tiny to the standard recipes, against the size of a
generator pass. (Speed only: ``train.precision: auto`` trains in fp32 on CPUs, because
bf16 scored lower at the full budget; see ``translate.devices.resolve_precision``.)

    python benchmarks/cpu_bf16.py                      # the default grid, JSON lines
    python benchmarks/cpu_bf16.py --only pix2pix:64:16:4 --iterations 5

Each row: model, crop size, ngf, batch, the generator's forward GFLOP over the batch,
iterations/s in fp32 and bf16 and their ratio (>1: bf16 is faster). The two precisions
alternate, each timed after its own warm-up steps, on the same synthetic batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# model:size:ngf:batch, from tiny (the tests, the recipes) to the standard recipes
GRID = ["pix2pix:32:16:4", "pix2pix:64:16:4", "pix2pix:128:32:1", "pix2pix:128:64:1",
        "pix2pix:256:32:1", "pix2pix:256:64:1", "cyclegan:64:16:4", "cyclegan:128:32:1",
        "cyclegan:256:64:1"]


def measure(spec: str, iterations: int, warmup: int) -> dict:
    import torch

    from translate.devices import cpu_bf16_units
    from translate.train.bench import measure_training, recipe
    from translate.train.precision import generator_gflops

    model, size, ngf, batch = spec.split(":")
    size, ngf, batch = int(size), int(ngf), int(batch)
    device = torch.device("cpu")
    config = recipe(model, size, batch, ngf, device)  # U-Net depth log2(size), at most 8
    speed = {}
    for precision in ("fp32", "bf16"):
        _, result = measure_training(config, device, precision, iterations, warmup)
        speed[precision] = result["iterations_per_s"]
    return {"model": model, "size": size, "ngf": ngf, "batch": batch,
            "generator_gflops": round(generator_gflops(config), 3),
            "fp32_it_s": round(speed["fp32"], 4), "bf16_it_s": round(speed["bf16"], 4),
            "bf16_speedup": round(speed["bf16"] / speed["fp32"], 3),
            "cpu_bf16_units": cpu_bf16_units(), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="MODEL:SIZE:NGF:BATCH")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    for spec in args.only or GRID:
        print(json.dumps(measure(spec, args.iterations, args.warmup)), flush=True)


if __name__ == "__main__":
    main()
