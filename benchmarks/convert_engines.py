"""Conversion engines side by side on this CPU: images/s, GFLOP/s, the share of the measured
matmul peak, peak memory and the output's distance from PyTorch fp32.

    python benchmarks/convert_engines.py                       # the default grid
    python benchmarks/convert_engines.py --models day2night --sizes 1mp --engines torch-fp32 torch-bf16

Engines: ``torch-fp32`` (what ``--precision fp32`` runs), ``torch-bf16-autocast`` (fp32
weights under bf16 autocast, the earlier ``--precision bf16``), ``torch-bf16`` (bf16 weights
and activations, channels-last: what ``--precision auto`` picks on CPUs with bf16 units),
``compile-fp32``/``compile-bf16`` (the same under torch.compile's inductor; the first pass
compiles, tens of seconds, and is not timed), ``ort-fp32`` (the ONNX export in onnxruntime),
``ort-int8`` (the export with onnxruntime's dynamic int8 quantisation), ``openvino-fp32`` and
``openvino-bf16`` (the ONNX export compiled by OpenVINO with that inference precision hint;
``pip install openvino``). Models: the shipped ``day2night`` and ``real2anime`` and a
CycleGAN ``resnet9`` (ngf 64, 9 blocks, instance norm; untrained weights: speed only, its
output distance says little). Sizes: ``256`` (256 x 256), ``1mp`` (1224 x 816), ``12mp``
(4240 x 2832, in 1024 px tiles as convert runs it).

Each (model, size, engine) runs in its own process, so peak memory (the process's
maximum resident set) is its own, with the memory reuse every ``translate`` command sets up
(:func:`translate.host_memory.keep_freed_memory`; ``--system-malloc``: without it) and the
local generator's inference layers (each upsampling as one convolution per output phase,
convolutions fused with their activation or residual add; ``--layers plain``: the plain
operations, ``phases``: the upsampling only); the
input is a demo photo resized to the size. Every engine is warmed up once, then timed over
at least 3 passes and 2 s (the median is kept). JSON lines on stdout (``--out`` appends
them to a file); ``--table FILE`` prints the
Markdown table of a rows file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("day2night", "real2anime", "resnet9")
SIZES = {"256": (256, 256), "1mp": (1224, 816), "12mp": (4240, 2832)}
ENGINES = ("torch-fp32", "torch-bf16-autocast", "torch-bf16", "compile-fp32", "compile-bf16",
           "ort-fp32", "ort-int8", "openvino-fp32", "openvino-bf16")
PHOTO = ROOT / "apps" / "photos" / "picosdeeuropa.jpg"


def load_model(name: str):
    """(generator, info) in fp32 on the CPU."""
    import torch

    from translate.infer.engine import load_any
    from translate.networks import build_generator

    if name == "resnet9":
        torch.manual_seed(0)
        kwargs = {"in_channels": 3, "out_channels": 3, "ngf": 64, "depth": 9,
                  "norm": "instance", "dropout": False}
        return build_generator("resnet", kwargs).eval(), {
            "arch": "resnet", "kwargs": kwargs, "direction": "a2b", "method": "cyclegan"}
    return load_any(ROOT / "models" / f"{name}.safetensors")


class AutocastEngine:
    """fp32 weights under bf16 autocast (a Translator in fp32 whose run is wrapped)."""

    def __new__(cls, net, info):
        import torch

        from translate.infer.engine import Translator

        engine = Translator(net, info, torch.device("cpu"), precision="fp32")
        plain = engine.run

        def run(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return plain(x)

        engine.run = run
        return engine


def openvino_engine(onnx_path: Path, info: dict, precision: str):
    """An Engine that runs the ONNX export compiled by OpenVINO for the CPU."""
    import openvino as ov
    import torch

    from translate.infer.engine import Engine

    class OpenVinoEngine(Engine):
        def __init__(self):
            self.info, self.stride = info, int(info.get("stride", 1))
            self.model = ov.Core().compile_model(
                str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": precision})

        def run(self, x):
            out = self.model(x.detach().float().numpy())
            return torch.from_numpy(next(iter(out.values())))

    return OpenVinoEngine()


def make_engine(kind: str, net, info: dict, work: Path):
    import torch

    from translate.infer.engine import Translator

    if kind.startswith("torch-") or kind.startswith("compile-"):
        if kind == "torch-bf16-autocast":
            return AutocastEngine(net, info)
        precision = kind.split("-")[1]
        return Translator(net, info, torch.device("cpu"), precision=precision,
                          compile=kind.startswith("compile-"))
    from translate.infer.onnx_engine import OnnxTranslator
    from translate.infer.onnx_export import export_onnx

    from translate.networks import stride_of

    info = dict(info, stride=info.get("stride") or stride_of(net))
    onnx_path = export_onnx(net, info, work / "model.onnx")
    if kind == "ort-fp32":
        return OnnxTranslator.from_file(onnx_path)
    if kind == "ort-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = work / "model-int8.onnx"
        quantize_dynamic(str(onnx_path), str(quantized), weight_type=QuantType.QInt8)
        return OnnxTranslator.from_file(quantized)
    return openvino_engine(onnx_path, info, {"fp32": "f32", "bf16": "bf16"}[kind.split("-")[1]])


def gflop_per_pass(net, size: tuple[int, int]) -> float:
    """GFLOP of one pass at ``size`` (w, h), counted on the meta device."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, size[1], size[0], device="meta"))
    return counter.get_total_flops() / 1e9


def photo_at(size: tuple[int, int]):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB").resize(size, Image.Resampling.LANCZOS))


def measure_one(model: str, size_name: str, kind: str, threads: int,
                layers: str = "fused") -> dict:
    """One row, in this process (the caller starts a fresh one for each)."""
    import numpy as np
    import torch

    import translate.networks.fused as fused
    import translate.networks.local as local
    from translate.host_memory import keep_freed_memory

    kept_freed = keep_freed_memory()  # as every translate command does
    local.PHASE_UPSAMPLE, fused.ENABLED = layers != "plain", layers == "fused"
    torch.set_num_threads(threads)
    size = SIZES[size_name]
    rgb = photo_at(size)
    net, info = load_model(model)
    with tempfile.TemporaryDirectory() as work:
        engine = make_engine(kind, net, info, Path(work))
        start = time.perf_counter()
        out = engine.translate_array(rgb)  # warm-up (compiles, for compile-*)
        first = time.perf_counter() - start
        times = []
        while len(times) < 3 or sum(times) < 2:
            start = time.perf_counter()
            out = engine.translate_array(rgb)
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the reference
    del engine
    reference = make_engine("torch-fp32", *load_model(model), Path(".")).translate_array(rgb)
    seconds = statistics.median(times)
    # convolutions cost the same per pixel at any size: the count at 256 px, scaled (tiles'
    # overlap is extra work, not counted)
    gflop_total = gflop_per_pass(load_model(model)[0], (256, 256)) * size[0] * size[1] / 256 ** 2
    diff = np.abs(out.astype(np.int16) - reference.astype(np.int16))
    return {"model": model, "size": f"{size[0]}x{size[1]}", "engine": kind, "threads": threads,
            "seconds": round(seconds, 4), "first_seconds": round(first, 2),
            "images_per_second": round(1 / seconds, 3),
            "gflop": round(gflop_total, 1), "gflops": round(gflop_total / seconds, 1),
            "peak_rss_mb": round(peak_mb), "kept_freed": kept_freed,
            "layers": layers,
            "max_levels": int(diff.max()), "mean_levels": round(float(diff.mean()), 3)}


def matmul_peaks(threads: int, n: int = 2048) -> dict:
    """Measured dense matmul GFLOP/s in fp32 and in bf16 (n x n, at least 1 s each): the
    ceiling the engines' GFLOP/s are compared with."""
    import torch

    from translate.train.bench import matmul_peak

    torch.set_num_threads(threads)
    return {p: matmul_peak(torch.device("cpu"), p, n=n, seconds=1.0) * 1e3
            for p in ("fp32", "bf16")}


def table(rows: list[dict]) -> str:
    peaks = next((r for r in rows if "matmul_gflops" in r), {}).get("matmul_gflops", {})
    lines = ["| model | size | engine | s/image | images/s | GFLOP/s | of peak | peak MB | "
             "max / mean levels |", "|---|---|---|---|---|---|---|---|---|"]
    base = {(r["model"], r["size"]): r["seconds"] for r in rows
            if r.get("engine") == "torch-fp32" and r.get("kept_freed") is not False
            and r.get("layers") != "plain"}
    for r in rows:
        if "engine" not in r:
            continue
        peak = peaks.get("bf16" if "bf16" in r["engine"] or "int8" in r["engine"] else "fp32")
        speedup = base.get((r["model"], r["size"]))
        ratio = f" ({speedup / r['seconds']:.2f}x)" if speedup else ""
        share = f"{r['gflops'] / peak:.0%}" if peak else "-"
        engine = r["engine"] + (" (system malloc)" if r.get("kept_freed") is False else "") \
            + {"plain": " (plain layers)", "phases": " (upsampling by phases only)",
               "phases-graph": " (graph with phases)"}.get(r.get("layers"), "")
        lines.append(f"| {r['model']} | {r['size']} | {engine} | {r['seconds']:.3f}{ratio} "
                     f"| {r['images_per_second']:.2f} | {r['gflops']:.0f} | {share} | "
                     f"{r['peak_rss_mb']} | {r['max_levels']} / {r['mean_levels']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, help="append the rows to this JSONL file")
    p.add_argument("--table", type=Path, help="print the Markdown table of a rows file")
    p.add_argument("--peaks", action="store_true", help="print the matmul peaks only")
    p.add_argument("--system-malloc", action="store_true",
                   help="measure with the C library's default allocation (rows marked "
                   "'system malloc'), not the memory reuse every translate command sets up")
    p.add_argument("--layers", choices=("fused", "phases", "plain"), default="fused",
                   help="the local generator's inference layers: 'fused' (what convert "
                   "runs), 'phases' (the upsampling by phases, no fused convolutions) or "
                   "'plain' (the bilinear map then the convolution; convolution, add and "
                   "activation as separate passes)")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "SIZE", "ENGINE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text().splitlines()]))
        return
    if args.one:
        print(json.dumps(measure_one(*args.one, args.threads, args.layers)))
        return
    if args.peaks:
        print(json.dumps({k: round(v) for k, v in matmul_peaks(args.threads).items()}))
        return
    import torch

    rows = [{"cpu": cpu_model(), "torch": torch.__version__, "threads": args.threads,
             "matmul_gflops": {k: round(v) for k, v in matmul_peaks(args.threads).items()}}]
    emit(rows[0], args.out)
    for model in args.models:
        for size in args.sizes:
            if model == "resnet9" and size == "12mp":
                continue  # about a minute per pass in fp32 on 2 cores; 1mp says the same
            for kind in args.engines:
                plain = ["--layers", args.layers]
                proc = subprocess.run([sys.executable, __file__, "--one", model, size, kind,
                                       "--threads", str(args.threads), *plain],
                                      capture_output=True, text=True,
                                      env={**os.environ, "TRANSLATE_SYSTEM_MALLOC":
                                           "1" if args.system_malloc else "0"})
                if proc.returncode != 0:
                    tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["?"]
                    emit({"model": model, "size": size, "engine_failed": kind,
                          "error": tail[0]}, args.out)
                    continue
                emit(json.loads(proc.stdout.strip().splitlines()[-1]), args.out)


def emit(row: dict, out: Path | None) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def cpu_model() -> str:
    from translate.devices import cpu_bf16_units

    name = "?"
    try:
        name = next(line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name} ({cpu_bf16_units() or 'no bf16 units'}, {os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
