"""The models that ship in models/: they load from their files alone, carry their cards,
fit the size budget, run at odd sizes, and beat the identity baseline on a freshly rendered
synth test split that no model has seen (a seed used nowhere in training)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from translate.evaluate import evaluate
from translate.inference import Translator
from translate.synth import render_dataset

TASKS = ("day2night", "real2anime")
CARD_KEYS = {"task", "title", "summary", "method", "data", "iterations", "hardware",
             "training_minutes", "eval", "note"}


@pytest.mark.parametrize("task", TASKS)
def test_shipped_model_loads_and_beats_identity(task, tmp_path):
    path = ROOT / "models" / f"{task}.safetensors"
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size <= 10 * 1024 * 1024
    engine = Translator.from_checkpoint(path, device="cpu")
    card = engine.info["card"]
    assert CARD_KEYS <= card.keys() and card["task"] == task
    assert card["eval"]["psnr"] > card["eval"]["identity_psnr"]
    odd = engine.translate_array(render_dataset_image(tmp_path, task, 77))
    assert odd.shape == (77, 77, 3)
    data = render_dataset(tmp_path / "fresh", task, size=128, train=0, test=8, seed=424242)
    scores = evaluate(engine, data)
    assert scores["images"] == 8
    assert scores["psnr"] > scores["identity_psnr"] + 1.0, scores
    assert scores["ssim"] > scores["identity_ssim"], scores


def render_dataset_image(tmp_path, task: str, size: int):
    from translate.images import load_rgb
    root = render_dataset(tmp_path / f"odd{size}", task, size=size, train=0, test=1, seed=5)
    return load_rgb(next((root / "test" / "A").iterdir()))
