"""Optimizers and the learning-rate schedule, which the trainer owns: one Adam per optimizer
group of the method; the rate constant, then decaying linearly to 0 (pix2pix/CycleGAN)."""

from __future__ import annotations

import torch

from translate.train.config import Config
from translate.train.methods import Method


def lr_factor(step: int, decay_from: int, iterations: int) -> float:
    """Constant, then linear decay to 0 at ``iterations`` (pix2pix/CycleGAN schedule)."""
    if step < decay_from:
        return 1.0
    return max(0.0, 1.0 - (step - decay_from) / max(1, iterations - decay_from))


def make_optimizers(method: Method, config: Config, fused: bool = False
                    ) -> tuple[dict, dict]:
    """One Adam per optimizer group of the method, each with the LR schedule; ``fused``:
    one fused kernel per step (CUDA)."""
    t, decay_from = config.train, config.decay_from
    optimizers = {g: torch.optim.Adam(method.parameters_of(g), lr=t.lr,
                                      betas=(t.beta1, t.beta2), fused=fused or None)
                  for g in method.groups}
    schedulers = {g: torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, decay_from, t.iterations)) for g, opt in optimizers.items()}
    return optimizers, schedulers


def set_learning_rate(optimizers: dict, schedulers: dict, lr: float) -> None:
    """Give restored optimizers and schedules a new base rate ``lr`` (``train.lr`` changed
    on resume): the schedule's factor at the current step stays, the rate it multiplies
    changes, for this step and every later one."""
    for group, opt in optimizers.items():
        schedule = schedulers[group]
        factors = [g["lr"] / base if base else 1.0
                   for g, base in zip(opt.param_groups, schedule.base_lrs)]
        schedule.base_lrs = [lr] * len(opt.param_groups)
        for g, factor in zip(opt.param_groups, factors):
            g["initial_lr"], g["lr"] = lr, lr * factor
