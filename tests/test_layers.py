"""The package's import rule (README, "Architecture"), written as import-linter contracts in
pyproject.toml: layers import only downwards, the demo app never imports training, and no
module imports another that imports it back (no circles, also inside a layer)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="the import check needs the dev extra "
                            "(pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(folder / "pyproject.toml"),
                           "--no-cache"], cwd=folder, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)})


def test_import_contracts_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """The check can fail: inference importing training is reported, with the import."""
    for name in ("translate", "apps"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "photos"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    tiling = tmp_path / "translate" / "infer" / "tiling.py"
    tiling.write_text(tiling.read_text() + "\nfrom translate.train import loop  # noqa\n")
    proc = lint(tmp_path)
    assert proc.returncode != 0
    assert "translate.infer.tiling -> translate.train.loop" in proc.stdout


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Import circles among ``modules`` (depth-first search; each reported once)."""
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_circles():
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph("translate", "apps", cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    modules = {m for m in graph.modules if m not in ("translate", "apps")}
    # a package's __init__ importing its own modules (a registry) is not a circle
    packages = {m for m in modules if any(o.startswith(m + ".") for o in modules)}
    assert _cycles(graph, modules - packages) == []


def test_library_functions_fit_on_a_screen():
    """No function of the package or the demo app is over 60 lines."""
    import ast

    long = []
    for path in sorted([*(ROOT / "translate").rglob("*.py"), *(ROOT / "apps").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert long == []
