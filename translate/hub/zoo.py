"""The model zoo: published generators, downloaded once into a local cache and verified.

Entries (:data:`REGISTRY`) are the reference pix2pix models (``pix2pix-NAME``), the
reference CycleGAN models (``cyclegan-NAME``) and the AnimeGANv2 PyTorch port's generators
(``animeganv2-NAME``); the prefixes keep apart the pix2pix and CycleGAN models that share an
upstream name (``sat2map``, ``map2sat``, ``facades_label2photo``). A bare upstream name
(``horse2zebra``) is accepted where it is unambiguous.

Cache: ``cache_dir()`` is ``$TRANSLATE_CACHE``, else ``$XDG_CACHE_HOME/translate``, else
``~/.cache/translate``; model files are ``<cache>/zoo/NAME.pth`` (AnimeGANv2's ``.pt`` files
are the same torch.save format and are stored under the same suffix), each with a sidecar
``<cache>/zoo/NAME.json``::

    {"name", "task", "kind", "url", "sha256", "description", "direction"}

The sha256 is the registry's when it is known (the download must match it), else the one of
the first download (trust on first use). Every later use hashes the file again: a file that
no longer matches its sidecar is reported as corrupt and is not offered by
:func:`installed`; ``translate zoo download NAME`` replaces it.

Mirrors and tests: ``$TRANSLATE_ZOO_URL`` is a base URL under which every file is found by
its cache name (``BASE/cyclegan-horse2zebra.pth``), so a cache folder served over HTTP is a
mirror. Loading the files into networks is :mod:`translate.formats.reference`'s job.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from translate.hub.download import DownloadError, Limits, cap_for, fetch, sha256_of
from translate.errors import UserError
from translate.files import CACHE_ENV, atomic_write, cache_dir

ZOO_URL_ENV = "TRANSLATE_ZOO_URL"
KINDS = ("reference-pix2pix", "reference-cyclegan", "animeganv2")
SIDECAR_KEYS = ("name", "task", "kind", "url", "sha256", "description", "direction")

PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{}.pth"
CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
ANIMEGAN_URL = "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/{}.pt"


class ZooError(UserError):
    """A bad zoo request (unknown or ambiguous name, unusable file); exit status 2."""


@dataclass(frozen=True)
class ZooEntry:
    """A published generator. ``task`` groups models of one dataset or purpose
    (``horse2zebra``, ``day2night``, ``real2anime``); ``direction`` says which way it maps,
    for humans (``horse -> zebra``); ``size`` is the approximate file size; ``licence`` and
    ``homepage`` say whose it is and on what terms; ``face_size`` > 0 marks a face model,
    trained on centred face crops of that side (face mode, :mod:`translate.infer.faces`)."""

    name: str
    url: str
    kind: str
    task: str
    direction: str
    description: str
    size: str
    sha256: str | None = None
    licence: str = ""
    homepage: str = ""
    face_size: int = 0

    @property
    def upstream_name(self) -> str:
        return self.name.split("-", 1)[1]

    def source_url(self) -> str:
        """Where to download it: under ``$TRANSLATE_ZOO_URL`` when set, else ``url``."""
        base = os.environ.get(ZOO_URL_ENV)
        return f"{base.rstrip('/')}/{self.name}.pth" if base else self.url

    def sidecar(self, sha256: str, url: str) -> dict:
        return {"name": self.name, "task": self.task, "kind": self.kind, "url": url,
                "sha256": sha256, "description": self.description,
                "direction": self.direction}


REFERENCE_HOME = "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix"
REFERENCE_LICENCE = "BSD 2-Clause (pytorch-CycleGAN-and-pix2pix)"
ANIMEGAN_HOME = "https://github.com/bryandlee/animegan2-pytorch"
ANIMEGAN_LICENCE = ("MIT (animegan2-pytorch, the port); AnimeGANv2 itself is for "
                    "non-commercial use")


def _pix2pix(name: str, task: str, direction: str, what: str) -> ZooEntry:
    return ZooEntry(f"pix2pix-{name}", PIX2PIX_URL.format(name), "reference-pix2pix", task,
                    direction, f"reference pix2pix U-Net 256 (batch norm): {what}", "~220 MB",
                    licence=REFERENCE_LICENCE, homepage=REFERENCE_HOME)


def _cyclegan(name: str, task: str, direction: str, what: str) -> ZooEntry:
    return ZooEntry(f"cyclegan-{name}", CYCLEGAN_URL.format(name), "reference-cyclegan",
                    task, direction, f"reference CycleGAN ResNet-9 (instance norm): {what}",
                    "~45 MB", licence=REFERENCE_LICENCE, homepage=REFERENCE_HOME)


def _animegan(name: str, what: str, face_size: int = 0, licence: str = ANIMEGAN_LICENCE
              ) -> ZooEntry:
    return ZooEntry(f"animeganv2-{name}", ANIMEGAN_URL.format(name), "animeganv2",
                    "real2anime", "photo -> anime", f"AnimeGANv2: {what}", "~9 MB",
                    licence=licence, homepage=ANIMEGAN_HOME, face_size=face_size)


REGISTRY: dict[str, ZooEntry] = {e.name: e for e in [
    _pix2pix("edges2shoes", "edges2shoes", "edges -> shoe", "shoe photos from edge maps"),
    _pix2pix("sat2map", "maps", "aerial photo -> map", "maps from aerial photos"),
    _pix2pix("map2sat", "maps", "map -> aerial photo", "aerial photos from maps"),
    _pix2pix("facades_label2photo", "facades", "label map -> photo",
             "facade photos from label maps"),
    _pix2pix("day2night", "day2night", "day -> night",
             "night scenes from daytime photos (night2day dataset, B to A)"),
    _cyclegan("apple2orange", "apple2orange", "apple -> orange", "apples into oranges"),
    _cyclegan("orange2apple", "apple2orange", "orange -> apple", "oranges into apples"),
    _cyclegan("summer2winter_yosemite", "summer2winter_yosemite", "summer -> winter",
              "Yosemite summer photos into winter"),
    _cyclegan("winter2summer_yosemite", "summer2winter_yosemite", "winter -> summer",
              "Yosemite winter photos into summer"),
    _cyclegan("horse2zebra", "horse2zebra", "horse -> zebra", "horses into zebras"),
    _cyclegan("zebra2horse", "horse2zebra", "zebra -> horse", "zebras into horses"),
    _cyclegan("monet2photo", "monet2photo", "Monet painting -> photo",
              "Monet paintings into photos"),
    _cyclegan("style_monet", "monet2photo", "photo -> Monet painting",
              "photos in the style of Monet"),
    _cyclegan("style_cezanne", "cezanne2photo", "photo -> Cezanne painting",
              "photos in the style of Cezanne"),
    _cyclegan("style_ukiyoe", "ukiyoe2photo", "photo -> ukiyo-e print",
              "photos in the style of ukiyo-e prints"),
    _cyclegan("style_vangogh", "vangogh2photo", "photo -> Van Gogh painting",
              "photos in the style of Van Gogh"),
    _cyclegan("sat2map", "maps", "aerial photo -> map", "maps from aerial photos"),
    _cyclegan("map2sat", "maps", "map -> aerial photo", "aerial photos from maps"),
    _cyclegan("cityscapes_photo2label", "cityscapes", "photo -> label map",
              "street-scene label maps from photos"),
    _cyclegan("cityscapes_label2photo", "cityscapes", "label map -> photo",
              "street-scene photos from label maps"),
    _cyclegan("facades_photo2label", "facades", "photo -> label map",
              "facade label maps from photos"),
    _cyclegan("facades_label2photo", "facades", "label map -> photo",
              "facade photos from label maps"),
    _cyclegan("iphone2dslr_flower", "iphone2dslr_flower", "phone photo -> DSLR photo",
              "shallow depth of field for flower photos"),
    _animegan("face_paint_512_v1", "face portraits in a painted anime style (face crop "
              "resized to 512x512)", 512),
    _animegan("face_paint_512_v2", "face portraits in a painted anime style, stronger "
              "stylisation (face crop resized to 512x512)", 512),
    _animegan("celeba_distill", "face portraits in anime style, distilled (face crop "
              "resized to 512x512)", 512),
    _animegan("paprika", "scenes in the style of the film Paprika",
              licence="converted from AnimeGANv2: non-commercial use only"),
]}


def zoo_dir(folder: str | Path | None = None) -> Path:
    """``folder``, or ``cache_dir() / "zoo"``."""
    return Path(folder) if folder is not None else cache_dir() / "zoo"


def lookup(name: str) -> ZooEntry:
    """The entry ``name``, also by unambiguous upstream name; ZooError otherwise."""
    if name in REGISTRY:
        return REGISTRY[name]
    matches = [e for e in REGISTRY.values() if e.upstream_name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ZooError(f"'{name}' is ambiguous: {' or '.join(e.name for e in matches)}")
    import difflib

    close = difflib.get_close_matches(name, list(REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ZooError(f"unknown model '{name}'.{hint} translate zoo list shows all models")


def _read_sidecar(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str)
                                             for k in SIDECAR_KEYS):
        return None
    return data


def file_state(name: str, folder: str | Path | None = None) -> str:
    """'installed' (file matches its sidecar's sha256), 'corrupt' (it does not, or the
    sidecar is damaged), 'unregistered' (file without sidecar) or 'missing'."""
    folder = zoo_dir(folder)
    path, side = folder / f"{name}.pth", folder / f"{name}.json"
    if not path.is_file():
        return "missing"
    if not side.exists():
        return "unregistered"
    meta = _read_sidecar(side)
    if meta is None or sha256_of(path) != meta["sha256"]:
        return "corrupt"
    return "installed"


def installed(folder: Path | None = None) -> list[dict]:
    """The verified models in ``folder`` (default ``cache_dir()/'zoo'``): their sidecar dicts
    plus ``"path"`` (str), sorted by name. Files whose sha256 no longer matches are left out
    (they are reported as corrupt by :func:`file_state` and ``translate zoo list``). Every
    call hashes the files (about a second per GB)."""
    folder = zoo_dir(folder)
    if not folder.is_dir():
        return []
    out = []
    for side in sorted(folder.glob("*.json")):
        meta = _read_sidecar(side)
        path = side.with_suffix(".pth")
        if meta is None or meta["name"] != side.stem or not path.is_file():
            continue
        if sha256_of(path) != meta["sha256"]:
            continue
        out.append(dict(meta, path=str(path)))
    return out


def _write_sidecar(path: Path, meta: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))


def download(name: str, folder: str | Path | None = None, url: str | None = None,
             progress=True) -> tuple[dict, str]:
    """Install model ``name`` into ``folder`` (default the cache). Returns (its sidecar with
    ``"path"``, what happened: 'present', 'registered' or 'downloaded').

    A verified file is not fetched again. A file placed by hand at ``folder/NAME.pth``
    (without sidecar) is registered: its sha256 must match the registry's when that is
    known. A corrupt file is replaced by a fresh download. ``progress``: as for
    :func:`~translate.hub.download.fetch`. Raises DownloadError (server unreachable, sha256
    mismatch) or ZooError.
    """
    entry = lookup(name)
    folder = zoo_dir(folder)
    path, side = folder / f"{entry.name}.pth", folder / f"{entry.name}.json"
    state = file_state(entry.name, folder)
    if state == "installed":
        meta = _read_sidecar(side)
        return dict(meta, path=str(path)), "present"
    source = url or entry.source_url()
    if state == "unregistered":
        digest = sha256_of(path)
        if entry.sha256 and digest != entry.sha256:
            raise ZooError(f"{path} was not downloaded here and its sha256 {digest} is not "
                           f"the published {entry.sha256}; move it away and run again")
        meta = entry.sidecar(digest, entry.url)
        _write_sidecar(side, meta)
        return dict(meta, path=str(path)), "registered"
    if state == "corrupt":
        print(f"warning: {path} does not match its recorded sha256; downloading it again",
              file=sys.stderr)
        side.unlink(missing_ok=True)
    print(f"downloading {entry.name} ({entry.size}) from {source}", file=sys.stderr)
    got = fetch(source, path, sha256=entry.sha256, progress=progress,
                limits=Limits(max_bytes=cap_for(entry.size)))
    meta = entry.sidecar(got.sha256, source)
    _write_sidecar(side, meta)
    return dict(meta, path=str(path)), "downloaded"


def status(folder: str | Path | None = None) -> list[dict]:
    """Every registry entry as a dict (the :class:`ZooEntry` fields) with ``state`` (see
    :func:`file_state`) and ``path``; for ``translate zoo list``."""
    folder = zoo_dir(folder)
    return [dict(asdict(e), state=file_state(e.name, folder),
                 path=str(folder / f"{e.name}.pth")) for e in REGISTRY.values()]


def format_status(rows: list[dict]) -> str:
    lines = [f"{'name':38s} {'state':12s} {'size':8s} {'task':24s} direction"]
    for r in rows:
        lines.append(f"{r['name']:38s} {r['state']:12s} {r['size']:8s} {r['task']:24s} "
                     f"{r['direction']}")
    return "\n".join(lines)


__all__ = ["REGISTRY", "ZooEntry", "ZooError", "DownloadError", "cache_dir", "installed",
           "download", "status", "file_state", "lookup"]
