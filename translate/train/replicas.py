"""Several processes, one per GPU (or several CPU processes), launched by ``torchrun``.

``torchrun --nproc_per_node=N -m translate train CONFIG`` starts N copies of the command; each
finds its place in the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). :func:`start` joins them into one process group: NCCL on
CUDA, one GPU per process (``cuda:LOCAL_RANK``); gloo on the CPU. Without those variables
nothing here communicates and every helper does what a single process would do.

Data-parallel training (:class:`Replicas`)
    Every process holds a full copy (a replica) of every network and optimizer, trains on its
    own share of each global batch, and averages gradients with the others before each
    optimizer step, so all replicas take identical steps and stay identical.

    Gradients are averaged explicitly, per phase, after that phase's ``backward()``
    (:meth:`Replicas.average_gradients`), rather than by wrapping each network in
    ``DistributedDataParallel``. A GAN iteration does not fit DDP's model of "one forward,
    one backward, every parameter used": the discriminator is called in the generator's phase
    with its parameters frozen (DDP would wait for gradients that never come, and fail at
    the next forward), it is called several times per phase (real, fake and mismatched
    pairs), the gradient penalty differentiates through it twice, and which parameters
    receive gradients changes with the phase. Averaging after ``backward()`` is correct for
    every one of these cases, needs nothing from the methods, keeps parameter names (so
    checkpoints of one and of many processes are interchangeable), and composes with fp16
    loss scaling (scaled gradients are averaged before the scaler unscales them; an
    overflow on one process reaches all of them, so all skip the same steps) and with
    ``torch.compile``. What it gives up is DDP's overlap of communication with the
    backward pass, a small share of a step for these networks. Each average is one
    all-reduce per bucket of at most :data:`BUCKET_ELEMENTS` gradient values.

    Batch norm: on CUDA, batch-norm layers become ``SyncBatchNorm``, which normalises over
    the global batch. On the CPU (gloo), each process normalises its own share and the
    running statistics are averaged after every step (:meth:`Replicas.finish_step`); the
    running averages are linear in the batch statistics, so this equals averaging them at
    the end, and it keeps the replicas identical at every step.

    At the end of training :meth:`Replicas.verify` compares every parameter and buffer of
    every replica bit for bit and raises :class:`ReplicaMismatch` naming the tensors that
    differ.

Data: ``train.batch_size`` is per process; the effective batch is batch_size x processes.
Process r of W takes positions r, r + W, r + 2W, ... of the run's sample stream
(:class:`~translate.data.datasets.StreamSampler`), so one step of all processes together
consumes the same consecutive positions as one step of a single process with the effective
batch, and what is trained on stays a function of ``train.seed`` and the position: resume is exact.

Per-process state: random number generators (dropout) and method memory (the CycleGAN image
pools, the pix2pix mismatch memory) differ between processes. Checkpoints hold every
process's copy (:meth:`Replicas.gather`), written by process 0, and each process restores its
own on resume, which must therefore use the same number of processes.

Interruption: SIGINT/SIGTERM (torchrun forwards them to every process) raise a flag that
the processes agree on after every step, so all stop at the same step, after one checkpoint.

Nothing is read back from a GPU at a step that neither logs nor checkpoints: the stop flags
and which parameters have gradients are host values, reduced through a gloo group beside
NCCL; loss terms stay on each device and are summed there, and their sums are averaged over
the processes (:meth:`Replicas.mean_of`) only when they are logged or checkpointed.
"""

from __future__ import annotations

import random
import signal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from translate.devices import Context, barrier


BUCKET_ELEMENTS = 1 << 24  # gradient values per all-reduce (64 MB in fp32)


class ReplicaMismatch(RuntimeError):
    """The processes' copies of the networks differ; the message names the tensors."""


def replica_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s random number generators (process 0 keeps ``seed``'s
    stream untouched, so a one-process launch trains exactly like a plain run)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x72616E6B, rank])  # "rank"
               .generate_state(1)[0])


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _running_stats(module: nn.Module) -> list[torch.Tensor]:
    """The running mean and variance buffers of every normalisation layer that keeps them."""
    out = []
    for m in module.modules():
        for name in ("running_mean", "running_var"):
            t = getattr(m, name, None)
            if torch.is_tensor(t) and t.is_floating_point():
                out.append(t)
    return out


def _buckets(tensors: list[torch.Tensor], limit: int) -> list[list[torch.Tensor]]:
    """Consecutive runs of tensors of one dtype holding at most ``limit`` values (a larger
    tensor gets a bucket of its own)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        if not out or out[-1][0].dtype != t.dtype or size + t.numel() > limit:
            out.append([])
            size = 0
        out[-1].append(t)
        size += t.numel()
    return out


def _bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bit patterns as integers, flattened (int64 for 8-byte elements, else int32;
    no copy for a contiguous fp32 tensor): equal bits give equal values."""
    t = t.detach().contiguous().reshape(-1)
    if t.is_complex():
        t = torch.view_as_real(t).reshape(-1)
    if t.is_floating_point():
        t = t.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])
    return t.to(torch.int64 if t.element_size() == 8 else torch.int32)


class Replicas:
    """The networks of one training run, kept identical across the processes of a launch.

    ``Replicas(ctx, nets)`` turns batch norm into ``SyncBatchNorm`` on CUDA (in place, before
    optimizers or compilation see the networks) and copies process 0's parameters and
    buffers to every process. With one process every method does nothing.
    """

    def __init__(self, ctx: Context, nets: nn.Module):
        self.ctx, self.nets = ctx, nets
        self.sync_batch_norm = ctx.distributed and ctx.device.type == "cuda" and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets.modules())
        self.control = None  # the process group of host-side flags (None: the default)
        if not ctx.distributed:
            return
        if ctx.backend != "gloo":  # NCCL reduces device tensors only: flags go through gloo
            self.control = dist.new_group(backend="gloo")
        if self.sync_batch_norm:
            for name in list(nets.keys()):
                nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(nets[name])
        with torch.no_grad():
            for t in nets.state_dict().values():
                dist.broadcast(t, src=0)

    @property
    def normalised_batch_factor(self) -> int:
        """How many processes' images each batch-norm layer normalises together."""
        return self.ctx.world if self.sync_batch_norm else 1

    def seed(self, seed: int) -> None:
        """Give processes other than 0 random number generators of their own (dropout), after
        the networks were initialised identically from ``seed``."""
        if self.ctx.rank == 0:
            return
        own = replica_seed(seed, self.ctx.rank)
        torch.manual_seed(own)
        np.random.seed(own)
        random.seed(own)

    @torch.no_grad()
    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the processes, after ``backward()`` and
        before the optimizer steps. A parameter without a gradient on some process counts as
        zero there; one without a gradient anywhere keeps none (Adam leaves it alone)."""
        if not self.ctx.distributed:
            return
        params = list(params)
        if not params:
            return
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
        dist.all_reduce(present, group=self.control)  # on the host: no device read
        used = [p for p, n in zip(params, present.tolist()) if n]
        for bucket in _buckets(used, BUCKET_ELEMENTS):
            flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                              .reshape(-1) for p in bucket])
            dist.all_reduce(flat)
            flat.div_(self.ctx.world)
            for p, g in zip(bucket, flat.split([p.numel() for p in bucket])):
                if p.grad is None:
                    p.grad = g.view(p.shape).clone()
                else:
                    p.grad.copy_(g.view(p.shape))

    @torch.no_grad()
    def finish_step(self, terms: dict[str, torch.Tensor], signum: int
                    ) -> tuple[dict[str, torch.Tensor], int]:
        """After each iteration: average the running statistics of batch norm (unless
        synchronised batch norm already made them equal) and agree on stopping, both
        without reading anything back from the device. ``signum``: the signal this
        process received (0 for none). Returns (``terms`` as they are, this process's own:
        :meth:`mean_of` averages their sums when they are logged; the signal to stop on,
        the same everywhere)."""
        if not self.ctx.distributed:
            return terms, signum
        if not self.sync_batch_norm:
            stats = _running_stats(self.nets)
            for bucket in _buckets(stats, BUCKET_ELEMENTS):
                flat = torch.cat([t.reshape(-1) for t in bucket])
                dist.all_reduce(flat)
                flat.div_(self.ctx.world)
                for t, v in zip(bucket, flat.split([t.numel() for t in bucket])):
                    t.copy_(v.view(t.shape))
        flags = torch.tensor([signum == signal.SIGINT, signum == signal.SIGTERM],
                             dtype=torch.int32)
        dist.all_reduce(flags, group=self.control)  # on the host: no device read
        stop = signal.SIGTERM if flags[1] else signal.SIGINT if flags[0] else 0
        return terms, int(stop)

    @torch.no_grad()
    def mean_of(self, values: dict[str, float | torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each value's mean over the processes (float64, on the device), in one
        all-reduce; every process must call this at the same step with the same keys.
        Unchanged for a single process."""
        if not self.ctx.distributed or not values:
            return values
        keys = sorted(values)
        vec = torch.stack([torch.as_tensor(values[k], device=self.ctx.device).double()
                           for k in keys])
        dist.all_reduce(vec)
        return dict(zip(keys, vec.div_(self.ctx.world).unbind(0)))

    def main_decides(self, flag: bool) -> bool:
        """Process 0's ``flag`` on every process (for work only process 0 does, such as
        evaluation, whose outcome the others must follow)."""
        return bool(self.main_says(int(flag)))

    def main_says(self, value: int) -> int:
        """Process 0's small whole number ``value`` on every process (a verdict only
        process 0 reached, such as the health checks')."""
        if not self.ctx.distributed:
            return value
        t = torch.tensor([value], dtype=torch.int32, device=self.ctx.device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def gather(self, own: dict) -> list[dict]:
        """The per-process state ``own`` of processes 1 .. W-1, on process 0 (in rank order,
        tensors on the CPU); an empty list elsewhere and for a single process."""
        if not self.ctx.distributed:
            return []
        own = _to_cpu(own)
        out: list | None = [None] * self.ctx.world if self.ctx.is_main else None
        dist.gather_object(own, out, dst=0)
        return out[1:] if self.ctx.is_main else []

    def own_state(self, state: dict) -> dict:
        """This process's ``rng`` and ``method`` state in a checkpoint: process 0's at the top
        level, the others' in ``state.replicas``."""
        if self.ctx.rank == 0:
            return {"rng": state.rng, "method": state.method}
        return state.replicas[self.ctx.rank - 1]

    def barrier(self) -> None:
        barrier(self.ctx)

    @torch.no_grad()
    def verify(self) -> None:
        """Check that every process holds bit-identical parameters and buffers; raise
        :class:`ReplicaMismatch` naming those that differ (on every process)."""
        if not self.ctx.distributed:
            return
        bits = [(name, _bits(t)) for name, t in self.nets.state_dict().items()]
        names = []
        for dtype in (torch.int32, torch.int64):  # the same groups on every process
            group = [(name, b) for name, b in bits if b.dtype == dtype]
            if not group:
                continue
            low = torch.cat([b for _, b in group]).to(self.ctx.device)
            high = low.clone()
            dist.all_reduce(high, op=dist.ReduceOp.MAX)
            dist.all_reduce(low, op=dist.ReduceOp.MIN)
            differ = (high != low).cpu()
            offset = 0
            for name, b in group:
                if bool(differ[offset:offset + b.numel()].any()):
                    names.append(name)
                offset += b.numel()
        if names:
            raise ReplicaMismatch(
                f"the {self.ctx.world} processes hold different values of {len(names)} "
                f"tensor(s): {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}. The "
                "replicas were kept in step by averaging gradients, so this points to "
                "nondeterministic hardware or a bug; the last checkpoint holds process 0's "
                "copy")
