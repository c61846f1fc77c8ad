"""A corpus of real, freely licensed photographs, assembled from package registries.

``translate data photos --out DIR`` downloads a few pinned packages (Debian's wallpaper
packages, the scikit-image and matplotlib wheels from PyPI), checks each against its
pinned sha256, reads the listed photos straight out of the archives (a ``.deb`` is an ``ar``
archive holding ``data.tar.xz``; a wheel is a zip) and writes::

    DIR/train/NAME.jpg ...     photos to train on
    DIR/test/NAME.png ...      held-out photos: never train on these
    DIR/SOURCES.md             every file with its source, author and licence
    DIR/sources.json           the same, for programs

Files are copied byte for byte (never re-encoded) under names chosen here, so no path
inside an archive can reach the file system. Packages are cached (``TRANSLATE_CACHE``, see
:func:`translate.hub.zoo.cache_dir`) and fetched once; a mirror holding the same files is
named with ``$TRANSLATE_PHOTOS_URL`` (files are fetched as ``BASE/FILE``).

The held-out photos were picked to cover what people upload (faces, a pet, food, a
landscape of 12 megapixels, an interior, boats at dusk, mountains) and are all public
domain, CC0 or CC BY, so small copies may be committed with their credit.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from translate.hub.download import ArchiveError, Limits, cap_for, fetch, sha256_of
from translate.files import new_folder

PHOTOS_URL_ENV = "TRANSLATE_PHOTOS_URL"
DEBIAN = "https://deb.debian.org/debian/pool/main"
PYPI = "https://files.pythonhosted.org/packages"


@dataclass(frozen=True)
class Package:
    """One pinned archive from a package registry."""

    name: str
    url: str
    sha256: str
    size: str           # for humans
    licence_file: str   # where the archive states the licences

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def source_url(self) -> str:
        base = os.environ.get(PHOTOS_URL_ENV)
        return f"{base.rstrip('/')}/{self.file}" if base else self.url


@dataclass(frozen=True)
class Photo:
    """One photo: where it is inside which package, what it shows, whose it is."""

    name: str       # file name in the corpus (extension of the original)
    package: str
    member: str     # path inside the package
    subject: str
    author: str
    licence: str    # SPDX-like identifier
    split: str      # 'train' or 'test'


PACKAGES: dict[str, Package] = {p.name: p for p in [
    Package("lomiri-wallpapers-16.04",
            f"{DEBIAN}/l/lomiri-wallpapers/lomiri-wallpapers-16.04_20.04.0-2_all.deb",
            "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab", "16 MB",
            "usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    Package("lomiri-wallpapers-20.04",
            f"{DEBIAN}/l/lomiri-wallpapers/lomiri-wallpapers-20.04_20.04.0-2_all.deb",
            "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709", "11 MB",
            "usr/share/doc/lomiri-wallpapers-20.04/copyright"),
    Package("mate-backgrounds",
            f"{DEBIAN}/m/mate-backgrounds/mate-backgrounds_1.26.0-1_all.deb",
            "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04", "47 MB",
            "usr/share/doc/mate-backgrounds/copyright"),
    Package("plasma-workspace-wallpapers",
            f"{DEBIAN}/p/plasma-workspace-wallpapers/"
            "plasma-workspace-wallpapers_5.27.5-2_all.deb",
            "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b", "94 MB",
            "usr/share/wallpapers/NAME/metadata.json"),
    Package("scikit-image",
            f"{PYPI}/a5/2a/e71c1a7d90e70da67b88ccc609bd6ae54798d5847369b15d3a8052232f9d/"
            "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af", "14 MB",
            "skimage/data/_fetchers.py (docstrings)"),
    Package("matplotlib",
            f"{PYPI}/2e/a4/1ca765c63a60e3096ae2ad132eb25f6f7eab0377418cd0472808befd9665/"
            "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8", "10 MB",
            "matplotlib/mpl-data/sample_data/README.txt"),
]}


def _lomiri(file: str, subject: str, author: str, licence: str, split: str = "train",
            release: str = "16.04") -> Photo:
    return Photo(file.split("_by_")[0].lower() + file[file.rindex("."):].lower(),
                 f"lomiri-wallpapers-{release}", f"usr/share/backgrounds/{file}", subject,
                 author, licence, split)


def _mate(file: str, subject: str, author: str) -> Photo:
    return Photo(f"mate-{file.lower()}", "mate-backgrounds",
                 f"usr/share/backgrounds/mate/nature/{file}", subject, author, "GPL-2.0+",
                 "train")


def _plasma(folder: str, subject: str, author: str) -> Photo:
    return Photo(f"plasma-{folder.lower()}.jpg", "plasma-workspace-wallpapers",
                 f"usr/share/wallpapers/{folder}/contents/images/2560x1600.jpg", subject,
                 author, "LGPL-3.0", "train")


PHOTOS: list[Photo] = [
    # held out: never trained on; public domain, CC0 or CC BY
    Photo("astronaut.png", "scikit-image", "skimage/data/astronaut.png",
          "portrait of astronaut Eileen Collins", "NASA", "public-domain", "test"),
    Photo("grace-hopper.jpg", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "portrait of Grace Hopper", "U.S. Navy", "public-domain", "test"),
    Photo("chelsea.png", "scikit-image", "skimage/data/chelsea.png", "a cat's face",
          "Stefan van der Walt", "CC0-1.0", "test"),
    Photo("coffee.png", "scikit-image", "skimage/data/coffee.png", "a cup of coffee",
          "Rachel Michetti", "CC0-1.0", "test"),
    _lomiri("sunset_by_Aitzol_Berasategi.jpg", "sunrise over hills, 12 megapixels",
            "Aitzol Berasategi", "CC-BY-4.0", "test"),
    _lomiri("picosdeeuropa_by_Aitzol_Berasategi.jpg", "mountains, meadow and sky",
            "Aitzol Berasategi", "CC-BY-4.0", "test"),
    _lomiri("Wine_by_Jakkub_Mede.jpg", "a living room with a drum and wine", "Jakub Mede",
            "CC-BY-4.0", "test"),
    _lomiri("friends_by_Aitzol_Berasategi.jpg", "two dogs at a wooden house",
            "Aitzol Berasategi", "CC-BY-4.0", "test"),
    # training photos
    Photo("rocket.jpg", "scikit-image", "skimage/data/rocket.jpg",
          "a rocket on its launch pad at dusk", "SpaceX", "public-domain", "train"),
    _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", "autumn forest, meadow and a ridge",
            "Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("life_by_Aitzol_Berasategi.jpg", "a stream among rocks in a forest",
            "Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("Bridge_by_Sander_Klootwijk.jpg", "cables of a bridge against the sky",
            "Sander Klootwijk", "CC-BY-SA-4.0"),
    _lomiri("Dragonfly_by_Bolly.jpg", "leaves against a blue sky", "Bolly", "CC-BY-SA-4.0"),
    _lomiri("Picture_0B_by_freespace.jpg", "a fig in a red bowl", "Trevor (freespace)",
            "CC-BY-4.0"),
    _lomiri("Picture_1A_by_freespace.jpg", "paint brushes", "Trevor (freespace)",
            "CC-BY-4.0"),
    _lomiri("free_by_Peter_Nerlich.jpg", "a toy bird under a lamp", "Peter Nerlich",
            "CC-BY-SA-4.0"),
    _lomiri("greentock_by_Peter_Nerlich.jpg", "a wall clock", "Peter Nerlich", "CC-BY-SA-4.0"),
    _lomiri("seeding_by_Clements_Engelhardt.jpg", "dandelion clocks in a meadow at sunset",
            "Clemens Engelhardt", "CC0-1.0"),
    _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "a nuthatch on a tree trunk", "Lukas Baubkus",
            "CC-BY-SA-3.0", release="20.04"),
    _mate("Aqua.jpg", "a water drop", "Charles Barbin"),
    _mate("Blinds.jpg", "green leaf close-up", "Lennart Poettering, Andrea Cimitan"),
    _mate("Dune.jpg", "dune grass by the sea", "Marco Cogoni, Hylke Bons"),
    _mate("FreshFlower.jpg", "an orange flower", "Jens Ansorg"),
    _mate("Garden.jpg", "a red flower in a garden", "Charles Barbin"),
    _mate("GreenMeadow.jpg", "grass", "Timothy Schellhase, Lapo Calamandrei"),
    _mate("LadyBird.jpg", "a ladybird on forget-me-nots", "Charles Barbin"),
    _mate("RainDrops.jpg", "rain drops on leaves", "blackcombwhistler07"),
    _mate("Storm.jpg", "a storm over a road", "Sergey Nazarov"),
    _mate("TwoWings.jpg", "dandelion seeds", "Charles Barbin, Hylke Bons"),
    _mate("Wood.jpg", "weathered wood", "the MATE Backgrounds authors"),
    _mate("YellowFlower.jpg", "a yellow flower", "Charles Barbin"),
    _plasma("BytheWater", "a jetty on a lake", "Maciej Wiklo"),
    _plasma("ColdRipple", "a jetty in fog", "Risto Saukonpää"),
    _plasma("ColorfulCups", "stacked coloured cups", "Dmitri Popov"),
    _plasma("DarkestHour", "a lake at the blue hour", "Risto Saukonpää"),
    _plasma("EveningGlow", "rowing boats on a lake shore at sunset", "Ian Hex"),
    _plasma("FallenLeaf", "a fallen leaf", "Martin Klapetek"),
    _plasma("Grey", "a building's facade", "Sigi Sagi"),
    _plasma("Kite", "a kite in a cloudy sky", "Risto Saukonpää"),
    _plasma("OneStandsOut", "a forest canopy from above", "Risto Saukonpää"),
    _plasma("Path", "a path through a forest", "Risto Saukonpää"),
    _plasma("summer_1am", "a lake at dusk", "Risto Saukonpää"),
]


def _ar_members(data: bytes):
    """(name, bytes) of every member of an ``ar`` archive (the outer format of a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise ArchiveError("not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ArchiveError("damaged Debian package (bad ar member header)")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip() or 0)
        yield name, data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)


def _read_deb(path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The files ``wanted`` (paths without a leading ``./``) from a .deb's data tarball."""
    for name, blob in _ar_members(path.read_bytes()):
        if name.startswith("data.tar"):
            try:
                with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                    found = {}
                    for info in tar:
                        key = info.name.removeprefix("./")
                        if key in wanted and info.isfile():
                            found[key] = tar.extractfile(info).read()
                    return found
            except tarfile.TarError as err:
                raise ArchiveError(f"{path.name}: cannot read {name} ({err})") from None
    raise ArchiveError(f"{path.name}: no data.tar member; not a Debian package")


def _read_wheel(path: Path, wanted: set[str]) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist() if n in wanted}
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"{path.name}: not a wheel ({err})") from None


def read_photos(package: Package, archive: Path, photos: list[Photo]) -> dict[str, bytes]:
    """``{photo name: bytes}`` for ``photos`` of ``package`` read from ``archive``. Raises
    ArchiveError when one is missing."""
    wanted = {p.member for p in photos}
    reader = _read_deb if archive.suffix == ".deb" else _read_wheel
    found = reader(archive, wanted)
    missing = sorted(wanted - set(found))
    if missing:
        raise ArchiveError(f"{archive.name} does not hold {', '.join(missing)}")
    return {p.name: found[p.member] for p in photos}


def _credits(photos: list[Photo], packages: dict[str, Package]) -> str:
    lines = ["# Sources of these photographs", "",
             "Every file, where it came from and under which licence. Files under test/ are "
             "held out: never train on them.", "",
             "| file | subject | author | licence | package |", "| --- | --- | --- | --- | --- |"]
    for p in photos:
        pkg = packages[p.package]
        lines.append(f"| {p.split}/{p.name} | {p.subject} | {p.author} | {p.licence} | "
                     f"{pkg.name} ({pkg.url}, `{p.member}`; licence text: "
                     f"{pkg.licence_file}) |")
    return "\n".join(lines) + "\n"


def assemble(out: str | Path, cache: str | Path, packages: dict[str, Package] | None = None,
             photos: list[Photo] | None = None, progress: bool = True) -> dict[str, int]:
    """Download (or reuse from ``cache``) the packages and write the corpus into the new
    folder ``out``. Returns the count of photos per split. Raises OccupiedError for an
    existing non-empty ``out``, DownloadError or ArchiveError when a package cannot be had;
    nothing is left under ``out`` then."""
    packages = PACKAGES if packages is None else packages
    photos = PHOTOS if photos is None else photos
    out, cache = Path(out), Path(cache)
    with new_folder(out, "photos") as work:
        for name, package in packages.items():
            chosen = [p for p in photos if p.package == name]
            if not chosen:
                continue
            archive = cache / package.file
            if not (archive.is_file() and sha256_of(archive) == package.sha256):
                print(f"downloading {package.name} ({package.size})", file=sys.stderr)
                fetch(package.source_url(), archive, sha256=package.sha256, progress=progress,
                      limits=Limits(max_bytes=cap_for(package.size)))
            for photo, blob in read_photos(package, archive, chosen).items():
                split = next(p.split for p in chosen if p.name == photo)
                (work / split).mkdir(exist_ok=True)
                (work / split / photo).write_bytes(blob)
        (work / "SOURCES.md").write_text(_credits(photos, packages), encoding="utf-8")
        (work / "sources.json").write_text(json.dumps(
            [dict(asdict(p), url=packages[p.package].url) for p in photos], indent=2))
    return {s: sum(p.split == s for p in photos) for s in ("train", "test")}


__all__ = ["PACKAGES", "PHOTOS", "PHOTOS_URL_ENV", "Package", "Photo", "assemble",
           "read_photos"]
