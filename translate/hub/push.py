"""``translate push``: a run's generators, or one exported file, as a Hugging Face Hub model
repository that ``translate convert --checkpoint hf://OWNER/REPO`` loads.

:func:`stage` writes the folder that is uploaded (the exported generator files, a
``README.md`` model card with the Hub's YAML front matter, the latest sample grid and the
resolved training config); :func:`upload` sends it in one commit. The token is
huggingface_hub's usual one (``HF_TOKEN``, or ``hf auth login``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from translate.formats.checkpoint import CheckpointError, read_generator_metadata
from translate.hub.hf import HubError, endpoint, hub_module

TAGS = {"pix2pix": "pix2pix", "cyclegan": "cyclegan", "cut": "cut"}


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
    try:
        meta = read_generator_metadata(path)
    except CheckpointError as err:
        raise HubError(str(err)) from None
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
    figures = {**{k: v for k, v in (card.get("eval") or {}).items()
                  if isinstance(v, (int, float))}, **scores}
    if figures:
        lines += ["## Evaluation", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in figures.items()] + [""]
        where = (card.get("eval") or {}).get("data") or "the run's test split, at its last "\
            "evaluation"
        lines += [f"Measured on {where}.", ""]
    lines += ["## Use", "", "```bash", "pip install 'translate[hub]'",
              f"translate convert --checkpoint hf://{repo} --input photos/ --output out/",
              "```", "", "Made with translate (pix2pix, CycleGAN and CUT training, "
              "conversion and a demo)."]
    return "\n".join(lines) + "\n"


def stage(source: str | Path, repo: str, folder: str | Path, licence: str = "other",
          data: str = "", datasets: list[str] | None = None) -> list[Path]:
    """Write everything :func:`upload` would send for ``source`` into ``folder`` (new or
    empty). Returns the files written."""
    source, folder = Path(source), Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise HubError(f"{folder} is not empty; name a new folder")
    files = generator_files(source)
    metas = [_metadata(f) for f in files]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        written.append(Path(shutil.copy2(f, folder / f.name)))
    run = source if source.is_dir() else None
    scores = {k[5:]: v for k, v in _last_eval(run).items()
              if k.startswith("eval_") and isinstance(v, (int, float))} if run else {}
    grids = sorted((run / "samples").glob("step_*.png")) if run else []
    if grids:
        (folder / "samples").mkdir()
        written.append(Path(shutil.copy2(grids[-1], folder / "samples" / "latest.png")))
    config = (run / "config.yaml").read_text() if run and (run / "config.yaml").is_file() \
        else (yaml.safe_dump(metas[0]["config"], sort_keys=False) if metas[0]["config"] else "")
    if config:
        (folder / "config.yaml").write_text(config)
        written.append(folder / "config.yaml")
    readme = folder / "README.md"
    readme.write_text(card_text(repo, metas, licence, data, datasets or [], scores))
    return [readme, *written]


def upload(folder: str | Path, repo: str, private: bool = False,
           message: str = "Upload with translate push") -> str:
    """Create ``repo`` if needed and commit ``folder`` to it; returns the commit URL."""
    hf = hub_module()
    errors = __import__("huggingface_hub.errors", fromlist=["HfHubHTTPError"])
    api = hf.HfApi(endpoint=endpoint())
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message=message)
    except errors.HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        hint = " (log in with `hf auth login` or set HF_TOKEN)" if status in (401, 403) else ""
        raise HubError(f"pushing to {repo} failed: {err}{hint}") from None
    return str(getattr(info, "commit_url", info))
