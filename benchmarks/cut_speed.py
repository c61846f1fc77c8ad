"""Cost of a CUT / FastCUT training iteration against CycleGAN's, measured in one process.

Each method's paper recipe (ResNet-9 generator(s) at ngf 64, 70x70 PatchGAN(s), instance
norm, LSGAN) trains on the same synthetic batch on the same device: seconds per iteration
(timed steps after warm-up steps), FLOPs per iteration (torch's FLOP counter) and the
ratio to CycleGAN.

    python benchmarks/cut_speed.py                     # 128 px, CPU
    python benchmarks/cut_speed.py --size 256 --device cuda
"""

from __future__ import annotations

import argparse
import json

import torch

from translate.devices import pick_device
from translate.train.bench import measure_training
from translate.train.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    device = pick_device(args.device)
    rows = {}
    for name, model, extra in (("cyclegan", "cyclegan", []), ("cut", "cut", []),
                               ("fastcut", "cut", ["method.variant=fastcut"])):
        config = load_config(None, [f"model={model}", "train.out=bench",
                                    f"data.load_size={args.size}", f"data.crop_size={args.size}",
                                    f"train.device={device.type}", *extra])
        _, result = measure_training(config, device, "fp32", args.iterations, args.warmup)
        rows[name] = {"seconds_per_iteration": round(1 / result["iterations_per_s"], 3),
                      "gflops_per_iteration": round(result["flops_per_iteration"] / 1e9, 1)}
    for name, row in rows.items():
        row["time_vs_cyclegan"] = round(row["seconds_per_iteration"]
                                        / rows["cyclegan"]["seconds_per_iteration"], 3)
        row["flops_vs_cyclegan"] = round(row["gflops_per_iteration"]
                                         / rows["cyclegan"]["gflops_per_iteration"], 3)
    print(json.dumps({"device": str(device), "size": args.size,
                      "threads": torch.get_num_threads(), **rows}, indent=2))


if __name__ == "__main__":
    main()
