"""pix2pix: conditional GAN with an L1 term and mismatched-pair negatives.

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks", eq. 4:

    G* = arg min_G max_D  L_cGAN(G, D) + lambda_L1 * E[ ||y - G(x)||_1 ]

with x the input, y its true target, and D(x, y) a conditional discriminator that scores the
pair cat(x, y). The discriminator here also learns from mismatched pairs (x, y') with y' the
target of a *different* input (Reed et al. 2016, GAN-CLS): they look real on their own but do
not belong to x, so D, and through it G, must judge correspondence and not only realism.

    L_D = 1/2 * [ l(D(x, y), real) + (l(D(x, G(x)), fake) + m * l(D(x, y'), fake)) / (1 + m) ]
    L_G = l_G(D(x, G(x))) + lambda_L1 * ||y - G(x)||_1

m = ``loss.mismatch`` keeps the reference's 1/2 (real + fake) balance: the fake side is a
weighted mean of the two kinds of negatives; m = 0 is the reference objective exactly.
y' is the batch's targets rolled by one (batch size > 1) or the previous batch's targets
(batch size 1). With ``loss.gan = wgan-gp``, L_D gains ``loss.gp`` * gradient penalty at
pairs (x, mix of y and G(x)). With ``loss.diffaugment``, every pair D judges, in L_D and in
L_G, is augmented first, x and y of a pair identically (:mod:`translate.diffaugment`).
"""

from __future__ import annotations

import torch

from .. import losses
from ..diffaugment import diff_augment, parse_policy
from ..networks import (build_discriminator, build_generator, discriminator_kwargs,
                        generator_kwargs)
from .base import Export, Method


def orient(batch: dict, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) of a paired batch for ``direction`` a2b or b2a."""
    return (batch["a"], batch["b"]) if direction == "a2b" else (batch["b"], batch["a"])


def mismatched_targets(real_b: torch.Tensor, previous_b: torch.Tensor | None
                       ) -> torch.Tensor | None:
    """Targets that belong to other inputs: the batch rolled by one when it holds more than
    one pair, else the previous batch's targets (None before there is one)."""
    if real_b.shape[0] > 1:
        return real_b.roll(1, dims=0)
    if previous_b is None or previous_b.shape != real_b.shape:
        return None
    return previous_b


class Pix2Pix(Method):
    name = "pix2pix"
    phases = ("d", "g")
    groups = {"d": ("d",), "g": ("g",)}

    def __init__(self, config):
        super().__init__()
        self.direction = config.data.direction
        self.loss = config.loss
        g, d = config.generator, config.discriminator
        c_in, c_out = config.data.channels_a, config.data.channels_b
        if self.direction == "b2a":
            c_in, c_out = c_out, c_in
        self.g_kwargs = generator_kwargs(g, c_in, c_out)
        self.g_arch = g.arch
        self.nets["g"] = build_generator(g.arch, self.g_kwargs)
        self.nets["d"] = build_discriminator(d.arch, discriminator_kwargs(d, c_in + c_out),
                                             d.spectral_norm)
        self.previous_b: torch.Tensor | None = None
        self.augment = parse_policy(self.loss.diffaugment)

    def forward(self, batch: dict) -> dict:
        """real_a: input (N, 3, H, W); real_b: its target; fake_b = G(real_a);
        wrong_b: targets of other inputs, or None. All in [-1, 1]."""
        real_a, real_b = orient(batch, self.direction)
        wrong_b = mismatched_targets(real_b, self.previous_b) if self.loss.mismatch else None
        self.previous_b = real_b.detach()
        return {"real_a": real_a, "real_b": real_b, "fake_b": self.nets["g"](real_a),
                "wrong_b": wrong_b}

    def critic(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Conditional discriminator logits for pairs (x, y), augmented alike with
        ``loss.diffaugment``."""
        x, y = diff_augment(self.augment, x, y)
        return self.nets["d"](torch.cat([x, y], 1))

    def objective(self, phase: str, out: dict):
        return self.d_objective(out) if phase == "d" else self.g_objective(out)

    def d_objective(self, out: dict):
        mode, m = self.loss.gan, self.loss.mismatch
        real_a, fake_b = out["real_a"], out["fake_b"].detach()
        terms = {"d_real": losses.discriminator_loss(mode, self.critic(real_a, out["real_b"]),
                                                     real=True),
                 "d_fake": losses.discriminator_loss(mode, self.critic(real_a, fake_b),
                                                     real=False)}
        negatives = terms["d_fake"]
        if out["wrong_b"] is not None and m > 0:
            terms["d_mismatch"] = losses.discriminator_loss(
                mode, self.critic(real_a, out["wrong_b"]), real=False)
            negatives = (negatives + m * terms["d_mismatch"]) / (1 + m)
        total = 0.5 * (terms["d_real"] + negatives)
        if mode == "wgan-gp" and self.loss.gp > 0:
            terms["d_gp"] = losses.gradient_penalty(lambda y: self.critic(real_a, y),
                                                    out["real_b"], fake_b)
            total = total + self.loss.gp * terms["d_gp"]
        return total, {k: v.detach() for k, v in terms.items()}

    def g_objective(self, out: dict):
        terms = {"g_gan": losses.generator_loss(self.loss.gan,
                                                self.critic(out["real_a"], out["fake_b"])),
                 "g_l1": losses.l1(out["fake_b"], out["real_b"])}
        total = terms["g_gan"] + self.loss.l1 * terms["g_l1"]
        return total, {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def sample_rows(self, batch: dict) -> list[list[torch.Tensor]]:
        real_a, real_b = orient(batch, self.direction)
        fake_b = self.nets["g"](real_a)
        return [[real_a[i], fake_b[i], real_b[i]] for i in range(real_a.shape[0])]

    def exports(self) -> list[Export]:
        return [Export(self.direction, "g", self.nets["g"], self.g_arch, self.g_kwargs)]

    def state_dict(self) -> dict:
        return {"previous_b": self.previous_b}

    def load_state_dict(self, state: dict) -> None:
        self.previous_b = state.get("previous_b")
