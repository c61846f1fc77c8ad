"""Shared fixtures: tiny procedural datasets, tiny configs and a CLI runner."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from translate.train.config import load_config  # noqa: E402
from translate.data.synth import render_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# A test that runs this long is hung: every thread's stack goes to the terminal and the run
# ends, so a deadlock fails in minutes with its traceback instead of using up CI's limit.
# The whole suite takes about 25 minutes on 2 cores.
HUNG_AFTER_S = 900
_TERMINAL: list[int] = []


def pytest_configure(config):
    _TERMINAL.append(os.dup(sys.stderr.fileno()))


@pytest.fixture(autouse=True)
def _hang_watchdog():
    faulthandler.dump_traceback_later(HUNG_AFTER_S, exit=True, file=_TERMINAL[0])
    yield
    faulthandler.cancel_dump_traceback_later()

TINY = {
    "model": "pix2pix",
    "data": {"load_size": 36, "crop_size": 32, "workers": 0},
    "generator": {"ngf": 8, "depth": 5},
    "discriminator": {"ndf": 8, "layers": 2},
    "train": {"iterations": 12, "batch_size": 2, "log_every": 2, "sample_every": 6,
              "checkpoint_every": 6},
}


def overrides(tree: dict, prefix: str = "") -> list[str]:
    """Flatten a nested dict into section.key=value override strings."""
    out = []
    for k, v in tree.items():
        if isinstance(v, dict):
            out += overrides(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={v}")
    return out


def merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in extra.items():
        if isinstance(v, dict):
            out.setdefault(k, {}).update(v)
        else:
            out[k] = v
    return out


def tiny_config(root: Path, out: Path, **sections):
    """A tiny pix2pix config on ``root`` writing to ``out``; keyword args update sections."""
    tree = merge(TINY, {"data": {"root": str(root)}, "train": {"out": str(out)}})
    tree = merge(tree, sections)
    return load_config(None, overrides(tree))


@pytest.fixture(scope="session")
def shapes32(tmp_path_factory) -> Path:
    """Paired 'shapes' dataset, 32 px, 48 train and 8 test pairs."""
    return render_dataset(tmp_path_factory.mktemp("shapes32"), size=32, train=48, test=8)


def health_events(run: Path) -> list[dict]:
    """The GAN health events a run logged (translate/train/health.py)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "event" in r]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, check: bool = False
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "translate", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"translate {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def single_thread():
    """One intra-op thread: floating-point sums run in one order whatever the machine's core
    count (the learning tests' stated numbers reproduce), and on shared cores tiny
    convolutions do not slow down tenfold from more threads than free cores (as torchrun
    gives each process)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """:func:`single_thread` for a whole test."""
    with single_thread():
        yield


def learn_unpaired_colours(tmp_path: Path, model: str, method: dict) -> tuple[float, float]:
    """Train ``model`` (with its ``method`` section) for 400 iterations on the unpaired
    colour task (a hidden colour mapping, different scenes in trainA and trainB; batch 4,
    32 px, a ResNet of ngf 16 with 2 blocks) and return the mean absolute errors (0-255) of
    G_ab(a) and of a itself to the true f(a) on 16 held-out images. The run must raise no
    health event."""
    import numpy as np

    from translate.images import list_images, load_rgb
    from translate.infer.engine import Translator
    from translate.train.loop import train

    root = render_dataset(tmp_path / "data", size=32, train=64, test=16, layout="unpaired")
    config = load_config(None, overrides({
        "model": model, "method": method,
        "data": {"root": str(root), "load_size": 36, "crop_size": 32, "workers": 0},
        "generator": {"ngf": 16, "depth": 2},
        "discriminator": {"ndf": 16, "layers": 2},
        "train": {"iterations": 400, "batch_size": 4, "lr": 5e-4, "log_every": 100,
                  "sample_every": 0, "checkpoint_every": 400, "out": str(tmp_path / "run")},
    }))
    out = train(config, progress=False)
    assert health_events(out) == []  # a healthy run raises nothing
    t = Translator.from_checkpoint(out, direction="a2b", device="cpu")
    model_errors, identity_errors = [], []
    for path in list_images(root / "testA"):
        x, y = load_rgb(path), load_rgb(root / "testA_to_B" / path.name).astype(float)
        model_errors.append(np.abs(t.translate_array(x).astype(float) - y).mean())
        identity_errors.append(np.abs(x - y).mean())
    return float(np.mean(model_errors)), float(np.mean(identity_errors))
