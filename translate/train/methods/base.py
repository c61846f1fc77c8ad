"""What a training method provides to the trainer.

A method owns its networks and its objective, nothing else: the trainer owns optimizers,
schedules, precision, stepping, logging and checkpoints. One iteration is

    outputs = method.forward(batch)                 # generators' forward pass
    for phase in method.phases:                     # e.g. ("d", "g") or ("g", "d")
        total, terms = method.objective(phase, outputs)
        step the optimizer of phase over method.groups[phase]

``objective`` returns the scalar to minimise and a dict of named terms (detached) to log.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Export:
    """A generator to export: ``nets[name]`` maps domain ``direction[0]`` to ``direction[2]``."""
    direction: str  # "a2b" or "b2a"
    name: str
    net: nn.Module
    arch: str
    kwargs: dict


class Method:
    name: str = ""
    paired: bool = True  # needs (A, B) pairs; else independent images of each domain
    phases: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = {}

    def __init__(self):
        self.nets = nn.ModuleDict()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def objective(self, phase: str, outputs: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def sample_rows(self, batch: dict[str, torch.Tensor]) -> list[list[torch.Tensor]]:
        """Rows of images (3, H, W) for a sample grid, generators in inference mode."""
        raise NotImplementedError

    def exports(self) -> list[Export]:
        raise NotImplementedError

    # Method memory that must survive a resume (image pools, earlier targets).
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def parameters_of(self, group: str) -> list[nn.Parameter]:
        return [p for name in self.groups[group] for p in self.nets[name].parameters()]
