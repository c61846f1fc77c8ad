"""CUT and FastCUT: unpaired translation with one generator, one discriminator and a
patchwise contrastive loss (Park et al. 2020, "Contrastive Learning for Unpaired
Image-to-Image Translation", eq. 5):

    L = L_GAN(G, D) + lambda_X * L_PatchNCE(G, H, X) + lambda_Y * L_PatchNCE(G, H, Y)

L_PatchNCE(G, H, X) compares, layer by layer, features of the generator's encoder for an
input x and for its translation G(x): a small MLP head H_l projects the features at
``method.patches`` sampled locations of layer l, and the projection of G(x) at each
location must pick the projection of x at the same location out of those at the other
locations (:func:`translate.train.losses.patch_nce`, temperature ``method.temperature``).
The second term, on target-domain images y and G(y), is CUT's identity term.

- ``method.variant: cut`` (the paper's CUT): lambda_X = lambda_Y = 1 (``method.nce``),
  the two terms averaged.
- ``method.variant: fastcut``: lambda_X = 10, no identity term, and the input batch is
  flipped horizontally half the time with G(x)'s features flipped back, which asks the
  encoder for flip equivariance (the paper's section 4 and appendix).
- ``method.variant: hneg-src`` (Jung et al. 2022, "Exploring Patch-wise Semantic Relation
  for Contrastive Learning in Image-to-Image Translation Tasks", its horse2zebra recipe):
  CUT with PatchNCE replaced by the hard-negative decoupled contrast (hDCE,
  :func:`~translate.train.losses.hard_negative_nce`: the positive left out of the
  denominator, each negative's similarity weighted by how alike the input is at the two
  locations, :func:`~translate.train.losses.relation_weights`, with a temperature moving
  from 50 to 10 over training, ``method.hardness``), weight 0.1 with the identity term, plus
  semantic relation consistency on x and G(x), weight 0.05
  (:func:`~translate.train.losses.relation_consistency`):

      L = L_GAN + 0.1 * 1/2 (L_hDCE(x, G(x)) + L_hDCE(y, G(y))) + 0.05 * L_SRC(x, G(x))

  ``method.contrast`` and ``method.src`` set either part on any variant.
- ``method.queries: entropy`` (QS-Attn, Hu et al. 2022, its global attention): on the
  layers of the residual blocks (the paper's 12 and 16) the contrast no longer looks at
  random locations: the global attention of the input's features,
  A = softmax_j(f_i . f_j), keeps the ``method.patches`` rows of least entropy (locations
  that stand out), and those rows route the features of x and of G(x) alike
  (:func:`selected_attention`); the first layers are sampled at random, as in CUT.

The discriminator judges target-domain images alone (LSGAN, no image pool):
L_D = 1/2 [ l(D(y), real) + l(D(G(x)), fake) ]. Per iteration D steps first, then G and
the heads together. Only G is exported; the heads serve the loss. The encoder layers are
those of the ResNet generator's layer list (``method.layers``; the paper's 0, 4, 8, 12, 16:
the padded input, the two downsampling convolutions and two residual blocks).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from translate.networks import build_generator, configured_discriminator, generator_kwargs
from translate.train import losses
from translate.train.diffaugment import diff_augment, parse_policy
from translate.train.fields import ConfigError, opt
from translate.train.methods.base import UNPAIRED_DEFAULTS, Export, Method

VARIANTS = {"cut": {"nce": 1.0, "identity": True, "flip": False, "contrast": "patchnce",
                    "src": 0.0},
            "fastcut": {"nce": 10.0, "identity": False, "flip": True, "contrast": "patchnce",
                        "src": 0.0},
            "hneg-src": {"nce": 0.1, "identity": True, "flip": False, "contrast": "hdce",
                         "src": 0.05}}
CONTRASTS = ("patchnce", "hdce")
QUERY_MODES = ("random", "entropy")
FIRST_BLOCK = 10  # the ResNet generator's layer list: stem and downsamplings, then blocks


@dataclass
class CUTOptions:
    """The ``method`` section of a CUT config (Park et al. 2020, section 4: 256 patches per
    layer, temperature 0.07, heads of 256 units)."""
    variant: str = opt("cut", "cut: NCE weight 1 with the identity term; fastcut: weight 10, "
                       "no identity term, flip equivariance; hneg-src: the hard-negative "
                       "contrast (weight 0.1) with the identity term and relation consistency "
                       "(weight 0.05)", tuple(VARIANTS))
    nce: float | None = opt(None, "cut: weight of the contrastive term (default: 1 for cut, 10 "
                            "for fastcut, 0.1 for hneg-src)", minimum=0)
    contrast: str | None = opt(None, "cut: the contrastive term: patchnce (Park et al. 2020) "
                               "or hdce (hard negatives weighted by the input's relations, "
                               "positive left out of the denominator; Jung et al. 2022); "
                               "default: the variant's", CONTRASTS)
    src: float | None = opt(None, "cut: weight of semantic relation consistency (Jung et al. "
                            "2022; default: 0.05 for hneg-src, else 0)", minimum=0)
    hardness: str = opt("50,10", "cut, hdce: temperature of the hard-negative weights at the "
                        "start and at the end of training (linear between; large: all "
                        "negatives alike)")
    queries: str = opt("random", "cut: where the contrast looks: random locations (CUT), or "
                       "entropy: on the residual blocks' layers, the locations whose global "
                       "attention over the input is most peaked, each the attention-weighted "
                       "mean of the features (QS-Attn, Hu et al. 2022)", QUERY_MODES)
    patches: int = opt(256, "cut: locations sampled per layer", minimum=1)
    temperature: float = opt(0.07, "cut: PatchNCE temperature", minimum=1e-4)
    layers: str = opt("0,4,8,12,16", "cut: encoder layers (indices into the ResNet "
                      "generator's layer list) whose features are compared")
    head: int = opt(256, "cut: width of each layer's MLP head", minimum=1)


class PatchHeads(nn.Module):
    """One MLP head per encoder layer (Linear, ReLU, Linear), projecting sampled feature
    vectors to L2-normalised codes of ``width`` (the paper's H_l)."""

    def __init__(self, channels: list[int], width: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(),
                                                 nn.Linear(width, width)) for c in channels)

    def forward(self, feats: list[torch.Tensor], picks: list[torch.Tensor]
                ) -> list[torch.Tensor]:
        """feats[l]: (N, C_l, H_l, W_l); picks[l]: (P_l,) flat locations, or (N, P_l,
        H_l W_l) attention rows whose weighted means of the features are projected.
        Returns (N, P_l, width) codes per layer."""
        out = []
        for head, feat, pick in zip(self.heads, feats, picks):
            flat = feat.flatten(2).transpose(1, 2)  # (N, HW, C)
            flat = torch.bmm(pick.to(flat.dtype), flat) if pick.is_floating_point() \
                else flat[:, pick]
            out.append(F.normalize(head(flat), dim=-1))
        return out


def selected_attention(feat: torch.Tensor, count: int) -> torch.Tensor:
    """QS-Attn's global query selection (Hu et al. 2022, "QS-Attn: Query-Selected Attention
    for Contrastive Learning in I2I Translation"): feat (N, C, H, W) features of the input.
    The global attention of each location over all of them, A = softmax_j(f_i . f_j), is
    peaked where a location stands out and flat where it is like many others; the ``count``
    rows of least entropy H_i = -sum_j A_ij log A_ij are kept. Returns (N, count, HW); the
    same rows route the features of the input and of its translation."""
    flat = feat.flatten(2).transpose(1, 2).float()  # (N, HW, C)
    attention = torch.softmax(torch.bmm(flat, flat.transpose(1, 2)), dim=2)
    entropy = -(attention * torch.log(attention.clamp_min(1e-30))).sum(dim=2)
    rows = entropy.argsort(dim=1)[:, :count]  # (N, count), most peaked first
    return torch.gather(attention, 1, rows[..., None].expand(-1, -1, attention.shape[2]))


def hardness_range(text: str) -> tuple[float, float]:
    """``method.hardness`` "START,END" -> (START, END), both positive."""
    try:
        start, end = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"method.hardness must be two numbers, START,END; got {text[:40]!r}",
                          "method.hardness") from None
    if not (start > 0 and end > 0):
        raise ConfigError(f"method.hardness must be positive; got {text[:40]!r}",
                          "method.hardness")
    return start, end


def encoder_layers(text: str, depth: int) -> list[int]:
    """The layer indices of ``text`` that lie in a ResNet generator's encoder (its first
    10 + depth layers: stem, two downsamplings, the residual blocks)."""
    try:
        wanted = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"method.layers must be comma-separated layer numbers; got "
                          f"{text[:40]!r}", "method.layers") from None
    return [i for i in wanted if 0 <= i < 10 + depth]


def checked_encoder_layers(config) -> list[int]:
    """The encoder layers ``method.layers`` names, for a method that compares features of
    the ResNet generator's encoder (CUT, DCLGAN); a ConfigError for another generator or a
    list that names none."""
    if config.generator.arch != "resnet":
        raise ConfigError(f"model {config.model} compares features of the ResNet generator's "
                          f"encoder; set generator.arch=resnet (not {config.generator.arch})",
                          "generator.arch")
    layers = encoder_layers(config.method.layers, config.generator.depth or 9)
    if not layers:
        raise ConfigError("method.layers names no layer of the generator's encoder",
                          "method.layers")
    return layers


class CUT(Method):
    name = "cut"
    paired = False
    phases = ("d", "g")
    groups = {"d": ("d",), "g": ("g", "heads")}
    options = CUTOptions
    config_defaults = UNPAIRED_DEFAULTS

    @classmethod
    def check(cls, config, given: set[str]) -> None:
        layers = checked_encoder_layers(config)
        hardness_range(config.method.hardness)
        if config.method.queries == "entropy" and max(layers) < FIRST_BLOCK:
            raise ConfigError("method.queries=entropy selects locations on the residual "
                              f"blocks' layers ({FIRST_BLOCK} and up); method.layers names "
                              f"none of them: {','.join(map(str, layers))}", "method.queries")

    def __init__(self, config):
        super().__init__()
        self.loss, self.opts = config.loss, config.method
        g, d = config.generator, config.discriminator
        self.direction = config.data.direction
        c_in, c_out = config.data.channels_a, config.data.channels_b
        if self.direction == "b2a":
            c_in, c_out = c_out, c_in
        self.g_arch, self.g_kwargs = g.arch, generator_kwargs(g, c_in, c_out)
        self.nets["g"] = build_generator(g.arch, self.g_kwargs)
        self.nets["d"] = configured_discriminator(d, c_out)
        self.layers = encoder_layers(self.opts.layers, self.g_kwargs["depth"])
        with torch.no_grad():
            probe = self.nets["g"].features(torch.zeros(1, c_in, 32, 32), self.layers)
        self.nets["heads"] = PatchHeads([f.shape[1] for f in probe], self.opts.head)
        variant = VARIANTS[self.opts.variant]
        self.weight = self.opts.nce if self.opts.nce is not None else variant["nce"]
        self.identity, self.flip = variant["identity"], variant["flip"]
        self.contrast = self.opts.contrast or variant["contrast"]
        self.src_weight = self.opts.src if self.opts.src is not None else variant["src"]
        self.hardness = hardness_range(self.opts.hardness)
        if self.identity and c_in != c_out:
            self.identity = False
            print("warning: the identity NCE term is skipped: the domains have different "
                  "channel counts", file=sys.stderr)
        self.augment = parse_policy(self.loss.diffaugment)

    def forward(self, batch: dict) -> dict:
        """real_a, real_b: (N, C, H, W) in [-1, 1] (input and target domain); returns
        fake_b = G(real_a) and, with the identity term, same_b = G(real_b). FastCUT flips
        the inputs horizontally half the time (``flipped``)."""
        real_a, real_b = ((batch["a"], batch["b"]) if self.direction == "a2b"
                          else (batch["b"], batch["a"]))
        inputs = torch.cat([real_a, real_b]) if self.identity else real_a
        flipped = self.flip and bool(torch.rand(()) < 0.5)  # CPU RNG: saved in checkpoints
        fake = self.nets["g"](inputs.flip(3) if flipped else inputs)
        n = real_a.shape[0]
        out = {"real_a": real_a, "real_b": real_b, "fake_b": fake[:n], "flipped": flipped}
        if self.identity:
            out["same_b"] = fake[n:]
        return out

    def objective(self, phase: str, out: dict):
        return self.d_objective(out) if phase == "d" else self.g_objective(out)

    def judge(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["d"](diff_augment(self.augment, x)[0])

    def d_objective(self, out: dict):
        mode = self.loss.gan
        on_real, on_fake = self.judge(out["real_b"]), self.judge(out["fake_b"].detach())
        terms = {"d_real": losses.discriminator_loss(mode, on_real, True),
                 "d_fake": losses.discriminator_loss(mode, on_fake, False),
                 "score_real": losses.realness(mode, on_real),
                 "score_fake": losses.realness(mode, on_fake)}
        total = 0.5 * (terms["d_real"] + terms["d_fake"])
        if mode == "wgan-gp" and self.loss.gp > 0:
            terms["d_gp"] = losses.gradient_penalty(self.judge, out["real_b"],
                                                    out["fake_b"].detach())
            total = total + self.loss.gp * terms["d_gp"]
        return total, {k: v.detach() for k, v in terms.items()}

    def g_objective(self, out: dict):
        """L_G = l_G(D(G(x))) + nce * contrast (with the identity term: the mean of the terms
        on x and on y) + src * L_SRC(x, G(x))."""
        terms = {"g_gan": losses.generator_loss(self.loss.gan, self.judge(out["fake_b"]))}
        codes = self.codes(out["real_a"], out["fake_b"], out["flipped"])
        terms["nce"] = self.contrastive(*codes)
        nce = terms["nce"]
        if self.identity:
            terms["nce_identity"] = self.contrastive(
                *self.codes(out["real_b"], out["same_b"], out["flipped"]))
            nce = 0.5 * (nce + terms["nce_identity"])
        total = terms["g_gan"] + self.weight * nce
        if self.src_weight > 0:
            terms["src"] = torch.stack([losses.relation_consistency(q, k)
                                        for q, k in zip(*codes)]).mean()
            total = total + self.src_weight * terms["src"]
        return total, {k: v.detach() for k, v in terms.items()}

    def codes(self, source: torch.Tensor, output: torch.Tensor, flipped: bool
              ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The heads' codes (N, P, width) of ``output`` (q) and of ``source`` (k, without
        gradient: the targets) at the same sampled locations of each layer. ``flipped``:
        ``output`` was made from the flipped source; its features are flipped back first."""
        g, heads = self.nets["g"], self.nets["heads"]
        feats_q = g.features(output, self.layers)
        if flipped:
            feats_q = [f.flip(3) for f in feats_q]
        selecting = self.opts.queries == "entropy"
        # the codes of x are targets (no gradient); the attention that selects and routes
        # the queries keeps its gradient, as QS-Attn's code does
        with torch.set_grad_enabled(selecting and torch.is_grad_enabled()):
            feats_k = g.features(source, self.layers)
        picks = [selected_attention(k, self.opts.patches)
                 if selecting and layer >= FIRST_BLOCK else
                 torch.randperm(q.shape[2] * q.shape[3])[:self.opts.patches].to(q.device)
                 for layer, q, k in zip(self.layers, feats_q, feats_k)]
        with torch.no_grad():
            codes_k = heads(feats_k, [p.detach() for p in picks])
        return heads(feats_q, picks), codes_k

    def contrastive(self, codes_q: list[torch.Tensor], codes_k: list[torch.Tensor]
                    ) -> torch.Tensor:
        """The contrastive term, averaged over the layers: PatchNCE, or hDCE with weights of
        temperature gamma moving linearly from the first ``method.hardness`` value to the
        second over training (Hneg-SRC's curriculum)."""
        t = self.opts.temperature
        if self.contrast == "patchnce":
            per_layer = [losses.patch_nce(q, k, t) for q, k in zip(codes_q, codes_k)]
        else:
            start, end = self.hardness
            gamma = start + (end - start) * self.progress
            per_layer = [losses.hard_negative_nce(q, k, losses.relation_weights(k, gamma), t)
                         for q, k in zip(codes_q, codes_k)]
        return torch.stack(per_layer).mean()

    @torch.no_grad()
    def sample_columns(self) -> tuple[str, ...]:
        return ("input", "output", "target domain", "G(target): identity")

    def sample_rows(self, batch: dict) -> list[list[torch.Tensor]]:
        """a | G(a) | b | G(b) (the identity mapping G should leave b alone)"""
        a, b = ((batch["a"], batch["b"]) if self.direction == "a2b"
                else (batch["b"], batch["a"]))
        g = self.nets["g"]
        fake_b, same_b = g(a), g(b)
        return [[a[i], fake_b[i], b[i], same_b[i]] for i in range(a.shape[0])]

    def exports(self) -> list[Export]:
        return [Export(self.direction, "g", self.nets["g"], self.g_arch, self.g_kwargs)]
