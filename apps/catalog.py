"""Which models the demo offers, and the translators it has loaded.

Sources, in dropdown order:

1. the shipped defaults, ``models/<task>.safetensors`` in the source tree (or
   ``<task>.safetensors`` in the ``--models`` folder, which then takes precedence);
2. every exported generator (``*.safetensors``, searched recursively) in the models folder;
3. downloaded zoo models (:func:`translate.hub.zoo.installed`) whose task is one of the demo's.

An exported file's metadata card (``{"task": ..., "title": ..., "summary": ..., ...}``)
decides its tab: a card with a task goes to that task's tab, a file without a task goes to
every tab (labelled by its file name). Only the metadata header is read when scanning;
weights are loaded on first use and cached per file (:class:`TranslatorCache`).

A model is chosen by its key (the dropdown value), never by a path, so a request can only
name models this catalog listed.
"""

from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translate.formats.checkpoint import CheckpointError, read_generator_metadata
from translate.devices import pick_device
from translate.infer.engine import Translator

TASKS = {"real2anime": "Real → Anime", "day2night": "Day → Night"}
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"


class UnknownModel(ValueError):
    """A model key that the catalog does not list (for this tab)."""


@dataclass(frozen=True)
class ModelEntry:
    """One model the demo can run. ``task`` is None when the file does not say."""

    key: str                    # unique; the dropdown value and the API's ``model``
    path: Path
    task: str | None
    source: str                 # "shipped", "folder" or "zoo"
    card: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)  # arch, direction, method, step

    @property
    def face_size(self) -> int:
        """> 0 for a face model (trained on face crops of this side): face mode by default."""
        try:
            return max(0, int(self.card.get("face_size") or 0))
        except (TypeError, ValueError):
            return 0


@dataclass
class Catalog:
    entries: dict[str, ModelEntry]            # key -> entry, in dropdown order
    defaults: dict[str, str | None]           # task -> key of the preselected model
    skipped: list[tuple[Path, str]]           # files that are not usable, and why
    notes: list[str]

    def for_task(self, task: str) -> list[ModelEntry]:
        """Entries shown in ``task``'s tab: that task's models, then models without a task;
        the default first."""
        chosen = [e for e in self.entries.values() if e.task in (task, None)]
        default = self.defaults.get(task)
        return sorted(chosen, key=lambda e: (e.key != default, e.task is None))

    def lookup(self, key: str | None, task: str | None = None) -> ModelEntry:
        """The entry called ``key`` (the task's default when empty); :class:`UnknownModel`
        naming the valid keys otherwise. With ``task``, only that tab's models are valid."""
        valid = self.for_task(task) if task else list(self.entries.values())
        if not key and task:
            key = self.defaults.get(task)
        for entry in valid:
            if entry.key == key:
                return entry
        if not valid:
            raise UnknownModel(f"no model for {task or 'any task'} is installed: export one "
                               "into the models folder (translate demo --models FOLDER)")
        names = ", ".join(repr(e.key) for e in valid)
        raise UnknownModel(f"unknown model {key!r}; choose one of: {names}")


def _card(meta: dict[str, str]) -> dict[str, Any]:
    try:
        card = json.loads(meta.get("card") or "{}")
    except json.JSONDecodeError:
        return {}
    return card if isinstance(card, dict) else {}


def _exported_entry(path: Path, source: str) -> ModelEntry:
    meta = read_generator_metadata(path)
    card = _card(meta)
    task = card.get("task") if isinstance(card.get("task"), str) else None
    facts = {k: meta[k] for k in ("arch", "direction", "method", "step") if meta.get(k)}
    return ModelEntry(key="", path=path, task=task, source=source, card=card, facts=facts)


def _zoo_entries(notes: list[str]) -> list[ModelEntry]:
    try:
        from translate.hub.zoo import installed
    except ImportError:
        return []
    try:
        items = installed()
    except Exception as err:  # a broken zoo folder must not stop the demo
        notes.append(f"zoo models not listed: {err}")
        return []
    entries = []
    for item in items:
        if item.get("task") not in TASKS or not item.get("path"):
            continue
        card = zoo_card(item)
        entries.append(ModelEntry(key=f"zoo: {item.get('name') or Path(item['path']).stem}",
                                  path=Path(item["path"]), task=item["task"], source="zoo",
                                  card=card))
    return entries


def _hub_entries(skipped: list[tuple[Path, str]]) -> list[ModelEntry]:
    """Self-describing models downloaded from the Hugging Face Hub (``translate zoo
    download hf://OWNER/REPO``), labelled with their pinned reference."""
    from translate.hub.hf import remembered

    entries = []
    for item in remembered():
        path = Path(item["path"])
        if path.suffix != ".safetensors":
            continue
        try:
            entry = _exported_entry(path, "hub")
        except CheckpointError as err:
            skipped.append((path, str(err)))
            continue
        ref, _, rest = item["ref"].partition("@")
        label = f"{ref}@{rest[:7]}{rest[40:]}" if len(rest) >= 40 else item["ref"]
        entries.append(ModelEntry(label, path, entry.task, "hub", entry.card, entry.facts))
    return entries


def zoo_card(item: dict) -> dict[str, Any]:
    """The card of a downloaded zoo model: its registry entry's description, source,
    licence and face size."""
    from translate.hub.zoo import REGISTRY

    known = REGISTRY.get(item.get("name", ""))
    card = {"title": item.get("name", ""), "summary": item.get("description", ""),
            "task": item["task"], "kind": item.get("kind", "")}
    if known is not None:
        card.update({"source": known.homepage, "licence": known.licence})
        if known.face_size:
            card["face_size"] = known.face_size
            card["limits"] = ("Made for faces: it expects a centred face crop, which face "
                              "mode makes; whole scenes come out poorly.")
    return card


def zoo_offers(task: str) -> list:
    """The zoo's published models for ``task`` (:class:`translate.hub.zoo.ZooEntry`)."""
    from translate.hub.zoo import REGISTRY

    return [e for e in REGISTRY.values() if e.task == task]


def _label(entry: ModelEntry, root: Path | None) -> str:
    if entry.key:
        return entry.key
    if entry.source == "shipped" or root is None:
        return f"{entry.path.stem} (shipped)"
    return entry.path.relative_to(root).with_suffix("").as_posix()


def scan(models_dir: str | Path | None = None, shipped_dir: str | Path | None = SHIPPED_DIR,
         zoo: bool = True) -> Catalog:
    """List the models the demo offers (see the module docstring). ``models_dir`` defaults
    to the shipped folder; a missing folder is a note, not an error."""
    shipped_dir = Path(shipped_dir) if shipped_dir else None
    root = Path(models_dir) if models_dir else shipped_dir
    skipped: list[tuple[Path, str]] = []
    notes: list[str] = []
    found: list[tuple[ModelEntry, Path | None]] = []
    seen: set[Path] = set()

    def add(path: Path, source: str, base: Path | None) -> None:
        if path.resolve() in seen:
            return
        seen.add(path.resolve())
        try:
            found.append((_exported_entry(path, source), base))
        except CheckpointError as err:
            skipped.append((path, str(err)))

    for task in TASKS:
        for folder, source in ((root, "folder"), (shipped_dir, "shipped")):
            if folder and (folder / f"{task}.safetensors").is_file():
                add(folder / f"{task}.safetensors", source, folder)
    if root and root.is_dir():
        for path in sorted(root.rglob("*.safetensors")):
            if not any(p.startswith(".") for p in path.relative_to(root).parts):
                add(path, "folder", root)
    elif root:
        notes.append(f"models folder {root} does not exist")
    if zoo:
        found += [(e, None) for e in _zoo_entries(notes) if e.path.resolve() not in seen]
        found += [(e, None) for e in _hub_entries(skipped) if e.path.resolve() not in seen]

    entries: dict[str, ModelEntry] = {}
    for entry, base in found:
        key = _label(entry, base)
        if key in entries:
            key = f"{key} ({entry.path})"
        entries[key] = ModelEntry(key, entry.path, entry.task, entry.source, entry.card,
                                  entry.facts)
    defaults = {task: _default(entries, root, shipped_dir, task) for task in TASKS}
    return Catalog(entries, defaults, skipped, notes)


def _default(entries: dict[str, ModelEntry], root: Path | None, shipped: Path | None,
             task: str) -> str | None:
    """``<task>.safetensors`` of the models folder, else the shipped one, else the first
    model of the task, else the first model without a task."""
    for folder in (root, shipped):
        if folder is None:
            continue
        wanted = (folder / f"{task}.safetensors").resolve()
        for entry in entries.values():
            if entry.path.resolve() == wanted and entry.task in (task, None):
                return entry.key
    for match in (task, None):
        for entry in entries.values():
            if entry.task == match:
                return entry.key
    return None


def plain(text: Any) -> str:
    """``text`` to show as it is in Markdown: HTML escaped, and the characters that make
    images, links, code, emphasis or table cells shown as themselves, so that a model file
    cannot make the page fetch from elsewhere or reshape it. Underscores inside words
    (``face_paint_512``) are left alone: they make no emphasis."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"([\\`*\[\]|~!])", r"\\\1", text)
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def _cell(value: Any) -> str:
    """A card value as plain text on one line (see :func:`plain`)."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(_number(v)) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {_number(v)}" for k, v in value.items())
    else:
        text = str(value)
    return plain(text.replace("\n", " "))


def _number(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


# plain-language names of the figures a card may hold, and how to show them
_FIGURES = (
    ("eval", "psnr", "identity_psnr", "Match to its targets (PSNR)", "{:.1f} dB",
     "the photo unchanged: {:.1f} dB"),
    ("eval", "ssim", "identity_ssim", "Structure match (SSIM, 1 = same)", "{:.3f}",
     "the photo unchanged: {:.3f}"),
    ("artefacts", "periodicity_median", "periodicity_worst",
     "Lattice pattern (1 = none added; median)", "{:.2f}", "worst photo: {:.2f}"),
    ("artefacts", "hallucination_median", "hallucination_worst",
     "Edges not in the photo (0 = none; median)", "{:.3f}", "worst photo: {:.3f}"),
    ("artefacts", "fidelity_median", "fidelity_worst",
     "Edges kept from the photo (1 = all; median)", "{:.2f}", "worst photo: {:.2f}"),
    ("artefacts", "flattening_median", "flattening_worst",
     "Flat area gained (0 = as the photo; median)", "{:+.2f}", "least: {:+.2f}"),
)
_DETAILS = (("method", "Method"), ("recipe", "Recipe"),
            ("data", "Data commands"), ("iterations", "Iterations"),
            ("training_minutes", "Training time (minutes)"), ("hardware", "Hardware"),
            ("kind", "Kind"), ("source", "Source"), ("licence", "Licence"),
            ("face_size", "Face crop size (pixels)"))


def _figure_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for group, key, base, label, fmt, base_fmt in _FIGURES:
        values = card.get(group) if isinstance(card.get(group), dict) else {}
        if isinstance(values.get(key), (int, float)):
            text = fmt.format(values[key])
            if isinstance(values.get(base), (int, float)):
                text += f" ({base_fmt.format(values[base])})"
            rows.append((label, text))
    for group in ("eval", "artefacts"):
        if isinstance(card.get(group), dict) and card[group].get("data"):
            rows.append((f"Scored on ({group})", _cell(card[group]["data"])))
    return rows


def _detail_rows(entry: ModelEntry) -> list[tuple[str, str]]:
    card, rows = entry.card, []
    for key, label in _DETAILS:
        if card.get(key) not in ("", None, [], {}):
            rows.append((label, _cell(card[key])))
    known = {k for k, _ in _DETAILS} | {"title", "summary", "limits", "trained_on", "task",
                                        "eval", "artefacts"}
    rows += [(plain(k), _cell(v)) for k, v in card.items()
             if k not in known and v not in ("", None, [], {})]
    rows += [(plain(k), plain(v)) for k, v in entry.facts.items() if k not in card]
    rows.append(("File", plain(entry.path.name)))
    return rows


def card_markdown(entry: ModelEntry | None) -> str:
    """The model card for people: title, what it does, what it is not for, what it was
    trained on; then the figures and details in a table that opens on a click."""
    if entry is None:
        return ("**No model for this task yet.** Download one below, train one and export "
                "it into `models/`, or start the demo with `--models FOLDER`.")
    card = entry.card
    lines = [f"### {_cell(card.get('title') or entry.path.name)}"]
    if card.get("summary"):
        lines += ["", _cell(card["summary"])]
    if card.get("limits"):
        lines += ["", f"**Not for:** {_cell(card['limits'])}"]
    if card.get("trained_on"):
        lines += ["", f"**Trained on:** {_cell(card['trained_on'])}"]
    if not card.get("task"):
        lines += ["", "*This file does not say what it was trained for.*"]
    rows = _figure_rows(card) + _detail_rows(entry)
    table = ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "<details><summary>Figures and details</summary>", "", *table, "",
              "</details>"]
    return "\n".join(lines)


class TranslatorCache:
    """Loaded translators, one per model file, shared by all requests (thread-safe)."""

    def __init__(self, device: str = "auto"):
        self.device = str(pick_device(device))
        self._lock = threading.Lock()
        self._loaded: dict[Path, Translator] = {}

    def get(self, entry: ModelEntry) -> Translator:
        with self._lock:
            translator = self._loaded.get(entry.path)
            if translator is None:
                translator = Translator.from_checkpoint(entry.path, device=self.device,
                                                        precision="auto")
                self._loaded[entry.path] = translator
            return translator

    def __len__(self) -> int:
        return len(self._loaded)
