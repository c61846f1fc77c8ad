"""Adversarial loss values on known logits, and the gradient penalty."""

import math

import pytest
import torch

from translate.train import losses

LOGITS = torch.tensor([-2.0, 0.0, 1.0, 3.0])


def softplus(x):
    return math.log1p(math.exp(x))


def mean(values):
    return sum(values) / len(values)


L = LOGITS.tolist()
EXPECTED = {
    # mode: (D on real, D on fake, G)
    "vanilla": (mean([softplus(-v) for v in L]), mean([softplus(v) for v in L]),
                mean([softplus(-v) for v in L])),
    "lsgan": (mean([(v - 1) ** 2 for v in L]), mean([v ** 2 for v in L]),
              mean([(v - 1) ** 2 for v in L])),
    "hinge": (mean([max(0, 1 - v) for v in L]), mean([max(0, 1 + v) for v in L]),
              -mean(L)),
    "wgan-gp": (-mean(L), mean(L), -mean(L)),
}


@pytest.mark.parametrize("mode", losses.GAN_MODES)
def test_loss_values(mode):
    real, fake, gen = EXPECTED[mode]
    assert losses.discriminator_loss(mode, LOGITS, real=True).item() == pytest.approx(real)
    assert losses.discriminator_loss(mode, LOGITS, real=False).item() == pytest.approx(fake)
    assert losses.generator_loss(mode, LOGITS).item() == pytest.approx(gen)


def test_every_mode_has_expected_values():
    assert set(EXPECTED) == set(losses.GAN_MODES)


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="vanilla"):
        losses.discriminator_loss("wgan", LOGITS, real=True)


def test_losses_are_fp32_for_half_inputs():
    out = losses.discriminator_loss("vanilla", LOGITS.to(torch.bfloat16), real=True)
    assert out.dtype == torch.float32


def test_gradient_penalty_of_linear_critic():
    """For f(x) = <w, x> the gradient is w everywhere, so the penalty is (||w|| - 1)^2."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4, requires_grad=True)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = losses.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    gp.backward()  # reaches the critic's weights: the penalty can train D
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_gradient_penalty_zero_for_unit_gradient():
    w = torch.zeros(1, 2, 2, 2)
    w[0, 0, 0, 0] = 1.0

    def critic(x):
        return (x * w).flatten(1).sum(1)

    gp = losses.gradient_penalty(critic, torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)
