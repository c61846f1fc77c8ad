"""Every registry entry builds and maps shapes as documented; generator parameter names and
shapes equal the reference checkpoint layouts (tests/data/reference_layouts.json)."""

import json
from pathlib import Path

import pytest
import torch

from translate.networks import (DISCRIMINATORS, GENERATORS, build_discriminator,
                                build_generator, stride_of)
from translate.networks.norm_stats import inference_mode, set_norm_stats

LAYOUTS = json.loads((Path(__file__).parent / "data" / "reference_layouts.json").read_text())

GENERATOR_CASES = {
    "unet": {"ngf": 4, "depth": 5, "norm": "batch", "dropout": True},
    "resnet": {"ngf": 4, "depth": 2, "norm": "instance", "dropout": False},
    "animeganv2": {"ngf": 4},  # one fixed norm (GroupNorm)
    "local": {"ngf": 4, "depth": 2, "norm": "none"},  # no normalisation at all
}


def test_every_generator_is_covered():
    assert set(GENERATOR_CASES) == set(GENERATORS)


@pytest.mark.parametrize("arch", sorted(GENERATORS))
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generator_shapes(arch, norm):
    if "norm" not in GENERATOR_CASES[arch] and norm != "batch":
        pytest.skip(f"{arch} has one fixed norm")
    if arch == "local" and norm != "none":
        pytest.skip("the local generator has no normalisation layers")
    kwargs = dict(GENERATOR_CASES[arch], in_channels=3, out_channels=3)
    if "norm" in GENERATOR_CASES[arch]:
        kwargs["norm"] = norm
    net = build_generator(arch, kwargs)
    s = stride_of(net)
    x = torch.rand(2, 3, 2 * s, 3 * s) * 2 - 1
    y = net(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1  # tanh output range


@pytest.mark.parametrize("arch", sorted(DISCRIMINATORS))
@pytest.mark.parametrize("spectral", [False, True])
def test_discriminator_shapes(arch, spectral):
    kwargs = {"in_channels": 6, "ndf": 4, "norm": "batch"}
    if arch == "patch":
        kwargs["layers"] = 3
    net = build_discriminator(arch, kwargs, spectral_norm=spectral)
    y = net(torch.randn(2, 6, 64, 64))
    expected = {"patch": (2, 1, 6, 6), "pixel": (2, 1, 64, 64)}[arch]
    assert y.shape == expected


def test_patchgan_receptive_field_is_70():
    """With 3 layers, one output logit depends on exactly a 70x70 input patch."""
    net = build_discriminator("patch", {"in_channels": 1, "ndf": 2, "layers": 3,
                                        "norm": "none"})
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def _layout(net):
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")]
            for k, v in net.state_dict().items()]


@pytest.mark.parametrize("key,arch,kwargs", [
    ("reference_G_pix2pix_unet_256_ngf64_batch", "unet", {"depth": 8, "norm": "batch"}),
    ("reference_G_unet_128_ngf64_batch", "unet", {"depth": 7, "norm": "batch"}),
    ("reference_G_cyclegan_resnet_9blocks_ngf64_instance", "resnet",
     {"depth": 9, "norm": "instance"}),
    ("reference_G_cyclegan_resnet_6blocks_ngf64_instance", "resnet",
     {"depth": 6, "norm": "instance"}),
])
def test_generator_layout_matches_reference(key, arch, kwargs):
    net = build_generator(arch, dict(kwargs, ngf=64), init=False)
    assert _layout(net) == LAYOUTS[key]


@pytest.mark.parametrize("key,kwargs", [
    ("reference_D_basic_in6_ndf64_batch", {"in_channels": 6, "norm": "batch"}),
    ("reference_D_basic_in3_ndf64_instance", {"in_channels": 3, "norm": "instance"}),
])
def test_patchgan_layout_matches_reference(key, kwargs):
    net = build_discriminator("patch", dict(kwargs, ndf=64, layers=3))
    assert _layout(net) == LAYOUTS[key]


def test_init_is_normal_002():
    net = build_generator("unet", {"ngf": 16, "depth": 5, "norm": "batch"})
    w = net.model.model[0].weight
    assert abs(w.mean().item()) < 0.01 and 0.015 < w.std().item() < 0.025


def test_image_norm_stats_equal_batch_of_one_training_mode():
    """'image' statistics reproduce what batch norm computed in training at batch size 1,
    and batching images does not change each one's result."""
    torch.manual_seed(0)
    net = build_generator("unet", {"ngf": 4, "depth": 5, "norm": "batch", "dropout": False})
    x = torch.randn(3, 3, 32, 32)
    net.train()
    with torch.no_grad():
        expected = torch.cat([net(x[i:i + 1]) for i in range(3)])
    with inference_mode(net, "image"):
        got = net(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert net.training  # restored
    set_norm_stats(net, "running")
    net.eval()
    with torch.no_grad():
        assert not torch.allclose(net(x), expected, atol=1e-3)


def test_shared_statistics_cover_group_norm():
    """AnimeGANv2's GroupNorm layers are per-image too: recording their statistics and
    normalising with the recorded numbers reproduces the plain forward pass exactly."""
    from translate.networks.norm_stats import (fixed_statistics, needs_shared_statistics,
                                               recorded_statistics)
    net = build_generator("animeganv2", dict(GENERATOR_CASES["animeganv2"], in_channels=3,
                                             out_channels=3)).eval()
    assert needs_shared_statistics(net)
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    with torch.no_grad():
        plain = net(x)
        with recorded_statistics(net) as stats:
            recorded = net(x)
        with fixed_statistics(net, stats):
            fixed = net(x)
    assert torch.allclose(recorded, plain, atol=1e-5)
    assert torch.allclose(fixed, plain, atol=1e-5)
