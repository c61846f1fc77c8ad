"""The run folder (``train.out``) and what training writes into it::

    config.yaml                    the resolved config of the run
    metrics.jsonl                  one JSON object per logged step: step, lr, each loss term
    samples/step_000100.png        sample grids (rows: the method's images, e.g. x | G(x) | y)
    checkpoints/latest.pt          full training state, written atomically
                                   (:class:`~translate.formats.state.TrainingState`)
    generator_a2b.safetensors      exported generator(s), self-describing
    .lock                          held (flock) by the process training into the folder;
                                   it names that process's PID
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

import torch

from translate.devices import Context
from translate.files import atomic_write
from translate.formats.checkpoint import write_generator
from translate.formats.state import TrainingState
from translate.images import grid, save_image
from translate.networks.norm_stats import inference_mode
from translate.train.config import (RESUMABLE_CHANGES, Config, ConfigError, changed_keys,
                                    recorded_config)
from translate.train.methods import Method
from translate.train.schedule import lr_factor


class MetricsLog:
    """Running sums of loss terms, written as means to ``metrics.jsonl`` every log step."""

    def __init__(self, path: Path):
        self.path = path
        self.sums: dict[str, float | torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, float | torch.Tensor]) -> None:
        """Add one iteration's terms. Tensors (on the training device) are summed there in
        float64, so nothing is read back to the host until :meth:`means`."""
        for k, v in terms.items():
            if torch.is_tensor(v):
                v = v.detach().double()
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def _host_sums(self) -> dict[str, float]:
        """The sums as floats: one read from the device for all of them."""
        keys = list(self.sums)
        on_device = [k for k in keys if torch.is_tensor(self.sums[k])]
        values = (torch.stack([self.sums[k] for k in on_device]).tolist()
                  if on_device else [])
        host = dict(zip(on_device, values))
        return {k: host[k] if k in host else float(self.sums[k]) for k in keys}

    def average(self, mean_of) -> None:
        """Replace the sums by ``mean_of(sums)``: their mean over the processes of a launch
        (:meth:`~translate.train.replicas.Replicas.mean_of`), which every process calls at
        the same step. Sums already averaged stay right: averaging again adds nothing."""
        self.sums = dict(mean_of(self.sums))

    def clear(self) -> None:
        """Start a new window of sums without writing (processes other than 0)."""
        self.sums, self.counts = {}, {}

    def means(self) -> dict[str, float]:
        sums = self._host_sums()
        return {k: sums[k] / self.counts[k] for k in sums}

    def write(self, step: int, extra: dict, means: dict[str, float] | None = None) -> dict:
        """Append the means since the last line (``means`` if already read) and ``extra``."""
        row = {"step": step, **(means if means is not None else self.means()), **extra}
        self.append(row)
        self.sums, self.counts = {}, {}
        return row

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (written after the checkpoint we resume from),
        and a line torn by a kill or a full disk (it is not JSON)."""
        if not self.path.exists():
            return
        keep = [line for line in self.path.read_text(errors="replace").splitlines()
                if (row := _parse(line)) is not None and row["step"] <= step]
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(
            "".join(line + "\n" for line in keep)))

    def append(self, row: dict) -> None:
        """Write ``row`` (which has a ``step``) as a line of its own, flushed to the disk."""
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def state(self) -> dict:
        return {"sums": self._host_sums(), "counts": dict(self.counts)}

    def load(self, state: dict) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])


def _parse(line: str) -> dict | None:
    """A metrics line as a dict with a step, or None (blank, torn or foreign)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


class RunLock:
    """An exclusive lock on a run folder: ``.lock``, flock-ed while one process trains into
    the folder, holding that process's PID. The kernel drops the lock when the process dies,
    however it dies, so a killed run never leaves the folder locked."""

    def __init__(self, out: Path):
        self.path = out / ".lock"
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise ConfigError(f"run folder {out} is in use by another training process "
                              f"(PID {holder}); wait for it to finish or stop it, or set "
                              "train.out to a new folder") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            self.file.close()  # closing the descriptor drops the flock


# What training itself writes into a run folder; a folder holding only these (and no
# checkpoint) is a run stopped before its first checkpoint.
RUN_FILES = {".lock", "config.yaml", "metrics.jsonl", "samples", "checkpoints"}


def prepare_run_folder(config: Config, resume: bool, ctx: Context | None = None
                       ) -> tuple[Path, TrainingState | None, RunLock | None]:
    """Lock the run folder and check it against ``resume``; return it, the state to resume
    from (None: start at step 0) and the lock (None on processes other than 0). With
    several processes, process 0 checks and creates the folder and the others only read the
    checkpoint (see :func:`translate.devices.main_first`). A run stopped before its first
    checkpoint starts again from step 0 with ``resume``."""
    ctx = ctx or Context()
    out = Path(config.train.out)
    latest = out / "checkpoints" / "latest.pt"
    if not ctx.is_main:
        if resume and not latest.is_file():
            if (out / "config.yaml").is_file():
                return out, None, None  # process 0 restarts the run from step 0
            raise ConfigError(f"{latest} is not visible to process {ctx.rank}: train.out must "
                              "be on storage that every node reads")
        return out, TrainingState.read(latest) if resume else None, None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"train.out {out} is a file, not a folder; set train.out to a folder")
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out)
    try:
        _remove_partial_writes(out)
        return out, _state_to_resume(config, resume, out, ctx), lock
    except BaseException:
        lock.release()
        raise


def _remove_partial_writes(out: Path) -> None:
    """Temporary files of writes a kill interrupted (``.latest.pt.*.tmp``): nobody else
    writes here while we hold the lock, so none of them is in progress."""
    for folder in (out, out / "checkpoints", out / "samples"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _state_to_resume(config: Config, resume: bool, out: Path, ctx: Context
                     ) -> TrainingState | None:
    latest = out / "checkpoints" / "latest.pt"
    entries = {p.name for p in out.iterdir()} - {".lock"}
    unstarted = not latest.is_file() and entries and entries <= RUN_FILES
    if not resume:
        if unstarted:
            raise ConfigError(f"run folder {out} holds a run stopped before its first "
                              "checkpoint; add --resume to start it again from step 0, or set "
                              "train.out to a new folder")
        if entries:
            raise ConfigError(f"run folder {out} already holds a run; add --resume to continue "
                              "it, or set train.out to a new folder")
        return None
    if unstarted:
        print(f"note: {out} has no checkpoint yet (the run stopped before its first); "
              "starting it again from step 0", file=sys.stderr)
        (out / "metrics.jsonl").unlink(missing_ok=True)
        return None
    if not latest.is_file():
        raise ConfigError(f"nothing to resume: {latest} does not exist")
    return _checked_state(config, TrainingState.read(latest), ctx)


def model_changed(saved: str, asked: str) -> ConfigError:
    """The refusal to resume a run of model ``saved`` as model ``asked``."""
    return ConfigError(f"the run being resumed trains model {saved!r}, not {asked!r}; resume "
                       f"it with model={saved}, or set train.out to a new folder to train a "
                       "new run", "model")


def _checked_state(config: Config, state: TrainingState, ctx: Context) -> TrainingState:
    """``state`` if ``config`` may continue it (only resumable keys changed, the same number
    of processes, steps left to train), else :class:`ConfigError`."""
    saved = recorded_config(state.config)
    if saved.model != config.model:
        raise model_changed(saved.model, config.model)
    bad = [k for k in changed_keys(saved, config) if k not in RESUMABLE_CHANGES]
    if bad:
        raise ConfigError("the config differs from the run being resumed in "
                          + ", ".join(f"{k} ({_get(saved, k)!r} -> {_get(config, k)!r})"
                                      for k in bad)
                          + "; only these may change on resume: "
                          + ", ".join(sorted(RESUMABLE_CHANGES)))
    if state.world_size != ctx.world:
        n = state.world_size
        raise ConfigError(f"the run was trained by {n} process(es) (effective batch "
                          f"{n * config.train.batch_size}) and is resumed by {ctx.world}; "
                          f"resume it with {n} in all (torchrun --nnodes x --nproc_per_node)")
    if state.step >= config.train.iterations:
        raise ConfigError(f"the run already reached step {state.step} of "
                          f"{config.train.iterations}; raise train.iterations to train longer")
    step, lr = state.step, config.train.lr
    before = lr * lr_factor(step, saved.decay_from, saved.train.iterations)
    after = lr * lr_factor(step, config.decay_from, config.train.iterations)
    if before != after:
        print(f"note: the LR schedule now decays from step {config.decay_from} to 0 at step "
              f"{config.train.iterations}: at step {step} the LR goes from {before:.3g} to "
              f"{after:.3g} (set train.decay_from to choose where the decay starts)",
              file=sys.stderr)
    return state


def _get(config: Config, dotted: str):
    obj = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def default_norm_stats(config: Config, processes: int = 1) -> str:
    """Batch norm trained at batch size 1 normalised each image by itself: keep doing so.
    ``processes``: how many processes' batches each batch-norm layer normalised together
    (synchronised batch norm)."""
    if config.generator.norm == "batch" and config.train.batch_size * processes == 1:
        return "image"
    return "running"


def write_samples(method: Method, batch: dict, path: Path, norm_stats: str,
                  step: int | None = None) -> None:
    """The sample grid of ``batch``: one row per image, the method's columns named on top
    with the step."""
    with contextlib.ExitStack() as stack:
        for e in method.exports():
            stack.enter_context(inference_mode(e.net, norm_stats))
        rows = method.sample_rows(batch)
    save_image(grid(rows, columns=method.sample_columns(),
                    title="" if step is None else f"step {step}"), path)


def export_all(method: Method, out: Path, config: Config, step: int,
               norm_stats: str | None = None) -> list[Path]:
    norm_stats = norm_stats or default_norm_stats(config)
    return [write_generator(e.net, e.spec(norm_stats),
                            out / f"generator_{e.direction}.safetensors", method=method.name,
                            step=step, config=config.to_dict())
            for e in method.exports()]
