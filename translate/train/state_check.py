"""Does a training checkpoint fit the run about to continue from it?

Before a resume loads anything, :func:`check_resumable` compares the checkpoint's networks,
weight average and optimizer states with the run the config builds (names, shapes, dtypes)
and checks that every floating-point value in them, and in the method's memory (image
pools, earlier targets), is a finite number. Whatever differs is named in one
:class:`~translate.formats.checkpoint.CheckpointError`, so a damaged or foreign checkpoint
never becomes a traceback deep inside ``load_state_dict``, nor a run that trains on NaN or
exports a shrunken model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from translate.formats.checkpoint import CheckpointError, non_finite
from translate.formats.state import TrainingState

SHOWN = 4  # differences named in the message; the rest are counted


def _kind(value: Any) -> str:
    return "a tensor" if torch.is_tensor(value) else f"a {type(value).__name__}"


def tensors_differ(part: str, saved: Any, expected: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``saved`` (a checkpoint's dict of tensors) from standing in for
    ``expected``: missing or unknown names, other types, shapes or dtypes, non-finite
    values. ``part`` prefixes each finding (``nets``, ``ema``)."""
    if not isinstance(saved, dict):
        return [f"{part} is {_kind(saved)}, not a dict of tensors"]
    found = [f"{part} lacks {k}" for k in expected if k not in saved]
    found += [f"{part} has {k}, which this config's networks do not"
              for k in saved if k not in expected]
    for k, want in expected.items():
        got = saved.get(k)
        if k not in saved:
            continue
        if not torch.is_tensor(got):
            found.append(f"{part}.{k} is {_kind(got)}, not a tensor")
        elif got.shape != want.shape:
            found.append(f"{part}.{k} has shape {tuple(got.shape)}, the config's network "
                         f"{tuple(want.shape)}")
        elif got.dtype != want.dtype:
            found.append(f"{part}.{k} is {got.dtype}, the config's network {want.dtype}")
    return found + [f"{part}.{k} holds NaN or infinity" for k in non_finite(saved)]


def optimizer_differs(group: str, saved: Any, optimizer: torch.optim.Optimizer) -> list[str]:
    """What keeps ``saved`` from being ``optimizer``'s state: its parameter groups, their
    sizes, and per-parameter tensors of the parameters' shapes holding finite values."""
    where = f"optimizers.{group}"
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
            or not isinstance(saved.get("param_groups"), list):
        return [f"{where} is not an optimizer state (a dict of state and param_groups)"]
    ours = optimizer.param_groups
    if len(saved["param_groups"]) != len(ours):
        return [f"{where} has {len(saved['param_groups'])} parameter group(s), the config's "
                f"optimizer {len(ours)}"]
    params = [p for g in ours for p in g["params"]]
    sizes = [len(g.get("params", ())) if isinstance(g, dict) else -1
             for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in ours]:
        return [f"{where} holds {sum(sizes)} parameters, the config's networks {len(params)}"]
    found = []
    for index, entry in saved["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) \
                or not isinstance(entry, dict):
            found.append(f"{where}.state has an entry {str(index)[:20]!r} for no parameter")
            continue
        shape = params[index].shape
        for name, value in entry.items():
            if torch.is_tensor(value) and value.dim() and value.shape != shape:
                found.append(f"{where}.state[{index}].{name} has shape {tuple(value.shape)}, "
                             f"its parameter {tuple(shape)}")
        found += [f"{where}.state[{index}].{name} holds NaN or infinity"
                  for name in non_finite(entry)]
    return found


def memory_not_finite(part: str, value: Any) -> list[str]:
    """The tensors in a nested dict/list/tuple (method memory) that hold NaN or infinity."""
    if torch.is_tensor(value):
        return [part] if non_finite({part: value}) else []
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in memory_not_finite(f"{part}.{k}", v)]
    if isinstance(value, (list, tuple)):
        return [x for i, v in enumerate(value) for x in memory_not_finite(f"{part}[{i}]", v)]
    return []


def memory_differs(state: TrainingState, fresh: dict) -> list[str]:
    """The method memory of every process must have the names the config's method keeps
    (its pools, its earlier targets)."""
    memories = [state.method] + [r.get("method") if isinstance(r, dict) else r
                                 for r in state.replicas]
    want = sorted(fresh)
    for memory in memories:
        if not isinstance(memory, dict) or sorted(memory) != want:
            got = sorted(memory) if isinstance(memory, dict) else _kind(memory)
            return [f"the method memory holds {got}, the config's method keeps {want}"]
    return []


def check_resumable(state: TrainingState, run, where: Path) -> None:
    """:class:`CheckpointError` naming what in ``state`` does not fit ``run`` (a
    :class:`~translate.train.loop.Run` built from the config), before anything is loaded."""
    found = tensors_differ("nets", state.nets, run.method.nets.state_dict())
    if run.ema is not None and state.ema:
        found += tensors_differ("ema", state.ema, run.ema.state_dict())
    for group, optimizer in run.optimizers.items():
        if not isinstance(state.optimizers, dict) or group not in state.optimizers:
            found.append(f"optimizers lacks {group}")
        else:
            found += optimizer_differs(group, state.optimizers[group], optimizer)
    for group in run.schedulers:
        if not isinstance(state.schedulers, dict) \
                or not isinstance(state.schedulers.get(group), dict):
            found.append(f"schedulers lacks {group}")
    found += memory_differs(state, run.method.state_dict())
    found += memory_not_finite("method", state.method)
    found += memory_not_finite("replicas", state.replicas)
    if found:
        more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise CheckpointError(f"{where} does not fit the run this config builds, so it cannot "
                              f"be resumed: {'; '.join(found[:SHOWN])}{more}. Resume it with "
                              "the config it was trained with, or set train.out to a new "
                              "folder", where)
