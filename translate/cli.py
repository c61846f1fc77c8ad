"""Command line: ``translate SUBCOMMAND ...``. Each subcommand parses its arguments and makes
one call into the package. Exit status: 0 success, 1 the job ran but something failed
(for example some images could not be converted), 2 usage or configuration errors,
130/143 training stopped by SIGINT/SIGTERM after saving a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


class CliError(Exception):
    """A usage error to print as ``error: ...`` with exit status 2."""


def cmd_train(args) -> int:
    from .config import load_config
    from .trainer import TrainingInterrupted, train

    source = Path(args.config)
    if source.is_dir():  # a run folder: resume it with its own config
        if not args.resume:
            raise CliError(f"{source} is a folder; pass a config file, or add --resume to "
                           "continue the run in that folder")
        saved = source / "config.yaml"
        if not saved.is_file():
            raise CliError(f"{source} has no config.yaml; is it a run folder?")
        config = load_config(saved, args.overrides + [f"train.out={source}"])
    else:
        config = load_config(source, args.overrides)
    try:
        out = train(config, resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as stop:
        print(f"stopped at step {stop.step}; continue with: translate train "
              f"{config.train.out} --resume", file=sys.stderr)
        return 128 + stop.signum
    print(out)
    return 0


def cmd_export(args) -> int:
    import torch

    from .checkpoint import export_generator
    from .inference import load_any

    path = Path(args.checkpoint or args.run or "")
    if not str(path) or str(path) == ".":
        raise CliError("name a run folder or --checkpoint FILE to export")
    if path.is_dir() and (path / "checkpoints" / "latest.pt").is_file():
        path = path / "checkpoints" / "latest.pt"  # a run folder: export its latest state
    directions = [args.direction] if args.direction else ["a2b", "b2a"]
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    written = []
    for direction in directions:
        try:
            net, info = load_any(path, direction)
        except ValueError:
            if args.direction:
                raise
            continue
        if args.out:
            target = Path(args.out)
            if len(directions) > 1 and target.suffix != ".safetensors":
                target = target / f"generator_{direction}.safetensors"
        else:
            folder = path if path.is_dir() else path.parent
            if folder.name == "checkpoints":
                folder = folder.parent
            target = folder / f"generator_{direction}.safetensors"
        if target.exists() and target.resolve() == path.resolve():
            raise CliError(f"{target} is the input; choose another --out")
        export_generator(net, target, arch=info["arch"], kwargs=info["kwargs"],
                         direction=direction, norm_stats=info["norm_stats"],
                         method=info["method"], step=int(info["step"]), config=info["config"],
                         card=info.get("card"), dtype=dtype)
        written.append(target)
    if not written:
        raise CliError(f"{path} holds no generator to export")
    for w in written:
        print(w)
    return 0


def cmd_convert(args) -> int:
    from .convert import convert
    from .inference import Translator

    translator = Translator.from_checkpoint(args.checkpoint, args.direction, args.device,
                                            args.norm_stats)
    print(f"using {translator.describe()}", file=sys.stderr)
    report = convert(translator, args.input, args.output, progress=not args.quiet)
    print(f"converted {len(report.written)} image(s) into {args.output}", file=sys.stderr)
    if report.failed:
        print(f"{len(report.failed)} file(s) could not be converted:", file=sys.stderr)
        for path, reason in report.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translate", description="Image-to-image translation: train pix2pix, convert "
        "images with a trained generator.")
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train from a YAML config. Overrides use dotted keys, "
                       "e.g. train.iterations=1000 data.root=datasets/facades.")
    p.add_argument("config", help="config YAML (or, with --resume, a run folder)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in train.out from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write self-describing generator file(s) of a run",
                       description="Export the generator(s) of a run folder or checkpoint "
                       "as safetensors files that carry their own description.")
    p.add_argument("run", nargs="?", help="run folder")
    p.add_argument("--checkpoint", help="run folder, training checkpoint or exported file")
    p.add_argument("--direction", choices=("a2b", "b2a"), help="only this generator")
    p.add_argument("--out", help="output file (or folder when exporting both directions)")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32",
                   help="weight precision in the file (default fp32)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="translate an image file or folder",
                       description="Translate one image or a folder of images (recursively) "
                       "into an output folder that mirrors the input tree.")
    p.add_argument("--checkpoint", required=True,
                   help="exported generator (.safetensors), run folder or training checkpoint")
    p.add_argument("--input", required=True, help="image file or folder")
    p.add_argument("--output", required=True, help="output folder (outside the input)")
    p.add_argument("--direction", choices=("a2b", "b2a"),
                   help="which generator of the checkpoint (default: a2b, or the only one)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--norm-stats", choices=("running", "image"),
                   help="batch-norm statistics: running averages, or each image's own "
                   "(default: what the checkpoint says)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides written after an option: translate train RUN --resume a.b=c
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .convert import UsageError
    from .data import DatasetError

    try:
        return args.func(args)
    except (CliError, ConfigError, DatasetError, CheckpointError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
