"""Dataset layouts, paired and unpaired datasets, augmentation and a resumable sample stream.

Layouts under a dataset root (``data.layout``; ``auto`` detects them in this order):

- ``paired``:   ``ROOT/train/A/NAME.ext`` with ``ROOT/train/B/NAME.ext`` (matched by stem)
- ``aligned``:  ``ROOT/train/*.ext``, each image A and B side by side (the reference layout)
- ``unpaired``: ``ROOT/trainA/*``, ``ROOT/trainB/*``

Test splits are ``test`` (or ``val``) in the same shape. Items come out as dicts of float
tensors (C, H, W) in [-1, 1] under ``"a"`` and ``"b"`` named after the folders; the method
decides which is the input. pix2pix needs pairs; CycleGAN takes any layout and ignores the
pairing.

Reproducibility: the training stream (:class:`StreamSampler`) hands every position a seed,
and the augmentation of that item is drawn from that seed alone. The data order and every
crop and flip are therefore a function of ``train.seed`` and the position in the stream:
independent of the number of workers (so workers never repeat each other's augmentations),
and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset, Sampler  # noqa: E402

from translate.data.jpeg import EncodedJpeg, read_jpeg  # noqa: E402
from translate.devices import loader_process_setup  # noqa: E402
from translate.errors import UserError  # noqa: E402
from translate.images import IMAGE_EXTENSIONS as _EXTS  # noqa: E402
from translate.images import (DEFAULT_MAX_PIXELS, ImageError, image_size,  # noqa: E402
                              list_images, load_rgb, to_channels, to_tensor)

LAYOUTS_HELP = """\
Layouts that work (ROOT is data.root):
  paired    ROOT/train/A/NAME.png and ROOT/train/B/NAME.png, matched by file name
            (optional ROOT/test/A, ROOT/test/B)
  aligned   ROOT/train/*.jpg, each image holding A and B side by side, A on the left
            (optional ROOT/test or ROOT/val); the reference pix2pix datasets look like this
  unpaired  ROOT/trainA/*.jpg and ROOT/trainB/*.jpg (optional ROOT/testA, ROOT/testB)"""

PAIRED_LAYOUTS = ("paired", "aligned")


class DatasetError(UserError, ValueError):
    """A dataset that cannot be trained on; the message explains what was found."""


def describe_tree(root: Path, depth: int = 2, limit: int = 24) -> str:
    """A short picture of the folders under ``root`` with image counts, for error messages."""
    if not root.exists():
        return f"  {root} does not exist"
    if not root.is_dir():
        return f"  {root} is a file, not a folder"
    lines: list[str] = []

    def walk(folder: Path, level: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        n_images = len([p for p in entries if p.is_file() and not p.name.startswith(".")
                        and p.suffix.lower() in _EXTS])
        n_other = len([p for p in entries if p.is_file()]) - n_images
        rel = "." if folder == root else str(folder.relative_to(root)) + "/"
        extra = f", {n_other} other files" if n_other else ""
        lines.append(f"  {'  ' * level}{rel}  ({n_images} images{extra})")
        if level < depth:
            for sub in subdirs:
                if len(lines) >= limit:
                    lines.append("  ...")
                    return
                walk(sub, level + 1)

    walk(root, 0)
    return "\n".join(lines[:limit + 1])


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in _EXTS for p in folder.iterdir()
                                   if p.is_file())


def find_layout(root: str | Path, splits: tuple[str, ...] = ("train",)) -> str | None:
    """The layout of ``root``: ``paired``, ``aligned`` or ``unpaired``, judged by the first of
    ``splits`` that is there (evaluation looks at ``test``/``val``); None when none fits."""
    root = Path(root)
    for split in splits:
        if (root / split / "A").is_dir() and (root / split / "B").is_dir():
            return "paired"
        if _has_images(root / split):
            return "aligned"
        if (root / f"{split}A").is_dir() and (root / f"{split}B").is_dir():
            return "unpaired"
    return None


def detect_layout(root: str | Path, splits: tuple[str, ...] = ("train",)) -> str:
    """:func:`find_layout`, or DatasetError showing the tree and the layouts that work."""
    root = Path(root)
    found = find_layout(root, splits)
    if found is not None:
        return found
    raise DatasetError(f"no dataset layout found under {root}. Found:\n{describe_tree(root)}\n"
                       f"{LAYOUTS_HELP}")


def resolve_layout(root: str | Path, layout: str, splits: tuple[str, ...] = ("train",)
                   ) -> str:
    """Check that ``layout`` fits ``root`` (detecting it for ``auto``) in one of ``splits``."""
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise DatasetError(f"data.root '{root}' is not a folder.\n{LAYOUTS_HELP}")
    if layout == "auto":
        return detect_layout(root, splits)
    problems = []
    for split in splits:
        needed = {"paired": [root / split / "A", root / split / "B"],
                  "aligned": [root / split],
                  "unpaired": [root / f"{split}A", root / f"{split}B"]}[layout]
        missing = [p for p in needed if not p.is_dir()]
        if not missing and not (layout == "aligned" and not _has_images(root / split)):
            return layout
        problems.append(", ".join(str(p) for p in missing)
                        or f"images directly in {root / split}")
    found = find_layout(root, splits)
    hint = (f"\nThis folder has the {found} layout: set data.layout={found} or auto."
            if found else "")
    raise DatasetError(f"data.layout={layout} needs {' or '.join(problems)}. Found:\n"
                       f"{describe_tree(root)}\n{LAYOUTS_HELP}{hint}")


def split_folder(root: Path, layout: str, split: str) -> Path | None:
    """The folder of ``split`` ('train' or 'test'; 'test' falls back to 'val')."""
    names = [split] if split == "train" else [split, "val"]
    for name in names:
        if layout == "unpaired":
            if (root / f"{name}A").is_dir() and (root / f"{name}B").is_dir():
                return root / name
        elif (root / name).is_dir():
            return root / name
    return None


# Training leaves out larger images (data.max_megapixels): each is decoded at full size
# every time it is drawn.
TRAIN_MAX_MEGAPIXELS = 50.0


def _readable(paths: list[Path], max_pixels: int = DEFAULT_MAX_PIXELS
              ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split ``paths`` into files whose header decodes (within ``max_pixels``) and (file,
    reason) for the rest."""
    good, bad = [], []
    for p in paths:
        try:
            w, h = image_size(p, max_pixels)
            if w < 1 or h < 1:
                raise ImageError(p, "empty image")
            good.append(p)
        except ImageError as err:
            bad.append((p, err.reason))
    return good, bad


def report_unreadable(bad: list[tuple[Path, str]], stream=None) -> None:
    """Print the unreadable files once, with their paths."""
    if not bad:
        return
    stream = stream or sys.stderr
    print(f"warning: skipping {len(bad)} file(s):", file=stream)
    for path, reason in bad[:50]:
        print(f"  {path}: {reason}", file=stream)
    if len(bad) > 50:
        print(f"  ... and {len(bad) - 50} more", file=stream)


@dataclass(frozen=True)
class PairItem:
    """One training pair: ``a`` and ``b`` files, or one side-by-side file (``a is b``)."""
    name: str
    a: Path
    b: Path

    @property
    def side_by_side(self) -> bool:
        return self.a == self.b


def paired_items(root: str | Path, layout: str, split: str = "train",
                 report=report_unreadable, max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> list[PairItem]:
    """The pairs of a paired or aligned dataset split; unreadable or unmatched files, and
    images above ``max_pixels``, are reported and left out. An empty result for the train
    split is a DatasetError."""
    root = Path(root)
    folder = split_folder(root, layout, split)
    if folder is None:
        if split == "train":
            raise DatasetError(f"no '{split}' split under {root}.\n{LAYOUTS_HELP}")
        return []
    bad: list[tuple[Path, str]] = []
    if layout == "aligned":
        files, bad = _readable(list_images(folder), max_pixels)
        items = [PairItem(p.stem, p, p) for p in files]
    elif layout == "paired":
        a_files, bad_a = _readable(list_images(folder / "A"), max_pixels)
        b_files, bad_b = _readable(list_images(folder / "B"), max_pixels)
        (a_by, same_a), (b_by, same_b) = by_stem(a_files), by_stem(b_files)
        bad = bad_a + bad_b + same_a + same_b
        items = [PairItem(s, a_by[s], b_by[s]) for s in sorted(a_by.keys() & b_by.keys())]
        only_a, only_b = sorted(a_by.keys() - b_by.keys()), sorted(b_by.keys() - a_by.keys())
        if only_a or only_b:
            print(f"warning: {len(only_a) + len(only_b)} file(s) in {folder} have no "
                  f"counterpart and are left out: "
                  + ", ".join([f"A/{s}" for s in only_a[:5]] + [f"B/{s}" for s in only_b[:5]])
                  + (" ..." if len(only_a) + len(only_b) > 10 else ""), file=sys.stderr)
    else:
        raise DatasetError(f"layout '{layout}' holds no pairs; pix2pix needs paired data.\n"
                           f"{LAYOUTS_HELP}")
    report(bad)
    if not items and split == "train":
        raise DatasetError(f"no usable training pairs in {folder}. Found:\n"
                           f"{describe_tree(root)}\n{LAYOUTS_HELP}")
    return items


def by_stem(files: list[Path]) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """{name without extension: file}, and (file, reason) for files that share their name
    with another (x.png and x.jpg): which one pairs with the other domain's x is
    ambiguous, so all of them are left out."""
    groups: dict[str, list[Path]] = {}
    for p in files:
        groups.setdefault(p.stem, []).append(p)
    unique = {stem: group[0] for stem, group in groups.items() if len(group) == 1}
    shared = [(p, "shares its name with " + ", ".join(q.name for q in group if q != p)
               + ": which one is the pair is ambiguous, so neither is used")
              for group in groups.values() if len(group) > 1 for p in group]
    return unique, shared


def sample_seed(seed: int, position: int) -> int:
    """A 32-bit seed for stream position ``position`` under run seed ``seed``."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, position]).generate_state(1)[0])


class StreamSampler(Sampler):
    """Endless reproducible stream of ``(index, seed)`` keys over ``n`` items.

    Position p of the stream is item ``perm_e[p % n]`` with e = p // n and ``perm_e`` a
    permutation drawn from (seed, e); its augmentation seed is ``sample_seed(seed, p)``.
    ``start`` skips the first positions (resume); rank r of ``world`` processes takes
    positions start + r, start + r + world, ... so ranks never share an item of an epoch.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        if n < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, epoch, 1]).permutation(self.n)

    def __iter__(self):
        position, epoch, perm = self.start + self.rank, -1, None
        while True:
            e = position // self.n
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            yield int(perm[position % self.n]), sample_seed(self.seed, position)
            position += self.world

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return sys.maxsize


def train_transform(load_size: int, crop_size: int, flip: bool) -> A.Compose:
    """Resize to load_size x load_size, random crop_size crop, optional flip; the same
    geometry for ``image`` and ``b`` (A and B of a pair)."""
    ops = [A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC),
           A.RandomCrop(crop_size, crop_size)]
    if flip:
        ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose(ops, additional_targets={"b": "image"}, seed=0, is_check_shapes=False)


def eval_transform(load_size: int, crop_size: int) -> A.Compose:
    """Deterministic counterpart of :func:`train_transform`: resize, centre crop."""
    return A.Compose([A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC),
                      A.CenterCrop(crop_size, crop_size)], additional_targets={"b": "image"},
                     is_check_shapes=False)


def apply_seeded(transform: A.Compose, seed: int | None, **arrays: np.ndarray) -> dict:
    """Run an albumentations pipeline with its random state drawn from ``seed`` alone."""
    if seed is not None:
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return transform(**arrays)


class _Augmented(Dataset):
    """Shared by the datasets: transforms, and decoding that survives damaged files."""

    def __init__(self, load_size: int, crop_size: int, flip: bool):
        self.random = train_transform(load_size, crop_size, flip)
        self.fixed = eval_transform(load_size, crop_size)
        self._reported: set[Path] = set()

    def load_first_good(self, items: list, index: int, load):
        """``load(items[index])``, or of the next item that decodes; a damaged file is
        reported once per process."""
        for attempt in range(len(items)):
            item = items[(index + attempt) % len(items)]
            try:
                return load(item)
            except ImageError as err:
                key = getattr(item, "a", None) or getattr(item, "path", None)
                if key not in self._reported:
                    self._reported.add(key)
                    print(f"warning: skipping {err}", file=sys.stderr)
        raise DatasetError("no item of the dataset can be decoded")


def _halves(rgb: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    half = rgb.shape[1] // 2
    if half < 1:
        raise ImageError(path, "too narrow to hold A and B side by side")
    return rgb[:, :half], rgb[:, half:2 * half]


Decoded = np.ndarray | EncodedJpeg  # uint8 (H, W, C), or a plain JPEG's bytes


def _load(path: Path, part: str, channels: int, jpeg: bool = False) -> Decoded:
    """An image (``part`` of the file, see :func:`read_part`) with ``channels``; with
    ``jpeg``, a whole plain RGB JPEG as its bytes, to be decoded on the training device."""
    if jpeg and part == "whole" and channels == 3:
        encoded = read_jpeg(path)
        if encoded is not None:
            return encoded
    return to_channels(read_part(path, part), channels)


def read_part(path: Path, part: str = "whole") -> np.ndarray:
    """uint8 RGB (H, W, 3) of a whole file, or of the ``left``/``right`` half of an A | B
    file."""
    rgb = load_rgb(path)
    if part == "whole":
        return rgb
    return _halves(rgb, path)[0 if part == "left" else 1]


class PairedDataset(_Augmented):
    """Pairs (A, B) with identical geometric augmentation.

    Keys are ``(index, seed)`` from :class:`StreamSampler` (random augmentation drawn from
    ``seed``) or a plain ``index`` (deterministic resize and centre crop). Returns
    ``{"a": (channels_a, crop, crop), "b": (channels_b, crop, crop), "index": int}``, values
    in [-1, 1]. A file that fails to decode despite a good header is reported and replaced
    by the next item, so one damaged file never stops a run.
    """

    def __init__(self, items: list[PairItem], load_size: int, crop_size: int, flip: bool,
                 channels_a: int = 3, channels_b: int = 3):
        super().__init__(load_size, crop_size, flip)
        self.items, self.channels = items, (channels_a, channels_b)

    def __len__(self) -> int:
        return len(self.items)

    def load_pair(self, item: PairItem, jpeg: bool = False) -> tuple[Decoded, Decoded]:
        if item.side_by_side:
            a, b = _halves(load_rgb(item.a), item.a)
            return to_channels(a, self.channels[0]), to_channels(b, self.channels[1])
        return (_load(item.a, "whole", self.channels[0], jpeg),
                _load(item.b, "whole", self.channels[1], jpeg))

    def decode(self, key, jpeg: bool = False) -> tuple[Decoded, Decoded]:
        """Item ``key``'s A and B images as decoded (uint8 (H, W, C) at the file's size);
        with ``jpeg``, plain JPEG files as their bytes (:class:`EncodedJpeg`)."""
        index = key[0] if isinstance(key, tuple) else key
        return self.load_first_good(self.items, index, lambda it: self.load_pair(it, jpeg))

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        a, b = self.decode(index)
        out = apply_seeded(self.fixed if seed is None else self.random, seed, image=a, b=b)
        return {"a": to_tensor(out["image"]), "b": to_tensor(out["b"]), "index": index}


@dataclass(frozen=True)
class DomainItem:
    """One image of one domain: a whole file, or the left/right half of an aligned file."""
    path: Path
    part: str = "whole"  # "whole", "left" or "right"


def domain_items(root: str | Path, layout: str, split: str = "train",
                 report=report_unreadable, max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> tuple[list[DomainItem], list[DomainItem]]:
    """The A and B images of a split, for unpaired training (images above ``max_pixels``
    are reported and left out). Paired and aligned datasets work too: their pairing is
    simply not used. An empty train domain is a DatasetError."""
    root = Path(root)
    folder = split_folder(root, layout, split)
    if folder is None:
        if split == "train":
            raise DatasetError(f"no '{split}' split under {root}.\n{LAYOUTS_HELP}")
        return [], []
    if layout == "aligned":
        files, bad = _readable(list_images(folder), max_pixels)
        a = [DomainItem(p, "left") for p in files]
        b = [DomainItem(p, "right") for p in files]
    else:
        dirs = ((folder.parent / f"{folder.name}A", folder.parent / f"{folder.name}B")
                if layout == "unpaired" else (folder / "A", folder / "B"))
        (fa, bad_a), (fb, bad_b) = (_readable(list_images(d), max_pixels) for d in dirs)
        a, b, bad = [DomainItem(p) for p in fa], [DomainItem(p) for p in fb], bad_a + bad_b
    report(bad)
    if split == "train" and (not a or not b):
        empty = "A" if not a else "B"
        raise DatasetError(f"domain {empty} of {root} has no usable training images. "
                           f"Found:\n{describe_tree(root)}\n{LAYOUTS_HELP}")
    return a, b


class UnpairedDataset(_Augmented):
    """Independent images of domains A and B (CycleGAN).

    An epoch covers the larger domain; each of its items is matched with an image of the
    other domain drawn at random from the item's seed, so the draw is reproducible under
    ``train.seed``. The two images get independent augmentations. A plain ``index`` gives
    A[index % |A|] and B[index % |B|] with deterministic preprocessing. Returns
    ``{"a": (channels_a, crop, crop), "b": (channels_b, crop, crop)}`` in [-1, 1].
    """

    def __init__(self, items_a: list[DomainItem], items_b: list[DomainItem], load_size: int,
                 crop_size: int, flip: bool, channels_a: int = 3, channels_b: int = 3):
        super().__init__(load_size, crop_size, flip)
        self.items = (items_a, items_b)
        self.channels = (channels_a, channels_b)

    def __len__(self) -> int:
        return max(len(self.items[0]), len(self.items[1]))

    def picks(self, index: int, seed: int | None) -> tuple[tuple[int, int], tuple]:
        """The A and B images of item ``index`` and their augmentation seeds: drawn from
        ``seed``, or (index mod |A|, index mod |B|) and no seeds without one."""
        na, nb = map(len, self.items)
        if seed is None:
            return (index % na, index % nb), (None, None)
        rng = np.random.default_rng(seed)
        other = int(rng.integers(nb if na >= nb else na))
        picks = (index, other) if na >= nb else (other, index)
        return picks, tuple(int(s) for s in rng.integers(0, 2 ** 32, size=2))

    def decode(self, key, jpeg: bool = False) -> tuple[Decoded, Decoded]:
        """Item ``key``'s A and B images as decoded (see :meth:`PairedDataset.decode`)."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        picks, _ = self.picks(index, seed)
        return tuple(self.load_first_good(items, pick, lambda it, c=chans: _load(
            it.path, it.part, c, jpeg)) for items, pick, chans in zip(self.items, picks,
                                                                      self.channels))

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        _, seeds = self.picks(index, seed)
        out = {}
        for name, img, s in zip("ab", self.decode(key), seeds):
            out[name] = to_tensor(apply_seeded(self.fixed if s is None else self.random, s,
                                               image=img)["image"])
        out["index"] = index
        return out


def worker_init(worker_id: int) -> None:
    """Give each loader worker its own global RNG streams (the augmentation pipeline itself is
    reseeded for every item, see the module docstring), leave Ctrl-C and SIGTERM to the main
    process, which saves a checkpoint before stopping the workers, and die with it."""
    loader_process_setup()  # Ctrl-C and SIGTERM are the main process's; die with it
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


def fixed_batch(dataset: Dataset, count: int) -> dict:
    """The first ``count`` items with deterministic preprocessing, stacked (sample grids)."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return {k: torch.stack([it[k] for it in items]) for k in ("a", "b")}
