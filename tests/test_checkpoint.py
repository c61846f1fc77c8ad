"""Generator exports describe themselves; training checkpoints never execute code."""

import pickle

import pytest
import torch

from translate.formats.checkpoint import CheckpointError, export_generator, load_generator
from translate.formats.state import load_state
from translate.infer.engine import Translator
from translate.networks import build_generator

KW = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 5, "norm": "batch",
      "dropout": True}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 0), (torch.float16, 2e-2)])
def test_export_round_trip(tmp_path, dtype, tol):
    torch.manual_seed(0)
    net = build_generator("unet", KW).eval()
    path = export_generator(net, tmp_path / "g.safetensors", arch="unet", kwargs=KW,
                            direction="b2a", norm_stats="running", method="pix2pix", step=7,
                            config={"model": "pix2pix"}, card={"task": "test"}, dtype=dtype)
    loaded, info = load_generator(path)
    assert info["direction"] == "b2a" and info["kwargs"] == KW and info["stride"] == 32
    assert info["card"] == {"task": "test"} and info["config"] == {"model": "pix2pix"}
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=tol, rtol=0)
    assert next(loaded.parameters()).dtype == torch.float32


def test_translator_keeps_any_size(tmp_path):
    net = build_generator("unet", KW)
    path = export_generator(net, tmp_path / "g.safetensors", arch="unet", kwargs=KW,
                            direction="a2b", norm_stats="image", method="pix2pix", step=1)
    t = Translator.from_checkpoint(path, device="cpu")
    for h, w in [(1, 1), (7, 13), (33, 65), (2, 300)]:
        assert t(torch.zeros(2, 3, h, w)).shape == (2, 3, h, w)


class Evil:
    def __reduce__(self):
        return (open, ("/tmp/translate-evil-marker", "w"))


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "latest.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "translate-train-state", "x": Evil()}, f, protocol=2)
    import os
    if os.path.exists("/tmp/translate-evil-marker"):
        os.remove("/tmp/translate-evil-marker")
    with pytest.raises(CheckpointError, match="not a loadable training checkpoint"):
        load_state(path)
    assert not os.path.exists("/tmp/translate-evil-marker")


def test_foreign_safetensors_is_explained(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not a translate generator"):
        load_generator(tmp_path / "other.safetensors")


def test_run_folder_gives_the_newer_of_export_and_checkpoint(shapes32, tmp_path):
    """A run resumed past its end and stopped holds an export older than its checkpoint:
    the folder then gives the checkpoint's generator, otherwise the export."""
    from conftest import tiny_config
    from translate.infer.engine import load_any
    from translate.train.loop import train

    run = tmp_path / "run"
    schedule = {"iterations": 2, "decay_from": 2, "sample_every": 0}
    train(tiny_config(shapes32, run, train=schedule), progress=False)
    export = run / "generator_a2b.safetensors"
    old = export.read_bytes()
    assert load_any(run)[1]["step"] == "2"
    train(tiny_config(shapes32, run, train=dict(schedule, iterations=4)), resume=True,
          progress=False)
    export.write_bytes(old)  # as if stopped before the end: checkpoint at 4, export at 2
    assert str(load_any(run)[1]["step"]) == "4"
    assert str(load_any(run, "a2b")[1]["step"]) == "4"
