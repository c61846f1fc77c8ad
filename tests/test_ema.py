"""The moving average of the generators' weights (train.ema): the average itself, exact
resume, and which weights samples, exports and --raw exports hold."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import run_cli, tiny_config
from translate.formats.state import load_state
from translate.train.ema import GeneratorEMA
from translate.train.loop import train


def test_the_average_follows_the_formula_with_its_warm_up():
    nets = nn.ModuleDict({"g": nn.Linear(2, 1), "d": nn.Linear(2, 1)})
    with torch.no_grad():
        nets["g"].weight.fill_(1.0)
    ema = GeneratorEMA(nets, ["g"], decay=0.9)
    assert set(ema.state_dict()) == {"g.weight", "g.bias"}  # the generator only
    expected = torch.ones(1, 2)
    for step, value in enumerate([3.0, -2.0, 5.0, 7.0], start=1):
        with torch.no_grad():
            nets["g"].weight.fill_(value)
        ema.update(step)
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * value
        assert torch.allclose(ema.state_dict()["g.weight"], expected)
    with ema.applied():
        assert torch.allclose(nets["g"].weight, expected)
    assert torch.equal(nets["g"].weight, torch.full((1, 2), 7.0))  # the trained ones back


SCHEDULE = {"log_every": 1, "checkpoint_every": 3, "sample_every": 0, "ema": 0.9,
            "decay_from": 3}


def test_resume_continues_the_same_average_exactly(shapes32, tmp_path):
    whole = train(tiny_config(shapes32, tmp_path / "whole",
                              train=dict(SCHEDULE, iterations=6)), progress=False)
    train(tiny_config(shapes32, tmp_path / "split", train=dict(SCHEDULE, iterations=3)),
          progress=False)
    split = train(tiny_config(shapes32, tmp_path / "split", train=dict(SCHEDULE, iterations=6)),
                  resume=True, progress=False)
    a = load_state(whole / "checkpoints" / "latest.pt")
    b = load_state(split / "checkpoints" / "latest.pt")
    assert a["ema"] and set(a["ema"]) == set(b["ema"])
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_exports_hold_the_average_and_raw_the_trained_weights(shapes32, tmp_path):
    run = train(tiny_config(shapes32, tmp_path / "run", train=dict(SCHEDULE, iterations=4)),
                progress=False)
    state = load_state(run / "checkpoints" / "latest.pt")
    exported = load_file(run / "generator_a2b.safetensors")
    key = next(k for k in exported if k.endswith("weight"))
    assert torch.equal(exported[key], state["ema"][f"g.{key}"])
    assert not torch.equal(exported[key], state["nets"][f"g.{key}"])
    out = tmp_path / "raw.safetensors"
    run_cli("export", str(run), "--raw", "--out", str(out), check=True)
    assert torch.equal(load_file(out)[key], state["nets"][f"g.{key}"])
    proc = run_cli("export", "--checkpoint", str(run / "generator_a2b.safetensors"), "--raw",
                   "--out", str(tmp_path / "x.safetensors"))
    assert proc.returncode == 2 and "training checkpoints" in proc.stderr


@pytest.mark.parametrize("value", ["1", "1.5"])
def test_a_decay_of_one_or_more_is_refused(shapes32, tmp_path, value):
    from translate.train.fields import ConfigError

    with pytest.raises(ConfigError, match="train.ema must be below 1"):
        tiny_config(shapes32, tmp_path / "r", train={"ema": value})
