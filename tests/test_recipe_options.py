"""The recipe options studied by benchmarks/quality.py: resize-convolutions in the decoders,
pix2pixHD's multi-scale discriminator and feature matching, R1, L1 alone; each with its
paper's definition, and a tiny training run that must learn with all of them on."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_config
from translate.formats.checkpoint import export_generator, load_generator
from translate.networks import build_discriminator, build_generator
from translate.networks.patchgan import MultiScaleDiscriminator
from translate.train import losses
from translate.train.config import ConfigError
from translate.train.methods.pix2pix import Pix2Pix
from translate.train.loop import train_step


@pytest.mark.parametrize("arch, kwargs", [
    ("unet", {"ngf": 8, "depth": 5}),
    ("resnet", {"ngf": 8, "depth": 2, "norm": "instance"}),
])
def test_resize_convolutions_replace_every_transposed_one(arch, kwargs, tmp_path):
    torch.manual_seed(0)
    net = build_generator(arch, {**kwargs, "upsample": "resize"})
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert sum(isinstance(m, nn.Upsample) for m in net.modules()) == (
        kwargs["depth"] if arch == "unet" else 2)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    y = net.eval()(x)
    assert y.shape == (2, 3, 64, 96) and y.abs().max() <= 1
    path = export_generator(net, tmp_path / "g.safetensors", arch=arch,
                            kwargs={**kwargs, "upsample": "resize"}, direction="a2b",
                            norm_stats="running", method="pix2pix", step=1)
    loaded, info = load_generator(path)
    assert info["kwargs"]["upsample"] == "resize"
    assert torch.allclose(loaded(x), y, atol=1e-6)


def test_pix2pix_upsamples_by_resize_convolutions_by_default(tmp_path):
    """pix2pix's default decoder upsamples by resize-convolutions; the unpaired methods keep
    their papers' transposed convolutions, and files of that layout keep their description
    (no upsample key). A run folder written before the option existed resumes with the
    layout it trained with."""
    from translate.networks import generator_kwargs
    from translate.train.config import load_config

    config = tiny_config("data", "run")
    assert generator_kwargs(config.generator)["upsample"] == "resize"
    config = tiny_config("data", "run", generator={"upsample": "transpose"})
    assert "upsample" not in generator_kwargs(config.generator)
    for model in ("cyclegan", "cut"):
        assert tiny_config("data", "run", model=model).generator.upsample == "transpose"
    local = tiny_config("data", "run", generator={"arch": "local", "norm": "none"})
    assert local.generator.upsample == "transpose"  # the default, where it does not apply
    with pytest.raises(ConfigError, match="generator.upsample applies to the unet and resnet"):
        tiny_config("data", "run", generator={"arch": "local", "upsample": "resize",
                                              "norm": "none"})
    saved = tmp_path / "config.yaml"
    saved.write_text("model: pix2pix\ndata: {root: x}\ngenerator: {ngf: 8}\n")
    assert load_config(saved).generator.upsample == "resize"  # a config the user wrote
    assert load_config(saved, recorded=True).generator.upsample == "transpose"  # a run folder's
    asked = load_config(saved, ["generator.upsample=resize"], recorded=True)
    assert asked.generator.upsample == "resize"
    saved.write_text("model: pix2pix\ndata: {root: x}\ngenerator: {upsample: resize}\n")
    assert load_config(saved, recorded=True).generator.upsample == "resize"


def test_a_multi_scale_discriminator_judges_halved_resolutions():
    torch.manual_seed(0)
    d = build_discriminator("patch", {"in_channels": 6, "ndf": 8, "layers": 2}, scales=3)
    assert isinstance(d, MultiScaleDiscriminator) and len(d.scales) == 3
    x = torch.randn(2, 6, 64, 64)
    logits = d(x)
    assert [tuple(t.shape) for t in logits] == [(2, 1, 14, 14), (2, 1, 6, 6), (2, 1, 2, 2)]
    again, features = d.forward_features(x)
    assert all(torch.equal(a, b) for a, b in zip(logits, again))
    assert len(features) == 3 * 3  # three LeakyReLUs per PatchGAN of 2 strided layers
    # each scale is a PatchGAN of its own on the pooled input
    pooled = nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x)
    assert torch.allclose(logits[1], d.scales[1](pooled))


def test_losses_average_the_scales_alike():
    maps = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 2, 2)]
    for mode in ("vanilla", "lsgan", "hinge"):
        for real in (True, False):
            want = sum(losses.discriminator_loss(mode, m, real) for m in maps) / 2
            assert torch.allclose(losses.discriminator_loss(mode, maps, real), want)
        want = sum(losses.generator_loss(mode, m) for m in maps) / 2
        assert torch.allclose(losses.generator_loss(mode, maps), want)


def test_r1_penalty_of_a_linear_critic():
    """For f(y) = <w, y> summed over the batch, grad_y is w for every sample:
    R1 = ||w||^2."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4, requires_grad=True)
    penalty = losses.r1_penalty(lambda y: [(y * w).sum(), (y * w).sum()], torch.randn(5, 3, 4, 4))
    assert penalty.item() == pytest.approx(4 * w.detach().pow(2).sum().item(), rel=1e-5)
    penalty.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_feature_matching_is_the_mean_l1_over_layers():
    real = [torch.zeros(2, 4, 8, 8), torch.ones(2, 8, 4, 4)]
    fake = [torch.full((2, 4, 8, 8), 0.5, requires_grad=True),
            torch.full((2, 8, 4, 4), 3.0, requires_grad=True)]
    value = losses.feature_matching(real, fake)
    assert value.item() == pytest.approx((0.5 + 2.0) / 2)
    value.backward()
    assert fake[0].grad is not None


def test_gradient_l1_charges_texture_and_blur_not_a_shift_of_colour():
    flat = torch.zeros(1, 3, 8, 8)
    assert losses.gradient_l1(flat + 0.5, flat).item() == 0  # a grade: no charge
    stripes = flat.clone()
    stripes[..., ::2] = 1.0  # texture the target does not have: 7 steps of 1 along W
    assert losses.gradient_l1(stripes, flat).item() == pytest.approx(1.0)
    edge = flat.clone()
    edge[..., 4:] = 1.0
    blurred = edge.clone()
    blurred[..., 4] = 0.5  # the same edge, blurred: two half steps for one whole
    assert losses.gradient_l1(blurred, edge).item() == pytest.approx(1 / 7)
    x = stripes.clone().requires_grad_()
    losses.gradient_l1(x, flat).backward()
    assert x.grad.abs().sum() > 0


def test_pix2pix_adds_the_gradient_term_with_its_weight(tmp_path):
    m = method(tmp_path, method={"gradient": 50.0})
    g_total, g_terms = m.g_objective(m.forward(batch()))
    assert g_terms["g_grad"].item() > 0
    assert g_total.item() == pytest.approx(
        (g_terms["g_gan"] + 100 * g_terms["g_l1"] + 50 * g_terms["g_grad"]).item(), rel=1e-5)


def method(tmp_path, **sections) -> Pix2Pix:
    torch.manual_seed(0)
    return Pix2Pix(tiny_config(tmp_path, tmp_path / "run",
                               **{"loss": {"diffaugment": ""}, **sections}))


def batch(n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"a": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1}


def test_pix2pix_adds_r1_and_feature_matching_with_their_weights(tmp_path):
    m = method(tmp_path, method={"r1": 4.0, "feature_matching": 10.0},
               discriminator={"scales": 2})
    out = m.forward(batch())
    d_total, d_terms = m.d_objective(out)
    negatives = (d_terms["d_fake"] + d_terms["d_mismatch"]) / 2
    assert d_total.item() == pytest.approx(
        (0.5 * (d_terms["d_real"] + negatives) + 2.0 * d_terms["d_r1"]).item(), rel=1e-5)
    g_total, g_terms = m.g_objective(out)
    assert g_terms["g_fm"].item() > 0
    assert g_total.item() == pytest.approx(
        (g_terms["g_gan"] + 100 * g_terms["g_l1"] + 10 * g_terms["g_fm"]).item(), rel=1e-5)


def test_l1_alone_never_trains_the_discriminator(tmp_path):
    m = method(tmp_path, method={"adversarial": 0.0})
    assert m.phases == ("g",)
    d0 = [p.detach().clone() for p in m.nets["d"].parameters()]
    optimizers = {k: torch.optim.Adam(m.parameters_of(k), lr=1e-3) for k in m.groups}
    terms = train_step(m, optimizers, batch())
    assert "g_gan" not in terms and "d_total" not in terms
    assert terms["g_total"].item() == pytest.approx(100 * terms["g_l1"].item(), rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(d0, m.nets["d"].parameters()))


def test_pix2pix_learns_with_every_option_on(shapes32, tmp_path, one_thread):
    """Resize-convolutions, a 2-scale discriminator, feature matching and R1 together:
    held-out PSNR well above the identity baseline."""
    from translate.infer.engine import Translator
    from translate.infer.evaluate import evaluate
    from translate.train.loop import train

    config = tiny_config(shapes32, tmp_path / "run",
                         generator={"upsample": "resize", "ngf": 16},
                         discriminator={"scales": 2},
                         method={"feature_matching": 10.0, "r1": 1.0},
                         train={"iterations": 300, "batch_size": 4, "lr": 1e-3,
                                "log_every": 50, "sample_every": 0, "checkpoint_every": 300,
                                "ema": 0.0},
                         loss={"diffaugment": ""})
    train(config, progress=False)
    scores = evaluate(Translator.from_checkpoint(tmp_path / "run", device="cpu"), shapes32)
    print(scores)
    assert scores["psnr"] > scores["identity_psnr"] + 6


def test_clipping_scales_each_phase_gradient_down_to_its_norm(tmp_path):
    """train.clip_g / clip_d: the gradient a phase steps with has at most that L2 norm; the
    logged norm is the one before clipping, the same as without clipping."""
    from translate.train.loop import gradient_norm

    def step(clip):
        m = method(tmp_path)
        optimizers = {k: torch.optim.Adam(m.parameters_of(k), lr=1e-3) for k in m.groups}
        terms = train_step(m, optimizers, batch(), clip=clip)
        return m, terms

    plain, free = step(None)
    clipped, terms = step({"g": 1e-3, "d": 2e-4})
    only_d, only_d_terms = step({"d": 2e-4, "g": 0.0})  # 0: off
    # D steps first, so G's gradient is the same as with D clipped alone
    for phase, limit, before in (("d", 2e-4, free), ("g", 1e-3, only_d_terms)):
        norm = terms[f"grad_norm_{phase}"].item()
        assert norm == pytest.approx(before[f"grad_norm_{phase}"].item(), rel=1e-5)
        assert norm > 10 * limit
        assert gradient_norm(clipped.parameters_of(phase)).item() == pytest.approx(limit,
                                                                                 rel=1e-4)
    for m, terms in ((plain, free), (only_d, only_d_terms)):  # unclipped: as computed
        assert gradient_norm(m.parameters_of("g")).item() == pytest.approx(
            terms["grad_norm_g"].item(), rel=1e-5)


def test_clipping_in_fp16_unscales_first(tmp_path):
    """With fp16's loss scaling the gradient is unscaled before it is clipped: it ends at
    the norm asked for, not 65536 times less."""
    from translate.train.loop import gradient_norm
    from translate.train.precision import Precision

    m = method(tmp_path)
    optimizers = {k: torch.optim.Adam(m.parameters_of(k), lr=1e-3) for k in m.groups}
    precision = Precision("fp16", "cpu")
    precision.scaler = torch.amp.GradScaler("cpu", init_scale=64.0)  # no overflow here
    terms = train_step(m, optimizers, batch(), precision, clip={"g": 1e-3})
    assert "grad_norm_g" not in terms  # fp16: not logged (a skipped step's norm is inf)
    assert gradient_norm(m.parameters_of("g")).item() == pytest.approx(1e-3, rel=1e-3)


def test_clipping_may_be_set_when_a_run_is_resumed(shapes32, tmp_path):
    """A run resumed with train.clip_g: accepted, recorded in config.yaml, and the
    generator then steps differently from the run resumed without it."""
    from translate.formats.state import load_state
    from translate.train.config import load_config
    from translate.train.loop import train

    schedule = {"iterations": 4, "log_every": 1, "sample_every": 0, "checkpoint_every": 4}
    ends = {}
    for name, clip in (("free", 0.0), ("clipped", 1e-3)):
        run = tmp_path / name
        train(tiny_config(shapes32, run, train=schedule), progress=False)
        train(tiny_config(shapes32, run, train=dict(schedule, iterations=6, clip_g=clip)),
              resume=True, progress=False)
        assert load_config(run / "config.yaml").train.clip_g == clip
        ends[name] = load_state(run / "checkpoints" / "latest.pt")["nets"]
    free, clipped = (ends[k] for k in ("free", "clipped"))
    assert any(not torch.equal(free[k], clipped[k]) for k in free if k.startswith("g."))
