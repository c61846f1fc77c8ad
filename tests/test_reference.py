"""Generator state dicts of other projects load with no flags: the reference pix2pix U-Nets
and CycleGAN ResNets, and AnimeGANv2. The files are built here from the recorded layouts
(tests/data/reference_layouts.json: names, shapes, dtypes) with random weights; numerics are
checked against forward passes written with torch.nn.functional directly from the tensors."""

from __future__ import annotations

import json
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from translate.formats.checkpoint import CheckpointError, load_generator
from translate.formats.state import STATE_FORMAT
from translate.infer.export import export
from translate.infer.engine import Translator, load_any
from translate.networks import build_generator
from translate.networks.norm_stats import inference_mode
from translate.formats.reference import read_weights

from conftest import run_cli

LAYOUTS = json.loads((Path(__file__).parent / "data" / "reference_layouts.json").read_text())

# layout key -> (width it was recorded at, then what the loader must find: arch, kwargs,
# method, norm_stats, stride)
RECORDED = {
    "reference_G_pix2pix_unet_256_ngf64_batch":
        (64, "unet", {"depth": 8, "norm": "batch"}, "reference-pix2pix", "image", 256),
    "reference_G_unet_128_ngf64_batch":
        (64, "unet", {"depth": 7, "norm": "batch"}, "reference-pix2pix", "image", 128),
    "reference_G_cyclegan_resnet_9blocks_ngf64_instance":
        (64, "resnet", {"depth": 9, "norm": "instance"}, "reference-cyclegan", "running", 4),
    "reference_G_cyclegan_resnet_6blocks_ngf64_instance":
        (64, "resnet", {"depth": 6, "norm": "instance"}, "reference-cyclegan", "running", 4),
    "animegan2_generator": (32, "animeganv2", {}, "animeganv2", "running", 4),
}


def layout(key: str, ngf: int | None = None) -> list[tuple[str, tuple[int, ...], str]]:
    """The recorded layout, with every channel count (multiples of the recorded width)
    scaled to width ``ngf``; image channels (3), kernel sizes and depthwise 1s stay."""
    base = RECORDED[key][0] if key in RECORDED else 64
    ngf = ngf or base
    return [(name, tuple(d * ngf // base if d % base == 0 else d for d in shape), dtype)
            for name, shape, dtype in LAYOUTS[key]]


def random_state(entries, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights at a sane scale: convs ~ N(0, 1/fan), norm scales ~ 1 +- 0.2, positive
    running variances, so activations neither vanish nor saturate the final tanh."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape, dtype in entries:
        if dtype == "int64":
            sd[name] = torch.tensor(7, dtype=torch.int64)
        elif len(shape) == 4:
            sd[name] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif name.endswith("running_var"):
            sd[name] = torch.rand(shape, generator=g) + 0.5
        elif name.endswith(".weight"):
            sd[name] = 1 + 0.2 * torch.randn(shape, generator=g)
        else:
            sd[name] = 0.1 * torch.randn(shape, generator=g)
    return sd


def save(sd, path: Path) -> Path:
    torch.save(sd, path)
    return path


def rgb(h: int, w: int, n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- Recognition and strict loading ---------------------------------------------------------

@pytest.mark.parametrize("key", sorted(RECORDED))
def test_recorded_layout_loads_strictly(key, tmp_path):
    """The full-width layout is recognised, and every tensor lands, unchanged, on the
    module parameter or buffer of the same name (each tensor holds its own index)."""
    entries = layout(key)
    sd = {name: torch.full(shape, float(i)) if dtype == "float32"
          else torch.tensor(i, dtype=torch.int64) for i, (name, shape, dtype) in
          enumerate(entries)}
    net, info = load_any(save(sd, tmp_path / f"{key}.pth"))
    width, arch, kwargs, method, norm_stats, stride = RECORDED[key]
    assert info["arch"] == arch and info["method"] == method
    assert info["norm_stats"] == norm_stats and info["stride"] == stride
    assert info["kwargs"] == {"in_channels": 3, "out_channels": 3, "ngf": width,
                              **kwargs, **({"dropout": False} if kwargs else {})}
    assert info["direction"] == "a2b" and info["step"] == "0" and info["config"] == {}
    assert info["card"]["source"] == f"{key}.pth" and info["card"]["description"]
    got = net.state_dict()
    assert list(got) == [name for name, _, _ in entries]
    for i, (name, shape, dtype) in enumerate(entries):
        assert tuple(got[name].shape) == shape and str(got[name].dtype) == f"torch.{dtype}"
        assert torch.all(got[name] == i), name


def test_animegan_module_matches_layout():
    net = build_generator("animeganv2", {}, init=False)
    got = [[k, list(v.shape), str(v.dtype).replace("torch.", "")]
           for k, v in net.state_dict().items()]
    assert got == LAYOUTS["animegan2_generator"]


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_other_widths_run_at_any_size_deterministically(key, tmp_path):
    """Width 8 (layout shapes scaled) is recognised; the translator maps 37 x 53 to
    37 x 53 in [-1, 1], identically twice."""
    path = save(random_state(layout(key, 8)), tmp_path / "g.pth")
    t = Translator.from_checkpoint(path, device="cpu")
    assert t.info["kwargs"]["ngf"] == 8
    x = rgb(37, 53)
    y = t(x)
    assert y.shape == (2, 3, 37, 53)
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    assert y.std() > 0.05  # not saturated or constant
    assert torch.equal(y, t(x))


def test_animegan_runs_at_odd_sizes_without_padding(tmp_path):
    net, _ = load_any(save(random_state(layout("animegan2_generator", 4)), tmp_path / "a.pt"))
    with torch.no_grad():
        for h, w in [(37, 53), (9, 13), (64, 48)]:
            assert net(rgb(h, w, 1)).shape == (1, 3, h, w)


# --- Numerics against independent functional forward passes --------------------------------

def resnet_reference_forward(sd: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    """CycleGAN ResNet generator, from the tensors: c7s1-k, d2k, d4k, R4k x blocks, u2k, uk,
    c7s1-3, tanh; instance norm without affine parameters; reflection padding."""
    def conv(x, i, **kw):
        return F.conv2d(x, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], **kw)

    def norm_relu(x):
        return F.relu(F.instance_norm(x, eps=1e-5))

    x = norm_relu(conv(F.pad(x, (3,) * 4, mode="reflect"), 1))
    x = norm_relu(conv(x, 4, stride=2, padding=1))
    x = norm_relu(conv(x, 7, stride=2, padding=1))
    for b in range(10, 10 + blocks):
        p = f"model.{b}.conv_block"
        y = F.conv2d(F.pad(x, (1,) * 4, mode="reflect"), sd[f"{p}.1.weight"], sd[f"{p}.1.bias"])
        y = F.conv2d(F.pad(norm_relu(y), (1,) * 4, mode="reflect"), sd[f"{p}.6.weight"],
                     sd[f"{p}.6.bias"])
        x = x + F.instance_norm(y, eps=1e-5)
    up = 10 + blocks
    for i in (up, up + 3):
        x = norm_relu(F.conv_transpose2d(x, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"],
                                         stride=2, padding=1, output_padding=1))
    return torch.tanh(conv(F.pad(x, (3,) * 4, mode="reflect"), up + 7))


def unet_reference_forward(sd: dict, x: torch.Tensor, depth: int, image_stats: bool
                           ) -> torch.Tensor:
    """pix2pix U-Net from the tensors, one image at a time: batch norm in training mode at
    batch size 1 (the reference's test-time behaviour) or with running statistics."""
    def bn(y, p):
        return F.batch_norm(y, sd[f"{p}.running_mean"], sd[f"{p}.running_var"],
                            sd[f"{p}.weight"], sd[f"{p}.bias"], training=False, eps=1e-5) \
            if not image_stats else F.batch_norm(y, None, None, sd[f"{p}.weight"],
                                                 sd[f"{p}.bias"], training=True, eps=1e-5)

    def down(y, p):
        return F.conv2d(y, sd[f"{p}.weight"], sd.get(f"{p}.bias"), stride=2, padding=1)

    def up(y, p):
        return F.conv_transpose2d(y, sd[f"{p}.weight"], sd.get(f"{p}.bias"), stride=2,
                                  padding=1)

    def level(y, p, remaining):  # y -> cat(y, inner(y)) for every level below the outermost
        h = down(F.leaky_relu(y, 0.2), f"{p}.model.1")
        if remaining == 1:  # innermost: no norm on the bottleneck
            h = bn(up(F.relu(h), f"{p}.model.3"), f"{p}.model.4")
        else:
            h = level(bn(h, f"{p}.model.2"), f"{p}.model.3", remaining - 1)
            h = bn(up(F.relu(h), f"{p}.model.5"), f"{p}.model.6")
        return torch.cat([y, h], 1)

    outs = []
    for i in range(x.shape[0]):
        h = level(down(x[i:i + 1], "model.model.0"), "model.model.1", depth - 1)
        outs.append(torch.tanh(up(F.relu(h), "model.model.3")))
    return torch.cat(outs)


def animegan_reference_forward(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """AnimeGANv2 generator from the tensors (see translate/networks/animegan.py's table)."""
    def cna(y, p, pad=(1, 1, 1, 1), stride=1, groups=1):
        y = F.conv2d(F.pad(y, pad, mode="reflect") if any(pad) else y, sd[f"{p}.1.weight"],
                     sd.get(f"{p}.1.bias"), stride=stride, groups=groups)
        y = F.group_norm(y, 1, sd[f"{p}.2.weight"], sd[f"{p}.2.bias"], eps=1e-5)
        return F.leaky_relu(y, 0.2)

    def inverted(y, p):
        h = cna(y, f"{p}.layers.0", pad=(0, 0, 0, 0))
        h = cna(h, f"{p}.layers.1", groups=h.shape[1])
        h = F.conv2d(h, sd[f"{p}.layers.2.weight"])
        h = F.group_norm(h, 1, sd[f"{p}.layers.3.weight"], sd[f"{p}.layers.3.bias"], eps=1e-5)
        return y + h if y.shape == h.shape else h

    def resize(y, size):
        return F.interpolate(y, size=size, mode="bilinear", align_corners=True)

    h = cna(x, "block_a.0", pad=(3,) * 4)
    h = cna(h, "block_a.1", pad=(0, 1, 0, 1), stride=2)
    half = cna(h, "block_a.2")
    h = cna(cna(half, "block_b.0", pad=(0, 1, 0, 1), stride=2), "block_b.1")
    h = cna(h, "block_c.0")
    for i in range(1, 5):
        h = inverted(h, f"block_c.{i}")
    h = cna(h, "block_c.5")
    h = resize(h, half.shape[-2:])
    h = cna(cna(h, "block_d.0"), "block_d.1")
    h = resize(h, x.shape[-2:])
    h = cna(cna(h, "block_e.0"), "block_e.1")
    h = cna(h, "block_e.2", pad=(3,) * 4)
    return torch.tanh(F.conv2d(h, sd["out_layer.0.weight"]))


def test_resnet_matches_functional_forward(tmp_path):
    sd = random_state(layout("reference_G_cyclegan_resnet_6blocks_ngf64_instance", 4))
    t = Translator.from_checkpoint(save(sd, tmp_path / "g.pth"), device="cpu")
    x = rgb(32, 44)
    torch.testing.assert_close(t(x), resnet_reference_forward(sd, x, 6), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_stats", ["image", "running"])
def test_unet_matches_functional_forward(norm_stats, tmp_path):
    """The default ('image') reproduces the reference's test script; 'running' is the
    option, and gives other images."""
    sd = random_state(layout("reference_G_unet_128_ngf64_batch", 4))
    t = Translator.from_checkpoint(save(sd, tmp_path / "g.pth"), device="cpu",
                                   norm_stats=None if norm_stats == "image" else "running")
    assert t.norm_stats == norm_stats
    x = rgb(128, 128)
    got = t(x)
    torch.testing.assert_close(got, unet_reference_forward(sd, x, 7, norm_stats == "image"),
                               atol=1e-5, rtol=0)
    other = unet_reference_forward(sd, x, 7, norm_stats != "image")
    assert (got - other).abs().max() > 1e-2


def test_image_stats_equal_training_mode_at_batch_one(tmp_path):
    """What the reference's test script does (train mode, batch of one; no dropout)."""
    sd = random_state(layout("reference_G_unet_128_ngf64_batch", 4))
    net, info = load_any(save(sd, tmp_path / "g.pth"))
    x = rgb(128, 128, 3)
    net.train()
    with torch.no_grad():
        expected = torch.cat([net(x[i:i + 1]) for i in range(3)])
    with inference_mode(net, info["norm_stats"]):
        torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=0)


def test_animegan_matches_functional_forward(tmp_path):
    sd = random_state(layout("animegan2_generator", 4))
    net, _ = load_any(save(sd, tmp_path / "paprika.pt"))
    for h, w in [(40, 56), (37, 53)]:
        x = rgb(h, w)
        with torch.no_grad():
            torch.testing.assert_close(net(x), animegan_reference_forward(sd, x), atol=1e-5,
                                       rtol=0)


# --- Name mapping: older and wrapped files ---------------------------------------------------

def tiny_resnet():
    return random_state(layout("reference_G_cyclegan_resnet_6blocks_ngf64_instance", 4))


def test_old_instance_norm_stats_and_module_prefix_are_handled(tmp_path):
    """Files written by PyTorch < 0.4 carry running statistics for instance-norm layers;
    DataParallel adds ``module.``. Both load, with the same result as the clean file."""
    sd = tiny_resnet()
    old = {"module." + k: v for k, v in sd.items()}
    convs = [k for k, v in sd.items() if v.ndim == 4][:-1]  # each is followed by a norm
    for k in convs:
        prefix, index, _ = k.rsplit(".", 2)
        transposed = k in ("model.16.weight", "model.19.weight")
        channels = sd[k].shape[1 if transposed else 0]
        norm = f"module.{prefix}.{int(index) + 1}"
        old[f"{norm}.running_mean"] = torch.zeros(channels)
        old[f"{norm}.running_var"] = torch.ones(channels)
        old[f"{norm}.num_batches_tracked"] = torch.tensor(0)
    assert "module.model.10.conv_block.7.running_var" in old and len(old) == len(sd) + 51
    a, _ = load_any(save(sd, tmp_path / "new.pth"))
    b, _ = load_any(save(old, tmp_path / "old.pth"))
    x = rgb(32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=0, rtol=0)


def test_resnet_saved_without_dropout_slot_loads(tmp_path):
    """Residual blocks saved without dropout name their second conv conv_block.5."""
    sd = tiny_resnet()
    renamed = {re.sub(r"conv_block\.6\.", "conv_block.5.", k): v for k, v in sd.items()}
    assert any(".conv_block.5." in k for k in renamed)
    x = rgb(32, 36)
    a = Translator.from_checkpoint(save(renamed, tmp_path / "g.pth"), device="cpu")
    torch.testing.assert_close(a(x), resnet_reference_forward(sd, x, 6), atol=1e-5, rtol=0)


def test_batch_norm_resnet_and_instance_norm_unet_are_recognised(tmp_path):
    """The reference also builds ResNets with batch norm and U-Nets with instance norm."""
    for arch, kwargs, norm_stats in [("resnet", {"depth": 3, "norm": "batch"}, "image"),
                                     ("unet", {"depth": 5, "norm": "instance"}, "running")]:
        kwargs = dict(kwargs, ngf=4, dropout=False, in_channels=3, out_channels=1)
        made = build_generator(arch, kwargs)
        net, info = load_any(save(made.state_dict(), tmp_path / f"{arch}.pth"))
        assert info["kwargs"] == kwargs and info["norm_stats"] == norm_stats


def test_direction_is_a_label(tmp_path):
    sd = tiny_resnet()
    assert load_any(save(sd, tmp_path / "latest_net_G_B.pth"))[1]["direction"] == "b2a"
    assert load_any(save(sd, tmp_path / "latest_net_G_A.pth"))[1]["direction"] == "a2b"
    assert load_any(tmp_path / "latest_net_G_A.pth", "b2a")[1]["direction"] == "b2a"


def test_training_checkpoints_still_load_as_such(tmp_path):
    kwargs = {"ngf": 4, "depth": 2, "norm": "instance", "dropout": False}
    g = build_generator("resnet", kwargs)
    state = {"format": STATE_FORMAT, "step": 3, "config": {"model": "cyclegan"},
             "nets": {f"g_ab.{k}": v for k, v in g.state_dict().items()},
             "exports": {"a2b": {"net": "g_ab", "arch": "resnet", "kwargs": kwargs,
                                 "norm_stats": "running"}}}
    _, info = load_any(save(state, tmp_path / "latest.pt"))
    assert info["method"] == "cyclegan" and info["step"] == "3"


# --- Refusals with clear messages --------------------------------------------------------------

class RunsCode:
    """Unpickling this calls open(marker, 'w'): it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@dataclass
class Box:
    weights: torch.Tensor


def test_pickled_objects_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    files = {
        "code.pth": lambda p: torch.save({"model.1.weight": torch.zeros(1), "x": RunsCode(marker)},
                                         p),
        "legacy.pt": lambda p: p.write_bytes(pickle.dumps(RunsCode(marker), protocol=2)),
        "class.pth": lambda p: torch.save({"net": Box(torch.zeros(2))}, p),
    }
    for name, write in files.items():
        write(tmp_path / name)
        assert not marker.exists()
        with pytest.raises(CheckpointError, match="weights_only") as err:
            load_any(tmp_path / name)
        assert "refused" in str(err.value)
        assert not marker.exists(), name


@pytest.mark.parametrize("content,message", [
    ({"encoder.weight": torch.zeros(3, 3)}, "expected a pix2pix U-Net"),
    (torch.zeros(3), "not a state dict"),
    ({"model.1.weight": torch.zeros(1), "step": 3}, "not tensors"),
    ({}, "not a state dict"),
])
def test_unknown_contents_are_explained(content, message, tmp_path):
    with pytest.raises(CheckpointError, match=message):
        load_any(save(content, tmp_path / "x.pth"))


def test_discriminator_and_broken_files_are_explained(tmp_path):
    d = random_state(layout("reference_D_basic_in3_ndf64_instance", 4))
    with pytest.raises(CheckpointError, match="discriminator's state dict, not a generator"):
        load_any(save(d, tmp_path / "latest_net_D_A.pth"))
    sd = tiny_resnet()
    del sd["model.12.conv_block.1.weight"]
    with pytest.raises(CheckpointError, match="CycleGAN ResNet.*do not fit.*conv_block.1.weight"):
        load_any(save(sd, tmp_path / "cut.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        read_weights(tmp_path / "junk.pth")


# --- Export and command line ------------------------------------------------------------------

@pytest.mark.parametrize("key,name", [("reference_G_unet_128_ngf64_batch", "facades.pth"),
                                      ("animegan2_generator", "paprika.pt"),
                                      ("reference_G_cyclegan_resnet_6blocks_ngf64_instance",
                                       "latest_net_G_B.pth")])
def test_export_rebuilds_from_the_file_alone(key, name, tmp_path):
    src = save(random_state(layout(key, 4)), tmp_path / name)
    net, info = load_any(src)
    [(target, direction, _)] = export(src, out=str(tmp_path / "out.safetensors"))
    assert target == tmp_path / "out.safetensors" and direction == info["direction"]
    rebuilt, meta = load_generator(target)
    for k in ("arch", "kwargs", "direction", "norm_stats", "method", "card"):
        assert meta[k] == info[k], k
    x = rgb(*((128, 128) if "unet" in key else (36, 44)))
    a = Translator(net, info, torch.device("cpu"))(x)
    b = Translator(rebuilt, meta, torch.device("cpu"))(x)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_cli_convert_and_refusal(tmp_path):
    src = save(tiny_resnet(), tmp_path / "horse2zebra.pth")
    image = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "img.png")
    proc = run_cli("convert", "--checkpoint", str(src), "--input", str(tmp_path / "img.png"),
                   "--output", str(tmp_path / "out"), "--quiet", "--workers", "0",
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "reference-cyclegan generator resnet" in proc.stderr
    out = np.asarray(Image.open(tmp_path / "out" / "img.png"))
    assert out.shape == (37, 53, 3) and out.std() > 1
    net, info = load_any(src)
    expected = Translator(net, info, torch.device("cpu")).translate_array(image)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1

    marker = tmp_path / "marker"
    torch.save({"x": RunsCode(marker)}, tmp_path / "evil.pth")
    proc = run_cli("convert", "--checkpoint", str(tmp_path / "evil.pth"), "--input",
                   str(tmp_path / "img.png"), "--output", str(tmp_path / "out2"), "--quiet")
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "weights_only" in proc.stderr
    assert not marker.exists() and not (tmp_path / "out2").exists()
