"""Where computation happens: the device, the precision, and the processes of a launch.

- :func:`pick_device` turns ``auto``/``cpu``/``cuda`` into a device, :data:`PRECISIONS` names
  the compute dtypes and :func:`resolve_precision` turns ``auto`` into one of them.
- ``torchrun --nproc_per_node=N -m translate ...`` starts N copies of a command; each finds
  its place in the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``, ``MASTER_PORT``). :func:`start` joins them into one process group: NCCL on
  CUDA, one GPU per process (``cuda:LOCAL_RANK``); gloo on the CPU. Without those variables
  nothing here communicates and every helper does what a single process would do.

Helper processes (data loaders, encoders) call :func:`loader_process_setup` first: they
leave Ctrl-C and SIGTERM to the main process, which stops them (:func:`stop_loader`), and
die with it, however it dies.

Training replicas build on this (:mod:`translate.train.replicas`), as does conversion shared
between processes (:mod:`translate.infer.shared`). This module imports nothing else of the
project but :mod:`translate.errors`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import torch
import torch.distributed as dist

from translate.errors import UserError

T = TypeVar("T")

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

# compute dtype of each precision (None: fp32, no autocast)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = ("auto", *PRECISIONS)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def helper_process_setup(*_) -> None:
    """In a helper process (loader or encoder worker): ignore SIGINT, which the main process
    handles, end quietly on SIGTERM (not with the main process's handler, which a forked
    helper inherits and which would print a traceback), and (on Linux) be sent SIGKILL when
    the main process dies, so that no helper outlives a killed command. Arguments are
    ignored (it serves as a worker_init_fn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def loader_process_setup(*_) -> None:
    """:func:`helper_process_setup` for a DataLoader worker or an encoder, which also
    leaves SIGTERM to the main process: a signal sent to the whole process group (``kill --
    -PGID``, ``pkill -f``, service managers) would otherwise kill the helpers first and
    crash the main process before it saves its work. The main process stops them
    (:func:`stop_loader`, an encoder pool's shutdown); PDEATHSIG covers the rest."""
    helper_process_setup()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stop_loader(batches) -> None:
    """Shut down the loader processes behind ``batches`` (an iterator of a DataLoader; one
    without processes is left alone). They ignore SIGTERM, so they must be stopped where the
    loop that reads them ends, however it ends: kept alive by an error's traceback until
    exit, they would be terminated in vain and joined for ever, and the command would never
    end."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


class DeviceError(UserError, ValueError):
    """A device that is not there (``setting``: the option that asked for it)."""

    def __init__(self, message: str, setting: str = "--device"):
        super().__init__(message)
        self.setting = setting


def pick_device(name: str = "auto", setting: str = "--device") -> torch.device:
    """``auto``: CUDA when available, else the CPU. ``setting`` names the option in the
    error when CUDA is asked for and missing."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        if setting == "--device":
            message = "--device cuda was asked for, but no CUDA device is available"
        else:
            message = (f"{setting}=cuda but no CUDA device is available; use {setting}=cpu "
                       "or auto")
        raise DeviceError(message, setting)
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA GPU that computes in bf16 natively (compute capability
    >= 8.0)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device)[0] >= 8


CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # matrix tiles; vector dot products


CPU_BF16_ENV = "TRANSLATE_CPU_BF16"


def cpu_bf16_units(cpuinfo: str | None = None) -> str | None:
    """The first of :data:`CPU_BF16_FLAGS` this CPU has (read from ``/proc/cpuinfo``, or
    ``cpuinfo`` text), or None: not there, or not Linux. Without ``cpuinfo``,
    ``$TRANSLATE_CPU_BF16`` overrides what is found: ``0`` none, ``1`` (or a flag name)
    present, so that both paths can be compared, and tested, on any CPU."""
    override = os.environ.get(CPU_BF16_ENV, "").strip().lower() if cpuinfo is None else ""
    if override in ("0", "off", "no", "false"):
        return None
    if override:
        return override if override in CPU_BF16_FLAGS else "avx512_bf16"
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read(1 << 20)
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return next((f for f in CPU_BF16_FLAGS if f in flags), None)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CUDA GPU with native bf16, else ``fp32``. On CPUs ``auto``
    is fp32 even where bf16 units make bf16 autocast faster (:func:`cpu_bf16_units`): trained
    in bf16 there, pix2pix scored 0.24 and 0.31 dB below fp32 on a held-out photo task at
    2000 iterations (docs/benchmarks.md), so bf16 is only used when asked for. Other names
    are returned unchanged."""
    if name not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}")
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" and native_bf16(device) else "fp32"


def cores_per_process() -> int:
    """The CPU cores this process may run on (its affinity, which container limits and
    ``taskset`` narrow), divided among the processes torchrun started on this node."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def launched() -> bool:
    """Whether this process was started by torchrun (or anything setting its variables)."""
    return all(name in os.environ for name in ENV)


def is_main_process() -> bool:
    """Process 0 of a launch, or a process launched alone: the one that prints results."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its
    node, the ``device`` it computes on and the ``backend`` that connects the processes
    (None for a single process)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def start(device: torch.device, backend: str | None = None) -> Context:
    """Join the process group of a torchrun launch (once per process) and return this
    process's :class:`Context`. ``device``: the device asked for; on CUDA each process takes
    ``cuda:LOCAL_RANK``. ``backend``: default NCCL on CUDA, gloo on the CPU. Not launched:
    a single-process context on ``device``."""
    if not launched():
        return Context(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise DeviceError(f"this node runs process {local_rank} (LOCAL_RANK) but has "
                              f"{count} GPU(s); start at most {count} processes per node "
                              "(torchrun --nproc_per_node)", "LOCAL_RANK")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, **kwargs)
        atexit.register(_finish)
    return Context(rank, world, local_rank, device, dist.get_backend())


def _finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    """Wait until every process got here."""
    if ctx.distributed:
        dist.barrier()


def broadcast_object(ctx: Context, obj: T) -> T:
    """Process 0's ``obj`` on every process (pickled between the processes of one launch)."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(ctx: Context, obj) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def main_first(ctx: Context, fn: Callable[..., T], *args) -> T:
    """Run ``fn(*args)`` on process 0 first (it may check and create files); if it raises,
    every process stops: process 0 with the error, the others quietly (exit status 2 for
    usage errors, else 1) so that it is reported once. Otherwise the other processes run
    ``fn(*args)`` too, and each returns its own result."""
    if not ctx.distributed:
        return fn(*args)
    error = None
    if ctx.is_main:
        try:
            result = fn(*args)
        except Exception as err:  # handed to the other processes, then raised here
            error = err
    error = broadcast_object(ctx, _picklable(error))
    if error is not None:
        if ctx.is_main:
            raise error
        raise SystemExit(2 if isinstance(error, ValueError) else 1)
    return result if ctx.is_main else fn(*args)


def _picklable(error: Exception | None) -> Exception | None:
    if error is None:
        return None
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return RuntimeError(str(error))


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Process ``rank``'s share of ``items``: every ``world``-th, starting at ``rank``. The
    shares of all processes partition ``items`` and differ in size by at most one."""
    return list(items[rank::world])
