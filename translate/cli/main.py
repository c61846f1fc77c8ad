"""Command line: ``translate SUBCOMMAND ...``. Each subcommand parses its arguments and makes
one call into the package. Exit status: 0 success, 1 the job ran but something failed
(for example some images could not be converted), 2 usage or configuration errors,
130/143 training stopped by SIGINT/SIGTERM after saving a checkpoint, or convert stopped by
them with every output complete. A file that cannot be written (full disk, read-only folder) is exit status 1
with what was kept and how to continue."""

from __future__ import annotations

import argparse
import sys

from translate import __version__
from translate.cli import bench, convert, data, demo, evaluate, push, report, train
from translate.errors import UserError
from translate.files import WRITE_ERRORS
from translate.host_memory import keep_freed_memory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translate", description="Image-to-image translation: train pix2pix (paired), "
        "CycleGAN or CUT (unpaired), convert images and videos with a trained generator, "
        "evaluate, report on a run, benchmark, and try models in a browser demo.")
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.register(sub)
    convert.register_export(sub)
    convert.register_convert(sub)
    evaluate.register(sub)
    report.register(sub)
    bench.register(sub)
    demo.register(sub)
    data.register_data(sub)
    data.register_zoo(sub)
    push.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides written after an option: translate train RUN --resume a.b=c
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    keep_freed_memory()  # networks' large activations reuse memory already mapped
    try:
        return args.func(args)
    except UserError as err:  # CliError and the package's own errors
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot write{where}: {err.strerror}. "
              + AFTER_WRITE_ERROR.get(args.command, "Nothing was left half-written."),
              file=sys.stderr)
        return 1


AFTER_WRITE_ERROR = {
    "train": "The run folder keeps its last complete checkpoint; make room (or fix the "
             "folder's permissions) and continue with --resume.",
    "convert": "Every output already written is complete; make room (or fix the folder's "
               "permissions) and continue with the same command and --skip-existing.",
}


if __name__ == "__main__":
    raise SystemExit(main())
