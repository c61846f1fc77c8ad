"""``translate push``: a run's generators, or one exported file, as a Hugging Face Hub model
repository that ``translate convert --checkpoint hf://OWNER/REPO`` loads.

:func:`stage` writes the folder that is uploaded (the exported generator files, a
``README.md`` model card with the Hub's YAML front matter, the latest sample grid and the
resolved training config); :func:`upload` sends it in one commit. The token is
huggingface_hub's usual one (``HF_TOKEN``, or ``hf auth login``).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml

from translate.formats.checkpoint import (CheckpointError, load_generator,
                                          read_generator_metadata)
from translate.hub.hf import HubError, answered, endpoint, hub_module

TAGS = {"pix2pix": "pix2pix", "cyclegan": "cyclegan", "cut": "cut", "dclgan": "dclgan"}


def generator_files(source: Path) -> list[Path]:
    """The exported generators of a run folder, or ``source`` itself (a ``.safetensors``
    export of this project)."""
    if source.is_dir():
        files = sorted(source.glob("generator_*.safetensors"))
        if not files:
            raise HubError(f"{source} holds no exported generator (generator_*.safetensors); "
                           f"export it first: translate export {source}")
        return files
    if source.suffix != ".safetensors":
        raise HubError(f"{source}: push takes a run folder or an exported .safetensors file "
                       "(translate export makes one)")
    return [source]


def _metadata(path: Path) -> dict:
    """The file's metadata with its JSON entries parsed; a :class:`HubError` for a file
    that is not an export of this project or that holds NaN or infinite weights."""
    try:
        meta = read_generator_metadata(path)
        load_generator(path)  # refuses non-finite weights, as convert does
    except CheckpointError as err:
        raise HubError(f"{err}; nothing was published") from None
    out = dict(meta)
    for key in ("card", "config", "kwargs"):
        try:
            out[key] = json.loads(meta.get(key) or "{}")
        except ValueError:
            out[key] = {}
    return out


def _last_eval(run: Path) -> dict:
    """The last evaluation row of a run's metrics.jsonl ({} when none)."""
    rows = []
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and any(k.startswith("eval_") for k in row):
                rows.append(row)
    return rows[-1] if rows else {}


def front_matter(meta: dict, licence: str, datasets: list[str]) -> dict:
    method = meta.get("method", "")
    tags = ["translate", "image-to-image", "gan", *([TAGS[method]] if method in TAGS else [])]
    task = meta["card"].get("task")
    if isinstance(task, str):
        tags.append(task)
    out = {"library_name": "translate", "pipeline_tag": "image-to-image", "license": licence,
           "tags": tags}
    if datasets:
        out["datasets"] = datasets
    return out


def card_text(repo: str, metas: list[dict], licence: str, data: str, datasets: list[str],
              scores: dict) -> str:
    """README.md: YAML front matter, then what the model is, how it was trained, its
    figures and how to use it."""
    meta, card = metas[0], metas[0]["card"]
    title = card.get("title") or repo.split("/")[-1]
    lines = ["---", yaml.safe_dump(front_matter(meta, licence, datasets), sort_keys=False)
             .strip(), "---", "", f"# {title}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    directions = ", ".join(m.get("direction", "a2b") for m in metas)
    lines += ["| | |", "|---|---|",
              f"| method | {meta.get('method') or '?'} |",
              f"| generator | {meta.get('arch')} {json.dumps(meta['kwargs'], sort_keys=True)} |",
              f"| directions | {directions} |", f"| iterations | {meta.get('step', '?')} |",
              f"| training data | {data or card.get('trained_on') or 'not stated'} |", ""]
    if card.get("limits"):
        lines += ["## Limits", "", card["limits"], ""]
    figures = {k: v for k, v in {**(card.get("eval") or {}), **scores}.items()
               if _finite(v) is not None}
    if figures:
        lines += ["## Evaluation", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_finite(v):.4g} |" for k, v in figures.items()] + [""]
        where = (card.get("eval") or {}).get("data") or "the run's test split, at its last "\
            "evaluation"
        lines += [f"Measured on {where}.", ""]
    lines += ["## Use", "", "```bash", "pip install 'translate[hub]'",
              f"translate convert --checkpoint hf://{repo} --input photos/ --output out/",
              "```", "", "Made with translate (pix2pix, CycleGAN and CUT training, "
              "conversion and a demo)."]
    return "\n".join(lines) + "\n"


def _finite(value) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, NaN, infinite, or an
    integer beyond a float such as 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


LOCAL_PATHS = (("data", "root"), ("train", "out"))  # config keys holding this machine's paths


def _public_config(tree: dict) -> tuple[dict, list[str]]:
    """``tree`` (a config) with this machine's absolute paths replaced by their last
    folder's name, and the keys that held one."""
    tree = json.loads(json.dumps(tree))
    changed = []
    for section, key in LOCAL_PATHS:
        value = (tree.get(section) or {}).get(key) if isinstance(tree.get(section), dict) \
            else None
        if isinstance(value, str) and Path(value).is_absolute():
            tree[section][key] = Path(value).name
            changed.append(f"{section}.{key}")
    return tree, changed


def stage(source: str | Path, repo: str, folder: str | Path, licence: str = "other",
          data: str = "", datasets: list[str] | None = None,
          notes: list[str] | None = None) -> list[Path]:
    """Write everything :func:`upload` would send for ``source`` into ``folder`` (new, or
    an empty folder): into a hidden folder beside it first, moved into place whole, so a
    failure or a signal leaves nothing half-written. Returns the files written (their
    final paths); ``notes`` receives what a person should know (local paths)."""
    source, folder = Path(source), Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise HubError(f"{folder} is {'a link' if folder.is_symlink() else 'a file'}; name a "
                       "new folder")
    if folder.exists() and any(folder.iterdir()):
        raise HubError(f"{folder} is not empty; name a new folder")
    files = generator_files(source)
    metas = [_metadata(f) for f in files]
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        names = _stage_into(work, source, repo, files, metas, licence, data,
                            datasets or [], notes if notes is not None else [])
        if folder.exists():
            folder.rmdir()  # empty, checked above
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return [folder / n for n in names]


def _stage_into(work: Path, source: Path, repo: str, files: list[Path], metas: list[dict],
                licence: str, data: str, datasets: list[str], notes: list[str]
                ) -> list[str]:
    written = []
    for f in files:
        shutil.copy2(f, work / f.name)
        written.append(f.name)
    run = source if source.is_dir() else None
    scores = {k[5:]: v for k, v in _last_eval(run).items()
              if k.startswith("eval_") and _finite(v) is not None} if run else {}
    grids = [g for g in sorted((run / "samples").glob("step_*.png")) if _plain_file(g)] \
        if run else []
    if grids:  # the latest plain file: a link could point anywhere (a secrets file)
        (work / "samples").mkdir()
        shutil.copyfile(grids[-1], work / "samples" / "latest.png")
        written.append("samples/latest.png")
    tree = yaml.safe_load((run / "config.yaml").read_text()) \
        if run and _plain_file(run / "config.yaml") else metas[0]["config"]
    if isinstance(tree, dict) and tree:
        tree, changed = _public_config(tree)
        if changed:
            notes.append(f"config.yaml: {', '.join(changed)} held this machine's paths; "
                         "published as the folders' names only (the generator files' "
                         "metadata still holds the paths they were exported with)")
        (work / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
        written.append("config.yaml")
    (work / "README.md").write_text(card_text(repo, metas, licence, data, datasets, scores))
    return ["README.md", *written]


def upload(folder: str | Path, repo: str, private: bool = False,
           message: str = "Upload with translate push") -> str:
    """Create ``repo`` if needed and commit ``folder`` to it; returns the commit URL."""
    hf = hub_module()
    errors = __import__("huggingface_hub.errors", fromlist=["HfHubHTTPError"])
    api = hf.HfApi(endpoint=endpoint())
    try:
        answered(lambda: api.create_repo(repo, private=private, exist_ok=True), repo)
        info = api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message=message)
    except errors.HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        hint = " (log in with `hf auth login` or set HF_TOKEN)" if status in (401, 403) else ""
        raise HubError(f"pushing to {repo} failed: {err}{hint}") from None
    return str(getattr(info, "commit_url", info))
