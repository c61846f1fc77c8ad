"""Adversarial losses and the gradient penalty, as pure functions of logits.

Every function returns a scalar tensor and never calls ``backward()``. ``logits`` are raw
discriminator outputs (no sigmoid), any shape; losses are means over all elements. A list
of logit maps (a multi-scale discriminator) gives the mean of the maps' losses, each scale
weighted alike (pix2pixHD).

Modes, with D(.) the logits, r a real sample and f a generated one:

=========  ==========================================  =============================
mode       discriminator: real term / fake term         generator term
=========  ==========================================  =============================
vanilla    -log sigmoid(D(r)) / -log(1 - sigmoid(D(f)))  -log sigmoid(D(f)) (non-saturating;
           (Goodfellow et al. 2014)                       the pix2pix and CycleGAN choice)
lsgan      (D(r) - 1)^2 / D(f)^2  (Mao et al. 2017)     (D(f) - 1)^2
hinge      max(0, 1 - D(r)) / max(0, 1 + D(f))          -D(f)  (Lim & Ye 2017)
wgan-gp    -D(r) / D(f)  (Gulrajani et al. 2017)        -D(f); plus gradient_penalty for D
=========  ==========================================  =============================
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan-gp")


def _check(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss '{mode}'; choose one of {', '.join(GAN_MODES)}")


def _per_scale(loss):
    """``loss(mode, logits, ...)`` that also takes a list of logit maps: their mean loss."""
    def wrapped(mode: str, logits, *args, **kwargs) -> torch.Tensor:
        if isinstance(logits, (list, tuple)):
            return sum(loss(mode, x, *args, **kwargs) for x in logits) / len(logits)
        return loss(mode, logits, *args, **kwargs)
    wrapped.__doc__, wrapped.__name__ = loss.__doc__, loss.__name__
    return wrapped


@_per_scale
def discriminator_loss(mode: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    """The discriminator's loss for ``logits`` of samples that are real (``real=True``) or
    that it must call fake (generated or mismatched samples). Computed in fp32."""
    _check(mode)
    logits = logits.float()
    if mode == "vanilla":
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return ((logits - 1) ** 2).mean() if real else (logits ** 2).mean()
    if mode == "hinge":
        return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()
    return -logits.mean() if real else logits.mean()


@_per_scale
def generator_loss(mode: str, logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss for the discriminator's ``logits`` on its outputs."""
    _check(mode)
    logits = logits.float()
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    if mode == "lsgan":
        return ((logits - 1) ** 2).mean()
    return -logits.mean()


@_per_scale
def realness(mode: str, logits: torch.Tensor) -> torch.Tensor:
    """How real the discriminator judges samples, for watching training (not a loss; no
    gradient): vanilla, the mean probability sigmoid(D) in [0, 1]; lsgan, the mean output
    (its targets: 1 real, 0 fake); hinge and wgan-gp, the mean logit."""
    _check(mode)
    logits = logits.detach().float()
    return torch.sigmoid(logits).mean() if mode == "vanilla" else logits.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x critic(x)||_2 - 1)^2] at x = eps * real + (1 - eps) * fake,
    eps ~ U(0, 1) per sample (Gulrajani et al. 2017, eq. 3).

    ``real`` and ``fake``: (N, C, H, W). ``critic`` maps such a batch to logits; for a
    conditional discriminator it closes over the condition. The graph is kept so the penalty
    can be back-propagated into the critic's weights. Under autocast the critic runs in fp32
    here: input gradients of a reduced-precision pass would be too coarse (bf16) or could
    overflow (fp16) in the penalty's double backward.
    """
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    with torch.autocast(real.device.type, enabled=False):
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(_summed(critic(mixed)), mixed, create_graph=True)
        norms = grad.float().flatten(1).norm(2, dim=1)
        return ((norms - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor
               ) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, eq. 9 without gamma / 2): E[||grad_y critic(y)||_2^2] at
    the real samples y (N, C, H, W), the logits summed over their map (and scales). The
    graph is kept for the critic's backward; fp32 as :func:`gradient_penalty`."""
    real = real.detach().float()
    with torch.autocast(real.device.type, enabled=False):
        real = real.requires_grad_(True)
        (grad,) = torch.autograd.grad(_summed(critic(real)), real, create_graph=True)
        return grad.float().flatten(1).pow(2).sum(1).mean()


def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """pix2pixHD's discriminator feature-matching loss (Wang et al. 2018, eq. 4): the mean
    over the layers (of every scale) of the mean absolute difference of D's activations on
    the real pair and on the generated pair. ``real`` is a target: no gradient flows into
    it."""
    return sum((f.float() - r.detach().float()).abs().mean()
               for r, f in zip(real, fake)) / len(real)


def _summed(logits) -> torch.Tensor:
    """The sum of a logit map, or of every map of a multi-scale list, in fp32."""
    if isinstance(logits, (list, tuple)):
        return sum(x.float().sum() for x in logits)
    return logits.float().sum()


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference, in fp32."""
    return (x.float() - y.float()).abs().mean()


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the spatial gradients (forward differences along H and
    W) of two (N, C, H, W) images, in fp32: |d_h x - d_h y| + |d_w x - d_w y|, averaged.
    Zero where both are flat or share an edge; it charges an output for texture its target
    has flattened and for an edge it blurs or leaves out."""
    x, y = x.float(), y.float()
    dh = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    dw = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    return dh.abs().mean() + dw.abs().mean()


def patch_nce(q: torch.Tensor, k: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, eq. 2): q, k are (N, P, D) L2-normalised codes of an
    output image and of its input at the same P locations. Each q[n, i] must pick its
    positive k[n, i] out of the codes k[n, j] of the other locations of the same image:

        l(n, i) = -log( exp(q_i . k_i / t) / sum_j exp(q_i . k_j / t) )

    Returns the mean over N * P. ``k`` is a target: no gradient flows into it."""
    n, p, _ = q.shape
    logits = torch.bmm(q, k.detach().transpose(1, 2)) / temperature  # [n, i, j] = q_i . k_j
    target = torch.arange(p, device=q.device).repeat(n)
    return F.cross_entropy(logits.reshape(n * p, p).float(), target)


def _off_diagonal(p: int, device) -> torch.Tensor:
    """(1, P, P) bool: True off the diagonal."""
    return ~torch.eye(p, dtype=torch.bool, device=device)[None]


def relation_weights(k: torch.Tensor, gamma: float) -> torch.Tensor:
    """Hard-negative weights of Hneg-SRC (Jung et al. 2022): k (N, P, D) codes of the
    input; the weight of negative j for query i grows with how alike the input is
    at i and j (its semantic relation), as a von Mises-Fisher-like softmax of temperature
    ``gamma``, scaled so that each row's largest weight is 1 (the diagonal is 0):

        w_ij = softmax_j(k_i . k_j / gamma) / max_j softmax_j(k_i . k_j / gamma),  j != i

    Returns (N, P, P) float32 without gradient. A large gamma weighs all negatives alike;
    a small one keeps the hardest."""
    k = k.detach().float()
    mask = _off_diagonal(k.shape[1], k.device)
    sim = torch.bmm(k, k.transpose(1, 2)).masked_fill(~mask, float("-inf"))
    weights = torch.softmax(sim / gamma, dim=2)
    return weights / weights.amax(dim=2, keepdim=True)


def hard_negative_nce(q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor,
                      temperature: float = 0.07) -> torch.Tensor:
    """The hard-negative decoupled contrastive loss (hDCE) of Hneg-SRC (Jung et al. 2022):
    as :func:`patch_nce`, but the positive is left out of the denominator
    (decoupled contrastive learning, Yeh et al. 2022) and each negative's similarity is
    scaled by its weight w_ij (:func:`relation_weights`):

        l(n, i) = log sum_{j != i} exp( (w_ij q_i . k_j - q_i . k_i) / t )

    q, k (N, P, D) L2-normalised codes of the output and the input; returns the mean over
    N * P. ``k`` is a target: no gradient flows into it."""
    q, k = q.float(), k.detach().float()
    positive = (q * k).sum(dim=2, keepdim=True)                    # (N, P, 1)
    negative = torch.bmm(q, k.transpose(1, 2)) * weights           # (N, P, P)
    logits = (negative - positive) / temperature
    logits = logits.masked_fill(~_off_diagonal(q.shape[1], q.device), float("-inf"))
    return torch.logsumexp(logits, dim=2).mean()


def relation_consistency(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Semantic relation consistency (SRC) of Hneg-SRC (Jung et al. 2022): the
    relation of location i to the others, as a distribution over j, must be the same in the
    output as in the input, measured by the Jensen-Shannon divergence:

        P_i(j) = softmax_j(k_i . k_j),  Q_i(j) = softmax_j(q_i . q_j)
        L_SRC = sum_i JSD(Q_i || P_i)

    q, k (N, P, D) L2-normalised codes of the output and the input; returns the mean over
    N of the sum over the P locations. ``k`` is a target: no gradient flows into it."""
    q, k = q.float(), k.detach().float()
    log_q = torch.log_softmax(torch.bmm(q, q.transpose(1, 2)), dim=2)
    log_p = torch.log_softmax(torch.bmm(k, k.transpose(1, 2)), dim=2)
    log_m = torch.logsumexp(torch.stack([log_q, log_p]), dim=0) - torch.log(
        torch.tensor(2.0, device=q.device))
    jsd = 0.5 * (log_q.exp() * (log_q - log_m) + log_p.exp() * (log_p - log_m))
    return jsd.sum(dim=(1, 2)).mean()
