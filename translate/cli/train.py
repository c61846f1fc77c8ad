"""``translate train``."""

from __future__ import annotations

import sys
from pathlib import Path

from translate.cli.args import CliError


def cmd_train(args) -> int:
    from translate.train.config import load_config, parse_override
    from translate.train.loop import TrainingInterrupted, train
    from translate.train.run_folder import model_changed

    source = Path(args.config)
    if source.is_dir():  # a run folder: resume it with its own config
        if not args.resume:
            raise CliError(f"{source} is a folder; pass a config file, or add --resume to "
                           "continue the run in that folder")
        saved = source / "config.yaml"
        if not saved.is_file():
            raise CliError(f"{source} has no config.yaml; is it a run folder?")
        model = load_config(saved, [f"train.out={source}"], recorded=True).model
        asked = dict(parse_override(o) for o in args.overrides).get("model", model)
        if asked != model:  # before its options, which belong to the saved model, are read
            raise model_changed(model, str(asked))
        config = load_config(saved, args.overrides + [f"train.out={source}"], recorded=True)
    else:
        config = load_config(source, args.overrides)
    from translate.devices import is_main_process, launched

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


def register(sub) -> None:
    """The ``train`` command."""
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
