"""The training loop. It owns optimizers, the learning-rate schedule, stepping, logging,
sample grids, checkpoints, resume and interruption; the method owns the objective.

Run folder (``train.out``)::

    config.yaml                    the resolved config of the run
    metrics.jsonl                  one JSON object per logged step: step, lr, each loss term
    samples/step_000100.png        sample grids (rows: the method's images, e.g. x | G(x) | y)
    checkpoints/latest.pt          full training state, written atomically
    generator_a2b.safetensors      exported generator(s), self-describing

Resume restores networks, optimizers, schedules, method memory (pools, earlier targets), RNG
states and the position in the data stream, so a resumed run continues with exactly the
batches, dropout masks and losses of an uninterrupted one (bit for bit on the CPU).

Under torchrun, one process per GPU trains data-parallel replicas and process 0 alone writes
the run folder: see :mod:`translate.train.replicas`.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.formats.checkpoint import STATE_FORMAT, export_generator, load_state, save_state
from translate.train.config import RESUMABLE_CHANGES, Config, ConfigError, changed_keys, config_from_dict
from translate.data.datasets import (PairedDataset, StreamSampler, UnpairedDataset, domain_items, fixed_batch,
                   paired_items, resolve_layout, worker_init)
from translate.devices import Context, main_first, pick_device
from translate.devices import start as join_processes
from translate.train.replicas import Replicas
from translate.train.augment import DecodeOnly
from translate.images import grid, save_image
from translate.train.methods import METHODS, Method, build_method
from translate.networks.norm_stats import inference_mode
from translate.train.precision import Precision, TrainSpeed
from translate.devices import resolve_precision
from translate.train.periodic_eval import PeriodicEval


class TrainingInterrupted(Exception):
    """Raised after a checkpoint was saved because of SIGINT or SIGTERM."""

    def __init__(self, step: int, signum: int):
        super().__init__(f"interrupted at step {step}; checkpoint saved")
        self.step, self.signum = step, signum


def lr_factor(step: int, decay_from: int, iterations: int) -> float:
    """Constant, then linear decay to 0 at ``iterations`` (pix2pix/CycleGAN schedule)."""
    if step < decay_from:
        return 1.0
    return max(0.0, 1.0 - (step - decay_from) / max(1, iterations - decay_from))


def default_norm_stats(config: Config, processes: int = 1) -> str:
    """Batch norm trained at batch size 1 normalised each image by itself: keep doing so.
    ``processes``: how many processes' batches each batch-norm layer normalised together
    (synchronised batch norm)."""
    if config.generator.norm == "batch" and config.train.batch_size * processes == 1:
        return "image"
    return "running"


def build_dataset(config: Config, split: str = "train"):
    """The dataset of a split for the configured method: pairs for pix2pix, independent
    images of both domains for CycleGAN. None when a test split is absent."""
    d = config.data
    layout = resolve_layout(d.root, d.layout)
    sizes = (d.load_size, d.crop_size, d.flip, d.channels_a, d.channels_b)
    if METHODS[config.model].paired:
        items = paired_items(d.root, layout, split)
        return PairedDataset(items, *sizes) if items else None
    a, b = domain_items(d.root, layout, split)
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


class MetricsLog:
    """Running sums of loss terms, written as means to ``metrics.jsonl`` every log step."""

    def __init__(self, path: Path):
        self.path = path
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def write(self, step: int, extra: dict) -> dict:
        row = {"step": step, **self.means(), **extra}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.sums, self.counts = {}, {}
        return row

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (written after the checkpoint we resume from)."""
        if not self.path.exists():
            return
        keep = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in keep))

    def append(self, row: dict) -> None:
        """Write ``row`` (which has a ``step``) as a line of its own."""
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def state(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load(self, state: dict) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])


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


def prepare_run_folder(config: Config, resume: bool, ctx: Context | None = None
                       ) -> tuple[Path, dict | None]:
    """Check the run folder against ``resume``; return it and the state to resume from.
    With several processes, process 0 checks and creates the folder and the others only
    read the checkpoint (see :func:`translate.train.replicas.main_first`)."""
    ctx = ctx or Context()
    out = Path(config.train.out)
    latest = out / "checkpoints" / "latest.pt"
    if not ctx.is_main:
        if resume and not latest.is_file():
            raise ConfigError(f"{latest} is not visible to process {ctx.rank}: train.out must "
                              "be on storage that every node reads")
        return out, load_state(latest) if resume else None
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"run folder {out} already holds a run; add --resume to continue "
                              "it, or set train.out to a new folder")
        out.mkdir(parents=True, exist_ok=True)
        return out, None
    if not latest.is_file():
        raise ConfigError(f"nothing to resume: {latest} does not exist")
    state = load_state(latest)
    saved = config_from_dict(state["config"])
    bad = [k for k in changed_keys(saved, config) if k not in RESUMABLE_CHANGES]
    if bad:
        raise ConfigError("the config differs from the run being resumed in "
                          + ", ".join(f"{k} ({_get(saved, k)!r} -> {_get(config, k)!r})"
                                      for k in bad)
                          + "; only these may change on resume: "
                          + ", ".join(sorted(RESUMABLE_CHANGES)))
    if state.get("world_size", 1) != ctx.world:
        n = state.get("world_size", 1)
        raise ConfigError(f"the run was trained by {n} process(es) (effective batch "
                          f"{n * config.train.batch_size}) and is resumed by {ctx.world}; "
                          f"resume it with {n} in all (torchrun --nnodes x --nproc_per_node)")
    if state["step"] >= config.train.iterations:
        raise ConfigError(f"the run already reached step {state['step']} of "
                          f"{config.train.iterations}; raise train.iterations to train longer")
    step, lr = state["step"], config.train.lr
    before = lr * lr_factor(step, saved.decay_from, saved.train.iterations)
    after = lr * lr_factor(step, config.decay_from, config.train.iterations)
    if before != after:
        print(f"note: the LR schedule now decays from step {config.decay_from} to 0 at step "
              f"{config.train.iterations}: at step {step} the LR goes from {before:.3g} to "
              f"{after:.3g} (set train.decay_from to choose where the decay starts)",
              file=sys.stderr)
    return out, state


def _get(config: Config, dotted: str):
    obj = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


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


def train_step(method: Method, optimizers: dict, batch: dict,
               precision: Precision | None = None, average=None) -> dict[str, float]:
    """One iteration: generators' forward, then each phase's objective and optimizer step.
    While a phase steps, the other groups' parameters need no gradients. ``precision``
    (default fp32) runs forward passes and objectives under autocast; with fp16 its scaler
    scales every phase's loss, steps each optimizer and is updated once per iteration.
    ``average(params)`` (several processes) replaces the phase's gradients by their mean over
    the processes between backward and step."""
    precision = precision or Precision()
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
        precision.step(optimizers[phase])
        logged.update(terms)
        logged[f"{phase}_total"] = total.detach()
    precision.update()
    for group in method.groups:
        for p in method.parameters_of(group):
            p.requires_grad_(True)
    values = torch.stack([v.float().reshape(()) for v in logged.values()]).tolist()
    return dict(zip(logged, values))  # one device-to-host copy for all terms


def write_samples(method: Method, batch: dict, path: Path, norm_stats: str) -> None:
    with contextlib.ExitStack() as stack:
        for e in method.exports():
            stack.enter_context(inference_mode(e.net, norm_stats))
        rows = method.sample_rows(batch)
    save_image(grid(rows), path)


def export_all(method: Method, out: Path, config: Config, step: int,
               norm_stats: str | None = None) -> list[Path]:
    norm_stats = norm_stats or default_norm_stats(config)
    return [export_generator(e.net, out / f"generator_{e.direction}.safetensors", arch=e.arch,
                             kwargs=e.kwargs, direction=e.direction, norm_stats=norm_stats,
                             method=method.name, step=step, config=config.to_dict())
            for e in method.exports()]


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


def train(config: Config, resume: bool = False, progress: bool = True) -> Path:
    """Train ``config`` into its run folder (``train.out``); returns the folder.

    Raises :class:`TrainingInterrupted` after saving a checkpoint on SIGINT/SIGTERM.
    """
    t = config.train
    t.precision = resolve_precision(t.precision, pick_device(t.device, "train.device"))
    ctx = join_processes(pick_device(t.device, "train.device"))  # torchrun: one per GPU
    out, state = main_first(ctx, prepare_run_folder, config, resume, ctx)
    device = ctx.device
    torch.manual_seed(t.seed)
    random.seed(t.seed)
    np.random.seed(t.seed)

    dataset = build_dataset(config, "train")
    if METHODS[config.model].paired and config.loss.mismatch and len(dataset) < 2 \
            and ctx.is_main:
        print("warning: the dataset holds one pair, so there are no mismatched pairs "
              "(loss.mismatch has no effect)", file=sys.stderr)
    if config.data.gpu_augment:
        dataset = DecodeOnly(dataset, config.data.load_size)
    test_set = build_dataset(config, "test")
    preview = fixed_batch(test_set or dataset, t.samples)
    preview = {k: v.to(device) for k, v in preview.items()}

    method = build_method(config)
    method.nets.to(device)
    replicas = Replicas(ctx, method.nets)  # process 0's weights everywhere; SyncBN on CUDA
    replicas.seed(t.seed)
    speed = TrainSpeed(config, device)
    speed.prepare(method)
    optimizers, schedulers = make_optimizers(method, config, fused=device.type == "cuda")
    log = MetricsLog(out / "metrics.jsonl")
    norm_stats = default_norm_stats(config, replicas.normalised_batch_factor)
    evaluator = PeriodicEval(config, device, norm_stats, main=ctx.is_main)
    start = 0
    if state is not None:
        start = state["step"]
        method.nets.load_state_dict(state["nets"])
        for g, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][g])
            schedulers[g].load_state_dict(state["schedulers"][g])
        own = replicas.own_state(state)  # this process's RNGs and method memory
        method.load_state_dict(to_device(own["method"], device))
        set_rng_state(own["rng"], device)
        log.load(state["log"])
        evaluator.load(state.get("best"))
        speed.precision.load_state_dict(state.get("scaler"))
        if ctx.is_main:
            log.truncate_after(start)
            print(f"resuming {out} at step {start}", file=sys.stderr)
    if ctx.is_main:
        (out / "config.yaml").write_text(config.to_yaml())
    if ctx.is_main and ctx.distributed:
        print(f"{ctx.world} processes ({ctx.backend}, {device.type}): batch {t.batch_size} per "
              f"process, effective batch {t.batch_size * ctx.world}", file=sys.stderr)

    def checkpoint(step: int, name: str = "latest.pt") -> None:
        others = replicas.gather({"rng": rng_state(device), "method": method.state_dict()})
        if not ctx.is_main:  # process 0 writes; the others wait until the file is complete
            return replicas.barrier()
        save_state({
            "format": STATE_FORMAT, "version": 1, "step": step, "config": config.to_dict(),
            "nets": method.nets.state_dict(),
            "optimizers": {g: o.state_dict() for g, o in optimizers.items()},
            "schedulers": {g: s.state_dict() for g, s in schedulers.items()},
            "method": method.state_dict(), "rng": rng_state(device), "log": log.state(),
            "exports": {e.direction: {"net": e.name, "arch": e.arch, "kwargs": e.kwargs,
                                      "norm_stats": norm_stats} for e in method.exports()},
            "best": evaluator.state(), "scaler": speed.precision.state_dict(),
            "world_size": ctx.world, "replicas": others,
        }, out / "checkpoints" / name)
        replicas.barrier()

    loader = DataLoader(
        dataset, batch_size=t.batch_size,
        sampler=StreamSampler(len(dataset), t.seed, start=start * t.batch_size * ctx.world,
                              rank=ctx.rank, world=ctx.world),
        num_workers=config.data.workers, worker_init_fn=worker_init,
        pin_memory=device.type == "cuda", persistent_workers=config.data.workers > 0,
        generator=torch.Generator().manual_seed(t.seed))
    method.nets.train()
    bar = tqdm(total=t.iterations, initial=start, disable=not (progress and ctx.is_main),
               dynamic_ncols=True, desc=f"{config.model} {out.name}", unit="it", file=sys.stderr)
    batches = iter(loader)
    step, tic = start, time.perf_counter()
    with stop_on_signals() as stop:
        while step < t.iterations:
            batch = next(batches)
            batch = speed.batch(batch)
            terms = train_step(method, optimizers, batch, speed.precision,
                               replicas.average_gradients)
            for s in schedulers.values():
                s.step()
            step += 1
            terms, signum = replicas.finish_step(terms, stop["signum"])  # agreed by all
            log.add(terms)
            bar.update(1)
            if ctx.is_main and (step % t.log_every == 0 or step == t.iterations):
                now = time.perf_counter()
                row = log.write(step, {"lr": optimizers[method.phases[0]].param_groups[0]["lr"],
                                       "seconds": round(now - tic, 3)})
                tic = now
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                                 if k.endswith("_total") or k in ("g_l1",)})
            if ctx.is_main and t.sample_every and step % t.sample_every == 0:
                write_samples(method, preview, out / "samples" / f"step_{step:06d}.png",
                              norm_stats)
            if evaluator.due(step):
                row, improved = evaluator.run(method, step) if ctx.is_main else ({}, False)
                if ctx.is_main:
                    log.append(row)
                if replicas.main_decides(improved):
                    checkpoint(step, "best.pt")
            if step % t.checkpoint_every == 0 or step == t.iterations or signum:
                checkpoint(step)
            if signum and step < t.iterations:
                bar.close()
                raise TrainingInterrupted(step, signum)
    bar.close()
    replicas.verify()  # all processes hold the same weights, bit for bit
    if not ctx.is_main:
        return out
    paths = export_all(method, out, config, step, norm_stats)
    print("exported " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return out
