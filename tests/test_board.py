"""train.tensorboard: event files in the run folder's tb/, read back with TensorBoard's own
reader: scalars, images and text at the right steps, and no step twice across a resume."""

from __future__ import annotations

import shutil
import sys

import pytest
from conftest import tiny_config

from translate.train.board import BoardError
from translate.train.loop import train

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="needs tensorboard (pip install 'translate[tensorboard]')")


def _read(run):
    acc = event_accumulator.EventAccumulator(
        str(run / "tb"), size_guidance={event_accumulator.SCALARS: 0,
                                        event_accumulator.IMAGES: 0,
                                        event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def _config(root, run, iterations, **train_options):
    return tiny_config(root, run, generator={"ngf": 8, "depth": 5}, discriminator={"ndf": 8},
                       train={"iterations": iterations, "batch_size": 2, "log_every": 2,
                              "sample_every": 4, "eval_every": 4, "eval_images": 2,
                              "checkpoint_every": 4, "tensorboard": True, **train_options})


def test_scalars_images_and_text(shapes32, tmp_path):
    run = tmp_path / "run"
    train(_config(shapes32, run, 8), progress=False)
    acc = _read(run)
    tags = acc.Tags()
    for tag in ("loss/g_l1", "loss/d_real", "scores/real", "scores/fake", "grad_norm/g",
                "grad_norm/d", "train/lr", "train/iterations_per_second", "eval/psnr"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in acc.Scalars("loss/g_l1")] == [2, 4, 6, 8]
    assert [e.step for e in acc.Scalars("eval/psnr")] == [4, 8]
    assert [e.step for e in acc.Images("samples")] == [4, 8]
    assert "config/text_summary" in tags["tensors"]


def test_resume_appends_without_duplicated_steps(shapes32, tmp_path):
    run = tmp_path / "run"
    train(_config(shapes32, run, 4), progress=False)
    at_four = tmp_path / "latest_at_4.pt"
    shutil.copy(run / "checkpoints" / "latest.pt", at_four)
    train(_config(shapes32, run, 8), resume=True, progress=False)  # logs 6 and 8
    # a kill after step 8's lines but before its checkpoint: back to the step-4 checkpoint
    shutil.copy(at_four, run / "checkpoints" / "latest.pt")
    train(_config(shapes32, run, 8), resume=True, progress=False)
    acc = _read(run)
    assert [e.step for e in acc.Scalars("loss/g_l1")] == [2, 4, 6, 8]
    assert [e.step for e in acc.Images("samples")] == [4, 8]


def test_missing_tensorboard_is_a_clear_error(shapes32, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(BoardError, match=r"pip install 'translate\[tensorboard\]'"):
        train(_config(shapes32, tmp_path / "run", 2), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # nothing written
