"""pix2pix: conditional GAN with an L1 term and mismatched-pair negatives.

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks", eq. 4:

    G* = arg min_G max_D  L_cGAN(G, D) + lambda_L1 * E[ ||y - G(x)||_1 ]

(``method.adversarial`` weighs L_cGAN; 0 is the paper's "L1 alone" baseline.)

with x the input, y its true target, and D(x, y) a conditional discriminator that scores the
pair cat(x, y). The discriminator here also learns from mismatched pairs (x, y') with y' the
target of a *different* input (Reed et al. 2016, GAN-CLS): they look real on their own but do
not belong to x, so D, and through it G, must judge correspondence and not only realism.

    L_D = 1/2 * [ l(D(x, y), real) + (l(D(x, G(x)), fake) + m * l(D(x, y'), fake)) / (1 + m) ]
    L_G = l_G(D(x, G(x))) + lambda_L1 * ||y - G(x)||_1

m = ``method.mismatch`` keeps the reference's 1/2 (real + fake) balance: the fake side is a
weighted mean of the two kinds of negatives; m = 0 is the reference objective exactly.
y' is the target of another sample of the batch (the batch rolled by one, or further where
a batch repeats a sample) or of the previous batch (batch size 1); a row with no target of
another sample is left out of the mismatched term. With ``loss.gan = wgan-gp``, L_D gains ``loss.gp`` * gradient penalty at
pairs (x, mix of y and G(x)). With ``loss.diffaugment``, every pair D judges, in L_D and in
L_G, is augmented first, x and y of a pair identically (:mod:`translate.train.diffaugment`).

Options beyond the paper (off by default): ``method.r1`` = gamma adds gamma / 2 *
E||grad_y D(x, y)||^2 at real pairs to L_D (Mescheder et al. 2018); ``method.
feature_matching`` = lambda_FM adds lambda_FM * mean_l |D_l(x, y) - D_l(x, G(x))|_1 over
D's layers (of every scale) to L_G (pix2pixHD, Wang et al. 2018, eq. 4), on pairs that are
not augmented. ``method.gradient`` = lambda_grad adds lambda_grad * ||grad G(x) - grad y||_1
(forward differences) to L_G, a term for flat regions and crisp edges where y has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translate.train import losses
from translate.train.diffaugment import diff_augment, parse_policy
from translate.networks import build_generator, configured_discriminator, generator_kwargs
from translate.train.fields import opt
from translate.train.methods.base import Export, Method


@dataclass
class Pix2PixOptions:
    """The ``method`` section of a pix2pix config (Isola et al. 2017: lambda_L1 = 100)."""
    l1: float = opt(100.0, "pix2pix: weight of L1(G(x), y)", minimum=0)
    mismatch: float = opt(1.0, "pix2pix: weight of the mismatched-pair negatives (0 disables)",
                          minimum=0)
    adversarial: float = opt(1.0, "pix2pix: weight of the conditional GAN term in G's loss "
                             "(0: L1 alone, a regression baseline; D is then not trained)",
                             minimum=0)
    feature_matching: float = opt(0.0, "pix2pix: weight of pix2pixHD's discriminator "
                                  "feature-matching loss (Wang et al. 2018 use 10; 0: off)",
                                  minimum=0)
    r1: float = opt(0.0, "pix2pix: R1 penalty weight gamma on real pairs (Mescheder et al. "
                    "2018; 0: off)", minimum=0)
    gradient: float = opt(0.0, "pix2pix: weight of the L1 distance between the spatial "
                          "gradients of G(x) and y, for flat regions and crisp edges where "
                          "the target has them (0: off)", minimum=0)


def orient(batch: dict, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) of a paired batch for ``direction`` a2b or b2a."""
    return (batch["a"], batch["b"]) if direction == "a2b" else (batch["b"], batch["a"])


def mismatched_targets(real_b: torch.Tensor, index: torch.Tensor | None,
                       previous: tuple[torch.Tensor, torch.Tensor | None] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For each row, the target of a *different* sample: the first of the batch rolled by
    1, 2, ..., N-1 whose sample differs, else the previous batch's target in that row if its
    sample differs. Samples are told apart by ``index`` (int (N,), dataset indices; None: all
    rows are different samples); a batch may repeat a sample (a dataset smaller than the
    batch, an epoch boundary), and at batch size 1 the previous batch may be the same sample.

    real_b: (N, C, H, W) in [-1, 1]. previous: (targets, index) of the previous batch.
    Returns (wrong_b (N, C, H, W), keep (N,) bool: rows that have one), or None when no row
    has one.
    """
    n = real_b.shape[0]
    idx = index.to("cpu") if index is not None else None
    if n > 1 and (idx is None or bool((idx.roll(1) != idx).all())):
        return real_b.roll(1, dims=0), torch.ones(n, dtype=torch.bool)  # the usual case
    wrong = torch.zeros_like(real_b)
    keep = torch.zeros(n, dtype=torch.bool)  # decided on the CPU: nothing is read back
    for shift in range(1, n):
        free = ~keep & (idx.roll(shift) != idx)
        if free.any():
            wrong = _where_rows(free, real_b.roll(shift, dims=0), wrong)
            keep |= free
    if previous is not None and not keep.all() and previous[0].shape == real_b.shape:
        prev_b, prev_idx = previous
        free = ~keep
        if idx is not None and prev_idx is not None:
            free &= prev_idx.to("cpu") != idx
        if free.any():
            wrong = _where_rows(free, prev_b, wrong)
            keep |= free
    return (wrong, keep) if keep.any() else None


def _where_rows(rows: torch.Tensor, chosen: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``chosen`` in the rows where the CPU bool mask ``rows`` (N,) is set, else ``other``,
    without boolean indexing on the device (which would wait for the device)."""
    mask = rows.to(chosen.device, non_blocking=True).view(-1, *[1] * (chosen.dim() - 1))
    return torch.where(mask, chosen, other)


class Pix2Pix(Method):
    name = "pix2pix"
    phases = ("d", "g")
    groups = {"d": ("d",), "g": ("g",)}
    # Beyond the paper, chosen by measurement (docs/benchmarks.md, "Quality"): with
    # mismatched pairs, DiffAugment and a moving average of G the held-out PSNR rose on every
    # procedural task (+0.15 and +0.50 dB over the reference objective, 3 seeds each).
    # Resize-convolutions in the decoder (Odena et al. 2016) instead of the paper's transposed
    # convolutions: thin lines stay continuous instead of turning into rows of dots, and the
    # held-out PSNR of the real-photo tasks rose beyond the seeds' spread (docs/benchmarks.md,
    # "Quality on real photos"). method.mismatch=0 loss.diffaugment="" train.ema=0
    # generator.upsample=transpose is the paper's objective and networks.
    config_defaults = {"loss": {"diffaugment": "color,translation"}, "train": {"ema": 0.999},
                       "generator": {"upsample": "resize"}}
    options = Pix2PixOptions

    @classmethod
    def data_notes(cls, config, size: int) -> list[str]:
        if config.method.mismatch and size < 2:
            return ["the dataset holds one pair, so there are no mismatched pairs "
                    "(loss.mismatch has no effect)"]
        return []

    def __init__(self, config):
        super().__init__()
        self.direction = config.data.direction
        self.loss, self.opts = config.loss, config.method
        g, d = config.generator, config.discriminator
        c_in, c_out = config.data.channels_a, config.data.channels_b
        if self.direction == "b2a":
            c_in, c_out = c_out, c_in
        self.g_kwargs = generator_kwargs(g, c_in, c_out)
        self.g_arch = g.arch
        self.nets["g"] = build_generator(g.arch, self.g_kwargs)
        self.nets["d"] = configured_discriminator(d, c_in + c_out)
        self.previous: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.augment = parse_policy(self.loss.diffaugment)
        if not self.opts.adversarial:  # L1 alone: D is never stepped
            self.phases = ("g",)

    def forward(self, batch: dict) -> dict:
        """real_a: input (N, 3, H, W); real_b: its target; fake_b = G(real_a); wrong_a,
        wrong_b: mismatched pairs (M <= N rows: an input and the target of another sample),
        or None. All in [-1, 1]. ``batch["index"]`` (optional) tells samples apart."""
        real_a, real_b = orient(batch, self.direction)
        index = batch.get("index")
        wrong_a = wrong_b = None
        if self.opts.mismatch:
            found = mismatched_targets(real_b, index, self.previous)
            if found is not None:
                wrong_b, keep = found
                wrong_a = real_a
                if not keep.all():  # CPU mask; the rows are picked by position
                    rows = keep.nonzero().squeeze(1).to(real_b.device, non_blocking=True)
                    wrong_a, wrong_b = real_a.index_select(0, rows), wrong_b.index_select(0, rows)
        self.previous = (real_b.detach(), None if index is None else index.to("cpu"))
        return {"real_a": real_a, "real_b": real_b, "fake_b": self.nets["g"](real_a),
                "wrong_a": wrong_a, "wrong_b": wrong_b}

    def critic(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Conditional discriminator logits for pairs (x, y), augmented alike with
        ``loss.diffaugment``."""
        x, y = diff_augment(self.augment, x, y)
        return self.nets["d"](torch.cat([x, y], 1))

    def objective(self, phase: str, out: dict):
        return self.d_objective(out) if phase == "d" else self.g_objective(out)

    def d_objective(self, out: dict):
        mode, m = self.loss.gan, self.opts.mismatch
        real_a, fake_b = out["real_a"], out["fake_b"].detach()
        on_real, on_fake = self.critic(real_a, out["real_b"]), self.critic(real_a, fake_b)
        terms = {"d_real": losses.discriminator_loss(mode, on_real, real=True),
                 "d_fake": losses.discriminator_loss(mode, on_fake, real=False),
                 "score_real": losses.realness(mode, on_real),
                 "score_fake": losses.realness(mode, on_fake)}
        negatives = terms["d_fake"]
        if out["wrong_b"] is not None and m > 0:
            on_wrong = self.critic(out["wrong_a"], out["wrong_b"])
            terms["d_mismatch"] = losses.discriminator_loss(mode, on_wrong, real=False)
            terms["score_mismatch"] = losses.realness(mode, on_wrong)
            negatives = (negatives + m * terms["d_mismatch"]) / (1 + m)
        total = 0.5 * (terms["d_real"] + negatives)
        if self.opts.r1 > 0:
            terms["d_r1"] = losses.r1_penalty(lambda y: self.critic(real_a, y), out["real_b"])
            total = total + 0.5 * self.opts.r1 * terms["d_r1"]
        if mode == "wgan-gp" and self.loss.gp > 0:
            terms["d_gp"] = losses.gradient_penalty(lambda y: self.critic(real_a, y),
                                                    out["real_b"], fake_b)
            total = total + self.loss.gp * terms["d_gp"]
        return total, {k: v.detach() for k, v in terms.items()}

    def g_objective(self, out: dict):
        terms = {"g_l1": losses.l1(out["fake_b"], out["real_b"])}
        total = self.opts.l1 * terms["g_l1"]
        if self.opts.gradient > 0:
            terms["g_grad"] = losses.gradient_l1(out["fake_b"], out["real_b"])
            total = total + self.opts.gradient * terms["g_grad"]
        if self.opts.adversarial:
            terms["g_gan"] = losses.generator_loss(self.loss.gan,
                                                   self.critic(out["real_a"], out["fake_b"]))
            total = total + self.opts.adversarial * terms["g_gan"]
        if self.opts.feature_matching > 0:
            d, real_a = self.nets["d"], out["real_a"]
            with torch.no_grad():
                _, real = d.forward_features(torch.cat([real_a, out["real_b"]], 1))
            _, fake = d.forward_features(torch.cat([real_a, out["fake_b"]], 1))
            terms["g_fm"] = losses.feature_matching(real, fake)
            total = total + self.opts.feature_matching * terms["g_fm"]
        return total, {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def sample_columns(self) -> tuple[str, ...]:
        return ("input", "output", "target")

    def sample_rows(self, batch: dict) -> list[list[torch.Tensor]]:
        real_a, real_b = orient(batch, self.direction)
        fake_b = self.nets["g"](real_a)
        return [[real_a[i], fake_b[i], real_b[i]] for i in range(real_a.shape[0])]

    def exports(self) -> list[Export]:
        return [Export(self.direction, "g", self.nets["g"], self.g_arch, self.g_kwargs)]

    def state_dict(self) -> dict:
        prev_b, prev_index = self.previous if self.previous is not None else (None, None)
        return {"previous_b": prev_b, "previous_index": prev_index}

    def load_state_dict(self, state: dict) -> None:
        prev_b = state.get("previous_b")
        self.previous = None if prev_b is None else (prev_b, state.get("previous_index"))
