"""An exponential moving average of the generators' weights (``train.ema``).

After every optimizer step ``t`` (1, 2, ...) each floating-point tensor of an exported
generator's state (weights and batch-norm statistics) is averaged into its shadow copy::

    d_t = min(decay, (1 + t) / (10 + t))
    shadow_t = d_t * shadow_(t-1) + (1 - d_t) * theta_t

The warm-up of ``d_t`` keeps the average from holding on to the random initial weights
(the rule of TensorFlow's ExponentialMovingAverage with ``num_updates``); integer buffers are
copied. The shadows are saved in checkpoints (so a resumed run continues the same average),
and by default they are the weights of sample grids, periodic evaluations and exports
(:meth:`GeneratorEMA.applied`). Every process of a launch holds identical weights, so each
keeps the same average without communicating.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class GeneratorEMA:
    """Shadow copies of ``nets[name]`` for each ``name`` in ``names``, averaged with
    ``decay`` (0 < decay < 1)."""

    def __init__(self, nets: nn.ModuleDict, names: list[str], decay: float):
        self.nets, self.names, self.decay = nets, names, decay
        self.shadow = {f"{n}.{k}": v.detach().clone()
                       for n in names for k, v in nets[n].state_dict().items()}

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(live tensor, its shadow) for every entry of the generators' state."""
        return [(v, self.shadow[f"{n}.{k}"])
                for n in self.names for k, v in self.nets[n].state_dict().items()]

    def factor(self, step: int) -> float:
        """d_t for optimizer step ``step`` (1-based)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Average the weights after optimizer step ``step`` into the shadows."""
        pairs = self._pairs()
        floats = [(v, s) for v, s in pairs if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([s for _, s in floats], [v.to(s.dtype) for v, s in floats],
                                 1.0 - self.factor(step))
        for v, s in pairs:
            if not v.is_floating_point():
                s.copy_(v)

    @contextlib.contextmanager
    def applied(self):
        """The averaged weights in the live generators for the block, the trained ones
        back afterwards."""
        pairs = self._pairs()
        with torch.no_grad():
            kept = [v.clone() for v, _ in pairs]
            for v, s in pairs:
                v.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for (v, _), k in zip(pairs, kept):
                    v.copy_(k)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadows, keyed like the method's ``nets`` state (``"<net>.<param>"``)."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"the checkpoint's weight average lacks {', '.join(missing[:3])}")
        for k, s in self.shadow.items():
            s.copy_(state[k])

    def to(self, device: torch.device) -> GeneratorEMA:
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self
