"""Files written by an earlier version (tests/data/legacy_v0, see its README) still load,
convert identically and resume exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
import torch

from conftest import run_cli
from translate.formats.checkpoint import load_generator

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_v0"


@pytest.fixture
def legacy(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as the files were made (see their README)
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY, copy)
    return copy


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("source, checkpoint, direction, expected", [
    ("A", "pix2pix_run/generator_a2b.safetensors", None, "pix2pix_export"),
    ("A", "pix2pix_run/checkpoints/latest.pt", None, "pix2pix_export"),
    ("A", "cyclegan_run/generator_a2b.safetensors", None, "cyclegan_export"),
    ("A", "cyclegan_run/checkpoints/latest.pt", "a2b", "cyclegan_export"),
    ("B", "cyclegan_run", "b2a", "cyclegan_b2a"),
])
def test_old_files_convert_identically(legacy, tmp_path, source, checkpoint, direction,
                                       expected):
    out = tmp_path / "out"
    # the expected pictures were written in fp32; identical means fp32 here too (the
    # default, auto, runs bf16 on CPUs with bf16 units: tests/test_cpu_bf16.py)
    args = ["convert", "--checkpoint", str(legacy / checkpoint), "--input",
            str(legacy / "data" / "test" / source), "--output", str(out), "--device", "cpu",
            "--quiet", "--workers", "0", "--precision", "fp32"]
    run_cli(*args, *(["--direction", direction] if direction else []), check=True)
    for want in sorted((LEGACY / "expected" / expected).glob("*.png")):
        assert np.array_equal(pixels(out / want.name), pixels(want)), want.name


def normalised_away(net: torch.nn.Module, x: torch.Tensor) -> set[str]:
    """Names of the parameters a later normalisation cancels (a conv bias before instance
    norm; a norm's scale before ReLU, a bias-free conv and another norm). They have no
    effect on the output and a zero gradient, so Adam's normalised update of them is
    rounding noise, which differs between CPUs. Found by moving each parameter by 1 and
    watching the output for the batch ``x``."""
    found = set()
    with torch.no_grad():
        base = net(x)
        for name, p in net.named_parameters():
            p.add_(1.0)
            if (net(x) - base).abs().max().item() < 1e-4:
                found.add(name)
            p.sub_(1.0)
    return found


@pytest.mark.parametrize("model, directions", [("pix2pix", ["a2b"]),
                                               ("cyclegan", ["a2b", "b2a"])])
def test_old_run_resumes_exactly(legacy, model, directions):
    run = legacy / f"{model}_run"
    run_cli("train", str(run), "--resume", "--quiet", "train.iterations=4",
            f"data.root={legacy / 'data'}", check=True)
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for direction in directions:
        got_net, _ = load_generator(run / f"generator_{direction}.safetensors")
        want_net, _ = load_generator(legacy / f"{model}_step4_generator_{direction}.safetensors")
        skip = normalised_away(want_net, x)
        got, want = got_net.state_dict(), want_net.state_dict()
        assert got.keys() == want.keys()
        for key in want.keys() - skip:
            assert (got[key] - want[key]).abs().max().item() <= 1e-6, key
        with torch.no_grad():
            assert (got_net(x) - want_net(x)).abs().max().item() <= 1e-5
