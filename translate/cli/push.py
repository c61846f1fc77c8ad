"""``translate push``: publish a run's generators (or one exported file) on the Hugging Face
Hub."""

from __future__ import annotations

import sys
import tempfile

from translate.cli.args import CliError, Terminated, terminate_as_interrupt


def cmd_push(args) -> int:
    from translate.hub.hf import parse

    ref = parse(f"hf://{args.repo}")  # OWNER/REPO, checked
    if ref.revision or ref.filename:
        raise CliError(f"push takes OWNER/REPO, not a revision or a file ({args.repo}); it "
                       "commits to the repository's main branch")
    try:
        with terminate_as_interrupt():  # Ctrl-C or SIGTERM: nothing left behind
            return _push(args, ref.repo)
    except KeyboardInterrupt as stop:
        print(f"\ninterrupted: nothing was {'written' if args.dry_run else 'sent'}",
              file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130


def _push(args, repo: str) -> int:
    from translate.hub.hf import HfRef
    from translate.hub.push import stage, upload

    notes: list[str] = []
    if args.dry_run:
        files = stage(args.source, repo, args.dry_run, args.license, args.data,
                      args.dataset, notes)
        for f in files:
            print(f)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"nothing was sent; {len(files)} files would go to {HfRef(repo)}",
              file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="translate-push-") as parent:
        folder = f"{parent}/repository"
        stage(args.source, repo, folder, args.license, args.data, args.dataset, notes)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        url = upload(folder, repo, args.private, args.message)
    print(f"pushed to {HfRef(repo)}: {url}", file=sys.stderr)
    print(f"use it with: translate convert --checkpoint {HfRef(repo)} --input photos/ "
          "--output out/", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("push", help="publish a run's generators on the Hugging Face Hub",
                       description="Upload the exported generator(s) of a run folder, or one "
                       "exported .safetensors file, to a model repository on the Hugging "
                       "Face Hub, with a model card (README.md with the Hub's metadata), the "
                       "latest sample grid and the training config. The token is the Hub's "
                       "usual one (HF_TOKEN, or hf auth login); HF_ENDPOINT names another "
                       "server. Needs the hub extra.")
    p.add_argument("source", metavar="RUN_OR_MODEL",
                   help="run folder (its generator_*.safetensors) or an exported file")
    p.add_argument("repo", metavar="OWNER/REPO", help="the Hub repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--license", default="other",
                   help="licence identifier for the card (e.g. mit, cc-by-4.0; default other)")
    p.add_argument("--data", default="",
                   help="what it was trained on, in words, for the card (default: the "
                   "model card's own, if any)")
    p.add_argument("--dataset", action="append", default=[], metavar="HUB_ID",
                   help="a Hub dataset it was trained on (repeatable)")
    p.add_argument("--message", default="Upload with translate push", help="commit message")
    p.add_argument("--dry-run", metavar="DIR",
                   help="write the files that would be uploaded into DIR and send nothing")
    p.set_defaults(func=cmd_push)
