"""The manual (mkdocs.yml, docs/) and the README: the site builds with --strict (no broken
links, anchors or API references), the configuration reference lists every key of the typed
config, the command blocks marked runnable run, and the README stays a short front page."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from translate.train.config import Config, _section_classes
from translate.train.methods import METHODS

DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```(bash|python)\n(.*?)\n```", re.S)


def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="needs the docs extra (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="needs the docs extra")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("translate.infer.engine.Translator", "translate.train.loop.train",
                 "translate.infer.convert.convert", "translate.train.config.load_config"):
        assert f'id="{name}"' in api, name  # rendered from the docstrings
    roles = re.findall(r":(?:mod|func|meth|class|data|attr|exc):(?:`|<code>)", api)
    assert not roles, f"Sphinx roles shown raw in the API reference: {roles[:5]}"
    assert "<code>translate.devices.cpu_bf16_units()</code>" in api  # a role made code


def documented_keys(text: str) -> set[str]:
    """Keys named in the first cell of the reference's table rows; ``.layers`` after
    ``discriminator.ndf`` in one cell means ``discriminator.layers``."""
    keys = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        prefix = ""
        for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if token.startswith(".") and prefix:
                token = prefix + token
            prefix = token.rsplit(".", 1)[0] if "." in token else ""
            keys.add(token)
    return keys


def code_keys() -> set[str]:
    keys = {"model"}
    for section, cls in _section_classes().items():
        keys |= {f"{section}.{f.name}" for f in dataclasses.fields(cls)
                 if not f.name.startswith("_")}
    for method in METHODS.values():
        keys |= {f"method.{f.name}" for f in dataclasses.fields(method.options())}
    return keys


def test_the_configuration_reference_lists_every_key():
    documented = documented_keys((DOCS / "config.md").read_text())
    missing = sorted(code_keys() - documented)
    assert not missing, f"keys of the typed config not in docs/config.md: {missing}"
    unknown = sorted(k for k in documented - code_keys() if "." in k and
                     k.split(".")[0] in {*_section_classes(), "method"})
    assert not unknown, f"docs/config.md names keys the config does not have: {unknown}"


def runnable_blocks() -> list[tuple[str, int, str, str]]:
    """(page, index, language, text) of every block marked runnable."""
    blocks = []
    for page in sorted(DOCS.glob("*.md")):
        for k, match in enumerate(RUNNABLE.finditer(page.read_text())):
            blocks.append((page.name, k, match.group(1), match.group(2)))
    return blocks


def test_there_are_runnable_blocks():
    blocks = runnable_blocks()
    assert len(blocks) >= 5
    assert {"getting-started.md", "python-api.md"} <= {page for page, *_ in blocks}


@pytest.mark.parametrize("page,index,language,block", runnable_blocks(),
                         ids=[f"{p}-{k}" for p, k, *_ in runnable_blocks()])
def test_runnable_blocks_run(page, index, language, block, tmp_path):
    """Each block runs as written, as a user runs it (the environment active, nothing of
    the suite's own settings), in a fresh folder that holds the repository's configs/,
    models/ and apps/: bash blocks with bash, python blocks with the environment's
    Python."""
    for name in ("configs", "models", "apps"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = user_environment()
    command = (["bash", "-euo", "pipefail", "-c", block] if language == "bash"
               else [sys.executable, "-c", block])
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{page} block {index} failed:\n{proc.stdout}\n{proc.stderr}"


def user_environment() -> dict[str, str]:
    """The environment a user has with the virtual environment active: this one, without
    the variables that change what the project does (TRANSLATE_*), with the environment's
    bin/ first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSLATE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_readme_is_a_short_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024
    first = text[:text.index("```", text.index("```bash") + 7)]
    assert ".venv/bin/translate demo" in first and ".venv/bin/python -m pytest" in first
    for link in re.findall(r"\]\(([^)#]+)", text):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_the_quickstart_example_runs_as_written(tmp_path):
    """examples/quickstart.py as the getting-started page tells a user to run it, with
    nothing overridden (on a CPU with bf16 units its conversion takes the bf16 path): it
    trains, converts, and the model beats returning the input unchanged by far."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                          cwd=tmp_path, env=user_environment(), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"held-out PSNR to the true targets: ([\d.]+) dB \(returning the input "
                      r"unchanged: ([\d.]+) dB\)", proc.stdout)
    assert found, proc.stdout
    model, unchanged = float(found[1]), float(found[2])
    assert model > unchanged + 15, (model, unchanged)  # measured: 29.2 against 7.4
    assert len(list((tmp_path / "quickstart" / "converted").glob("*.png"))) == 16
