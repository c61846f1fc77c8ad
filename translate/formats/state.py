"""The training state (``RUN/checkpoints/latest.pt``, ``best.pt``): one typed record, one
writer (:meth:`TrainingState.write`) and one reader (:meth:`TrainingState.read`).

On disk it is a plain dict of tensors, numbers and strings written with ``torch.save`` and
read with ``torch.load(weights_only=True)``: nothing in it is code, so loading one never
executes anything. Its keys are the fields below plus ``format`` and ``version``; files
written by earlier versions have the same keys (tests/data/legacy_v0).
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.files import atomic_write, write_with
from translate.formats.checkpoint import (CheckpointError, GeneratorSpec, check_finite,
                                          choose_direction)

STATE_FORMAT = "translate-train-state"
STATE_VERSION = 1


@dataclass
class TrainingState:
    """Everything a run needs to continue exactly where it stopped.

    ``nets``: state dict of the method's ``nn.ModuleDict`` (``"<net>.<param>"`` keys);
    ``exports``: direction -> generator description, ``net`` naming its entry in ``nets``;
    ``rng``, ``method``: process 0's random states and method memory (image pools, earlier
    targets); ``replicas``: the same for processes 1.. of a launch (``world_size`` in all);
    ``log``: unwritten metric sums; ``best``: the best periodic-eval score so far;
    ``scaler``: the fp16 gradient scaler's state (None otherwise); ``ema``: the moving
    average of the generators' weights (``train.ema``), keyed like ``nets``, or empty;
    ``health``: what the GAN health monitor has seen (:mod:`translate.train.health`).
    """

    step: int
    config: dict[str, Any]
    nets: dict[str, torch.Tensor]
    exports: dict[str, dict[str, Any]]
    optimizers: dict[str, dict] = field(default_factory=dict)
    schedulers: dict[str, dict] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    world_size: int = 1
    replicas: list[dict[str, Any]] = field(default_factory=list)
    ema: dict[str, torch.Tensor] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.config.get("model", "")

    def to_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "version": STATE_VERSION,
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: Path | str = "checkpoint") -> TrainingState:
        """The state held in ``raw`` (a loaded file); fields it lacks take their defaults."""
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{where}: not a translate training checkpoint", where)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("step", "config", "nets") if k not in raw]
        if missing:
            raise CheckpointError(f"{where}: a training checkpoint without "
                                  f"{', '.join(missing)}", where)
        values = {k: v for k, v in raw.items() if k in known}
        values.setdefault("exports", {})
        return cls(**values)

    def write(self, path: str | Path) -> Path:
        """Write atomically: a kill leaves the previous file or the new one, never a part."""
        raw = self.to_dict()
        return atomic_write(path, lambda tmp: write_with(lambda f: torch.save(raw, f), tmp))

    @classmethod
    def read(cls, path: str | Path, map_location: str | torch.device = "cpu",
             mmap: bool = False) -> TrainingState:
        """The state in ``path``; ``mmap``: tensors are mapped, not read, until used."""
        return cls.from_dict(load_state(path, map_location, mmap), path)

    def generator(self, direction: str) -> GeneratorSpec:
        """The description of the generator exported for ``direction``."""
        return GeneratorSpec.from_entry(direction, self.exports[direction])

    def generator_weights(self, direction: str, raw: bool = False) -> dict[str, torch.Tensor]:
        """The state dict of the generator of ``direction``: its moving average when the
        run kept one, unless ``raw`` asks for the trained weights themselves."""
        prefix = self.exports[direction]["net"] + "."
        source = self.nets if raw or not self.ema else self.ema
        return {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}


def load_state(path: str | Path, map_location: str | torch.device = "cpu",
               mmap: bool = False) -> dict[str, Any]:
    """A training-state file as the plain dict it is on disk, read without unpickling code
    (``weights_only=True``)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):  # torch's text advises the unsafe load
            raise CheckpointError(
                f"{path}: not a loadable training checkpoint: it holds pickled objects other "
                "than tensors, which translate refuses without running them", path) from None
        raise CheckpointError(f"{path}: not a loadable training checkpoint "
                              f"({str(err).splitlines()[0]})", path) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, ...
        raise CheckpointError(f"{path}: not a loadable training checkpoint ({err})",
                              path) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a translate training checkpoint", path)
    return state


def generator_from_state(state: TrainingState | dict[str, Any], direction: str | None,
                         where: Path | str = "checkpoint", raw: bool = False
                         ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a generator held in a training state (or its dict); returns (net, info) like
    :func:`~translate.formats.checkpoint.load_generator`. Its weights are the run's moving
    average when it kept one (``train.ema``), unless ``raw``."""
    if not isinstance(state, TrainingState):
        state = TrainingState.from_dict(state, where)
    if not state.exports:
        raise CheckpointError(f"{where}: holds no generator description", where)
    direction = choose_direction(direction, sorted(state.exports), where)
    spec = state.generator(direction)
    net = spec.build(where)
    weights = "raw" if raw or not state.ema else "ema"
    tensors = state.generator_weights(direction, raw)
    if weights == "ema":
        check_finite(tensors, where, "its weight average (train.ema)",
                     "; the trained weights themselves are kept too (export --raw)")
    else:
        check_finite(tensors, where)
    try:
        net.load_state_dict(tensors)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise CheckpointError(f"{where}: the {weights} weights of its {direction} generator do "
                              f"not fit its description: {detail[:600]}", where) from None
    return net.eval(), spec.info(net, state.model, state.step, state.config,
                                 extra={"weights": weights})
