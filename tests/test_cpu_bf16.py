"""--precision auto on CPUs: bf16 weights and activations (channels-last) where the CPU has
bf16 units and the model's output stays within tolerance of fp32 on the probe image, fp32
elsewhere. CPUs with and without the units are simulated with TRANSLATE_CPU_BF16 (bf16
arithmetic runs, if slowly, on any CPU PyTorch supports), so the choice is checked the
same way on every machine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_cli
from translate.devices import CPU_BF16_ENV
from translate.files import CACHE_ENV
from translate.infer import precision
from translate.infer.engine import Translator
from translate.networks import build_generator

MODELS = [ROOT / "models" / f"{task}.safetensors" for task in ("day2night", "real2anime")]
PHOTOS = sorted((ROOT / "apps" / "photos").glob("*.jpg"))


@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    """A CPU with bf16 units and an empty cache of precision checks."""
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / precision.CACHE_FILE


def levels(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean())


def test_without_bf16_units_auto_is_fp32(monkeypatch, tmp_path):
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    engine = Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    assert engine.precision == "fp32" and not engine.pure_bf16
    assert next(engine.net.parameters()).dtype == torch.float32
    assert "this CPU has no bf16 units" in engine.describe()
    assert not (tmp_path / "cache").exists()  # nothing probed, nothing cached


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_shipped_models_run_in_bf16_within_tolerance_on_the_demo_photos(bf16_cpu, model):
    auto = Translator.from_checkpoint(model, device="cpu", precision="auto")
    fp32 = Translator.from_checkpoint(model, device="cpu", precision="fp32")
    assert auto.precision == "bf16" and auto.pure_bf16 and auto.channels_last
    assert next(auto.net.parameters()).dtype == torch.bfloat16
    assert "levels from fp32 on the probe" in auto.describe()
    worst, means = 0, []
    for photo in PHOTOS:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        most, mean = levels(auto.translate_array(rgb), fp32.translate_array(rgb))
        worst, means = max(worst, most), means + [mean]
    # measured: day2night max 1, mean 0.15-0.19; real2anime max 2-3, mean 0.17-0.19
    assert worst <= precision.TOLERANCE.max_levels
    assert max(means) <= precision.TOLERANCE.mean_levels


def test_the_check_runs_once_per_model_and_is_remembered(bf16_cpu):
    Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    entries = json.loads(bf16_cpu.read_text())
    assert len(entries) == 1
    key, figures = next(iter(entries.items()))
    assert 0 < figures["max_levels"] <= 4 and 0 < figures["mean_levels"] <= 0.5
    # the cache is what decides: a remembered failure makes the next load pick fp32
    entries[key] = {"max_levels": 9.0, "mean_levels": 0.2}
    bf16_cpu.write_text(json.dumps(entries))
    again = Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    assert again.precision == "fp32"
    assert "bf16 would be 9.00 max" in again.describe()
    # another model gets its own entry
    Translator.from_checkpoint(MODELS[1], device="cpu", precision="auto")
    assert len(json.loads(bf16_cpu.read_text())) == 2


def test_a_model_beyond_the_tolerance_stays_fp32(bf16_cpu):
    """The probe's figures decide: with a tolerance no rounding meets, auto keeps fp32 and
    says by how much bf16 missed."""
    engine = Translator.from_checkpoint(MODELS[1], device="cpu", precision="fp32")
    choice = precision.choose(torch.device("cpu"), lambda: "key", engine._bf16_probe,
                              precision.Tolerance(max_levels=0.0, mean_levels=0.0))
    assert choice.precision == "fp32" and choice.max_levels > 0
    assert "beyond 0 / 0" in choice.reason


def test_gpus_keep_fp32_under_auto():
    choice = precision.choose(torch.device("cuda"), lambda: pytest.fail("no key needed"),
                              lambda: pytest.fail("no probe on a GPU"))
    assert choice.precision == "fp32"


def instance_norm_resnet() -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": 8, "depth": 2, "norm": "instance",
              "dropout": False}
    net = build_generator("resnet", kwargs)
    return net, {"arch": "resnet", "kwargs": kwargs, "direction": "a2b"}


def test_tiles_in_bf16_add_no_error_of_their_own(bf16_cpu):
    """Tiles share the whole image's normalisation statistics (kept in fp32) and are
    blended in fp32, so tiling in bf16 stays as close to tiling in fp32 as a whole-image
    translation in bf16 is to fp32. (A ResNet sees past any tile, so tiles differ from the
    whole image in fp32 too: that is tiling's own error.)
    Measured with this untrained ResNet: 4 max, 0.36 mean levels tiled; 4 / 0.38 whole."""
    rgb = np.asarray(Image.open(PHOTOS[0]).convert("RGB"))
    out = {}
    for name in ("fp32", "bf16"):
        engine = Translator(*instance_norm_resnet(), torch.device("cpu"), precision=name)
        assert engine.pure_bf16 == (name == "bf16")
        out[name, "whole"] = engine.translate_array(rgb)
        with engine.shared_statistics(rgb):
            out[name, "tiled"] = engine.translate_array(rgb, tile=128, overlap=32)
    tiled = levels(out["bf16", "tiled"], out["fp32", "tiled"])
    whole = levels(out["bf16", "whole"], out["fp32", "whole"])
    assert tiled[0] <= whole[0] + 1 and tiled[1] <= whole[1] + 0.1, (tiled, whole)


def test_convert_defaults_to_auto_and_says_what_it_picked(bf16_cpu, tmp_path):
    """The fixture's environment reaches the command."""
    src = tmp_path / "in"
    src.mkdir()
    for photo in PHOTOS[:2]:
        (src / photo.name).write_bytes(photo.read_bytes())
    auto = run_cli("convert", "--checkpoint", str(MODELS[0]), "--input", str(src),
                   "--output", str(tmp_path / "auto"), "--format", "png", "--quiet",
                   "--workers", "0", check=True)
    assert "(bf16, channels-last: avx512_bf16;" in auto.stderr
    fp32 = run_cli("convert", "--checkpoint", str(MODELS[0]), "--input", str(src),
                   "--output", str(tmp_path / "fp32"), "--format", "png", "--quiet",
                   "--workers", "0", "--precision", "fp32", check=True)
    assert "(fp32)" in fp32.stderr
    for photo in PHOTOS[:2]:
        name = photo.with_suffix(".png").name
        most, mean = levels(np.asarray(Image.open(tmp_path / "auto" / name)),
                            np.asarray(Image.open(tmp_path / "fp32" / name)))
        assert most <= 4 and mean <= 0.5


def test_video_frames_in_bf16_stay_close_to_fp32(bf16_cpu, tmp_path):
    av = pytest.importorskip("av", reason="video needs PyAV")
    from test_video import make_clip
    from translate.infer.video import convert_video

    clip = make_clip(tmp_path / "clip.mp4", frames=8, audio=False)
    outputs = {}
    for name in ("auto", "fp32"):
        engine = Translator.from_checkpoint(MODELS[0], device="cpu", precision=name)
        convert_video(engine, clip, tmp_path / f"{name}.mp4")
        with av.open(str(tmp_path / f"{name}.mp4")) as c:
            outputs[name] = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(outputs["auto"]) == len(outputs["fp32"]) == 8
    for a, b in zip(outputs["auto"], outputs["fp32"]):
        most, mean = levels(a, b)
        assert mean <= 1.0, mean  # the codec's own rounding on top of bf16's


# --- every generator the project builds or loads, on either kind of CPU -------------------

NORMS = ("batch", "instance", "none")
GENERATORS = [("unet", {"ngf": 8, "depth": 5}, norm) for norm in NORMS]
GENERATORS += [("resnet", {"ngf": 8, "depth": 2}, norm) for norm in NORMS]
GENERATORS += [("local", {"ngf": 8, "depth": 2}, "none"), ("animeganv2", {}, None)]


def _case_id(case) -> str:
    return f"{case[0]}-{case[2] or 'own'}"


@pytest.fixture(scope="module")
def generator_files(tmp_path_factory) -> dict[str, Path]:
    """Each generator exported as a file, its batch-norm statistics (and BatchNorm's 0-dim
    int64 step counter, num_batches_tracked) moved by a few training-mode passes, as a
    trained model's are."""
    from translate.formats.checkpoint import export_generator

    folder = tmp_path_factory.mktemp("generators")
    files = {}
    for arch, kwargs, norm in GENERATORS:
        kwargs = {**kwargs, **({"norm": norm, "dropout": False} if norm else {})}
        torch.manual_seed(0)
        net = build_generator(arch, kwargs)
        with torch.no_grad():
            for _ in range(3):
                net.train()(torch.rand(2, 3, 64, 64) * 2 - 1)
        files[_case_id((arch, kwargs, norm))] = export_generator(
            net.eval(), folder / f"{_case_id((arch, kwargs, norm))}.safetensors", arch=arch,
            kwargs=kwargs, direction="a2b", method="pix2pix", step=3, norm_stats="running",
            card={"task": "day2night"})
    return files


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> Path:
    """Two held-out photos at 160 px, a 6-frame clip, and a paired test split of them."""
    from test_video import make_clip

    root = tmp_path_factory.mktemp("small")
    for split in ("A", "B"):
        (root / "data" / "test" / split).mkdir(parents=True)
    (root / "photos").mkdir()
    for photo in PHOTOS[:2]:
        with Image.open(photo) as img:
            small = img.convert("RGB")
            small.thumbnail((160, 160))
            small.save(root / "photos" / f"{photo.stem}.png")
            small.save(root / "data" / "test" / "A" / f"{photo.stem}.png")
            small.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
                root / "data" / "test" / "B" / f"{photo.stem}.png")
    make_clip(root / "photos" / "clip.mp4", 64, 48, frames=6, audio=False)
    return root


@pytest.mark.parametrize("units", ["1", "0"], ids=["bf16-units", "no-bf16-units"])
@pytest.mark.parametrize("case", GENERATORS, ids=[_case_id(c) for c in GENERATORS])
def test_every_generator_runs_under_auto_in_convert_eval_faces_and_the_demo(
        case, units, generator_files, small_inputs, monkeypatch, tmp_path):
    """The default precision on both kinds of CPU, for every architecture and norm: the
    choice is made (batch norm's integer buffers included) and said, and conversion (images
    and a clip), evaluation, face mode and the demo's translation all run with it."""
    from translate.apps.catalog import TranslatorCache, scan
    from translate.apps.service import Limits, translate_one
    from translate.infer.convert import Options, convert
    from translate.infer.evaluate import evaluate
    from translate.infer.faces import translate_face

    monkeypatch.setenv(CPU_BF16_ENV, units)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    path = generator_files[_case_id(case)]
    engine = Translator.from_checkpoint(path, device="cpu", precision="auto")
    if units == "1":
        assert "levels from fp32 on the probe" in engine.describe()
        assert engine.pure_bf16 == (engine.precision == "bf16")
    else:
        assert engine.precision == "fp32" and "no bf16 units" in engine.describe()
    fp32 = Translator.from_checkpoint(path, device="cpu", precision="fp32")
    rgb = np.asarray(Image.open(small_inputs / "photos" / f"{PHOTOS[0].stem}.png"))
    most, mean = levels(engine.translate_array(rgb), fp32.translate_array(rgb))
    assert mean <= 1.0, (most, mean)

    report = convert(engine, small_inputs / "photos", tmp_path / "out",
                     Options(format="png", workers=0), progress=False)
    assert not report.failed and len(report.written) == 3 and len(report.videos) == 1
    scores = evaluate(engine, small_inputs / "data")
    assert scores["images"] == 2 and np.isfinite(scores["psnr"])
    face = translate_face(engine, np.asarray(Image.open(PHOTOS[0]).convert("RGB")), "paste")
    assert face is not None and face.image.shape[:2] == Image.open(PHOTOS[0]).size[::-1]

    catalog = scan(path.parent, shipped_dir=None, zoo=False)
    entry = next(e for e in catalog.entries.values() if e.path == path)
    demo_engine = TranslatorCache("cpu").get(entry)
    assert demo_engine.precision == engine.precision
    done = translate_one(demo_engine, small_inputs / "photos" / f"{PHOTOS[1].stem}.png",
                         "photo.png", 1.0, Limits(), tmp_path / "demo", "day2night")
    assert Image.open(done.png).size == Image.open(
        small_inputs / "photos" / f"{PHOTOS[1].stem}.png").size


def test_the_cache_key_covers_every_buffer_and_the_statistics_used():
    """BatchNorm's 0-dim int64 step counter is hashed like any tensor, and a batch-norm
    model checked with its running statistics is not taken for the same model normalising
    each image by its own (their bf16 errors differ)."""
    torch.manual_seed(0)
    kwargs = {"ngf": 8, "depth": 5, "norm": "batch", "dropout": False}
    net = build_generator("unet", kwargs)
    info = {"arch": "unet", "kwargs": kwargs}
    running = precision.model_key(net, {**info, "norm_stats": "running"})
    assert running != precision.model_key(net, {**info, "norm_stats": "image"})
    counter = next(b for n, b in net.named_buffers() if n.endswith("num_batches_tracked"))
    assert counter.dim() == 0 and counter.dtype == torch.int64
    counter += 1
    assert precision.model_key(net, {**info, "norm_stats": "running"}) != running


@pytest.mark.parametrize("damage", ["abc", None, [1, 2], -1, 1e999, True, "no entry dict"])
def test_a_damaged_cache_entry_is_checked_again(bf16_cpu, damage):
    """An entry whose figures are not numbers (or not finite, or negative) counts as
    missing: the model is probed again and the entry rewritten."""
    Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    entries = json.loads(bf16_cpu.read_text())
    key = next(iter(entries))
    entries[key] = damage if damage == "no entry dict" else {"max_levels": damage,
                                                             "mean_levels": 0.1}
    bf16_cpu.write_text(json.dumps(entries))
    again = Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    assert again.precision == "bf16"
    assert 0 < json.loads(bf16_cpu.read_text())[key]["max_levels"] <= 4


def test_a_cache_that_is_not_a_plain_file_is_left_alone(bf16_cpu):
    """A FIFO (it would block a read) or a link where the cache file should be: the model
    is probed, the choice made, and the node left as it was."""
    import os

    bf16_cpu.parent.mkdir(parents=True)
    os.mkfifo(bf16_cpu)
    engine = Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    assert engine.precision == "bf16" and bf16_cpu.is_fifo()
    bf16_cpu.unlink()
    elsewhere = bf16_cpu.parent / "elsewhere.json"
    elsewhere.write_text("{}")
    bf16_cpu.symlink_to(elsewhere)
    Translator.from_checkpoint(MODELS[0], device="cpu", precision="auto")
    assert bf16_cpu.is_symlink() and elsewhere.read_text() == "{}"
