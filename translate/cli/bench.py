"""``translate bench``."""

from __future__ import annotations

import argparse

from translate.cli.args import non_negative, positive


def cmd_bench(args) -> int:
    import json

    from translate.train.bench import format_table, run

    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    results = [run(args.model, args.size, args.batch_size, args.device, precision,
                   args.iterations, args.warmup, args.ngf, args.images, args.workers,
                   baseline=not args.no_baseline and k == 0,
                   channels_last=args.channels_last, compile_nets=args.compile,
                   data=args.data, gpu_augment=args.gpu_augment)
               for k, precision in enumerate(precisions)]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return 0
    print("\n\n".join(format_table(r) for r in results))
    if len(results) == 2:
        train, convert = ([r[part][key] for r in results] for part, key in
                          (("train", "iterations_per_s"), ("convert", "model_images_per_s")))
        print(f"\nbf16 against fp32 in this run: training x{train[1] / train[0]:.2f}, "
              f"conversion x{convert[1] / convert[0]:.2f}")
    return 0


def register(sub) -> None:
    """The ``bench`` command."""
    p = sub.add_parser("bench", help="measure training and conversion speed on this device",
                       description="Benchmark the standard recipes (pix2pix U-Net + PatchGAN; "
                       "CycleGAN ResNet + PatchGAN) on synthetic data: training it/s, "
                       "conversion images/s (model only and folder to folder), peak memory, "
                       "TFLOP/s against the measured matmul peak, and the speed-up over "
                       "eager fp32 at batch size 1 measured in the same run.")
    p.add_argument("--model", choices=("pix2pix", "cyclegan", "cut"), default="cyclegan")
    p.add_argument("--size", type=positive, default=256, help="image size (default 256)")
    p.add_argument("--batch-size", type=positive, default=1)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16", "both"),
                   help="both: fp32, then bf16, and their ratio")
    p.add_argument("--iterations", type=positive, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=non_negative, default=2, help="untimed steps first")
    p.add_argument("--ngf", type=positive, default=64, help="network width (default 64)")
    p.add_argument("--images", type=positive, default=32,
                   help="JPEG files in the folder-to-folder measurement (default 32)")
    p.add_argument("--workers", type=non_negative, default=2,
                   help="decoder/encoder processes for the folder measurement")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last layout for the measured run (default: on for CUDA)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the networks of the measured run (the compilation "
                   "time is reported apart)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the eager fp32 batch-1 run (the baseline of the speed-up)")
    p.add_argument("--data", metavar="DIR",
                   help="a dataset folder: also time the real data loader alone (items/s) "
                   "and training fed by it")
    p.add_argument("--gpu-augment", action="store_true",
                   help="with --data: loader workers only decode; resize, crop, flip and "
                   "float conversion run on the device (data.gpu_augment)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench)
