"""What a damaged or foreign training checkpoint does (second hostile review): a NaN weight
average is neither resumed nor exported, a checkpoint that does not fit the config is named
field by field before anything is loaded, and resuming with another model is explained."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import run_cli, tiny_config
from translate.formats.checkpoint import CheckpointError, load_generator
from translate.formats.state import TrainingState
from translate.train.fields import ConfigError
from translate.train.loop import train

CUT = {"model": "cut", "generator": {"depth": 2},
       "train": {"iterations": 2, "checkpoint_every": 2, "ema": 0.999, "sample_every": 0}}


@pytest.fixture(scope="module")
def cut_run(shapes32, tmp_path_factory):
    """A finished 2-step CUT run with a weight average (train.ema)."""
    run = tmp_path_factory.mktemp("cut") / "run"
    train(tiny_config(shapes32, run, **CUT), progress=False)
    return run


def copy_with(run, tmp_path, change) -> tuple:
    """A copy of ``run`` whose latest.pt went through ``change(state)``; (folder, state)."""
    folder = tmp_path / "copy"
    shutil.copytree(run, folder)
    latest = folder / "checkpoints" / "latest.pt"
    state = TrainingState.read(latest)
    change(state)
    state.write(latest)
    return folder, state


def nan_average(state: TrainingState) -> None:
    state.ema = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                 for k, v in state.ema.items()}


def test_a_nan_weight_average_is_not_resumed(cut_run, tmp_path):
    folder, _ = copy_with(cut_run, tmp_path, nan_average)
    proc = run_cli("train", str(folder), "--resume", "train.iterations=4", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "cannot be resumed" in proc.stderr and "ema.g." in proc.stderr
    assert "holds NaN or infinity" in proc.stderr and "Traceback" not in proc.stderr


def test_a_nan_weight_average_is_not_exported(cut_run, tmp_path):
    folder, _ = copy_with(cut_run, tmp_path, nan_average)
    (folder / "generator_a2b.safetensors").unlink()
    proc = run_cli("export", str(folder), "--out", str(tmp_path / "g.safetensors"))
    assert proc.returncode == 2, proc.stderr
    assert "weight average (train.ema)" in proc.stderr and "export --raw" in proc.stderr
    assert not (tmp_path / "g.safetensors").exists()
    # the trained weights are fine and --raw exports them
    proc = run_cli("export", str(folder), "--raw", "--out", str(tmp_path / "raw.safetensors"))
    assert proc.returncode == 0, proc.stderr
    load_generator(tmp_path / "raw.safetensors")


def test_an_exported_file_with_nan_weights_is_refused_by_convert(cut_run, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    source = cut_run / "generator_a2b.safetensors"
    with safe_open(str(source), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(source)
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=meta)
    photos = tmp_path / "in"
    photos.mkdir()
    _an_image(photos / "x.png")
    proc = run_cli("convert", "--checkpoint", str(bad), "--input", str(photos), "--output",
                   str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert name in proc.stderr and "not finite numbers" in proc.stderr
    assert not (tmp_path / "out" / "x.png").exists()


def _an_image(path):
    from translate.images import save_image
    import numpy as np

    return save_image(np.full((40, 40, 3), 120, np.uint8), path)


def test_an_export_is_never_written_with_nan_weights(tmp_path):
    from translate.formats.checkpoint import export_generator
    from translate.networks import build_generator

    kwargs = {"ngf": 8, "depth": 2}
    net = build_generator("resnet", kwargs)
    with torch.no_grad():
        next(net.parameters()).fill_(float("inf"))
    with pytest.raises(CheckpointError, match="not written.*not finite numbers"):
        export_generator(net, tmp_path / "g.safetensors", arch="resnet", kwargs=kwargs,
                         direction="a2b", norm_stats="running", method="cut", step=1)
    assert list(tmp_path.iterdir()) == []


def _first(d: dict) -> str:
    return next(iter(d))


def _ema_zeros(s):
    s.ema = {k: torch.zeros(1) for k in s.ema}


def _nets_missing(s):
    s.nets.pop(_first(s.nets))


def _nets_shape(s):
    k = _first(s.nets)
    s.nets[k] = torch.zeros(3, 3)


def _nets_dtype(s):
    k = _first(s.nets)
    s.nets[k] = s.nets[k].double()


def _nets_foreign(s):
    s.nets = "weights"


def _optimizer_shape(s):
    g = _first(s.optimizers)
    s.optimizers[g]["state"][0]["exp_avg"] = torch.zeros(2)


def _optimizer_missing(s):
    s.optimizers.pop(_first(s.optimizers))


def _optimizer_nan(s):
    g = _first(s.optimizers)
    s.optimizers[g]["state"][0]["exp_avg_sq"].fill_(float("nan"))


def _memory_foreign(s):
    s.method = {"nonsense": 1}


def _rng_foreign(s):
    s.rng = {"torch": torch.zeros(3, dtype=torch.uint8), "python": "x"}


@pytest.mark.parametrize("change, expected", [
    (_ema_zeros, r"ema\.g\.\S+ has shape \(1,\), the config's network"),
    (_nets_missing, r"nets lacks "),
    (_nets_shape, r"nets\.\S+ has shape \(3, 3\)"),
    (_nets_dtype, r"nets\.\S+ is torch\.float64, the config's network torch\.float32"),
    (_nets_foreign, r"nets is a str, not a dict of tensors"),
    (_optimizer_shape, r"optimizers\.\w+\.state\[0\]\.exp_avg has shape \(2,\)"),
    (_optimizer_missing, r"optimizers lacks "),
    (_optimizer_nan, r"optimizers\.\w+\.state\[0\]\.exp_avg_sq holds NaN"),
    (_memory_foreign, r"the method memory holds \[.nonsense.\], the config.s method keeps \[\]"),
    (_rng_foreign, r"method memory or random-number state does not fit"),
])
def test_a_checkpoint_that_does_not_fit_is_named(cut_run, shapes32, tmp_path, change,
                                                 expected):
    folder, _ = copy_with(cut_run, tmp_path, change)
    config = tiny_config(shapes32, folder, **{**CUT, "train": {**CUT["train"],
                                                              "iterations": 4}})
    weights = (folder / "generator_a2b.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match=expected) as err:
        train(config, resume=True, progress=False)
    assert err.value.path == folder / "checkpoints" / "latest.pt"
    assert (folder / "generator_a2b.safetensors").read_bytes() == weights  # nothing exported


def test_resuming_with_another_model_is_explained(shapes32, tmp_path):
    run = tmp_path / "run"
    cyclegan = {"model": "cyclegan", "generator": {"depth": 2},
                "train": {"iterations": 2, "checkpoint_every": 2, "sample_every": 0}}
    train(tiny_config(shapes32, run, **cyclegan), progress=False)
    proc = run_cli("train", str(run), "--resume", "model=cut", "train.iterations=4")
    assert proc.returncode == 2, proc.stderr
    assert "trains model 'cyclegan', not 'cut'" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(ConfigError, match="resume it with model=cyclegan"):
        train(tiny_config(shapes32, run, **{**cyclegan, "model": "pix2pix"}), resume=True,
              progress=False)
