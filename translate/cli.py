"""Command line: ``translate SUBCOMMAND ...``. Each subcommand parses its arguments and makes
one call into the package. Exit status: 0 success, 1 the job ran but something failed
(for example some images could not be converted), 2 usage or configuration errors,
130/143 training stopped by SIGINT/SIGTERM after saving a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import UserError


class CliError(UserError):
    """A usage error to print as ``error: ...`` with exit status 2."""


def cmd_train(args) -> int:
    from .config import load_config
    from .trainer import TrainingInterrupted, train

    source = Path(args.config)
    if source.is_dir():  # a run folder: resume it with its own config
        if not args.resume:
            raise CliError(f"{source} is a folder; pass a config file, or add --resume to "
                           "continue the run in that folder")
        saved = source / "config.yaml"
        if not saved.is_file():
            raise CliError(f"{source} has no config.yaml; is it a run folder?")
        config = load_config(saved, args.overrides + [f"train.out={source}"])
    else:
        config = load_config(source, args.overrides)
    from .distributed import is_main_process, launched

    try:
        out = train(config, resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as stop:
        if is_main_process():  # under torchrun every process stops; process 0 says so
            launcher = "torchrun [same options] -m translate" if launched() else "translate"
            print(f"stopped at step {stop.step}; continue with: {launcher} train "
                  f"{config.train.out} --resume", file=sys.stderr)
        return 128 + stop.signum
    if is_main_process():
        print(out)
    return 0




def cmd_export(args) -> int:
    from .export import ONNX_TOLERANCE, export

    path = args.checkpoint or args.run
    if not path:
        raise CliError("name a run folder or --checkpoint FILE to export")
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
                                            args.dtype, args.opset, card):
        if parity is not None:
            print(f"onnx parity ({direction}): max |onnx - torch| = "
                  f"{parity:.1e} (tolerance {ONNX_TOLERANCE:.0e})", file=sys.stderr)
        print(target)
    return 0


def cmd_convert(args) -> int:
    from .convert import Options, convert
    from .distributed import convert_shared, launched, start
    from .inference import Translator, pick_device

    path = Path(args.checkpoint)
    # under torchrun: one process per GPU (cuda:LOCAL_RANK), each converting a share
    ctx = start(pick_device(args.device), backend="gloo") if launched() else None
    device = str(ctx.device) if ctx else args.device
    if args.engine == "onnxruntime" or path.suffix == ".onnx":
        translator = open_onnx(path, args)
    else:
        translator = Translator.from_checkpoint(args.checkpoint, args.direction, device,
                                                args.norm_stats, args.precision,
                                                args.channels_last)
    if ctx is None or ctx.is_main:
        print(f"using {translator.describe()}", file=sys.stderr)
    options = Options(batch_size=args.batch_size, tile=args.tile, overlap=args.overlap,
                      format=args.format, quality=args.quality,
                      skip_existing=args.skip_existing, workers=args.workers)
    if ctx is not None and ctx.distributed:
        report = convert_shared(ctx, translator, args.input, args.output, options,
                                progress=not args.quiet)
        if not ctx.is_main:  # process 0 prints the merged report; all exit alike
            return 1 if report.failed else 0
    else:
        report = convert(translator, args.input, args.output, options, progress=not args.quiet)
    rate = len(report.written) / report.seconds if report.seconds else 0.0
    print(f"converted {len(report.written)} image(s) into {args.output} in "
          f"{report.seconds:.1f} s ({rate:.1f} images/s)", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} image(s) whose output already exists",
              file=sys.stderr)
    if report.alpha_dropped:
        print(f"note: {len(report.alpha_dropped)} output(s) in a format without alpha "
              "(JPEG/BMP) lost their transparency; use --format png to keep it",
              file=sys.stderr)
    if report.failed:
        print(f"{len(report.failed)} file(s) could not be converted:", file=sys.stderr)
        for path, reason in report.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def open_onnx(path: Path, args):
    """The ONNX engine for an .onnx file, or a run folder's generator_<direction>.onnx."""
    from .onnx_engine import OnnxTranslator

    if args.device == "cuda" or args.precision != "fp32" or args.norm_stats \
            or args.channels_last:
        raise CliError("--engine onnxruntime runs the exported fp32 graph on the CPU; "
                       "--device cuda, --precision, --channels-last and --norm-stats do not "
                       "apply")
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


def cmd_bench(args) -> int:
    import json

    from .bench import format_table, run

    result = run(args.model, args.size, args.batch_size, args.device, args.precision,
                 args.iterations, args.warmup, args.ngf, args.images, args.workers,
                 baseline=not args.no_baseline, channels_last=args.channels_last,
                 compile_nets=args.compile)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _print_artefacts(result: dict) -> None:
    print(f"{result['images']} photos of {result['photos']}, no-reference figures "
          "(median, worst):")
    labels = {"periodicity": "periodicity (x input)", "hallucination": "edges not in photo",
              "fidelity": "edge correlation"}
    for key, label in labels.items():
        print(f"  {label:22s} {result[key + '_median']:8.3f}   worst "
              f"{result[key + '_worst']:8.3f}")
    for row in result["per_image"]:
        print(f"  {row['name']}: periodicity {row['periodicity']:.2f}, edges not in photo "
              f"{row['hallucination']:.3f}, edge correlation {row['fidelity']:.3f}")


def cmd_eval_photos(args) -> int:
    import json

    from .evaluate import score_artefacts

    if bool(args.translated) == bool(args.checkpoint):
        raise CliError("with --photos give either --translated DIR (translations already "
                       "made) or --checkpoint MODEL (translate them now), not both")
    engine = None
    if args.checkpoint:
        from .inference import Translator

        engine = Translator.from_checkpoint(args.checkpoint, args.direction, args.device,
                                            args.norm_stats, args.precision)
    result = score_artefacts(args.photos, args.translated, engine, args.limit)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_artefacts(result)
    for failure in result["failed"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if result["failed"] or not result["images"] else 0


def cmd_eval(args) -> int:
    import json

    from .evaluate import InceptionFeatures, evaluate, find_inception_weights
    from .inference import Translator

    if args.photos:
        return cmd_eval_photos(args)
    if not (args.checkpoint and args.data):
        raise CliError("translate eval needs --checkpoint and --data (scores against true "
                       "counterparts), or --photos (no-reference figures)")
    engine = Translator.from_checkpoint(args.checkpoint, args.direction, args.device,
                                        args.norm_stats, args.precision)
    weights = find_inception_weights(args.inception_weights)
    features = InceptionFeatures(weights) if weights else None
    result = evaluate(engine, args.data, args.direction, args.layout, args.limit, features)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{engine.describe()}\n{result['images']} test images of {args.data} "
              f"({result['direction']})")
        rows = [("PSNR (dB)", "psnr", "identity_psnr"), ("SSIM", "ssim", "identity_ssim")]
        for label, key, base in rows:
            if key in result:
                print(f"  {label:10s} {result[key]:8.3f}   identity baseline {result[base]:8.3f}")
        for key in ("fid", "kid"):
            if key in result:
                extra = f" +- {result['kid_std']:.4f}" if key == "kid" else ""
                print(f"  {key.upper():10s} {result[key]:8.4f}{extra}")
        for note in result["notes"]:
            print(f"  note: {note}")
    for failure in result["failed"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if result["failed"] else 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.models, args.host, args.port, args.share, args.device,
             args.max_upload_mb, args.max_megapixels, args.queue_size)  # DemoError: exit 2
    return 0


def positive_number(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translate", description="Image-to-image translation: train pix2pix or CycleGAN, "
        "convert images with a trained generator, evaluate, benchmark, and try models in a "
        "browser demo.")
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train from a YAML config. Overrides use dotted keys, "
                       "e.g. train.iterations=1000 data.root=datasets/facades.")
    p.add_argument("config", help="config YAML (or, with --resume, a run folder)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in train.out from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

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
    p.set_defaults(func=cmd_export)

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
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--engine", default="torch", choices=("torch", "onnxruntime"),
                   help="torch (default), or onnxruntime on an exported .onnx file (CPU; "
                   "needs the onnx extra); .onnx checkpoints use onnxruntime anyway")
    p.add_argument("--tile", type=non_negative, default=0,
                   help="translate images larger than N pixels in N x N tiles (default 0: "
                   "only images above 4 megapixels, in 1024 px tiles)")
    p.add_argument("--overlap", type=non_negative, default=64,
                   help="pixels shared by neighbouring tiles, blended smoothly (default 64)")
    p.add_argument("--format", default="same", choices=("same", "png", "jpg", "webp"),
                   help="output format (default: the input's, PNG for others)")
    p.add_argument("--quality", type=positive, default=95, help="JPEG/WebP quality (95)")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip images whose output exists (resume a stopped run)")
    p.add_argument("--workers", type=non_negative, default=2,
                   help="decoder and encoder processes each (default 2; 0: none)")
    p.add_argument("--norm-stats", choices=("running", "image"),
                   help="batch-norm statistics: running averages, or each image's own "
                   "(default: what the checkpoint says)")
    p.add_argument("--channels-last", action="store_true",
                   help="run the network in the channels-last (NHWC) layout; with --precision "
                   "bf16/fp16 on a recent GPU usually faster")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("eval", help="score a generator on a dataset's test split, or "
                       "translations of photos without ground truth",
                       description="Translate the test split of a dataset and score the "
                       "results: PSNR and SSIM against true counterparts (next to the "
                       "identity baseline: the input returned unchanged), FID and KID "
                       "against the target domain when Inception weights are available. "
                       "With --photos DIR instead: no-reference artefact figures of each "
                       "photo's translation against the photo itself (periodicity, edges "
                       "not in the photo, edge correlation; see the README).")
    p.add_argument("--checkpoint",
                   help="exported generator, run folder, training checkpoint or generator "
                   "state dict (.pth/.pt)")
    p.add_argument("--data", help="dataset folder with a test split")
    p.add_argument("--photos", metavar="DIR",
                   help="folder of photos for the no-reference figures (with --translated "
                   "or --checkpoint)")
    p.add_argument("--translated", metavar="DIR",
                   help="with --photos: folder of their translations, same relative paths "
                   "and names (any image extension), e.g. a translate convert output")
    p.add_argument("--direction", choices=("a2b", "b2a"),
                   help="which generator and which way to score (default: the model's)")
    p.add_argument("--layout", default="auto",
                   choices=("auto", "paired", "aligned", "unpaired"))
    p.add_argument("--limit", type=positive, help="score only the first N test images")
    p.add_argument("--inception-weights", metavar="FILE",
                   help="Inception-v3 weights for FID/KID (torch-fidelity's "
                   "weights-inception-2015-12-05-6726825d.pth; default: that file in the torch "
                   "hub cache, if present)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--norm-stats", choices=("running", "image"),
                   help="batch-norm statistics (default: what the checkpoint says)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="measure training and conversion speed on this device",
                       description="Benchmark the standard recipes (pix2pix U-Net + PatchGAN; "
                       "CycleGAN ResNet + PatchGAN) on synthetic data: training it/s, "
                       "conversion images/s (model only and folder to folder), peak memory, "
                       "TFLOP/s against the measured matmul peak, and the speed-up over "
                       "eager fp32 at batch size 1 measured in the same run.")
    p.add_argument("--model", choices=("pix2pix", "cyclegan"), default="cyclegan")
    p.add_argument("--size", type=positive, default=256, help="image size (default 256)")
    p.add_argument("--batch-size", type=positive, default=1)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--iterations", type=positive, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=non_negative, default=2, help="untimed steps first")
    p.add_argument("--ngf", type=positive, default=64, help="network width (default 64)")
    p.add_argument("--images", type=positive, default=32,
                   help="JPEG files in the folder-to-folder measurement (default 32)")
    p.add_argument("--workers", type=non_negative, default=2,
                   help="decoder/encoder processes for the folder measurement")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last layout for the measured run (default: on for CUDA)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the networks of the measured run (the compilation "
                   "time is reported apart)")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline run")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="start the browser demo (needs the demo extra)",
                       description="Start the Gradio demo: Real -> Anime and Day -> Night tabs "
                       "with a before/after slider, a batch tab, and the API endpoints "
                       "/real2anime, /day2night and /batch for gradio_client. Serves on "
                       "127.0.0.1 only, unless --host says otherwise.")
    p.add_argument("--models", metavar="DIR",
                   help="folder of exported generators (default: the repository's models/)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=positive, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true",
                   help="also open a public share link (off by default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-upload-mb", type=positive_number, default=20,
                   help="largest accepted upload, per file (default 20)")
    p.add_argument("--max-megapixels", type=positive_number, default=40,
                   help="largest accepted image, width x height (default 40)")
    p.add_argument("--queue-size", type=positive, default=16,
                   help="requests that may wait for the model (default 16)")
    p.set_defaults(func=cmd_demo)
    from .cli_data import register_data, register_zoo

    register_data(sub)
    register_zoo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides written after an option: translate train RUN --resume a.b=c
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except UserError as err:  # CliError and the package's own errors
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
