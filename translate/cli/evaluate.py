"""``translate eval``."""

from __future__ import annotations

import sys

from translate.cli.args import CliError, add_inference_precision, hub_model, positive


def _print_artefacts(result: dict) -> None:
    print(f"{result['images']} photos of {result['photos']}, no-reference figures "
          "(median, worst):")
    labels = {"periodicity": "periodicity (x input)", "hallucination": "edges not in photo",
              "fidelity": "edge correlation", "flattening": "flat share gained"}
    for key, label in labels.items():
        print(f"  {label:22s} {_figure(result[key + '_median'])}   worst "
              f"{_figure(result[key + '_worst'])}")
    if result.get("flat_inputs"):
        print(f"  ({result['flat_inputs']} photo(s) without edges left out of the edge "
              "figures: undefined there)")
    for row in result["per_image"]:
        print(f"  {row['name']}: periodicity {row['periodicity']:.2f}, edges not in photo "
              f"{_figure(row['hallucination'], 0)}, edge correlation "
              f"{_figure(row['fidelity'], 0)}, flat share gained "
              f"{_figure(row.get('flattening'), 0)}")


def _figure(value: float | None, width: int = 8) -> str:
    """A figure with 3 decimals, or 'undefined' (a photo without edges)."""
    return f"{value:{width}.3f}" if value is not None else f"{'undefined':>{width}}"


def cmd_eval_photos(args) -> int:
    import json

    from translate.infer.evaluate import score_artefacts

    if bool(args.translated) == bool(args.checkpoint):
        raise CliError("with --photos give either --translated DIR (translations already "
                       "made) or --checkpoint MODEL (translate them now), not both")
    engine = None
    if args.checkpoint:
        from translate.infer.engine import Translator

        engine = Translator.from_checkpoint(hub_model(args.checkpoint), args.direction,
                                            args.device, args.norm_stats, args.precision)
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

    from translate.infer.evaluate import InceptionFeatures, evaluate, find_inception_weights
    from translate.infer.engine import Translator

    if args.photos:
        return cmd_eval_photos(args)
    if not (args.checkpoint and args.data):
        raise CliError("translate eval needs --checkpoint and --data (scores against true "
                       "counterparts), or --photos (no-reference figures)")
    engine = Translator.from_checkpoint(hub_model(args.checkpoint), args.direction,
                                        args.device, args.norm_stats, args.precision)
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
        if "sharpness" in result:
            print(f"  sharpness  {result['sharpness']:8.3f}   (output's gradient energy over "
                  "the counterpart's: 1 as detailed, below 1 blurred)")
        if "line_continuity" in result:
            print(f"  lines      {result['line_continuity']:8.3f}   (share of the "
                  "counterpart's lines drawn as connected segments)")
        for key in ("fid", "kid"):
            if key in result:
                extra = f" +- {result['kid_std']:.4f}" if key == "kid" else ""
                print(f"  {key.upper():10s} {result[key]:8.4f}{extra}")
        for note in result["notes"]:
            print(f"  note: {note}")
    for failure in result["failed"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if result["failed"] else 0


def register(sub) -> None:
    """The ``eval`` command."""
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
    add_inference_precision(p)
    p.add_argument("--norm-stats", choices=("running", "image"),
                   help="batch-norm statistics (default: what the checkpoint says)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)
