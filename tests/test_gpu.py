"""The CUDA paths of the speed options, run for real on a CUDA device and skipped without
one: fp16 with its gradient scaler, bf16, channels-last, torch.compile (inductor), fused
Adam, augmentation on the GPU, nvJPEG decode/encode in convert, and translate bench.

TF32 is switched off while losses are compared, so fp32 options are held to fp32 accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from translate.train.bench import run as bench_run
from translate.formats.state import load_state
from translate.infer.convert import Options, convert
from translate.data.datasets import PairedDataset, paired_items
from translate.data.jpeg import EncodedJpeg, decode_jpegs, encode_jpegs, read_jpeg
from translate.train.diffaugment import diff_augment, parse_policy
from translate.train.augment import DecodeOnly, DeviceAugment
from translate.images import load_image
from translate.infer.engine import Translator
from translate.train.methods import build_method
from translate.networks import build_generator
from translate.networks.layers import InstanceNorm2d
from translate.devices import resolve_precision
from translate.train.loop import make_optimizers, train

from conftest import run_cli, tiny_config
from test_speed_options import (CYCLEGAN, PIX2PIX, assert_losses_close, config_of,
                                metric_rows, one_step)

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# Relative tolerances on the GPU: fp32 options 1e-4 (other convolution algorithms per
# layout), fp16 1e-2, bf16 5e-2.
OPTIONS = {
    "channels_last": (dict(channels_last=True), 1e-4),
    "fused_adam": (dict(fused=True), 1e-4),
    "fp16": (dict(precision="fp16"), 1e-2),
    "bf16": (dict(precision="bf16"), 5e-2),
    "bf16_channels_last": (dict(precision="bf16", channels_last=True), 5e-2),
    "fp16_channels_last_fused": (dict(precision="fp16", channels_last=True, fused=True), 1e-2),
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_one_step_on_cuda_gives_the_same_losses(model, option):
    config = config_of(PIX2PIX if model == "pix2pix" else CYCLEGAN)
    kwargs, rtol = OPTIONS[option]
    assert_losses_close(one_step(config, "cuda", **kwargs), one_step(config, "cuda"), rtol)


def test_one_step_compiled_with_inductor_on_cuda():
    config = config_of(PIX2PIX)
    assert_losses_close(one_step(config, "cuda", backend="inductor", steps=2),
                        one_step(config, "cuda", steps=2), 1e-4)


def test_fused_adam_is_used_on_cuda():
    config = config_of(PIX2PIX)
    method = build_method(config)
    method.nets.to(CUDA)
    optimizers, _ = make_optimizers(method, config, fused=True)
    assert all(o.param_groups[0]["fused"] for o in optimizers.values())


def test_auto_precision_on_this_gpu():
    capable = torch.cuda.get_device_capability()[0] >= 8
    assert resolve_precision("auto", CUDA) == ("bf16" if capable else "fp32")


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_channels_last_on_cuda(affine):
    torch.manual_seed(0)
    x = torch.randn(4, 16, 24, 20, device=CUDA)
    ours, theirs = InstanceNorm2d(16, affine=affine).to(CUDA), nn.InstanceNorm2d(
        16, affine=affine).to(CUDA)
    a = x.clone().to(memory_format=torch.channels_last).requires_grad_(True)
    b = x.clone().requires_grad_(True)
    ya, yb = ours(a), theirs(b)
    assert ya.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_fp16_training_on_cuda_saves_the_scaler_and_resumes(shapes32, tmp_path):
    schedule = {"iterations": 6, "decay_from": 3, "batch_size": 2, "log_every": 1,
                "checkpoint_every": 3, "sample_every": 3, "precision": "fp16",
                "device": "cuda", "channels_last": True}
    first = tiny_config(shapes32, tmp_path / "run", train=dict(schedule, iterations=3),
                        data={"gpu_augment": True})
    train(first, progress=False)
    state = load_state(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert 0 < state["scaler"]["scale"] <= 65536.0
    assert state["config"]["train"]["precision"] == "fp16"
    out = train(tiny_config(shapes32, tmp_path / "run", train=schedule,
                            data={"gpu_augment": True}), resume=True, progress=False)
    rows = metric_rows(out)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(np.isfinite(v) for r in rows for k, v in r.items() if k.endswith("_total"))


def test_bf16_auto_training_on_cuda_records_precision(shapes32, tmp_path):
    out = train(tiny_config(shapes32, tmp_path / "run", train={"iterations": 4,
                                                               "device": "cuda"},
                            loss={"diffaugment": "color,translation,cutout"}), progress=False)
    expected = "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp32"
    assert f"precision: {expected}" in (out / "config.yaml").read_text()


def test_device_augment_on_cuda_equals_the_cpu_one():
    """Resize (up and down), crop and flip give the same images on CUDA as on the CPU,
    within one grey level (the two devices' bicubic kernels round differently)."""
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=gen)
              for h, w in ((40, 40), (40, 40), (64, 50), (30, 20), (40, 40), (90, 120))]
    seeds = torch.arange(len(images)) * 31 + 5
    augment = DeviceAugment(40, 32, flip=True, paired=True)
    raw = {"a": images, "b": [im.clone() for im in images], "seed": seeds}
    cpu = augment(raw, torch.device("cpu"))
    gpu = augment(raw, CUDA)
    assert gpu["a"].device.type == "cuda" and torch.equal(gpu["b"], gpu["a"])
    assert (gpu["a"].cpu() - cpu["a"]).abs().max() <= 1 / 127.5 + 1e-6


def test_training_jpegs_are_decoded_on_cuda(tmp_path):
    """data.gpu_augment on CUDA: workers hand over JPEG bytes, nvJPEG decodes them, and
    the batch matches the loader-decoded one within the decoders' few grey levels."""
    write_jpegs(tmp_path / "train" / "A")
    write_jpegs(tmp_path / "train" / "B")
    items = paired_items(tmp_path, "paired")
    keys = [(k, 11 + k) for k in range(len(items))]
    augment = DeviceAugment(52, 48, flip=True, paired=True)
    decoded, encoded = (DecodeOnly(PairedDataset(items, 52, 48, True), jpeg=j)
                        for j in (False, True))
    raw = DecodeOnly.collate([encoded[k] for k in keys])
    assert all(x.dim() == 1 for x in raw["a"])
    got = augment(raw, CUDA)
    want = augment(DecodeOnly.collate([decoded[k] for k in keys]), torch.device("cpu"))
    assert (got["a"].cpu() - want["a"]).abs().mean() < 2 / 127.5


def test_diffaugment_on_cuda_keeps_pairs_aligned():
    x = torch.rand(4, 3, 32, 32, device=CUDA)
    a, b = diff_augment(parse_policy("color,translation,cutout"), x, x.clone())
    assert torch.equal(a, b) and not torch.equal(a, x)


def write_jpegs(folder, count=6, size=(48, 64)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size[1], size[0]), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:02d}.jpg", quality=92)
    return sorted(folder.glob("*.jpg"))


def test_nvjpeg_decode_and_encode(tmp_path):
    files = write_jpegs(tmp_path / "in")
    items = [read_jpeg(f) for f in files]
    assert all(isinstance(it, EncodedJpeg) for it in items)
    decoded = decode_jpegs(items, CUDA)
    assert decoded.device.type == "cuda" and decoded.shape == (6, 3, 48, 64)
    reference = np.stack([load_image(f)[0] for f in files]).astype(np.float32)
    diff = np.abs(decoded.permute(0, 2, 3, 1).cpu().numpy() - reference)
    assert diff.mean() < 1.0 and diff.max() <= 32  # nvJPEG's IDCT differs from libjpeg's
    encoded = encode_jpegs(decoded, quality=95)
    for data, want in zip(encoded, reference):
        path = tmp_path / "x.jpg"
        path.write_bytes(data)
        back = np.asarray(Image.open(path).convert("RGB"), np.float32)
        assert back.shape == want.shape and np.abs(back - want).mean() < 3.0


def generator_and_info():
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": 8, "depth": 2, "norm": "instance",
              "dropout": False}
    info = {"arch": "resnet", "kwargs": kwargs, "direction": "a2b", "norm_stats": "running"}
    return build_generator("resnet", kwargs), info


@pytest.mark.parametrize("fmt", ["same", "png"])
def test_convert_on_cuda_matches_the_cpu(tmp_path, fmt):
    """JPEG in: decoded with nvJPEG; JPEG out: encoded with nvJPEG, PNG out: through pinned
    memory to the CPU encoders. bf16 and channels-last on the GPU, fp32 on the CPU."""
    write_jpegs(tmp_path / "in", count=7)
    Image.fromarray(np.full((48, 64, 4), 120, np.uint8)).save(tmp_path / "in" / "alpha.png")
    net, info = generator_and_info()
    cpu = convert(Translator(net, info, torch.device("cpu")), tmp_path / "in",
                  tmp_path / "cpu", Options(batch_size=3, workers=1, format=fmt),
                  progress=False)
    gpu_translator = Translator(generator_and_info()[0], info, CUDA, precision="bf16",
                                channels_last=True)
    gpu = convert(gpu_translator, tmp_path / "in", tmp_path / "gpu",
                  Options(batch_size=3, workers=1, format=fmt), progress=False)
    assert not gpu.failed and [p.name for p in gpu.written] == [p.name for p in cpu.written]
    for path in cpu.written:
        a = np.asarray(Image.open(path).convert("RGB"), np.float32)
        b = np.asarray(Image.open(tmp_path / "gpu" / path.name).convert("RGB"), np.float32)
        assert a.shape == b.shape and np.abs(a - b).mean() < 4.0, path.name


def test_bench_on_cuda_uses_the_options():
    r = bench_run("pix2pix", size=64, batch_size=4, device="cuda", precision="bf16",
                  iterations=2, warmup=1, ngf=8, images=4, workers=0)
    assert r["device_type"] == "cuda" and r["channels_last"] is True
    assert r["matmul_peak_tflops"] > 1.0  # a measured bf16 peak, not a CPU number
    assert 0 < r["train"]["mfu"] < 1.5 and r["speedup"]["train"] > 0


def test_bench_cli_bf16_batch16_and_compile_on_cuda():
    proc = run_cli("bench", "--model", "cyclegan", "--device", "cuda", "--precision", "bf16",
                   "--batch-size", "16", "--size", "64", "--ngf", "8", "--iterations", "2",
                   "--warmup", "1", "--images", "4", "--workers", "0", "--compile", "--json",
                   check=True, timeout=900)
    r = json.loads(proc.stdout)
    assert r["precision"] == "bf16" and r["batch_size"] == 16 and r["compile"] is True
    assert r["train"]["compile_seconds"] > 0 and r["train"]["images_per_s"] > 0
