"""``translate data check DIR``: what training would find in a dataset folder, before
training.

Reports the layout (detected with :func:`translate.data.datasets.detect_layout`, or the one asked
for), every split (train, test or val) with its file counts per domain, the pairs and the
files without a counterpart (paired layout), unreadable files, image size statistics
(width, height, aspect ratio w/h: min, median, max; aligned layout: odd widths, whose last
column is dropped when A and B are split) and files with other extensions that training
ignores.

Reading is cheap by default: the same header read the data loader does before training
(:func:`translate.images.image_size`: size and EXIF orientation; for PNG, Pillow finds the
EXIF chunk by decoding the file, so damaged PNGs show up here already), plus a look at the
last bytes of PNG and JPEG files, where a file cut short (an interrupted copy or download)
lacks its end marker; such files are listed as *suspect*: training skips them only if they
fail to decode then. ``full=True`` (``--full``) decodes every image, as training will, in a
pool of threads (Pillow releases the GIL while decoding).

The verdict follows :mod:`translate.data.datasets`'s rules: training fails when there is no layout,
no train split, no pair in a paired or aligned train split, or an empty (or wholly
unreadable) train domain. Everything else is a warning.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from translate.data.datasets import (TRAIN_MAX_MEGAPIXELS, DatasetError, by_stem,
                                     resolve_layout, split_folder)
from translate.images import ImageError, image_size, is_image_file, list_images, load_image

PNG_MAGIC, PNG_END = b"\x89PNG", b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_MAGIC, JPEG_END = b"\xff\xd8", b"\xff\xd9"
LISTED = 20  # files named per category in the text report


def _tail_problem(path: Path) -> str | None:
    """Why a PNG or JPEG file looks cut short, or None."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        tail = f.read()
    if head.startswith(PNG_MAGIC) and not tail.endswith(PNG_END):
        return "no PNG end chunk (IEND): truncated?"
    if head.startswith(JPEG_MAGIC) and not tail.rstrip(b"\x00\r\n\t ").endswith(JPEG_END):
        return "no JPEG end marker: truncated?"
    return None


def _inspect(path: Path, full: bool, max_pixels: int
             ) -> tuple[int, int, str | None, str | None]:
    """(width, height, unreadable reason or None, suspect reason or None)."""
    try:
        w, h = image_size(path, max_pixels)
        if w < 1 or h < 1:
            return 0, 0, "empty image", None
        if full:
            load_image(path, max_pixels)
            return w, h, None, None
        return w, h, None, _tail_problem(path)
    except ImageError as err:
        return 0, 0, err.reason, None
    except OSError as err:
        return 0, 0, f"cannot read file ({err})", None


def _spread(values: list[float], digits: int | None = None) -> dict:
    """min, median and max; rounded to ``digits`` decimals when given."""
    if not values:
        return {}
    out = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    if digits is not None:
        return {k: round(v, digits) for k, v in out.items()}
    return {k: int(v) if float(v).is_integer() else v for k, v in out.items()}


class _Scanner:
    """Inspects files in a thread pool and gathers unreadable and suspect files."""

    def __init__(self, root: Path, full: bool, workers: int, max_pixels: int):
        self.root, self.full, self.workers = root, full, max(1, workers)
        self.max_pixels = max_pixels
        self.unreadable: list[dict] = []
        self.suspect: list[dict] = []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def domain(self, folder: Path, aligned: bool = False, paired: bool = False
               ) -> tuple[dict, dict[str, tuple]]:
        """Stats of the images in ``folder`` and {stem: (w, h)} of the readable ones. With
        ``paired``, files sharing a stem (x.png, x.jpg) are unusable, as in training."""
        files = list_images(folder) if folder.is_dir() else []
        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(lambda p: _inspect(p, self.full, self.max_pixels), files,
                                    chunksize=16))
        sizes: dict[str, tuple] = {}
        shared = dict(by_stem(files)[1]) if paired else {}
        for path, (w, h, bad, suspect) in zip(files, results):
            bad = shared.get(path, bad)
            if bad:
                self.unreadable.append({"path": self.rel(path), "reason": bad})
                continue
            if suspect:
                self.suspect.append({"path": self.rel(path), "reason": suspect})
            sizes[path.stem if paired or aligned else path.name] = (w, h)
        ws = [w for w, _ in sizes.values()]
        hs = [h for _, h in sizes.values()]
        stats = {"folder": self.rel(folder), "files": len(files), "readable": len(sizes),
                 "ignored_files": _ignored(folder),
                 "width": _spread(ws), "height": _spread(hs),
                 "aspect": _spread([w / h for w, h in sizes.values()], 3)}
        if aligned:
            stats["odd_width"] = sum(w % 2 for w in ws)
        return stats, sizes


def _ignored(folder: Path) -> int:
    """Files training skips: not images by extension (hidden files aside)."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
               and not is_image_file(p))


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in list_images(folder)} if folder.is_dir() else set()


def _check_split(scan: _Scanner, root: Path, layout: str, split: str) -> dict | None:
    folder = split_folder(root, layout, split)
    if folder is None:
        return None
    out: dict = {"split": split, "folder": scan.rel(folder)}
    if layout == "aligned":
        stats, sizes = scan.domain(folder, aligned=True)
        out["domains"] = {"A|B": stats}
        out["pairs"] = len(sizes)
    elif layout == "paired":
        (sa, a), (sb, b) = (scan.domain(folder / d, paired=True) for d in "AB")
        out["domains"] = {"A": sa, "B": sb}
        both = a.keys() & b.keys()
        out["pairs"] = len(both)
        names_a, names_b = _stems(folder / "A"), _stems(folder / "B")
        out["only_a"] = sorted(names_a - names_b)
        out["only_b"] = sorted(names_b - names_a)
        out["size_mismatch"] = sum(1 for s in both if a[s] != b[s])
    else:
        name = folder.name
        (sa, _), (sb, _) = (scan.domain(root / f"{name}{d}") for d in "AB")
        out["domains"] = {"A": sa, "B": sb}
        out["folder"] = f"{name}A + {name}B"
        out["pairs"] = None
    return out


def check_dataset(root: str | Path, layout: str = "auto", full: bool = False,
                  workers: int | None = None, max_megapixels: float = TRAIN_MAX_MEGAPIXELS
                  ) -> dict:
    """Inspect the dataset at ``root``; see the module docstring. Images above
    ``max_megapixels`` count as unusable, as in training. Returns a JSON-ready dict
    with ``ok`` (False when training would fail), ``problems`` (why), ``warnings``,
    ``trainable`` ({'pix2pix': bool, 'cyclegan': bool}) and the per-split details.
    Raises DatasetError only when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    workers = workers or min(8, os.cpu_count() or 1)
    report: dict = {"root": str(root), "layout": None, "mode": "full" if full else "header",
                    "splits": [], "unreadable": [], "suspect": [], "problems": [],
                    "warnings": [], "trainable": {"pix2pix": False, "cyclegan": False}}
    try:
        report["layout"] = resolve_layout(root, layout)
    except DatasetError as err:
        report["problems"].append(str(err))
        report["ok"] = False
        return report
    layout = report["layout"]
    scan = _Scanner(root, full, workers, int(max_megapixels * 1e6))
    train = _check_split(scan, root, layout, "train")
    test = _check_split(scan, root, layout, "test")
    report["splits"] = [s for s in (train, test) if s is not None]
    report["unreadable"], report["suspect"] = scan.unreadable, scan.suspect
    _judge_train(report, train, layout, root)
    if test is None:
        report["warnings"].append("no test (or val) split: translate eval and held-out scores "
                                  "need one")
    _add_warnings(report)
    report["ok"] = not report["problems"]
    return report


def _judge_train(report: dict, train: dict | None, layout: str, root: Path) -> None:
    """Which methods can train on the train split (``trainable``), and why not."""
    problems = report["problems"]
    if train is None:
        problems.append(f"no train split under {root}")
    else:
        readable = {d: s["readable"] for d, s in train["domains"].items()}
        if layout in ("paired", "aligned"):
            report["trainable"]["pix2pix"] = train["pairs"] > 0
            if train["pairs"] == 0:
                problems.append(f"no usable training pairs in {train['folder']}")
        if layout == "aligned":
            report["trainable"]["cyclegan"] = train["pairs"] > 0
        else:
            empty = [d for d, n in readable.items() if n == 0]
            report["trainable"]["cyclegan"] = not empty
            if empty and layout == "unpaired":
                problems.append(f"domain {' and '.join(empty)} of the train split has no "
                                "readable images")


def _add_warnings(report: dict) -> None:
    """What training will leave out or resize: unmatched, odd, ignored, unreadable files."""
    warnings = report["warnings"]
    for split in report["splits"]:
        unmatched = len(split.get("only_a", [])) + len(split.get("only_b", []))
        if unmatched:
            warnings.append(f"{split['split']}: {unmatched} file(s) without a counterpart "
                            "are left out")
        if split.get("size_mismatch"):
            warnings.append(f"{split['split']}: {split['size_mismatch']} pair(s) whose A and "
                            "B sizes differ (both are resized to data.load_size)")
        for name, stats in split["domains"].items():
            if stats.get("odd_width"):
                warnings.append(f"{split['split']}: {stats['odd_width']} image(s) of odd "
                                "width: the last column is dropped when A|B is split")
            if stats["ignored_files"]:
                warnings.append(f"{stats['folder']}: {stats['ignored_files']} file(s) "
                                "without an image extension are ignored")
    if report["unreadable"]:
        warnings.append(f"{len(report['unreadable'])} unusable file(s) will be skipped")
    if report["suspect"]:
        warnings.append(f"{len(report['suspect'])} file(s) look truncated; --full decodes "
                        "every image to be sure")


def _range(stats: dict, key: str) -> str:
    s = stats.get(key)
    return f"{s['min']}..{s['max']} (median {s['median']})" if s else "-"


def format_report(report: dict) -> str:
    """The human-readable report."""
    lines = [f"{report['root']}: layout {report['layout'] or 'none'} "
             f"({report['mode']} check)"]
    for split in report["splits"]:
        pairs = "" if split["pairs"] is None else f", {split['pairs']} pairs"
        counts = ", ".join(f"{d} {s['readable']}/{s['files']} readable"
                           for d, s in split["domains"].items())
        lines.append(f"  {split['split']:5s} ({split['folder']}): {counts}{pairs}")
        for d, s in split["domains"].items():
            if s["readable"]:
                lines.append(f"        {d:3s} width {_range(s, 'width')}, height "
                             f"{_range(s, 'height')}, aspect w/h {_range(s, 'aspect')}")
        for side, key in (("A", "only_a"), ("B", "only_b")):
            names = split.get(key, [])
            if names:
                more = f" ... (+{len(names) - LISTED})" if len(names) > LISTED else ""
                lines.append(f"        only in {side}: {', '.join(names[:LISTED])}{more}")
    for title, key in (("unreadable", "unreadable"), ("suspect", "suspect")):
        items = report[key]
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {it['path']}: {it['reason']}" for it in items[:LISTED]]
            if len(items) > LISTED:
                lines.append(f"  ... and {len(items) - LISTED} more")
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"problem: {p}" for p in report["problems"]]
    if report["ok"]:
        usable = [m for m, ok in report["trainable"].items() if ok]
        lines.append(f"ok: trainable with {' and '.join(usable)}")
    else:
        lines.append("training would fail")
    return "\n".join(lines)
