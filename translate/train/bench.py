"""``translate bench``: training and conversion speed of the standard recipes on this device.

Measured, for pix2pix (U-Net + 70x70 PatchGAN, batch norm) or CycleGAN (ResNet + PatchGAN,
instance norm) at a chosen size, batch size and precision:

- training: iterations/s and images/s of the real training step (``trainer.train_step``)
  on synthetic batches already on the device; FLOPs per iteration counted with torch's
  FLOP counter; achieved TFLOP/s and its fraction of this device's measured matmul peak
  (model FLOPs utilisation); peak memory;
- conversion: images/s of the generator alone, and folder-to-folder (JPEG files in, JPEG
  files out, through ``translate.infer.convert``) with the overhead over the model-only time for
  the same images;
- this project's own eager run in the same process (fp32, NCHW, batch size 1, no speed
  options: the way the reference implementation runs, not the reference itself), and the
  speed-up over it.

The measured run uses the training speed options where they apply
(:mod:`translate.train.precision`):
the chosen precision (fp16 with its gradient scaler), channels-last (by default on CUDA),
fused Adam and cuDNN autotuning on CUDA, and ``torch.compile`` when asked (its warm-up is
reported apart). The baseline uses none of them.
"""

from __future__ import annotations

import copy
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from translate.train.config import load_config
from translate.infer.convert import Options, convert
from translate.devices import PRECISIONS, pick_device
from translate.infer.engine import Translator
from translate.train.methods import build_method
from translate.train.precision import (Precision, configure_backends, prepare_networks,
                                       to_channels_last)
from translate.train.loop import make_optimizers, train_step


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, precision: str, n: int | None = None,
                seconds: float = 0.2) -> float:
    """Measured dense matmul TFLOP/s of this device in ``precision`` (bf16 and fp16 with
    fp32 accumulation, as autocast runs them) on ``n`` x ``n`` matrices (default 8192 on
    CUDA, 512 on the CPU), timed over at least 10 products and ``seconds``."""
    n = n or (8192 if device.type == "cuda" else 512)
    dtype = PRECISIONS[precision] or torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while reps < 10 or time.perf_counter() - start < seconds:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync(device)
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def recipe_items(model: str, size: int, batch_size: int, ngf: int, device: torch.device
                 ) -> list[str]:
    """Overrides of the standard recipe at ``size`` (U-Net depth capped at log2(size))."""
    items = [f"model={model}", "train.out=bench", f"data.load_size={size}",
             f"data.crop_size={size}", f"train.batch_size={batch_size}",
             f"generator.ngf={ngf}", f"discriminator.ndf={ngf}", f"train.device={device.type}"]
    if model == "pix2pix":
        items.append(f"generator.depth={min(8, int(np.log2(size)))}")
    return items


def recipe(model: str, size: int, batch_size: int, ngf: int, device: torch.device):
    """The standard recipe's config at ``size``."""
    return load_config(None, recipe_items(model, size, batch_size, ngf, device))


def measure_training(config, device, precision, iterations, warmup, channels_last=False,
                     compile_nets=False, optimized=True):
    """Time ``train_step`` on synthetic batches. ``optimized``: fused Adam and cuDNN
    autotuning on CUDA (off for the eager run). FLOPs are counted on the second eager step
    (steady state: the first has no method memory yet, such as pix2pix's previous target at
    batch 1), before any compilation; with ``compile_nets`` the first steps (compilation)
    are timed apart."""
    torch.manual_seed(0)
    configure_backends(device, autotune=optimized)
    method = build_method(config)
    method.nets.to(device)
    prepare_networks(method, channels_last=channels_last)
    optimizers, _ = make_optimizers(method, config, fused=optimized and device.type == "cuda")
    amp = Precision(precision, device)
    n, s = config.train.batch_size, config.data.crop_size
    batch = {k: (torch.rand(n, 3, s, s, device=device) * 2 - 1) for k in ("a", "b")}
    if channels_last:
        batch = to_channels_last(batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_step(method, optimizers, batch, amp)  # the first step lacks method memory
    with FlopCounterMode(display=False) as counter:  # a steady-state step
        train_step(method, optimizers, batch, amp)
    compile_seconds = None
    if compile_nets:
        prepare_networks(method, compile_nets=True, gan_mode=config.loss.gan)
        start = time.perf_counter()
        for _ in range(2):  # graphs of both phases
            train_step(method, optimizers, batch, amp)
        sync(device)
        compile_seconds = time.perf_counter() - start
    for _ in range(warmup):
        train_step(method, optimizers, batch, amp)
    sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        train_step(method, optimizers, batch, amp)
    sync(device)
    seconds = (time.perf_counter() - start) / iterations
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result = {"iterations_per_s": 1 / seconds, "images_per_s": n / seconds,
              "flops_per_iteration": counter.get_total_flops(),
              "tflops": counter.get_total_flops() / seconds / 1e12,
              "peak_memory_mb": peak / 2 ** 20}
    if compile_seconds is not None:
        result["compile_seconds"] = compile_seconds
    return method, result


def translator_of(method, device, precision, channels_last=False, compile_net=False
                  ) -> Translator:
    e = method.exports()[0]
    net = copy.deepcopy(e.net).to(memory_format=torch.contiguous_format)
    info = e.spec("running").info(net, method.name, 0, {})
    return Translator(net, info, device, precision=precision, channels_last=channels_last,
                      compile=compile_net)


def measure_model(translator: Translator, size: int, batch_size: int, iterations: int,
                  warmup: int) -> float:
    x = torch.rand(batch_size, 3, size, size) * 2 - 1
    for _ in range(warmup):
        translator(x)
    sync(translator.device)
    start = time.perf_counter()
    for _ in range(iterations):
        translator(x)
    sync(translator.device)
    return batch_size * iterations / (time.perf_counter() - start)


def measure_folder(translator: Translator, size: int, batch_size: int, images: int,
                   workers: int) -> dict:
    """Folder-to-folder JPEG conversion against the model alone on the same images."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        rng = np.random.default_rng(0)
        for i in range(images):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                src / f"{i:05d}.jpg", quality=95)
        convert(translator, src, Path(tmp) / "warm", Options(batch_size=batch_size,
                workers=0), progress=False)  # warm-up: allocator, autotuning
        report = convert(translator, src, Path(tmp) / "out",
                         Options(batch_size=batch_size, workers=workers), progress=False)
    model_rate = measure_model(translator, size, batch_size,
                               max(1, images // batch_size), 1)
    rate = len(report.written) / report.seconds
    return {"end_to_end_images_per_s": rate, "model_images_per_s": model_rate,
            "end_to_end_overhead": model_rate / rate - 1}


def measure_loader(config, method, device, precision, iterations: int, workers: int) -> dict:
    """The real data path from ``config.data.root``: the loader alone (items/s over
    ``iterations`` batches after one), then ``iterations`` training steps fed by it."""

    from translate.data.datasets import StreamSampler
    from translate.train.augment import DecodeOnly
    from translate.train.loop import build_dataset, make_loader
    from translate.train.precision import TrainSpeed

    dataset = build_dataset(config)
    if config.data.gpu_augment:
        dataset = DecodeOnly(dataset, jpeg=device.type == "cuda")
    n = config.train.batch_size

    def batches():
        return iter(make_loader(dataset, config, device, StreamSampler(len(dataset), 0),
                                workers))
    stream = batches()
    next(stream)  # the workers' start
    start = time.perf_counter()
    for _ in range(iterations):
        next(stream)
    loader_rate = n * iterations / (time.perf_counter() - start)
    speed, amp = TrainSpeed(config, device), Precision(precision, device)
    optimizers, _ = make_optimizers(method, config)
    stream = batches()
    train_step(method, optimizers, speed.batch(next(stream)), amp)
    sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        train_step(method, optimizers, speed.batch(next(stream)), amp)
    sync(device)
    return {"loader_items_per_s": loader_rate, "workers": workers,
            "gpu_augment": config.data.gpu_augment,
            "train_images_per_s": n * iterations / (time.perf_counter() - start)}


def run(model: str = "cyclegan", size: int = 256, batch_size: int = 1, device: str = "auto",
        precision: str = "fp32", iterations: int = 5, warmup: int = 2, ngf: int = 64,
        images: int = 32, workers: int = 2, baseline: bool = True,
        channels_last: bool | None = None, compile_nets: bool = False,
        data: str | None = None, gpu_augment: bool = False) -> dict:
    """``channels_last`` None: on for CUDA, off on the CPU. ``data``: a dataset folder to
    also time the real data loader and training fed by it (``gpu_augment``: with workers
    that only decode, data.gpu_augment)."""
    dev = pick_device(device)
    if channels_last is None:
        channels_last = dev.type == "cuda"
    config = recipe(model, size, batch_size, ngf, dev)
    peak = matmul_peak(dev, precision)
    method, training = measure_training(config, dev, precision, iterations, warmup,
                                        channels_last, compile_nets)
    training["mfu"] = training["tflops"] / peak
    translator = translator_of(method, dev, precision, channels_last, compile_nets)
    conversion = measure_folder(translator, size, batch_size, images, workers)
    if data:
        config = load_config(None, [*recipe_items(model, size, batch_size, ngf, dev),
                                    f"data.root={data}", f"data.load_size={size + size // 8}",
                                    f"train.precision={precision}",
                                    f"data.gpu_augment={str(gpu_augment).lower()}"])
        training["from_folder"] = measure_loader(config, method, dev, precision,
                                                 iterations, workers)
    result = {"device": device_name(dev), "device_type": dev.type, "model": model,
              "size": size, "batch_size": batch_size, "precision": precision, "ngf": ngf,
              "channels_last": channels_last, "compile": compile_nets,
              "torch": torch.__version__, "matmul_peak_tflops": peak,
              "train": training, "convert": conversion}
    if baseline:
        base_config = recipe(model, size, 1, ngf, dev)
        base_method, base_train = measure_training(base_config, dev, "fp32", iterations, warmup,
                                                   optimized=False)
        base_translator = translator_of(base_method, dev, "fp32")
        base_model = measure_model(base_translator, size, 1, max(2, iterations), 1)
        result["baseline"] = {"train_images_per_s": base_train["images_per_s"],
                              "convert_images_per_s": base_model,
                              "peak_memory_mb": base_train["peak_memory_mb"]}
        result["speedup"] = {"train": training["images_per_s"] / base_train["images_per_s"],
                             "convert": conversion["model_images_per_s"] / base_model}
    return result


def format_table(r: dict) -> str:
    t, c = r["train"], r["convert"]
    options = [o for o, on in (("channels-last", r.get("channels_last")),
                               ("compiled", r.get("compile"))) if on]
    lines = [
        f"{r['model']} at {r['size']} px, batch {r['batch_size']}, {r['precision']}"
        + "".join(f", {o}" for o in options) + f" on {r['device']} (torch {r['torch']})",
        f"  training     {t['iterations_per_s']:.3g} it/s, {t['images_per_s']:.3g} images/s, "
        f"{t['flops_per_iteration'] / 1e9:.1f} GFLOP/iteration, {t['tflops']:.3g} TFLOP/s "
        f"= {100 * t['mfu']:.1f}% of the measured matmul peak "
        f"({r['matmul_peak_tflops']:.3g} TFLOP/s)",
        *([f"  compilation  {t['compile_seconds']:.1f} s in the first two iterations"]
          if "compile_seconds" in t else []),
        f"  peak memory  {t['peak_memory_mb']:.0f} MB"
        + (" (process RSS)" if r["device_type"] == "cpu" else " (CUDA allocated)"),
        *([f"  from folder  loader alone {t['from_folder']['loader_items_per_s']:.3g} items/s "
           f"({t['from_folder']['workers']} workers"
           + (", decode only" if t["from_folder"].get("gpu_augment") else "")
           + "); training fed by it "
           f"{t['from_folder']['train_images_per_s']:.3g} images/s"]
          if "from_folder" in t else []),
        f"  conversion   model only {c['model_images_per_s']:.3g} images/s; folder to folder "
        f"{c['end_to_end_images_per_s']:.3g} images/s "
        f"({100 * c['end_to_end_overhead']:+.1f}% time over the model)",
    ]
    if "baseline" in r:
        b, s = r["baseline"], r["speedup"]
        lines.append(f"  eager run    this project's eager fp32 NCHW batch 1, no speed "
                     f"options (baseline): training {b['train_images_per_s']:.3g} images/s, "
                     f"conversion {b['convert_images_per_s']:.3g} images/s")
        lines.append(f"  speed-up     over that run: training x{s['train']:.2f}, conversion "
                     f"x{s['convert']:.2f}")
    return "\n".join(lines)
