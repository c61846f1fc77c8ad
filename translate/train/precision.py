"""Speed options of training that leave the method unchanged.

- ``train.precision``: ``fp32``; ``bf16`` (autocast, no loss scaling); ``fp16`` (autocast and
  one gradient scaler shared by all optimizers of an iteration); ``auto`` resolves to bf16 on
  CUDA GPUs with native bf16 (compute capability 8.0 and later) and to fp32 elsewhere, CPUs
  with bf16 units included (bf16 trains faster there but scored lower at full budget; see
  :func:`~translate.devices.resolve_precision`); the resolved value is what the run
  folder's config records. Losses are computed in fp32 (:mod:`translate.train.losses`
  casts logits; the gradient penalty runs its critic in fp32).
- ``train.channels_last``: networks and batches in the NHWC memory layout, which tensor-core
  convolutions prefer; instance norm keeps it (:class:`~translate.networks.layers.InstanceNorm2d`).
- ``train.compile``: ``torch.compile`` of every network (in place, so checkpoints keep their
  parameter names). The first iterations pay the compilation, typically 30 s to a few
  minutes. Discriminators are left eager with ``loss.gan=wgan-gp``: compiled graphs do not
  support the double backward of the gradient penalty.
- On CUDA always: fused Adam, and cuDNN autotuning (crops have a fixed size, so the
  fastest convolution algorithms are found once).
- ``data.gpu_augment``: see :mod:`translate.train.augment`.

One iteration with fp16 (``train_step`` in :mod:`translate.train.loop`)::

    for phase in phases:
        loss = objective(phase)                   # under autocast
        scaler.scale(loss).backward()
        scaler.step(optimizers[phase])            # skipped when its gradients overflowed
    scaler.update()                               # once, after every optimizer stepped

The scaler's state (scale and growth tracker) is saved in checkpoints, so resume is exact.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from translate.devices import PRECISIONS


class Precision:
    """Autocast and loss scaling of one precision on one device.

    ``autocast()`` wraps forward passes and objectives; ``backward(loss)``,
    ``step(optimizer)`` and ``update()`` go through a :class:`torch.amp.GradScaler` that is
    enabled for fp16 only (for fp32 and bf16 they are plain ``backward``/``step``).
    """

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu"):
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (resolve "
                             "'auto' first)")
        self.name, self.device = name, torch.device(device)
        self.dtype = PRECISIONS[name]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=name == "fp16")
        if name == "fp16":
            # The scaler skips the optimizer step of an iteration whose gradients overflowed
            # (typically the first ones, while the scale settles); torch then warns that the
            # LR schedule stepped without an optimizer step, which is intended here: the
            # schedule follows iterations.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step",
                                    category=UserWarning)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def clip(self, optimizer: torch.optim.Optimizer, params, max_norm: float) -> torch.Tensor:
        """Scale the gradients of ``params`` (those ``optimizer`` steps) down to an L2 norm
        of at most ``max_norm``, unscaled first with fp16; returns their norm before
        clipping (a 0-dim tensor; non-finite after an fp16 overflow, whose step the scaler
        skips)."""
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)
        return torch.nn.utils.clip_grad_norm_(list(params), max_norm)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()

    def state_dict(self) -> dict:
        """The scaler's state ({} unless fp16)."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def generator_gflops(config) -> float | None:
    """GFLOP of one generator forward pass over a training batch (batch_size images of
    crop_size x crop_size), counted on the meta device, so nothing is allocated or
    computed; None when the network cannot take that input (the run reports it later)."""
    from torch.utils.flop_counter import FlopCounterMode

    from translate.networks import build_generator, generator_kwargs

    d = config.data
    try:
        with torch.device("meta"):
            net = build_generator(config.generator.arch, generator_kwargs(
                config.generator, d.channels_a, d.channels_b), init=False)
            x = torch.empty(config.train.batch_size, d.channels_a, d.crop_size, d.crop_size)
            with FlopCounterMode(display=False) as counter:
                net(x)
    except (RuntimeError, ValueError):
        return None
    return counter.get_total_flops() / 1e9


def configure_backends(device: torch.device, autotune: bool = True) -> None:
    """cuDNN autotuning on CUDA: each convolution's fastest algorithm is chosen once per
    input shape, which pays off because training crops have a fixed size."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = autotune


def prepare_networks(method, channels_last: bool = False, compile_nets: bool = False,
                     gan_mode: str = "", backend: str = "inductor") -> None:
    """Convert ``method.nets`` to channels-last and/or compile them, in place (parameter
    names and objects are kept, so optimizers and checkpoints are unaffected). ``backend``
    is torch.compile's ("aot_eager" traces and differentiates like "inductor" but generates
    no code: the tests use it where code generation is too slow)."""
    if channels_last:
        method.nets.to(memory_format=torch.channels_last)
    if compile_nets:
        critics = set(method.groups.get("d", ()))
        for name, net in method.nets.items():
            if gan_mode == "wgan-gp" and name in critics:
                continue  # the gradient penalty needs a double backward
            net.compile(backend=backend)


def to_channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in batch.items()}


class TrainSpeed:
    """The speed options of one training run: precision, channels-last, compilation and
    on-device augmentation. ``batch(raw)`` turns a loader batch into the method's input on
    the device."""

    def __init__(self, config, device: torch.device):
        from translate.train.augment import DeviceAugment

        t, d = config.train, config.data
        self.device = device
        self.precision = Precision(t.precision, device)  # resolved by the run (no auto)
        self.channels_last = t.channels_last
        self.compile = t.compile
        self.gan_mode = config.loss.gan
        self.augment = None
        if d.gpu_augment:
            from translate.train.methods import METHODS
            self.augment = DeviceAugment(d.load_size, d.crop_size, d.flip,
                                         paired=METHODS[config.model].paired)

    def prepare(self, method) -> None:
        """Before optimizers are made: layout, compilation, backend flags."""
        configure_backends(self.device)
        prepare_networks(method, self.channels_last, self.compile, self.gan_mode)

    def batch(self, raw: dict) -> dict[str, torch.Tensor]:
        """Loader batch -> {"a", "b"}: float (N, C, H, W) in [-1, 1] on the device, and
        "index": the dataset indices of the rows, int64 (N,), left on the CPU."""
        if self.augment is not None:
            out = self.augment(raw, self.device)
        else:
            out = {k: v.to(self.device, non_blocking=True) for k, v in raw.items()
                   if torch.is_tensor(v) and v.is_floating_point()}
        out = to_channels_last(out) if self.channels_last else out
        if "index" in raw:
            out["index"] = raw["index"]
        return out
