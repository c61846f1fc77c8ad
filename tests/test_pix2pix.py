"""The pix2pix objective: conditional D, the mismatched-pair negatives, L1, and which
networks each phase updates."""

import pytest
import torch

from translate import losses
from translate.methods.pix2pix import Pix2Pix, mismatched_targets
from translate.trainer import train_step

from conftest import tiny_config


def method_for(tmp_path, **loss):
    torch.manual_seed(0)
    return Pix2Pix(tiny_config(tmp_path, tmp_path / "run", loss=loss))


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1}


def test_rolled_targets_belong_to_other_inputs():
    b = batch(4)["b"]
    wrong = mismatched_targets(b, None)
    for i in range(4):
        assert torch.equal(wrong[i], b[i - 1])
        assert not torch.equal(wrong[i], b[i])


def test_batch_of_one_uses_the_previous_target(tmp_path):
    m = method_for(tmp_path)
    first, second = batch(1, seed=1), batch(1, seed=2)
    out1 = m.forward(first)
    assert out1["wrong_b"] is None  # nothing earlier to mismatch with yet
    out2 = m.forward(second)
    assert torch.equal(out2["wrong_b"], first["b"])
    assert not torch.equal(out2["wrong_b"], second["b"])


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_mismatched_pairs_are_labelled_fake(tmp_path, mode):
    m = method_for(tmp_path, gan=mode, mismatch=0.5)
    out = m.forward(batch(3))
    total, terms = m.d_objective(out)
    assert set(terms) == {"d_real", "d_fake", "d_mismatch"}
    logits = m.critic(out["real_a"], out["wrong_b"])
    assert terms["d_mismatch"].item() == pytest.approx(
        losses.discriminator_loss(mode, logits, real=False).item(), rel=1e-5)
    if mode == "lsgan":  # fake label 0: mean(D^2), unlike the real label's mean((D - 1)^2)
        assert terms["d_mismatch"].item() == pytest.approx((logits ** 2).mean().item(),
                                                           rel=1e-5)
    expected = 0.5 * (terms["d_real"] + (terms["d_fake"] + 0.5 * terms["d_mismatch"]) / 1.5)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mismatch_zero_is_the_reference_objective(tmp_path):
    m = method_for(tmp_path, mismatch=0.0)
    total, terms = m.d_objective(m.forward(batch(2)))
    assert "d_mismatch" not in terms
    assert total.item() == pytest.approx(0.5 * (terms["d_real"] + terms["d_fake"]).item(),
                                         rel=1e-6)


def test_generator_objective(tmp_path):
    m = method_for(tmp_path, l1=7.0)
    out = m.forward(batch(2))
    total, terms = m.g_objective(out)
    assert terms["g_l1"].item() == pytest.approx(
        (out["fake_b"] - out["real_b"]).abs().mean().item(), rel=1e-5)
    assert total.item() == pytest.approx((terms["g_gan"] + 7 * terms["g_l1"]).item(), rel=1e-5)


def test_wgan_gp_applies_the_penalty(tmp_path):
    m = method_for(tmp_path, gan="wgan-gp", gp=10.0)
    total, terms = m.d_objective(m.forward(batch(2)))
    assert terms["d_gp"].item() > 0
    neg = (terms["d_fake"] + terms["d_mismatch"]) / 2
    assert total.item() == pytest.approx(
        (0.5 * (terms["d_real"] + neg) + 10 * terms["d_gp"]).item(), rel=1e-4)


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("phase", ["d", "g"])
def test_each_phase_updates_only_its_networks(tmp_path, phase):
    m = method_for(tmp_path)
    m.phases = (phase,)
    g0, d0 = params(m.nets["g"]), params(m.nets["d"])
    optimizers = {k: torch.optim.Adam(m.parameters_of(k), lr=1e-3) for k in m.groups}
    train_step(m, optimizers, batch(2))
    assert changed(g0, m.nets["g"]) == (phase == "g")
    assert changed(d0, m.nets["d"]) == (phase == "d")


def test_direction_b2a_swaps_input_and_target(tmp_path):
    torch.manual_seed(0)
    m = Pix2Pix(tiny_config(tmp_path, tmp_path / "r", data={"direction": "b2a"}))
    data = batch(2)
    out = m.forward(data)
    assert torch.equal(out["real_a"], data["b"]) and torch.equal(out["real_b"], data["a"])
