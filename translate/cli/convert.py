"""``translate export`` and ``translate convert``."""

from __future__ import annotations

import sys
from pathlib import Path

from translate.cli.args import (CliError, Terminated, add_inference_precision, hub_model,
                                non_negative, positive, positive_number,
                                terminate_as_interrupt)
from translate.hub.hf import is_hf


def megapixels(text: str) -> float:
    import argparse

    value = positive_number(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"must be at most 1000, got {text}")
    return value


def cmd_export(args) -> int:
    from translate.infer.export import ONNX_TOLERANCE, export

    path = args.checkpoint or args.run
    if not path:
        raise CliError("name a run folder or --checkpoint FILE to export")
    if is_hf(path):
        if not args.out:
            raise CliError(f"{path} lives in the Hub cache; say where to write the export "
                           "with --out")
        path = hub_model(path)
    card = None
    if args.card:
        import json

        try:
            card = json.loads(Path(args.card).read_text())
        except (OSError, ValueError) as err:
            raise CliError(f"--card {args.card}: not a readable JSON file ({err})") from None
        if not isinstance(card, dict):
            raise CliError(f"--card {args.card}: expected a JSON object")
    for target, direction, parity in export(path, args.direction, args.format, args.out,
                                            args.dtype, args.opset, card, args.raw,
                                            args.overwrite):
        if parity is not None:
            print(f"onnx parity ({direction}): max |onnx - torch| = "
                  f"{parity:.1e} (tolerance {ONNX_TOLERANCE:.0e})", file=sys.stderr)
        print(target)
    return 0


def cmd_convert(args) -> int:
    from translate.infer.convert import plan_jobs
    from translate.devices import launched, pick_device, start

    options = convert_options(args)
    # the input and output are checked before the model loads (seconds, or a download)
    planned = None if launched() else plan_jobs(args.input, args.output, options)
    args.checkpoint = hub_model(args.checkpoint)
    # under torchrun: one process per GPU (cuda:LOCAL_RANK), each converting a share
    ctx = start(pick_device(args.device), backend="gloo") if launched() else None
    translator = open_translator(args, str(ctx.device) if ctx else args.device)
    if ctx is None or ctx.is_main:
        print(f"using {translator.describe()}", file=sys.stderr)
    if ctx is not None and ctx.distributed:
        from translate.infer.shared import convert_shared

        report = convert_shared(ctx, translator, args.input, args.output, options,
                                progress=not args.quiet)
        if not ctx.is_main:  # process 0 prints the merged report; all exit alike
            return 1 if report.failed else 0
    else:
        from translate.infer.convert import convert

        try:
            with terminate_as_interrupt():
                report = convert(translator, args.input, args.output, options,
                                 progress=not args.quiet, planned=planned)
        except KeyboardInterrupt as stop:
            print(f"\ninterrupted: every file in {args.output} is complete; continue with the "
                  "same command and --skip-existing", file=sys.stderr)
            return 143 if isinstance(stop, Terminated) else 130
    print_report(report, args.output)
    return 1 if report.failed else 0


def convert_options(args):
    """The conversion's :class:`~translate.infer.convert.Options` from its arguments."""
    from translate.infer.convert import Options
    from translate.infer.video import VideoOptions

    return Options(batch_size=args.batch_size, tile=args.tile, overlap=args.overlap,
                   format=args.format, quality=args.quality, png_level=args.png_level,
                   skip_existing=args.skip_existing, overwrite=args.overwrite,
                   workers=args.workers, face=args.face, tile_progress=not args.quiet,
                   max_pixels=int(args.max_megapixels * 1e6),
                   video=VideoOptions(crf=args.crf, codec=args.codec,
                                      temporal=args.temporal))


def open_translator(args, device: str):
    """The engine ``args`` ask for: onnxruntime for .onnx files, else PyTorch."""
    from translate.infer.engine import Translator

    if args.engine == "onnxruntime" or Path(args.checkpoint).suffix == ".onnx":
        return open_onnx(Path(args.checkpoint), args)
    return Translator.from_checkpoint(args.checkpoint, args.direction, device,
                                      args.norm_stats, args.precision, args.channels_last,
                                      args.compile)


def print_report(report, output: str) -> None:
    """What a conversion did, on stderr: counts, videos, notes and failures."""
    images = len(report.written) - len(report.videos)
    rate = images / report.seconds if report.seconds else 0.0
    if images or not report.videos:
        print(f"converted {images} image(s) into {output} in "
              f"{report.seconds:.1f} s ({rate:.1f} images/s)", file=sys.stderr)
    for src, v in report.videos:
        flicker = f", flicker {v.flicker:.2f}" if v.flicker is not None else ""
        print(f"video {src.name}: {v.frames} frames, {v.duration:.1f} s at {v.fps:.3g} fps, "
              f"converted at {v.frames_per_second:.1f} frames/s{flicker}", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} image(s) whose output already exists",
              file=sys.stderr)
    if report.renamed:
        print(f"note: {len(report.renamed)} input(s) shared an output name with another, so "
              "their outputs keep the input's extension in the name:", file=sys.stderr)
        for src, dst in report.renamed[:10]:
            print(f"  {src.name} -> {dst.name}", file=sys.stderr)
    for src, what in report.faces:
        print(f"{src.name}: {what}", file=sys.stderr)
    if report.no_face:
        print(f"note: no face found in {len(report.no_face)} image(s); they were translated "
              "whole", file=sys.stderr)
    if report.alpha_dropped:
        print(f"note: {len(report.alpha_dropped)} output(s) in a format without alpha "
              "(JPEG/BMP) lost their transparency; use --format png to keep it",
              file=sys.stderr)
    if report.failed:
        print(f"{len(report.failed)} file(s) could not be converted:", file=sys.stderr)
        for path, reason in report.failed:
            print(f"  {path}: {reason}", file=sys.stderr)


def open_onnx(path: Path, args):
    """The ONNX engine for an .onnx file, or a run folder's generator_<direction>.onnx."""
    from translate.infer.onnx_engine import OnnxTranslator

    if args.device == "cuda" or args.precision not in ("auto", "fp32") or args.norm_stats \
            or args.channels_last or args.compile:
        raise CliError("--engine onnxruntime runs the exported fp32 graph on the CPU; "
                       "--device cuda, --precision, --channels-last, --compile and "
                       "--norm-stats do not apply")
    if path.is_dir():
        found = sorted(path.glob(f"generator_{args.direction or '*'}.onnx"))
        if not found:
            raise CliError(f"{path} has no generator_*.onnx; create one with: translate "
                           f"export {path} --format onnx")
        path = found[0]
    translator = OnnxTranslator.from_file(path)
    if args.direction and translator.direction != args.direction:
        raise CliError(f"{path} maps {translator.direction}, not {args.direction}")
    return translator


def register_export(sub) -> None:
    """The ``export`` command."""
    p = sub.add_parser("export", help="write self-describing generator file(s) of a run",
                       description="Export the generator(s) of a run folder or checkpoint "
                       "as safetensors (or ONNX) files that carry their own description. "
                       "An ONNX export is checked against PyTorch before it is reported.")
    p.add_argument("run", nargs="?", help="run folder")
    p.add_argument("--checkpoint", help="run folder, training checkpoint, exported file or "
                   "generator state dict (.pth/.pt: reference pix2pix/CycleGAN, AnimeGANv2)")
    p.add_argument("--direction", choices=("a2b", "b2a"), help="only this generator")
    p.add_argument("--out", help="output file (or folder when exporting both directions; "
                   "with --format onnx, a folder unless it ends in .onnx)")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32",
                   help="weight precision in the file (default fp32; safetensors only)")
    p.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                   help="file format (default safetensors); onnx writes "
                   "generator_DIRECTION.onnx (needs pip install 'translate[onnx]')")
    p.add_argument("--opset", type=positive, default=17,
                   help="ONNX opset version (default 17)")
    p.add_argument("--card", metavar="JSON",
                   help="JSON object merged into the model card stored with the weights "
                   "(task, data, scores, ...; shown by the demo)")
    p.add_argument("--raw", action="store_true",
                   help="a run that kept a moving average of its weights (train.ema) "
                   "exports the average; --raw exports the trained weights instead")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing regular file at the target even if it is not "
                   "an export of this project (exports are replaced anyway; links, folders "
                   "and devices never)")
    p.set_defaults(func=cmd_export)


def register_convert(sub) -> None:
    """The ``convert`` command."""
    p = sub.add_parser("convert", help="translate an image file or folder",
                       description="Translate one image or a folder of images (recursively) "
                       "into an output folder that mirrors the input tree.")
    p.add_argument("--checkpoint", required=True,
                   help="exported generator (.safetensors), run folder, training checkpoint "
                   "or generator state dict (.pth/.pt: reference pix2pix/CycleGAN, AnimeGANv2)")
    p.add_argument("--input", required=True,
                   help="image file, folder (searched recursively) or quoted glob "
                   "('photos/**/*.jpg')")
    p.add_argument("--output", required=True, help="output folder (outside the input)")
    p.add_argument("--direction", choices=("a2b", "b2a"),
                   help="which generator of the checkpoint (default: a2b, or the only one)")
    p.add_argument("--batch-size", type=positive, default=4,
                   help="images of equal size, or tiles of a large image, translated "
                   "together (default 4)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_inference_precision(p)
    p.add_argument("--engine", default="torch", choices=("torch", "onnxruntime"),
                   help="torch (default), or onnxruntime on an exported .onnx file (CPU; "
                   "needs the onnx extra); .onnx checkpoints use onnxruntime anyway")
    p.add_argument("--tile", type=non_negative, default=0,
                   help="translate images larger than N pixels in N x N tiles (default 0: "
                   "only images above 4 megapixels, in 1024 px tiles)")
    p.add_argument("--overlap", type=non_negative, default=64,
                   help="pixels shared by neighbouring tiles, blended smoothly (default 64)")
    _output_options(p)
    p.add_argument("--workers", type=non_negative, default=None,
                   help="decoder and encoder processes each (0: none; default 2, but none "
                   "on a CPU with 2 cores or fewer, where they slow the network down more "
                   "than they save)")
    p.add_argument("--max-megapixels", type=megapixels, default=100,
                   help="larger images are reported and skipped without being decoded "
                   "(default 100, at most 1000; each megapixel costs memory and time)")
    p.add_argument("--norm-stats", choices=("running", "image"),
                   help="batch-norm statistics: running averages, or each image's own "
                   "(default: what the checkpoint says)")
    _video_options(p)
    p.add_argument("--face", choices=("crop", "paste"),
                   help="face mode: translate a square around the largest face at the "
                   "model's face size (512 unless its card says); crop writes that square, "
                   "paste blends it back into the photo. Images without a face are "
                   "translated whole")
    p.add_argument("--channels-last", action="store_true",
                   help="run the network in the channels-last (NHWC) layout; with --precision "
                   "bf16/fp16 on a recent GPU usually faster")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network: worth it for large folders on a GPU. The "
                   "first sizes compile (tens of seconds each, two or three times in all); "
                   "later sizes reuse their size-independent graphs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_convert)


def _output_options(p) -> None:
    """How ``convert`` writes its outputs, and what it does with existing ones."""
    p.add_argument("--format", default="same", choices=("same", "png", "jpg", "webp"),
                   help="output format (default: the input's, PNG for others)")
    p.add_argument("--quality", type=positive, default=95, help="JPEG/WebP quality (95)")
    p.add_argument("--png-level", type=int, default=1, choices=range(10), metavar="0-9",
                   help="PNG compression level (default 1, the fastest to write; 6 writes "
                   "files about 13 %% smaller, about 5x slower)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true",
                   help="skip images whose output exists (resume a stopped run)")
    existing.add_argument("--overwrite", action="store_true",
                   help="replace files already at output paths (by default convert stops "
                   "before writing if any exists)")


def _video_options(p) -> None:
    p.add_argument("--crf", type=non_negative, default=18,
                   help="videos: encoder quality, lower is better and larger (default 18)")
    p.add_argument("--codec", default="libx264", choices=("libx264", "mpeg4", "libvpx-vp9"),
                   help="videos: the encoder (default libx264: H.264, yuv420p)")
    p.add_argument("--temporal", type=non_negative, default=0, metavar="N",
                   help="videos: blend each frame with the previous output where the input "
                   "barely changed, keeping N/(N+1) of it (less flicker; default 0: off)")
