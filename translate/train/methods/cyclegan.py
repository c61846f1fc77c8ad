"""CycleGAN: unpaired translation with two generators, two discriminators and cycle
consistency (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", eq. 3 and section 5.2):

    L(G_ab, G_ba, D_a, D_b) = L_GAN(G_ab, D_b) + L_GAN(G_ba, D_a)
                              + lambda_cyc * (||G_ba(G_ab(a)) - a||_1 + ||G_ab(G_ba(b)) - b||_1)
                              + lambda_id * lambda_cyc * (||G_ab(b) - b||_1 + ||G_ba(a) - a||_1)

with lambda_cyc = ``method.cycle`` (10) and lambda_id = ``method.identity`` (0.5). Each
discriminator judges one domain's images alone (unconditional) and learns from real images
and from a history of generated ones (``method.pool_size``, 50):

    L_D_b = 1/2 [ l(D_b(b), real) + l(D_b(pool_b(G_ab(a))), fake) ],  likewise L_D_a.

Per iteration the generators step first, then the discriminators. With
``loss.diffaugment`` every image a discriminator judges, real or generated, in L_D and in the
generators' adversarial terms, is augmented first (:mod:`translate.train.diffaugment`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from translate.train import losses
from translate.train.diffaugment import diff_augment, parse_policy
from translate.networks import build_generator, configured_discriminator, generator_kwargs
from translate.train.fields import ConfigError, opt
from translate.train.methods.base import UNPAIRED_DEFAULTS, Export, Method
from translate.train.methods.pool import ImagePool


@dataclass
class CycleGANOptions:
    """The ``method`` section of a CycleGAN config (Zhu et al. 2017, section 4 and appendix 7:
    lambda_cycle 10, identity 0.5 x lambda_cycle, a pool of 50 generated images)."""
    cycle: float = opt(10.0, "cyclegan: weight of the cycle-consistency L1 terms", minimum=0)
    identity: float = opt(0.5, "cyclegan: identity-term weight, relative to method.cycle",
                          minimum=0)
    pool_size: int = opt(50, "cyclegan: generated images kept to train D on (0: none)",
                         minimum=0)


def identity_fits(config) -> bool:
    """Whether the identity term can be computed: G_ab(b) compares with b only when both
    domains have the same number of channels."""
    return config.data.channels_a == config.data.channels_b


class CycleGAN(Method):
    name = "cyclegan"
    paired = False
    phases = ("g", "d")
    groups = {"g": ("g_ab", "g_ba"), "d": ("d_a", "d_b")}
    options = CycleGANOptions
    config_defaults = UNPAIRED_DEFAULTS

    @classmethod
    def check(cls, config, given: set[str]) -> None:
        o, d = config.method, config.data
        if "identity" in given and o.identity > 0 and o.cycle > 0 and not identity_fits(config):
            raise ConfigError(
                f"method.identity={o.identity} compares G_ab(b) with b, but domain A has "
                f"{d.channels_a} channel(s) and domain B {d.channels_b}; set method.identity=0 "
                "or give both domains the same channels", "method.identity")

    def __init__(self, config):
        super().__init__()
        self.loss, self.opts = config.loss, config.method
        g, d = config.generator, config.discriminator
        ca, cb = config.data.channels_a, config.data.channels_b
        self.g_arch = g.arch
        self.g_kwargs = {"a2b": generator_kwargs(g, ca, cb), "b2a": generator_kwargs(g, cb, ca)}
        self.nets["g_ab"] = build_generator(g.arch, self.g_kwargs["a2b"])
        self.nets["g_ba"] = build_generator(g.arch, self.g_kwargs["b2a"])
        self.nets["d_a"] = configured_discriminator(d, ca)
        self.nets["d_b"] = configured_discriminator(d, cb)
        self.pool_a = ImagePool(self.opts.pool_size, seed=config.train.seed)
        self.pool_b = ImagePool(self.opts.pool_size, seed=config.train.seed + 1)
        self.augment = parse_policy(self.loss.diffaugment)
        self.use_identity = self.opts.identity > 0 and self.opts.cycle > 0
        if self.use_identity and not identity_fits(config):  # the default weight: a note
            self.use_identity = False
            print(f"warning: the identity term is skipped: domain A has {ca} channel(s) and "
                  f"domain B {cb}, so G_ab(b) cannot be compared with b", file=sys.stderr)

    def forward(self, batch: dict) -> dict:
        """real_a, real_b: (N, C, H, W) in [-1, 1]; returns the translations fake_b =
        G_ab(a), fake_a = G_ba(b), reconstructions rec_a = G_ba(fake_b), rec_b =
        G_ab(fake_a) and, with the identity term, same_b = G_ab(b), same_a = G_ba(a)."""
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        real_a, real_b = batch["a"], batch["b"]
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        out = {"real_a": real_a, "real_b": real_b, "fake_a": fake_a, "fake_b": fake_b,
               "rec_a": g_ba(fake_b), "rec_b": g_ab(fake_a)}
        if self.use_identity:
            out["same_b"], out["same_a"] = g_ab(real_b), g_ba(real_a)
        return out

    def objective(self, phase: str, out: dict):
        return self.g_objective(out) if phase == "g" else self.d_objective(out)

    def g_objective(self, out: dict):
        mode, cyc = self.loss.gan, self.opts.cycle
        terms = {
            "adv_ab": losses.generator_loss(mode, self.judge("d_b", out["fake_b"])),
            "adv_ba": losses.generator_loss(mode, self.judge("d_a", out["fake_a"])),
            "cycle_a": losses.l1(out["rec_a"], out["real_a"]),
            "cycle_b": losses.l1(out["rec_b"], out["real_b"]),
        }
        total = terms["adv_ab"] + terms["adv_ba"] + cyc * (terms["cycle_a"] + terms["cycle_b"])
        if self.use_identity:
            terms["identity_ab"] = losses.l1(out["same_b"], out["real_b"])
            terms["identity_ba"] = losses.l1(out["same_a"], out["real_a"])
            total = total + self.opts.identity * cyc * (terms["identity_ab"]
                                                        + terms["identity_ba"])
        return total, {k: v.detach() for k, v in terms.items()}

    def judge(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Logits of discriminator ``name`` for images x, augmented with ``loss.diffaugment``."""
        return self.nets[name](diff_augment(self.augment, x)[0])

    def _d_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor, terms: dict):
        mode = self.loss.gan

        def d(x: torch.Tensor) -> torch.Tensor:
            return self.judge(name, x)

        on_real, on_fake = d(real), d(fake)
        loss = 0.5 * (losses.discriminator_loss(mode, on_real, real=True)
                      + losses.discriminator_loss(mode, on_fake, real=False))
        terms[name] = loss
        side = name[-1]  # d_a judges domain A
        terms[f"score_real_{side}"] = losses.realness(mode, on_real)
        terms[f"score_fake_{side}"] = losses.realness(mode, on_fake)
        if mode == "wgan-gp" and self.loss.gp > 0:
            terms[f"{name}_gp"] = losses.gradient_penalty(d, real, fake)
            loss = loss + self.loss.gp * terms[f"{name}_gp"]
        return loss

    def d_objective(self, out: dict):
        terms: dict[str, torch.Tensor] = {}
        fake_b = self.pool_b.query(out["fake_b"].detach())
        fake_a = self.pool_a.query(out["fake_a"].detach())
        total = (self._d_loss("d_b", out["real_b"], fake_b, terms)
                 + self._d_loss("d_a", out["real_a"], fake_a, terms))
        return total, {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def sample_columns(self) -> tuple[str, ...]:
        return ("A", "A to B", "back to A", "B", "B to A", "back to B")

    def sample_rows(self, batch: dict) -> list[list[torch.Tensor]]:
        """a | G_ab(a) | G_ba(G_ab(a)) | b | G_ba(b) | G_ab(G_ba(b))"""
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        a, b = batch["a"], batch["b"]
        fake_b, fake_a = g_ab(a), g_ba(b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        return [[a[i], fake_b[i], rec_a[i], b[i], fake_a[i], rec_b[i]]
                for i in range(a.shape[0])]

    def exports(self) -> list[Export]:
        return [Export("a2b", "g_ab", self.nets["g_ab"], self.g_arch, self.g_kwargs["a2b"]),
                Export("b2a", "g_ba", self.nets["g_ba"], self.g_arch, self.g_kwargs["b2a"])]

    def state_dict(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
