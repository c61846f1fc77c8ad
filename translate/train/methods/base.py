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
from typing import Any, ClassVar

import torch
from torch import nn

from translate.formats.checkpoint import GeneratorSpec


@dataclass
class Export:
    """A generator to export: ``nets[name]`` maps domain ``direction[0]`` to ``direction[2]``."""
    direction: str  # "a2b" or "b2a"
    name: str
    net: nn.Module
    arch: str
    kwargs: dict

    def spec(self, norm_stats: str) -> GeneratorSpec:
        """Its description, with how batch norm normalises at inference."""
        return GeneratorSpec(self.arch, self.kwargs, self.direction, norm_stats)


# The networks of the unpaired papers (CycleGAN section 4 and appendix 7; CUT section 4):
# ResNet generator, instance norm, no dropout, LSGAN.
UNPAIRED_DEFAULTS: dict[str, dict[str, Any]] = {
    "generator": {"arch": "resnet", "norm": "instance", "dropout": False},
    "discriminator": {"norm": "instance"},
    "loss": {"gan": "lsgan"},
}


@dataclass
class NoOptions:
    """A method without options of its own."""


class Method:
    """A training method. Class attributes describe it to the config and the trainer:

    - ``options``: the dataclass of its own options (the config's ``method`` section), with
      its paper's defaults;
    - ``config_defaults``: defaults it changes in the shared sections, e.g.
      ``{"generator": {"arch": "resnet"}}``; a YAML file or an override wins over them;
    - ``check(config, given)``: cross-field checks, run when the config is loaded.
    """

    name: str = ""
    paired: bool = True  # needs (A, B) pairs; else independent images of each domain
    phases: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = {}
    options: ClassVar[type] = NoOptions
    config_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def check(cls, config, given: set[str]) -> None:
        """Raise :class:`~translate.train.fields.ConfigError` for options that cannot work
        together; ``given``: the option names the user set (the others are defaults)."""

    @classmethod
    def data_notes(cls, config, size: int) -> list[str]:
        """Warnings about a training set of ``size`` samples for this config."""
        return []

    def __init__(self):
        self.nets = nn.ModuleDict()
        # the share of training done before this iteration (step / iterations), set by the
        # trainer before each one; an objective with a curriculum reads it
        self.progress = 0.0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def objective(self, phase: str, outputs: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def sample_rows(self, batch: dict[str, torch.Tensor]) -> list[list[torch.Tensor]]:
        """Rows of images (3, H, W) for a sample grid, generators in inference mode."""
        raise NotImplementedError

    def sample_columns(self) -> tuple[str, ...]:
        """What each column of :meth:`sample_rows` shows, for the grid's header."""
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
