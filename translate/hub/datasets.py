"""Public datasets in the reference layouts, and ``translate data download``.

Two families, both served by the pix2pix/CycleGAN authors:

- pix2pix: ``.../pix2pix/datasets/FILE.tar.gz``, *aligned* layout (A | B side by side in
  one image; ``NAME/train``, ``NAME/val``, some with ``NAME/test``).
- CycleGAN: ``.../cyclegan/datasets/FILE.zip``, *unpaired* layout (``NAME/trainA``,
  ``trainB``, ``testA``, ``testB``).

``maps`` and ``facades`` exist in both; the CycleGAN versions are registered as
``maps_unpaired`` and ``facades_unpaired`` and unpack into folders of those names. A dataset
lands in ``DIR/NAME`` (``datasets/NAME`` by default). Mirrors: ``--url`` gives the archive's
full URL; the environment variable ``TRANSLATE_DATASETS_URL`` gives a base URL under which
every archive is found by its file name (``BASE/facades.tar.gz``, ``BASE/facades.zip``).
Cityscapes is not listed: its licence forbids redistribution, so neither family serves it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from translate.hub.download import (ArchiveError, DownloadError, Limits, cap_for,
                                    extract_archive, fetch)
from translate.errors import UserError

DATASETS_URL_ENV = "TRANSLATE_DATASETS_URL"
PIX2PIX_BASE = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
CYCLEGAN_BASE = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"


@dataclass(frozen=True)
class DatasetEntry:
    """One public dataset: where it comes from and what it unpacks to."""

    name: str         # registry name = folder under the datasets directory
    archive: str      # upstream file name, e.g. facades.tar.gz
    base_url: str     # upstream folder of ``archive``
    layout: str       # 'aligned' or 'unpaired' (translate.data.datasets layouts)
    size: str         # approximate download size, for humans
    description: str

    @property
    def url(self) -> str:
        """The archive's URL, under ``$TRANSLATE_DATASETS_URL`` when that is set."""
        base = os.environ.get(DATASETS_URL_ENV) or self.base_url
        return f"{base.rstrip('/')}/{self.archive}"


def _pix2pix(name: str, size: str, description: str) -> DatasetEntry:
    return DatasetEntry(name, f"{name}.tar.gz", PIX2PIX_BASE, "aligned", size, description)


def _cyclegan(name: str, size: str, description: str, file: str | None = None
              ) -> DatasetEntry:
    return DatasetEntry(name, f"{file or name}.zip", CYCLEGAN_BASE, "unpaired", size,
                        description)


DATASETS: dict[str, DatasetEntry] = {e.name: e for e in [
    _pix2pix("facades", "~30 MB", "A = label map, B = facade photo; 400 train pairs"),
    _pix2pix("night2day", "~1.9 GB", "A = night, B = day (day -> night is b2a); "
             "~17.8k train pairs from outdoor webcams"),
    _pix2pix("maps", "~250 MB", "A = aerial photo, B = map (Google Maps); 1,096 train pairs"),
    _pix2pix("edges2shoes", "~2 GB", "A = edge map, B = shoe photo; ~50k train pairs"),
    _pix2pix("edges2handbags", "~8 GB", "A = edge map, B = handbag photo; ~137k train pairs"),
    _cyclegan("apple2orange", "~75 MB", "A = apples, B = oranges (ImageNet)"),
    _cyclegan("summer2winter_yosemite", "~130 MB", "A = summer, B = winter (Yosemite, Flickr)"),
    _cyclegan("horse2zebra", "~115 MB", "A = horses (1,067), B = zebras (1,334) (ImageNet)"),
    _cyclegan("monet2photo", "~290 MB", "A = Monet paintings, B = landscape photos"),
    _cyclegan("cezanne2photo", "~270 MB", "A = Cezanne paintings, B = landscape photos"),
    _cyclegan("ukiyoe2photo", "~280 MB", "A = ukiyo-e prints, B = landscape photos"),
    _cyclegan("vangogh2photo", "~290 MB", "A = Van Gogh paintings, B = landscape photos"),
    _cyclegan("iphone2dslr_flower", "~320 MB", "A = phone photos, B = DSLR photos with "
              "shallow depth of field (flowers)"),
    _cyclegan("maps_unpaired", "~250 MB", "maps as unpaired folders: A = aerial photo, "
              "B = map", file="maps"),
    _cyclegan("facades_unpaired", "~35 MB", "facades as unpaired folders: A = facade photo, "
              "B = label map", file="facades"),
]}


class DataUsageError(UserError):
    """A bad request (unknown dataset, unusable folder); exit status 2."""


def lookup(name: str) -> DatasetEntry:
    """The registry entry ``name``; DataUsageError listing the names otherwise."""
    if name in DATASETS:
        return DATASETS[name]
    import difflib

    close = difflib.get_close_matches(name, list(DATASETS), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DataUsageError(f"unknown dataset '{name}'.{hint} Known: {', '.join(DATASETS)} "
                         "(translate data list shows them)")


def format_list() -> str:
    """A table of the registry for ``translate data list``."""
    rows = [f"{'name':24s} {'layout':9s} {'size':8s} description"]
    rows += [f"{e.name:24s} {e.layout:9s} {e.size:8s} {e.description}"
             for e in DATASETS.values()]
    return "\n".join(rows)


def _check_layout(entry: DatasetEntry):
    """A check for :func:`extract_archive`: the unpacked folder must hold a dataset."""

    def check(folder: Path) -> None:
        from translate.data.datasets import describe_tree, find_layout

        found = find_layout(folder)
        if found is None:
            raise ArchiveError(f"the archive of {entry.name} holds no dataset layout. It "
                               f"contains:\n{describe_tree(folder)}")
        if found != entry.layout:
            print(f"warning: {entry.name} unpacked in the '{found}' layout, not the expected "
                  f"'{entry.layout}'", file=sys.stderr)

    return check


def download_dataset(name: str, root: str | Path = "datasets", url: str | None = None,
                     keep_archive: bool = False, progress: bool = True) -> tuple[Path, str]:
    """Fetch and unpack dataset ``name`` into ``root/name``. Returns (folder, what happened:
    'present', 'unpacked' or 'downloaded').

    A folder ``root/name`` that already holds a dataset is left alone (nothing is fetched);
    one that holds something else is an error, never overwritten. An archive already at
    ``root/ARCHIVE`` (placed by hand, or kept from an earlier run) is unpacked without
    downloading and kept; a downloaded archive is deleted after unpacking unless
    ``keep_archive``. Raises DownloadError, ArchiveError or DataUsageError.
    """
    from translate.data.datasets import describe_tree, find_layout

    entry = lookup(name)
    root = Path(root)
    folder, archive = root / entry.name, root / entry.archive
    if folder.exists():
        if find_layout(folder) is None:
            raise DataUsageError(f"{folder} exists but holds no dataset layout; move it away "
                                 f"and run again. It contains:\n{describe_tree(folder)}")
        return folder, "present"
    if root.exists() and not root.is_dir():
        raise DataUsageError(f"{root} is a file, not a folder")
    downloaded = not archive.is_file()
    if downloaded:
        source = url or entry.url
        print(f"downloading {entry.name} ({entry.size}) from {source}", file=sys.stderr)
        fetch(source, archive, progress=progress, limits=Limits(max_bytes=cap_for(entry.size)))
    else:
        print(f"using the archive already at {archive}", file=sys.stderr)
    print(f"unpacking {archive} into {folder}", file=sys.stderr)
    extract_archive(archive, folder, check=_check_layout(entry))
    if downloaded and not keep_archive:
        archive.unlink(missing_ok=True)
    return folder, "downloaded" if downloaded else "unpacked"


__all__ = ["DATASETS", "DatasetEntry", "DataUsageError", "DownloadError", "ArchiveError",
           "download_dataset", "format_list", "lookup"]
