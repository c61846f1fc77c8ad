"""The training step reads nothing back from the device: loss terms stay there, summed,
until a log step; decisions that need the host (which rows have a mismatched target) are
made on CPU metadata. Host reads of floating-point tensors are counted over whole runs and
must all fall on log, health-check (the first step and every CHECK_EVERY: one read of the
loss sums, so that a run blowing up is named early) or checkpoint steps (or before the
first step). Reads by torch.optim
are left out: Adam's step count is a CPU tensor unless the optimizer is fused (as it is on
CUDA), and reading it waits for no device."""

from __future__ import annotations

import os
import sys

import pytest
import torch

import translate.train.loop as loop
from conftest import tiny_config
from translate.train.health import CHECK_EVERY

READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")


@pytest.fixture
def counted_reads(monkeypatch):
    """[(step, read)] for every host read of a floating-point tensor; ``step`` is the
    iteration under way (0: before the first)."""
    seen: list[tuple[int, str]] = []
    step = {"n": 0}
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if self.is_floating_point() and f"torch{os.sep}optim" not in caller:
                seen.append((step["n"], _name))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counting)
    real_step = loop.train_step

    def stepping(*args, **kwargs):
        step["n"] += 1
        return real_step(*args, **kwargs)
    monkeypatch.setattr(loop, "train_step", stepping)
    return seen


@pytest.mark.parametrize("sections", [
    {}, {"method": {"mismatch": 1}, "train": {"batch_size": 1}},
    {"model": "cyclegan", "generator": {"arch": "resnet", "ngf": 4, "depth": 1}},
    {"model": "cut", "generator": {"arch": "resnet", "ngf": 4, "depth": 2},
     "method": {"variant": "fastcut"}},
    {"train": {"ema": 0.9}},
], ids=["pix2pix", "pix2pix-batch1", "cyclegan", "fastcut", "ema"])
def test_reads_happen_only_at_log_and_checkpoint_steps(shapes32, tmp_path, counted_reads,
                                                       sections):
    schedule = {"iterations": 12, "log_every": 6, "checkpoint_every": 8, "sample_every": 0}
    sections = dict(sections)
    train_section = {**schedule, **sections.pop("train", {})}
    loop.train(tiny_config(shapes32, tmp_path / "run", train=train_section, **sections),
               progress=False)
    assert CHECK_EVERY == 5
    allowed = {0, 1, 5, 10} | {6, 12} | {8}  # before; health checks; log; checkpoint
    stray = sorted({(s, name) for s, name in counted_reads if s not in allowed})
    assert not stray, f"host reads at steps other than log/checkpoint steps: {stray[:10]}"
    assert any(s in (6, 12) for s, _ in counted_reads)  # the log steps do read
    checks = {s for s, _ in counted_reads if s in (1, 5, 10)}
    assert checks == {1, 5, 10}  # and so do the health checks
