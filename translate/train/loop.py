"""The training loop. It owns optimizers, the learning-rate schedule, precision, stepping,
logging, sample grids, checkpoints, resume and interruption; the method owns the objective.

``train(config)`` runs these named steps (:class:`Run`)::

    Run(config, resume)   device and precision resolved once, processes joined, the run folder
                          checked (translate.train.run_folder), data, method, optimizers
    run.restore()         weights, optimizers, schedules, method memory, RNGs and the metric
                          sums of the checkpoint resumed from
    run.announce()        config.yaml of the run; the process layout under torchrun
    run.loop(progress)    iterations until train.iterations, or a checkpoint and
                          TrainingInterrupted on SIGINT/SIGTERM
    run.finish(step)      replicas verified, generators exported

With ``train.ema`` the trainer also keeps a moving average of the generators' weights
(:mod:`translate.train.ema`), which samples, evaluations and exports use.

Resume restores networks, optimizers, schedules, method memory (pools, earlier targets), the
weight average, RNG states and the position in the data stream, so a resumed run continues
with exactly the batches, dropout masks and losses of an uninterrupted one (bit for bit on
the CPU).

Under torchrun, one process per GPU trains data-parallel replicas and process 0 alone writes
the run folder: see :mod:`translate.train.replicas`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.data.datasets import (PairedDataset, StreamSampler, UnpairedDataset,
                                     domain_items, fixed_batch, paired_items, resolve_layout,
                                     worker_init)
from translate.devices import (cores_per_process, cpu_bf16_units, is_main_process,
                               main_first, pick_device, resolve_precision, stop_loader)
from translate.devices import start as join_processes
from translate.errors import UserError
from translate.formats.checkpoint import CheckpointError, non_finite
from translate.formats.state import TrainingState
from translate.train.augment import DecodeOnly
from translate.train.board import Board, check_available
from translate.train.config import Config
from translate.train.ema import GeneratorEMA
from translate.train.health import (CHECK_EVERY, HealthEvent, HealthMonitor,
                                    output_diversity)
from translate.train.methods import METHODS, Method, build_method
from translate.train.periodic_eval import PeriodicEval
from translate.train.precision import Precision, TrainSpeed
from translate.train.replicas import Replicas
from translate.train.run_folder import (MetricsLog, default_norm_stats, export_all,
                                        prepare_run_folder, write_samples)
from translate.train.schedule import lr_factor, make_optimizers, set_learning_rate
from translate.train.state_check import check_resumable

__all__ = ["Run", "TrainingCollapsed", "TrainingDiverged", "TrainingInterrupted",
           "build_dataset", "lr_factor",
           "make_optimizers", "train", "train_step"]


class TrainingDiverged(UserError):
    """A loss term or a weight stopped being a finite number; nothing was saved after it."""

    def __init__(self, step: int, what: str, config: Config):
        super().__init__(
            f"training diverged at step {step}: {what} is not a finite number. Nothing was "
            f"exported and no checkpoint was written after it (the run folder keeps the last "
            f"good one). {restart_advice(config)}")
        self.step = step


def restart_advice(config: Config) -> str:
    """What to do after a run blew up: a new run with a lower learning rate."""
    fp16 = ", or train.precision=fp32" if config.train.precision == "fp16" else ""
    return (f"Start a new run with a lower learning rate (train.lr={config.train.lr / 10:g}, "
            f"a tenth of now{fp16}) and a new train.out")


class TrainingCollapsed(UserError):
    """train.on_collapse=stop and the generator collapsed; the last checkpoint was kept."""

    def __init__(self, event, out: Path, checkpoint_step: int | None):
        if checkpoint_step is None:
            kept = "no checkpoint had been written yet"
        else:
            since = event.figures.get("since_step")
            when = ("before" if since is not None and checkpoint_step < since
                    else "after")
            what = {"exploding": "the losses blew up"}.get(event.name,
                                                           f"the {event.name} was first seen")
            kept = (f"the last checkpoint, {out / 'checkpoints' / 'latest.pt'}, is from step "
                    f"{checkpoint_step}, {when} {what} (step {since})")
        super().__init__(f"training stopped at step {event.step} (train.on_collapse=stop): "
                         f"{event.message} Nothing was exported; {kept}. {event.advice}")
        self.step, self.event = event.step, event


class TrainingInterrupted(Exception):
    """Raised after a checkpoint was saved because of SIGINT or SIGTERM."""

    def __init__(self, step: int, signum: int):
        super().__init__(f"interrupted at step {step}; checkpoint saved")
        self.step, self.signum = step, signum


def build_dataset(config: Config, split: str = "train"):
    """The dataset of a split for the configured method: pairs for pix2pix, independent
    images of both domains for CycleGAN. None when a test split is absent."""
    d = config.data
    layout = resolve_layout(d.root, d.layout)
    sizes = (d.load_size, d.crop_size, d.flip, d.channels_a, d.channels_b)
    limit = int(d.max_megapixels * 1e6)
    if METHODS[config.model].paired:
        items = paired_items(d.root, layout, split, max_pixels=limit)
        return PairedDataset(items, *sizes) if items else None
    a, b = domain_items(d.root, layout, split, max_pixels=limit)
    return UnpairedDataset(a, b, *sizes) if a and b else None


def to_device(obj, device: torch.device):
    """Move the tensors of a nested dict/list to ``device``."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    return obj


@contextlib.contextmanager
def stop_on_signals():
    """Turn the first SIGINT/SIGTERM into a flag the loop checks after each iteration; a
    second SIGINT interrupts at once."""
    flag = {"signum": 0}
    if not _in_main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signum"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signum"] = signum
        print(f"\n{signal.Signals(signum).name}: finishing this iteration, saving a "
              "checkpoint, then stopping (press Ctrl-C again to stop at once)",
              file=sys.stderr)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def gradient_norm(params) -> torch.Tensor:
    """The L2 norm of all the gradients of ``params``, as a 0-dim tensor on their device."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def train_step(method: Method, optimizers: dict, batch: dict,
               precision: Precision | None = None, average=None,
               clip: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """One iteration: generators' forward, then each phase's objective and optimizer step.
    While a phase steps, the other groups' parameters need no gradients. ``precision``
    (default fp32) runs forward passes and objectives under autocast; with fp16 its scaler
    scales every phase's loss, steps each optimizer and is updated once per iteration.
    ``average(params)`` (several processes) replaces the phase's gradients by their mean over
    the processes between backward and step. ``clip`` ({phase: max norm}, 0 or missing: off)
    scales a phase's gradient down to that L2 norm before its step. Returns the logged terms
    (and each phase's gradient norm before clipping, ``grad_norm_<phase>``, except in fp16)
    as 0-dim float32 tensors on the device: nothing is read back to the host here."""
    precision, clip = precision or Precision(), clip or {}
    with precision.autocast():
        outputs = method.forward(batch)
    logged: dict[str, torch.Tensor] = {}
    for phase in method.phases:
        for group in method.groups:
            for p in method.parameters_of(group):
                p.requires_grad_(group == phase)
        with precision.autocast():
            total, terms = method.objective(phase, outputs)
        optimizers[phase].zero_grad(set_to_none=True)
        precision.backward(total)
        if average is not None:
            average(method.parameters_of(phase))
        norm = (precision.clip(optimizers[phase], method.parameters_of(phase), clip[phase])
                if clip.get(phase) else None)
        # fp16: scaled gradients, or unscaled ones that overflowed on a step the scaler skips
        if not precision.scaler.is_enabled():
            logged[f"grad_norm_{phase}"] = (norm if norm is not None
                                            else gradient_norm(method.parameters_of(phase)))
        precision.step(optimizers[phase])
        logged.update(terms)
        logged[f"{phase}_total"] = total.detach()
    precision.update()
    for group in method.groups:
        for p in method.parameters_of(group):
            p.requires_grad_(True)
    return {k: v.detach().float().reshape(()) for k, v in logged.items()}


def resolved(config: Config, device: torch.device) -> Config:
    """The config a run records: ``train.precision`` resolved for ``device`` (``auto`` ->
    bf16 or fp32, see :func:`~translate.devices.resolve_precision`). A copy: the caller's
    config is left as it was."""
    asked = config.train.precision
    precision = resolve_precision(asked, device)
    units = cpu_bf16_units() if asked == "auto" and device.type == "cpu" else None
    if units and is_main_process():
        print(f"train.precision=auto: fp32 on this CPU; it has bf16 units ({units}) "
              "and train.precision=bf16 may train faster, at some cost in quality "
              "(docs/benchmarks.md)", file=sys.stderr)
    return dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                 precision=precision))


def loader_workers(asked: int | None) -> int:
    """``data.workers``, or by default one loader process per core of this process's share
    (:func:`~translate.devices.cores_per_process`) less one for training itself, at least 1
    and at most 8."""
    if asked is not None:
        return asked
    return max(1, min(8, cores_per_process() - 1))


def make_loader(dataset, config: Config, device: torch.device, sampler, workers: int
                ) -> DataLoader:
    """The training batches of ``dataset`` in ``sampler``'s order; pinned for CUDA, and
    batched as lists for :class:`DecodeOnly` (its images keep their own sizes)."""
    return DataLoader(
        dataset, batch_size=config.train.batch_size, sampler=sampler, num_workers=workers,
        worker_init_fn=worker_init, pin_memory=device.type == "cuda",
        collate_fn=dataset.collate if isinstance(dataset, DecodeOnly) else None,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(config.train.seed))


class Run:
    """One training run, set up for its first or its resumed iteration (see the module
    docstring for the steps). ``config`` is the resolved copy the run records."""

    def __init__(self, config: Config, resume: bool = False):
        asked = pick_device(config.train.device, "train.device")
        self.config = config = resolved(config, asked)
        t = config.train
        if t.tensorboard:
            check_available()  # before anything is written
        self.ctx = join_processes(asked)  # torchrun: one process per GPU
        self.out, self.state, self.lock = main_first(self.ctx, prepare_run_folder, config,
                                                     resume, self.ctx)
        self.device = self.ctx.device
        torch.manual_seed(t.seed)
        random.seed(t.seed)
        np.random.seed(t.seed)
        try:
            self.dataset, self.preview = self._data()
            self._networks()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Close the TensorBoard writer; let other processes train into the run folder
        (process 0 held its lock)."""
        if getattr(self, "board", None) is not None:  # set once the networks are built
            self.board.close()
        if self.lock is not None:
            self.lock.release()

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    def _data(self):
        """The training set (decode-only with data.gpu_augment) and the fixed preview batch
        of the sample grids (test split if there is one), on the device."""
        config = self.config
        dataset = build_dataset(config, "train")
        if self.is_main:
            for note in METHODS[config.model].data_notes(config, len(dataset)):
                print(f"warning: {note}", file=sys.stderr)
        if config.data.gpu_augment:  # CUDA decodes the JPEG files too
            dataset = DecodeOnly(dataset, jpeg=self.device.type == "cuda")
        preview = fixed_batch(build_dataset(config, "test") or dataset, config.train.samples)
        return dataset, {k: v.to(self.device) for k, v in preview.items()}

    def _networks(self) -> None:
        """The method's networks on the device, kept identical across processes; speed
        options; optimizers and schedules; the metrics log and the periodic evaluation."""
        config, t = self.config, self.config.train
        self.method = build_method(config)
        self.method.nets.to(self.device)
        self.replicas = Replicas(self.ctx, self.method.nets)  # process 0's weights everywhere
        self.replicas.seed(t.seed)
        self.speed = TrainSpeed(config, self.device)
        self.speed.prepare(self.method)
        self.optimizers, self.schedulers = make_optimizers(
            self.method, config, fused=self.device.type == "cuda")
        self.ema = (GeneratorEMA(self.method.nets, [e.name for e in self.method.exports()],
                                 t.ema) if t.ema else None)
        self.log = MetricsLog(self.out / "metrics.jsonl")
        self.norm_stats = default_norm_stats(config, self.replicas.normalised_batch_factor)
        self.evaluator = PeriodicEval(config, self.device, self.norm_stats, main=self.is_main)
        self.health = HealthMonitor(config.loss.gan, t.iterations, t.lr, str(self.out))
        self.board: Board | None = None  # TensorBoard (train.tensorboard), process 0
        self.logged_step = 0  # of the last metrics line
        self.checkpoint_step: int | None = None  # of the last latest.pt written or resumed

    def restore(self) -> int:
        """Continue from the checkpoint found by ``Run`` (if any); returns the first step."""
        state = self.state
        if state is None:
            return 0
        where = self.out / "checkpoints" / "latest.pt"
        check_resumable(state, self, where)  # names, shapes, dtypes, finite values
        self.method.nets.load_state_dict(state.nets)
        try:
            for g, opt in self.optimizers.items():
                opt.load_state_dict(state.optimizers[g])
                self.schedulers[g].load_state_dict(state.schedulers[g])
            own = self.replicas.own_state(state)  # this process's RNGs and method memory
            self.method.load_state_dict(to_device(own["method"], self.device))
            set_rng_state(own["rng"], self.device)
            self.log.load(state.log)
            self.evaluator.load(state.best)
            self.speed.precision.load_state_dict(state.scaler)
            self.health.load(state.health)
            self.checkpoint_step = state.step
            saved_lr = state.config.get("train", {}).get("lr")
            if saved_lr is not None and saved_lr != self.config.train.lr:
                set_learning_rate(self.optimizers, self.schedulers, self.config.train.lr)
                if self.is_main:
                    print(f"note: train.lr is now {self.config.train.lr:g} (was {saved_lr:g}); "
                          "the schedule goes on from here", file=sys.stderr)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError,
                RuntimeError) as err:  # what the loaders raise for state of another shape
            raise CheckpointError(f"{where}: its optimizer, method memory or random-number "
                                  f"state does not fit this run ({type(err).__name__}: "
                                  f"{str(err)[:200]}); resume it with the config it was "
                                  "trained with, or set train.out to a new folder",
                                  where) from None
        if self.ema is not None and state.ema:
            self.ema.load_state_dict(state.ema)
        elif self.ema is not None:  # a run from before train.ema existed: it goes on without
            self.ema = None
            self.config = dataclasses.replace(self.config, train=dataclasses.replace(
                self.config.train, ema=0.0))
            if self.is_main:
                print("note: this run was started without a weight average (train.ema); it "
                      "continues without one", file=sys.stderr)
        if self.is_main:
            self.log.truncate_after(state.step)
            print(f"resuming {self.out} at step {state.step}", file=sys.stderr)
        return state.step

    def announce(self, start: int = 0) -> None:
        """Write the run's config.yaml and open TensorBoard's writer (continuing after
        ``start``); under torchrun, say how the batch is split."""
        t, ctx = self.config.train, self.ctx
        if ctx.is_main:
            (self.out / "config.yaml").write_text(self.config.to_yaml())
        if ctx.is_main and t.tensorboard:
            self.board = Board(self.out, start, self.config.to_yaml())
        self.logged_step = start
        if ctx.is_main and ctx.distributed:
            print(f"{ctx.world} processes ({ctx.backend}, {self.device.type}): batch "
                  f"{t.batch_size} per process, effective batch {t.batch_size * ctx.world}",
                  file=sys.stderr)

    def averaged(self):
        """A context in which the generators hold their moving average (train.ema), the
        weights samples, evaluations and exports use; a no-op without one."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def check_weights(self, step: int) -> None:
        """:class:`TrainingDiverged` unless every weight, and every value of the weight
        average that samples and exports use, is a finite number (one read for all)."""
        tensors = {f"weight {k}": p for k, p in self.method.nets.named_parameters()}
        if self.ema is not None:
            tensors.update({f"weight average {k}": v for k, v in self.ema.state_dict().items()})
        bad = non_finite(tensors)
        if bad:
            self.diverged(step, f"the {bad[0]}")

    def checkpoint(self, step: int, name: str = "latest.pt") -> None:
        """Every process's state into ``checkpoints/<name>``, written by process 0 (the
        others wait until the file is complete); never NaN weights."""
        self.check_weights(step)
        self.log.average(self.replicas.mean_of)  # the sums saved are every process's mean
        method, device = self.method, self.device
        others = self.replicas.gather({"rng": rng_state(device), "method": method.state_dict()})
        if not self.is_main:
            return self.replicas.barrier()
        if self.board is not None:
            self.board.flush()
        TrainingState(
            step=step, config=self.config.to_dict(), nets=method.nets.state_dict(),
            exports={e.direction: e.spec(self.norm_stats).entry(e.name)
                     for e in method.exports()},
            optimizers={g: o.state_dict() for g, o in self.optimizers.items()},
            schedulers={g: s.state_dict() for g, s in self.schedulers.items()},
            method=method.state_dict(), rng=rng_state(device), log=self.log.state(),
            best=self.evaluator.state(), scaler=self.speed.precision.state_dict(),
            world_size=self.ctx.world, replicas=others,
            ema=self.ema.state_dict() if self.ema is not None else {},
            health=self.health.state(),
        ).write(self.out / "checkpoints" / name)
        if name == "latest.pt":
            self.checkpoint_step = step
        self.replicas.barrier()

    def loader(self, start: int) -> DataLoader:
        """Batches from sample-stream position ``start`` on (this process's share)."""
        t, ctx = self.config.train, self.ctx
        sampler = StreamSampler(len(self.dataset), t.seed, start=start * t.batch_size
                                * ctx.world, rank=ctx.rank, world=ctx.world)
        return make_loader(self.dataset, self.config, self.device, sampler,
                           loader_workers(self.config.data.workers))

    def loop(self, start: int, progress: bool = True) -> int:
        """Iterate from ``start`` to ``train.iterations``; returns the last step. On
        SIGINT/SIGTERM: a checkpoint, then :class:`TrainingInterrupted`. The progress bar
        is closed however the loop ends, so what is said next starts on its own line."""
        t = self.config.train
        self.method.nets.train()
        self.bar = bar = tqdm(total=t.iterations, initial=start, dynamic_ncols=True,
                              disable=not (progress and self.is_main), unit="it",
                              desc=f"{self.config.model} {self.out.name}", file=sys.stderr)
        with bar:
            return self._iterate(start, bar)

    def _iterate(self, start: int, bar: tqdm) -> int:
        batches, step, self.tic = iter(self.loader(start)), start, time.perf_counter()
        try:
            return self._steps(batches, step, bar)
        finally:
            stop_loader(batches)

    def _steps(self, batches, step: int, bar: tqdm) -> int:
        t = self.config.train
        with stop_on_signals() as stop:
            while step < t.iterations:
                self.method.progress = step / t.iterations
                terms = train_step(self.method, self.optimizers,
                                   self.speed.batch(next(batches)), self.speed.precision,
                                   self.replicas.average_gradients,
                                   {"g": t.clip_g, "d": t.clip_d})
                for phase in self.method.phases:  # the groups that were stepped
                    self.schedulers[phase].step()
                step += 1
                if self.ema is not None:
                    self.ema.update(step)
                terms, signum = self.replicas.finish_step(terms, stop["signum"])
                self.log.add(terms)
                bar.update(1)
                self.after_step(step, signum)
                if signum and step < t.iterations:
                    raise TrainingInterrupted(step, signum)
        return step

    def after_step(self, step: int, signum: int) -> None:
        """What is due after ``step``: the health checks (every CHECK_EVERY iterations) and
        a metrics line, a sample grid, an evaluation (and ``best.pt``), a checkpoint (also
        the last step's and an interrupted run's)."""
        t, main = self.config.train, self.is_main
        logged = step % t.log_every == 0 or step == t.iterations
        if logged or step % CHECK_EVERY == 0 or step == 1:
            if logged:
                self.log.average(self.replicas.mean_of)  # every process: one all-reduce
                if not main:
                    self.log.clear()
            verdict = self.watch(step, logged) if main else None
            self.act_on(verdict, step)
        if main and t.sample_every and step % t.sample_every == 0:
            grid = self.out / "samples" / f"step_{step:06d}.png"
            with self.averaged():
                write_samples(self.method, self.preview, grid, self.norm_stats, step)
            if self.board is not None:
                self.board.samples(step, grid)
        if self.evaluator.due(step):
            with self.averaged():
                row, improved = self.evaluator.run(self.method, step) if main else ({}, False)
            if main:
                self.log.append(row)
                if self.board is not None:
                    self.board.evaluation(step, row)
                self.report(self.health.observe_eval(step, row, self.evaluator.metric))
            if self.replicas.main_decides(improved):
                self.checkpoint(step, "best.pt")
        if step % t.checkpoint_every == 0 or step == t.iterations or signum:
            self.checkpoint(step)

    def watch(self, step: int, logged: bool) -> tuple[str, str | HealthEvent] | None:
        """Process 0: read the loss terms' means so far (one read from the device), check
        them, and at a log step write the metrics line and judge the outputs. Returns
        ("diverged", what) for a non-finite term, ("stop", event) for a collapse or an
        explosion under train.on_collapse=stop, else None."""
        means = self.log.means()
        bad = next((k for k, v in means.items() if not math.isfinite(v)), None)
        if bad is not None:
            return "diverged", f"the loss term {bad}"
        events = self.health.observe_losses(step, means)
        if logged:
            self.write_metrics(step, means)
            ratios = output_diversity(self.method, self.preview, self.norm_stats)
            events = self.health.observe(step, means, ratios) + events
        self.report(events)
        alarm = self.health.alarm
        if alarm is not None and self.config.train.on_collapse == "stop":
            return "stop", alarm
        return None

    def act_on(self, verdict: tuple[str, str | HealthEvent] | None, step: int) -> None:
        """Every process: follow process 0's verdict (:meth:`watch`): raise
        :class:`TrainingDiverged` or :class:`TrainingCollapsed`, or go on."""
        kinds = (None, "diverged", "stop")
        kind = kinds[self.replicas.main_says(kinds.index(verdict[0] if verdict else None))]
        if kind == "diverged":
            self.diverged(step, verdict[1] if verdict else "a loss term (on process 0)")
        if kind == "stop":
            event = verdict[1] if verdict else HealthEvent("collapse", step, "", "")
            if self.is_main:
                self.log.append({"step": step, "event": "stopped", "cause": event.name,
                                 "message": f"training stopped (train.on_collapse=stop) "
                                            f"on {event.name}", "advice": event.advice})
            raise TrainingCollapsed(event, self.out, self.checkpoint_step)

    def write_metrics(self, step: int, means: dict[str, float]) -> None:
        """Process 0 at a log step: the metrics line (and TensorBoard's), speed, the bar."""
        now = time.perf_counter()
        lr = self.optimizers[self.method.phases[0]].param_groups[0]["lr"]
        row = self.log.write(step, {"lr": lr, "seconds": round(now - self.tic, 3)}, means)
        if self.board is not None:
            self.board.metrics(step, row, (step - self.logged_step) / max(now - self.tic, 1e-9))
        self.tic, self.logged_step = now, step
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                              if k.endswith("_total") or k in ("g_l1",)})

    def report(self, events: list[HealthEvent]) -> None:
        """Each new health event as a metrics.jsonl line and a message on stderr."""
        for event in events:
            self.log.append(event.row())
            if self.board is not None:
                self.board.event(event.row())
            tqdm.write(f"warning: {event.text()}", file=sys.stderr)

    def diverged(self, step: int, what: str) -> None:
        """Log the ``diverged`` event, then raise :class:`TrainingDiverged`."""
        error = TrainingDiverged(step, what, self.config)
        if self.is_main:
            self.log.append(HealthEvent("diverged", step, f"{what} is not a finite number.",
                                        restart_advice(self.config) + ".").row())
        raise error

    def finish(self, step: int) -> Path:
        """Check the replicas agree bit for bit, export the generators (process 0), wait
        for every process; the run folder."""
        self.replicas.verify()
        self.check_weights(step)
        if self.is_main:
            with self.averaged():
                paths = export_all(self.method, self.out, self.config, step, self.norm_stats)
            print("exported " + ", ".join(str(p) for p in paths), file=sys.stderr)
        # every process leaves together: one that tears its process group down while
        # another is still exporting can abort in gloo's threads at exit
        self.replicas.barrier()
        return self.out


def train(config: Config, resume: bool = False, progress: bool = True) -> Path:
    """Train ``config`` into its run folder (``train.out``); returns the folder.

    Raises :class:`TrainingInterrupted` after saving a checkpoint on SIGINT/SIGTERM.
    """
    run = Run(config, resume)
    try:
        start = run.restore()
        run.announce(start)
        return run.finish(run.loop(start, progress))
    finally:
        run.release()
