"""Speed options leave the method unchanged: layout-keeping instance norm, precision,
channels-last, compilation, fused Adam, on-device augmentation, differentiable augmentation
of D's inputs, loss scaling across resume, and the device JPEG path of convert (on the CPU).

The CUDA versions of these checks are in test_gpu.py."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from translate.train import losses
from translate.formats.state import load_state
from translate.train.config import ConfigError, load_config
from translate.infer.convert import Options, convert
from translate.data.datasets import PairedDataset, apply_seeded, paired_items, train_transform
from translate.train.diffaugment import OPERATIONS, diff_augment, parse_policy
from translate.train.augment import DecodeOnly, DeviceAugment, crop_params, resize_bicubic
from translate.images import to_tensor
from translate.infer.engine import Translator
from translate.train.methods import build_method
from translate.networks.layers import InstanceNorm2d, instance_norm
from translate import devices
from translate.devices import resolve_precision
from translate.train.precision import Precision, prepare_networks, to_channels_last
from translate.train.loop import loader_workers, make_optimizers, train, train_step

from conftest import TINY, merge, overrides, run_cli, tiny_config

CL = torch.channels_last


def is_cl(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=CL) and not x.is_contiguous()


# --- instance norm that keeps channels-last --------------------------------------------------

@pytest.mark.parametrize("affine", [False, True], ids=["plain", "affine"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_instance_norm_equals_builtin_forward_and_backward(affine, layout):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 9, 7) * 3 + 1
    ours, theirs = InstanceNorm2d(5, affine=affine), nn.InstanceNorm2d(5, affine=affine)
    if affine:
        with torch.no_grad():
            for m in (ours, theirs):
                m.weight.copy_(torch.linspace(0.5, 2, 5))
                m.bias.copy_(torch.linspace(-1, 1, 5))
    x_ours = x.clone().to(memory_format=CL) if layout == "channels_last" else x.clone()
    x_ours.requires_grad_(True)
    x_ref = x.clone().requires_grad_(True)
    y_ours, y_ref = ours(x_ours), theirs(x_ref)
    assert is_cl(y_ours) == (layout == "channels_last")  # the layout is kept
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    # the function itself, whatever the layout it is handed
    torch.testing.assert_close(instance_norm(x_ours, ours.weight, ours.bias, ours.eps), y_ref,
                               rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(x)
    y_ours.backward(upstream)
    y_ref.backward(upstream)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    if affine:
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-4, atol=1e-5)


def test_instance_norm_keeps_dtype_and_state_dict_names():
    x = torch.randn(2, 4, 8, 8).to(memory_format=CL)
    y = InstanceNorm2d(4)(x.bfloat16())
    assert y.dtype == torch.bfloat16 and is_cl(y)
    torch.testing.assert_close(y.float(), nn.InstanceNorm2d(4)(x), rtol=2e-2, atol=2e-2)
    assert (InstanceNorm2d(4, affine=True).state_dict().keys()
            == nn.InstanceNorm2d(4, affine=True).state_dict().keys())


def test_channels_last_runs_through_the_generators_in_nhwc():
    """No layer of the CycleGAN generator (instance norm) or the pix2pix U-Net (batch norm)
    falls back to NCHW."""
    for extra in (CYCLEGAN, PIX2PIX):
        method = build_method(config_of(extra))
        prepare_networks(method, channels_last=True)
        seen = []
        hooks = [m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, o)))
                 for m in method.nets.modules() if not list(m.children())]
        method.forward(to_channels_last({k: torch.rand(2, 3, 32, 32) for k in "ab"}))
        for h in hooks:
            h.remove()
        bad = [name for name, out in seen
               if out.dim() == 4 and out.shape[1] > 1 and out.shape[-1] > 1 and not is_cl(out)]
        assert seen and not bad, bad


# --- one training step with and without each option ------------------------------------------

PIX2PIX = {"generator": {"ngf": 8, "depth": 5, "dropout": False},
           "discriminator": {"ndf": 8, "layers": 2}}
CYCLEGAN = {"model": "cyclegan", "generator": {"arch": "resnet", "ngf": 4, "depth": 2},
            "discriminator": {"ndf": 4, "layers": 2}}


def config_of(extra: dict, **sections):
    tree = merge(merge(TINY, {"train": {"out": "unused"}}), extra)
    return tiny_config_tree(merge(tree, sections))


def tiny_config_tree(tree):
    from translate.train.config import load_config
    return load_config(None, overrides(tree))


def one_step(config, device="cpu", precision="fp32", channels_last=False, backend=None,
             fused=False, steps=1) -> list[dict[str, float]]:
    """Losses of ``steps`` training steps from seed 0 on fixed random batches."""
    torch.manual_seed(0)
    method = build_method(config)
    method.nets.to(device)
    prepare_networks(method, channels_last, backend is not None, config.loss.gan,
                     backend=backend or "inductor")
    optimizers, _ = make_optimizers(method, config, fused=fused)
    amp = Precision(precision, torch.device(device))
    gen = torch.Generator().manual_seed(1)
    rows = []
    for s in range(steps):
        batch = {k: (torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1).to(device) for k in "ab"}
        if channels_last:
            batch = to_channels_last(batch)
        torch.manual_seed(100 + s)
        rows.append({k: float(v) for k, v in train_step(method, optimizers, batch,
                                                        amp).items()})
    return rows


def assert_losses_close(rows, ref, rtol, unlogged=()):
    """``unlogged``: keys of ``ref`` the option does not log (fp16 skips gradient norms, which
    would read the loss-scaled gradients)."""
    for got, want in zip(rows, ref):
        want = {k: v for k, v in want.items() if k not in unlogged}
        assert got.keys() == want.keys()
        for k in want:
            assert abs(got[k] - want[k]) <= rtol * abs(want[k]) + 1e-6, (k, got[k], want[k])


# Relative tolerance per option. Measured on this CPU (largest relative difference over all
# loss terms): channels-last 1.6e-7, fused Adam 0, compile 0, fp16 9e-5, bf16 1.6e-3.
OPTIONS = {
    "channels_last": (dict(channels_last=True), 1e-5),
    "fused_adam": (dict(fused=True), 1e-5),
    "compile": (dict(backend="aot_eager"), 1e-5),
    "fp16": (dict(precision="fp16"), 1e-2),
    "bf16": (dict(precision="bf16"), 5e-2),
    "bf16_channels_last": (dict(precision="bf16", channels_last=True), 5e-2),
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_one_step_gives_the_same_losses_with_each_option(model, option):
    """pix2pix's G terms come after D's update, so the optimizer is covered too. ``compile``
    uses torch.compile's aot_eager backend here (graph capture and AOT autograd, no code
    generation, which takes ~90 s on a small CPU); the inductor backend is checked in
    test_gpu.py and, with TRANSLATE_SLOW_TESTS=1, below."""
    config = config_of(PIX2PIX if model == "pix2pix" else CYCLEGAN)
    kwargs, rtol = OPTIONS[option]
    unlogged = ("grad_norm_d", "grad_norm_g") if option == "fp16" else ()
    assert_losses_close(one_step(config, **kwargs), one_step(config), rtol, unlogged)


@pytest.mark.skipif(not os.environ.get("TRANSLATE_SLOW_TESTS"),
                    reason="inductor compiles the tiny model in ~90 s on a 2-core CPU; set "
                    "TRANSLATE_SLOW_TESTS=1 to run")
def test_one_step_with_inductor_on_the_cpu():
    config = config_of(PIX2PIX)
    assert_losses_close(one_step(config, backend="inductor", steps=2),
                        one_step(config, steps=2), 1e-4)


def test_compile_keeps_parameter_names_and_skips_gp_critics():
    config = config_of(PIX2PIX, loss={"gan": "wgan-gp"})
    method = build_method(config)
    names = set(method.nets.state_dict())
    prepare_networks(method, compile_nets=True, gan_mode="wgan-gp", backend="aot_eager")
    assert set(method.nets.state_dict()) == names
    assert method.nets["g"]._compiled_call_impl is not None
    assert method.nets["d"]._compiled_call_impl is None  # double backward of the penalty


# --- precision --------------------------------------------------------------------------------

def test_auto_precision_on_a_cpu_is_fp32_even_with_bf16_units(monkeypatch, tmp_path, capsys):
    """bf16 units are found, but ``auto`` trains in fp32 on a CPU (bf16 scored lower at full
    budget), says so once, and ``bf16`` stays available when asked for."""
    from translate.train.loop import resolved
    from translate.train.precision import generator_gflops

    cpuinfo = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile amx_bf16\n"
    assert devices.cpu_bf16_units(cpuinfo) == "amx_bf16"
    assert devices.cpu_bf16_units("flags\t: sse avx512f avx512_bf16") == "avx512_bf16"
    assert devices.cpu_bf16_units("flags\t: sse avx2 fma") is None
    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: "amx_bf16")
    monkeypatch.setattr("translate.train.loop.cpu_bf16_units", lambda: "amx_bf16")
    default = load_config(None, ["data.root=x", f"train.out={tmp_path / 'a'}"])
    assert generator_gflops(default) > 10  # large: bf16 would be faster
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolved(default, cpu).train.precision == "fp32"
    assert "fp32 on this CPU; it has bf16 units (amx_bf16)" in capsys.readouterr().err
    assert default.train.precision == "auto"
    assert resolve_precision("bf16", cpu) == "bf16"  # asked for
    asked = load_config(None, ["data.root=x", f"train.out={tmp_path}", "train.precision=bf16"])
    assert resolved(asked, cpu).train.precision == "bf16"
    monkeypatch.setattr("translate.train.loop.cpu_bf16_units", lambda: None)
    resolved(default, cpu)
    assert capsys.readouterr().err == ""  # nothing to say without bf16 units


def test_auto_precision_resolves_and_is_recorded(shapes32, tmp_path):
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError):
        resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ConfigError, match="train.precision must be one of"):
        tiny_config(shapes32, tmp_path / "x", train={"precision": "half"})
    out = train(tiny_config(shapes32, tmp_path / "run", train={"iterations": 2}),
                progress=False)
    assert "precision: fp32" in (out / "config.yaml").read_text()


def test_losses_and_gradient_penalty_stay_fp32_under_autocast():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    torch.manual_seed(1)
    want = losses.gradient_penalty(critic, real, fake)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = critic(real)
        assert logits.dtype == torch.bfloat16
        for loss in (losses.discriminator_loss("vanilla", logits, True),
                     losses.generator_loss("vanilla", logits)):
            assert loss.dtype == torch.float32
        torch.manual_seed(1)
        got = losses.gradient_penalty(critic, real, fake.bfloat16())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-6)  # fp32 critic, bf16 input


def test_fp16_scaler_state_is_saved_and_resume_stays_exact(shapes32, tmp_path):
    """fp16 on the CPU with torch.amp.GradScaler('cpu'): the scale falls from 65536 when
    scaled gradients overflow, the checkpoint carries it, and a resumed run logs exactly the
    losses of an uninterrupted one."""
    schedule = {"iterations": 8, "decay_from": 4, "batch_size": 2, "log_every": 1,
                "checkpoint_every": 4, "sample_every": 0, "precision": "fp16"}
    net = dict(generator={"ngf": 4, "depth": 5}, discriminator={"ndf": 4, "layers": 2})
    whole = train(tiny_config(shapes32, tmp_path / "whole", train=schedule, **net),
                  progress=False)
    train(tiny_config(shapes32, tmp_path / "split", train=dict(schedule, iterations=4), **net),
          progress=False)
    state = load_state(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert 0 < state["scaler"]["scale"] < 65536.0
    split = train(tiny_config(shapes32, tmp_path / "split", train=schedule, **net),
                  resume=True, progress=False)
    assert metric_rows(split) == metric_rows(whole)


def metric_rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


# --- augmentation on the device ---------------------------------------------------------------

def test_decode_only_hands_over_the_files_as_decoded(shapes32, tmp_path):
    items = paired_items(shapes32, "paired")
    fast = DecodeOnly(PairedDataset(items, 36, 32, True))
    item = fast[(3, 12345)]
    want = np.array(Image.open(items[3].a).convert("RGB"))
    assert item["a"].dtype == torch.uint8 and torch.equal(item["a"], torch.from_numpy(want))
    assert item["seed"] == 12345 and item["index"] == 3
    assert fast[3]["a"].shape == (3, 32, 32)  # plain indices (sample grids) are unchanged
    batch = DecodeOnly.collate([fast[(0, 1)], fast[(1, 2)]])
    assert len(batch["a"]) == 2 and batch["seed"].tolist() == [1, 2]
    jpegs = write_pairs(tmp_path / "jpeg", sizes=[(40, 30)], suffix=".jpg")
    encoded = DecodeOnly(PairedDataset(paired_items(jpegs, "paired"), 36, 32, True),
                         jpeg=True)[(0, 1)]
    assert encoded["a"].dim() == 1  # the file's bytes, decoded on the device
    assert bytes(encoded["a"].numpy()) == (jpegs / "train" / "A" / "p0.jpg").read_bytes()


def write_pairs(root, sizes, suffix=".png", seed=0):
    """A paired dataset of smooth random images of the given (width, height) sizes."""
    rng = np.random.default_rng(seed)
    for side in "AB":
        (root / "train" / side).mkdir(parents=True, exist_ok=True)
    for k, (w, h) in enumerate(sizes):
        for side in "AB":
            small = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
            Image.fromarray(small).resize((w, h), Image.BICUBIC).save(
                root / "train" / side / f"p{k}{suffix}", quality=95)
    return root


@pytest.mark.parametrize("size", [(36, 36), (32, 32), (50, 41), (300, 200), (7, 90)])
def test_device_resize_matches_the_cpu_resize_within_one_grey_level(size):
    """OpenCV's INTER_CUBIC (the CPU pipeline) against the device resize, up and down."""
    w, h = size
    rng = np.random.default_rng(w * h)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cpu = cv2.resize(image, (36, 36), interpolation=cv2.INTER_CUBIC).astype(int)
    device = resize_bicubic(torch.from_numpy(image).permute(2, 0, 1)[None], 36)
    diff = np.abs(device[0].permute(1, 2, 0).numpy().astype(int) - cpu)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_device_augment_is_the_cpu_pipeline_given_the_same_draws(tmp_path):
    """Each output is the CPU pipeline's resize, crop at the drawn offset and flip, within
    one grey level; images of several sizes share a batch."""
    root = write_pairs(tmp_path / "d", sizes=[(64, 48), (36, 36), (64, 48), (20, 30)])
    dataset = DecodeOnly(PairedDataset(paired_items(root, "paired"), 40, 32, True))
    keys = [(k, 1000 + k) for k in range(4)]
    batch = DecodeOnly.collate([dataset[key] for key in keys])
    out = DeviceAugment(40, 32, flip=True, paired=True)(batch, torch.device("cpu"))
    assert out["a"].shape == (4, 3, 32, 32) and out["a"].dtype == torch.float32
    for k, (index, seed) in enumerate(keys):
        (top, left, flipped), = crop_params(seed, 40, 32, True, 1)
        for side in "ab":
            rgb = np.asarray(Image.open(dataset.dataset.items[index].a if side == "a" else
                                        dataset.dataset.items[index].b).convert("RGB"))
            want = cv2.resize(rgb, (40, 40), interpolation=cv2.INTER_CUBIC)
            want = want[top:top + 32, left:left + 32]
            want = to_tensor(want[:, ::-1].copy() if flipped else want)
            assert (out[side][k] - want).abs().max() <= 1 / 127.5 + 1e-6


def test_device_jpeg_decoding_gives_the_decoded_path(tmp_path):
    """JPEG bytes decoded on the device (here the CPU's decoder) give the images that
    loader-decoded files give."""
    root = write_pairs(tmp_path / "j", sizes=[(48, 40), (48, 40), (30, 30)], suffix=".jpg")
    items = paired_items(root, "paired")
    keys = [(k, 7 + k) for k in range(3)]
    augment = DeviceAugment(36, 32, flip=True, paired=True)
    decoded, encoded = (DecodeOnly(PairedDataset(items, 36, 32, True), jpeg=j)
                        for j in (False, True))
    want = augment(DecodeOnly.collate([decoded[k] for k in keys]), torch.device("cpu"))
    raw = DecodeOnly.collate([encoded[k] for k in keys])
    assert all(x.dim() == 1 for x in raw["a"])
    got = augment(raw, torch.device("cpu"))
    for side in "ab":
        assert (got[side] - want[side]).abs().max() <= 3 / 127.5 + 1e-6


def test_a_damaged_jpeg_is_replaced_within_its_batch(tmp_path, capfd):
    """A JPEG whose header is fine but whose data is cut short is decoded by neither the
    device nor Pillow: it is reported and another image of the batch takes its place."""
    root = write_pairs(tmp_path / "j", sizes=[(48, 40), (48, 40)], suffix=".jpg")
    dataset = DecodeOnly(PairedDataset(paired_items(root, "paired"), 36, 32, True), jpeg=True)
    good, other = dataset[(0, 3)]["a"], dataset[(1, 3)]["a"]
    cut = good[:len(good) // 2].clone()
    images = DeviceAugment(36, 32, flip=False).on_device([cut, other], torch.device("cpu"))
    assert len(images) == 2 and torch.equal(images[0], images[1])
    assert "damaged JPEG" in capfd.readouterr().err


def test_default_loader_workers_follow_the_cores_available(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert loader_workers(3) == 3 and loader_workers(0) == 0
    assert loader_workers(None) == max(1, min(8, cores - 1))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * cores))  # more processes than cores
    assert loader_workers(None) == 1


def test_device_crop_draws_as_the_cpu_pipeline_does():
    """Offsets uniform over every position and flips with probability 1/2, for the device
    crops and for the CPU pipeline alike (frequencies within 4 standard deviations)."""
    load, size, draws = 36, 32, 600
    span = load - size + 1
    device = [p for s in range(draws) for p in crop_params(s, load, size, True, 1)]
    transform = train_transform(load, size, True)
    image = np.stack([np.tile(np.arange(load)[:, None], (1, load)),
                      np.tile(np.arange(load)[None, :], (load, 1)),
                      np.zeros((load, load))], -1).astype(np.uint8)
    cpu = []
    for s in range(draws):
        out = apply_seeded(transform, s, image=image, b=image)["image"]
        flipped = out[0, 0, 1] > out[0, -1, 1]
        cpu.append((int(out[0, 0, 0]), int(out[0, -1 if flipped else 0, 1]), bool(flipped)))
    for draws_of in (device, cpu):
        tops = np.bincount([t for t, _, _ in draws_of], minlength=span)
        lefts = np.bincount([x for _, x, _ in draws_of], minlength=span)
        flips = sum(f for _, _, f in draws_of)
        sd = np.sqrt(draws * (1 / span) * (1 - 1 / span))
        assert len(tops) == span and len(lefts) == span
        assert np.all(np.abs(tops - draws / span) < 4 * sd)
        assert np.all(np.abs(lefts - draws / span) < 4 * sd)
        assert abs(flips - draws / 2) < 4 * np.sqrt(draws / 4)


def test_gpu_augment_training_is_reproducible_and_resumes_exactly(shapes32, tmp_path):
    """With data.gpu_augment the crops follow from the seed and the stream position: a run
    with a loader worker, stopped and resumed, logs what a run without workers logs."""
    schedule = {"iterations": 6, "decay_from": 3, "batch_size": 2, "log_every": 1,
                "checkpoint_every": 3, "sample_every": 0}
    whole = train(tiny_config(shapes32, tmp_path / "whole", train=schedule,
                              data={"gpu_augment": True}), progress=False)
    half = dict(schedule, iterations=3)
    train(tiny_config(shapes32, tmp_path / "split", train=half,
                      data={"gpu_augment": True, "workers": 1}), progress=False)
    split = train(tiny_config(shapes32, tmp_path / "split", train=schedule,
                              data={"gpu_augment": True, "workers": 1}),
                  resume=True, progress=False)
    assert metric_rows(split) == metric_rows(whole)
    plain = train(tiny_config(shapes32, tmp_path / "plain", train=schedule), progress=False)
    assert metric_rows(plain) != metric_rows(whole)  # other draws, same distribution


# --- differentiable augmentation of D's inputs ----------------------------------------------

@pytest.mark.parametrize("policy", [*OPERATIONS, "color,translation,cutout"])
def test_diffaugment_transforms_every_image_of_a_call_alike(policy):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    gray = x[:, :1].clone()
    ops = parse_policy(policy)
    a, b, c = diff_augment(ops, x, x.clone(), gray)
    assert torch.equal(a, b)
    if "color" not in ops:  # geometry: the 1-channel image moves with the 3-channel one
        torch.testing.assert_close(c, a[:, :1])
    assert not torch.equal(a, x)
    x.requires_grad_(True)
    (y,) = diff_augment(ops, x)
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diffaugment_off_draws_nothing_and_bad_policies_are_refused(shapes32, tmp_path):
    x = torch.rand(2, 3, 8, 8)
    state = torch.get_rng_state()
    assert diff_augment((), x)[0] is x
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ConfigError, match="unknown augmentation 'blur'.*color, translation"):
        tiny_config(shapes32, tmp_path / "x", loss={"diffaugment": "color,blur"})


def d_inputs(config, names) -> list[torch.Tensor]:
    """The inputs of the discriminators ``names`` during one training step."""
    torch.manual_seed(0)
    method = build_method(config)
    batch = {k: torch.rand(2, 3, 32, 32) * 2 - 1 for k in "ab"}
    seen = []
    hooks = [method.nets[n].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
             for n in names]
    optimizers, _ = make_optimizers(method, config)
    train_step(method, optimizers, batch)
    for h in hooks:
        h.remove()
    return seen


def test_pix2pix_augments_every_pair_d_sees_with_both_halves_alike():
    seen = d_inputs(config_of(PIX2PIX, loss={"diffaugment": "cutout"}), ["d"])
    assert len(seen) == 4  # D: real, generated, mismatched pairs; G: its own pairs
    for pair in seen:
        hole_x, hole_y = pair[:, :3] == 0, pair[:, 3:] == 0
        assert hole_x.all(1).flatten(1).sum(1).min() >= 64  # a cut-out in every pair ...
        assert torch.equal(hole_x.all(1), hole_y.all(1))   # ... at the same place in x and y


def test_cyclegan_augments_real_and_generated_images_alike():
    seen = d_inputs(config_of(CYCLEGAN, loss={"diffaugment": "cutout"}), ["d_a", "d_b"])
    assert len(seen) == 6  # G phase: two fakes; D phase: real and fake per domain
    for images in seen:
        assert (images == 0).all(1).flatten(1).sum(1).min() >= 64


# --- conversion: the device JPEG path, run on the CPU ----------------------------------------

def test_convert_with_the_device_jpeg_path_writes_what_the_cpu_path_writes(tmp_path):
    """Options(device_codec=True) sends plain JPEGs through torchvision's batched decoder
    (nvJPEG on CUDA, libjpeg here, which decodes exactly as PIL does) and everything else
    through the CPU decoder: outputs are identical, failures reported the same way."""
    from translate.networks import build_generator
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 2, "norm": "instance",
              "dropout": False}
    info = {"arch": "resnet", "kwargs": kwargs, "direction": "a2b", "norm_stats": "running"}
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            src / f"rgb{i}.jpg", quality=90)
    Image.fromarray(rng.integers(0, 255, (24, 32), dtype=np.uint8)).save(src / "gray.jpg")
    Image.fromarray(rng.integers(0, 255, (24, 32, 4), dtype=np.uint8)).save(src / "alpha.png")
    Image.new("CMYK", (32, 24), (10, 200, 30, 0)).save(src / "cmyk.jpg")
    rotated = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(src / "rotated.jpg", exif=exif)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    translator = Translator(build_generator("resnet", kwargs), info, torch.device("cpu"))
    for batch_size in (1, 3):
        reports = {name: convert(translator, src, tmp_path / f"{name}{batch_size}",
                                 Options(batch_size=batch_size, workers=0, device_codec=codec),
                                 progress=False)
                   for name, codec in (("cpu", False), ("device", True))}
        cpu, dev = reports["cpu"], reports["device"]
        assert [p.name for p in dev.written] == [p.name for p in cpu.written]
        assert len(dev.written) == 9 and [f.name for f, _ in dev.failed] == ["broken.jpg"]
        for path in cpu.written:
            mine = tmp_path / f"device{batch_size}" / path.name
            if batch_size == 1:
                assert mine.read_bytes() == path.read_bytes(), path.name
            else:  # batches are grouped differently: convolutions may round differently
                diff = np.abs(np.asarray(Image.open(mine), np.float32)
                              - np.asarray(Image.open(path), np.float32))
                assert diff.mean() < 0.05, path.name
    assert Image.open(tmp_path / "device1" / "rotated.jpg").size == (24, 32)  # EXIF applied


def test_a_batch_of_encoded_jpegs_comes_back_whole():
    """encode_jpegs joins the batch's files for one copy back and splits them again: each
    is the file encoding that image alone gives."""
    from torchvision.io import encode_jpeg

    from translate.data.jpeg import encode_jpegs
    images = torch.randint(0, 256, (3, 3, 24, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    files = encode_jpegs(images, 90)
    assert files == [bytes(encode_jpeg(im, quality=90).numpy()) for im in images]
    assert all(f[:2] == b"\xff\xd8" and f[-2:] == b"\xff\xd9" for f in files)


def test_a_compiled_translator_does_not_compile_once_per_image_size():
    """Converting images of eight sizes: a graph for the first size, then graphs with
    symbolic height and width (torch on the CPU guards small sizes apart from larger
    ones), and none for any size beyond the first large one; the eager network's results
    throughout."""
    import copy

    from torch._dynamo.utils import counters

    from translate.networks import build_generator
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 2, "norm": "instance",
              "dropout": False}
    info = {"arch": "resnet", "kwargs": kwargs, "direction": "a2b", "norm_stats": "running"}
    net = build_generator("resnet", kwargs)
    eager = Translator(copy.deepcopy(net), info, torch.device("cpu"))
    torch._dynamo.reset()
    counters.clear()
    compiled = Translator(net, info, torch.device("cpu"), compile=True, backend="aot_eager")
    sizes = [(32, 32), (48, 40), (160, 160), (200, 144), (256, 128), (176, 176), (144, 240),
             (320, 96)]
    graphs = []
    for h, w in sizes:
        x = torch.rand(1, 3, h, w) * 2 - 1
        torch.testing.assert_close(compiled(x), eager(x), rtol=1e-4, atol=1e-4)
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[1] == 2 and graphs[2] <= 3 and graphs[-1] == graphs[2]


# --- translate bench with the options ---------------------------------------------------------

def test_bench_uses_precision_and_channels_last_for_the_measured_run():
    proc = run_cli("bench", "--model", "cyclegan", "--size", "32", "--ngf", "4",
                   "--iterations", "1", "--warmup", "0", "--images", "2", "--workers", "0",
                   "--batch-size", "2", "--precision", "bf16", "--channels-last", "--json",
                   check=True)
    r = json.loads(proc.stdout)
    assert r["precision"] == "bf16" and r["channels_last"] is True and r["compile"] is False
    assert r["train"]["images_per_s"] > 0 and r["matmul_peak_tflops"] > 0
    assert r["baseline"]["train_images_per_s"] > 0 and r["speedup"]["train"] > 0
