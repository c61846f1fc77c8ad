"""What the command modules share: the usage error, SIGTERM as Ctrl-C, argument types."""

from __future__ import annotations

import argparse
import contextlib
import signal

from translate.errors import UserError


class CliError(UserError):
    """A usage error to print as ``error: ...`` with exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, stopping a command the way Ctrl-C does."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises :class:`Terminated` in the block, so a command stopped by it cleans
    up as one stopped by Ctrl-C: no partial output, helpers ended."""
    def stop(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_number(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_inference_precision(p) -> None:
    """``--precision`` of the commands that run a generator (default ``auto``)."""
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 weights and activations on a CPU with bf16 units "
                   "where the model's output stays within 4 levels (max) and 0.5 (mean) of "
                   "fp32 on a probe image (checked once per model, cached), else fp32; bf16: "
                   "that path (on a GPU, bf16 autocast); fp16: autocast")


def hub_model(checkpoint: str) -> str:
    """``checkpoint``, or for an ``hf://`` reference the file it resolves to in the Hub
    cache (downloaded if needed); the pinned reference is said on stderr."""
    import sys

    from translate.hub.hf import is_hf, resolve

    if not is_hf(checkpoint):
        return checkpoint
    path, pinned = resolve(checkpoint)
    print(f"model {pinned}", file=sys.stderr)
    return str(path)
