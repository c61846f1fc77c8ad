"""DCLGAN: dual contrastive learning for unpaired translation (Han et al. 2021, "Dual
Contrastive Learning for Unsupervised Image-to-Image Translation", eq. 4 and 5):

    L_G = 1/2 (L_GAN(G_ab, D_b) + L_GAN(G_ba, D_a))
          + lambda_nce * 1/2 (PatchNCE_ab + PatchNCE_ba)
          + lambda_idt * 1/2 (||G_ab(b) - b||_1 + ||G_ba(a) - a||_1)

with lambda_nce = ``method.nce`` (2) and lambda_idt = ``method.identity`` (1). As in CUT
(:mod:`translate.train.methods.cut`), PatchNCE asks each sampled location of a translation to
pick out the same location of its input among the others, but each domain has its own
embedding: an image of domain A is embedded by the encoder of G_ab (the generator that reads
A) and the heads H_a, an image of B by G_ba's encoder and H_b. So

    PatchNCE_ab = PatchNCE( q = H_b(enc_ba(G_ab(a))), k = H_a(enc_ab(a)) )
    PatchNCE_ba = PatchNCE( q = H_a(enc_ab(G_ba(b))), k = H_b(enc_ba(b)) )

at ``method.patches`` locations of each encoder layer of ``method.layers`` (the paper's 4, 8,
12, 16), temperature ``method.temperature``. The two discriminators judge one domain each
(LSGAN, no image pool): L_D_b = 1/2 [ l(D_b(b), real) + l(D_b(G_ab(a)), fake) ], likewise
L_D_a; per iteration the discriminators step first, then both generators and both heads.
Both generators are exported (a2b and b2a); the heads serve the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translate.networks import build_generator, configured_discriminator, generator_kwargs
from translate.train import losses
from translate.train.diffaugment import diff_augment, parse_policy
from translate.train.fields import ConfigError, opt
from translate.train.methods.base import UNPAIRED_DEFAULTS, Export, Method
from translate.train.methods.cut import PatchHeads, checked_encoder_layers, encoder_layers


@dataclass
class DCLGANOptions:
    """The ``method`` section of a DCLGAN config (Han et al. 2021, section 4: lambda_GAN 1,
    lambda_NCE 2, lambda_IDT 1, 256 patches per layer, temperature 0.07, layers 4, 8, 12,
    16, heads of 256 units)."""
    nce: float = opt(2.0, "dclgan: weight of the two PatchNCE terms (their mean)", minimum=0)
    identity: float = opt(1.0, "dclgan: weight of the identity L1 terms (their mean)",
                          minimum=0)
    patches: int = opt(256, "dclgan: locations sampled per layer", minimum=1)
    temperature: float = opt(0.07, "dclgan: PatchNCE temperature", minimum=1e-4)
    layers: str = opt("4,8,12,16", "dclgan: encoder layers (indices into the ResNet "
                      "generator's layer list) whose features are compared")
    head: int = opt(256, "dclgan: width of each layer's MLP head", minimum=1)


class DCLGAN(Method):
    name = "dclgan"
    paired = False
    phases = ("d", "g")
    groups = {"d": ("d_a", "d_b"), "g": ("g_ab", "g_ba", "heads_a", "heads_b")}
    options = DCLGANOptions
    config_defaults = UNPAIRED_DEFAULTS

    @classmethod
    def check(cls, config, given: set[str]) -> None:
        checked_encoder_layers(config)
        if config.data.channels_a != config.data.channels_b:
            raise ConfigError("model dclgan embeds each domain with the other generator's "
                              "encoder too, so both domains need the same channels; domain A "
                              f"has {config.data.channels_a}, B {config.data.channels_b}",
                              "data.channels_b")

    def __init__(self, config):
        super().__init__()
        self.loss, self.opts = config.loss, config.method
        g, d, channels = config.generator, config.discriminator, config.data.channels_a
        self.g_arch, self.g_kwargs = g.arch, generator_kwargs(g, channels, channels)
        self.nets["g_ab"] = build_generator(g.arch, self.g_kwargs)
        self.nets["g_ba"] = build_generator(g.arch, self.g_kwargs)
        self.nets["d_a"] = configured_discriminator(d, channels)
        self.nets["d_b"] = configured_discriminator(d, channels)
        self.layers = encoder_layers(self.opts.layers, self.g_kwargs["depth"])
        with torch.no_grad():
            probe = self.nets["g_ab"].features(torch.zeros(1, channels, 32, 32), self.layers)
        widths = [f.shape[1] for f in probe]
        self.nets["heads_a"] = PatchHeads(widths, self.opts.head)
        self.nets["heads_b"] = PatchHeads(widths, self.opts.head)
        self.augment = parse_policy(self.loss.diffaugment)

    def forward(self, batch: dict) -> dict:
        """real_a, real_b: (N, C, H, W) in [-1, 1]; returns fake_b = G_ab(a), fake_a =
        G_ba(b) and the identity mappings same_b = G_ab(b), same_a = G_ba(a)."""
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        real_a, real_b = batch["a"], batch["b"]
        out = {"real_a": real_a, "real_b": real_b, "fake_b": g_ab(real_a),
               "fake_a": g_ba(real_b)}
        if self.opts.identity > 0:
            out["same_b"], out["same_a"] = g_ab(real_b), g_ba(real_a)
        return out

    def objective(self, phase: str, out: dict):
        return self.d_objective(out) if phase == "d" else self.g_objective(out)

    def judge(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.nets[name](diff_augment(self.augment, x)[0])

    def d_objective(self, out: dict):
        """Each domain's discriminator on its real images and the other generator's
        translations, (1/2)(L_D(real) + L_D(fake)) per domain, summed; with loss.gan
        wgan-gp each adds loss.gp times its gradient penalty (``d_b_gp``, ``d_a_gp``)."""
        mode, terms, total = self.loss.gan, {}, 0.0
        for name, real, fake in (("d_b", out["real_b"], out["fake_b"]),
                                 ("d_a", out["real_a"], out["fake_a"])):
            on_real, on_fake = self.judge(name, real), self.judge(name, fake.detach())
            terms[name] = 0.5 * (losses.discriminator_loss(mode, on_real, True)
                                 + losses.discriminator_loss(mode, on_fake, False))
            terms[f"score_real_{name[-1]}"] = losses.realness(mode, on_real)
            terms[f"score_fake_{name[-1]}"] = losses.realness(mode, on_fake)
            total = total + terms[name]
            if mode == "wgan-gp" and self.loss.gp > 0:
                terms[f"{name}_gp"] = losses.gradient_penalty(
                    lambda x, name=name: self.judge(name, x), real, fake.detach())
                total = total + self.loss.gp * terms[f"{name}_gp"]
        return total, {k: v.detach() for k, v in terms.items()}

    def g_objective(self, out: dict):
        mode = self.loss.gan
        terms = {"adv_ab": losses.generator_loss(mode, self.judge("d_b", out["fake_b"])),
                 "adv_ba": losses.generator_loss(mode, self.judge("d_a", out["fake_a"])),
                 "nce_ab": self.dual_nce(out["real_a"], out["fake_b"], "a"),
                 "nce_ba": self.dual_nce(out["real_b"], out["fake_a"], "b")}
        total = (0.5 * (terms["adv_ab"] + terms["adv_ba"])
                 + self.opts.nce * 0.5 * (terms["nce_ab"] + terms["nce_ba"]))
        if self.opts.identity > 0:
            terms["identity_ab"] = losses.l1(out["same_b"], out["real_b"])
            terms["identity_ba"] = losses.l1(out["same_a"], out["real_a"])
            total = total + self.opts.identity * 0.5 * (terms["identity_ab"]
                                                        + terms["identity_ba"])
        return total, {k: v.detach() for k, v in terms.items()}

    def dual_nce(self, source: torch.Tensor, output: torch.Tensor, domain: str
                 ) -> torch.Tensor:
        """PatchNCE between ``source`` (of ``domain``) and its translation ``output`` (of
        the other domain), each embedded by its own domain's encoder and heads, averaged
        over the layers."""
        other = "b" if domain == "a" else "a"
        reads = {"a": self.nets["g_ab"], "b": self.nets["g_ba"]}  # the encoder for a domain
        feats_q = reads[other].features(output, self.layers)
        ids = [torch.randperm(f.shape[2] * f.shape[3])[:self.opts.patches].to(f.device)
               for f in feats_q]
        with torch.no_grad():  # the positives and negatives are targets (no gradient)
            codes_k = self.nets[f"heads_{domain}"](reads[domain].features(source, self.layers),
                                                   ids)
        codes_q = self.nets[f"heads_{other}"](feats_q, ids)
        return torch.stack([losses.patch_nce(q, k, self.opts.temperature)
                            for q, k in zip(codes_q, codes_k)]).mean()

    @torch.no_grad()
    def sample_columns(self) -> tuple[str, ...]:
        return ("A", "A to B", "B", "B to A")

    def sample_rows(self, batch: dict) -> list[list[torch.Tensor]]:
        """a | G_ab(a) | b | G_ba(b)"""
        a, b = batch["a"], batch["b"]
        fake_b, fake_a = self.nets["g_ab"](a), self.nets["g_ba"](b)
        return [[a[i], fake_b[i], b[i], fake_a[i]] for i in range(a.shape[0])]

    def exports(self) -> list[Export]:
        return [Export("a2b", "g_ab", self.nets["g_ab"], self.g_arch, self.g_kwargs),
                Export("b2a", "g_ba", self.nets["g_ba"], self.g_arch, self.g_kwargs)]
