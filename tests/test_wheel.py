"""A normal install: the wheel holds the package, the demo app and the shipped models, and
`translate demo` from that install works in any folder; `python apps/app.py` starts the same
demo from a clone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install -e '.[demo]'")
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")
pytest.importorskip("setuptools", reason="building the wheel needs setuptools (dev extra)")

from test_demo import DemoServer, stand_in_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("translate", "apps", "models", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (the checkout is left untouched)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "--no-index", "-q", "-w", str(out)],
                   check=True, capture_output=True, timeout=300)
    (found,) = out.glob("translate-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable); the libraries it
    needs (torch, gradio, ...) are borrowed from this environment through a path file."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    # a path file only adds the folder: the editable install's finder there stays inactive
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return venv


def test_wheel_holds_package_app_and_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("translate/cli/main.py", "translate/train/loop.py",
                 "translate/infer/engine.py", "translate/apps/demo.py",
                 "translate/apps/app.py", "translate/apps/photos/CREDITS.md",
                 "translate/apps/photos/astronaut.jpg", "translate/models/README.md",
                 "translate/models/day2night.safetensors",
                 "translate/models/real2anime.safetensors"):
        assert name in names, name
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "translate").rglob("*.py")}
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    assert not any(n.startswith(("tests/", "apps/", "models/", "configs/")) for n in names)


def test_installed_demo_runs_from_any_folder(installed, tmp_path):
    python = installed / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import translate.apps, translate.models; "
         "from translate.apps.catalog import scan; c = scan(zoo=False); "
         "print(translate.apps.__file__); "
         "print(sorted((k, str(e.path)) for k, e in c.entries.items()))"],
        cwd=tmp_path, check=True, capture_output=True, text=True).stdout.splitlines()
    assert where[0].startswith(str(installed))  # the installed copy, not the checkout
    models = installed.glob("lib/python*/site-packages/translate/models")
    shipped = next(models)
    assert where[1] == str([(task, str(shipped / f"{task}.safetensors"))
                            for task in ("day2night", "real2anime")])
    demo = DemoServer(temp=tmp_path / "gradio", command=(str(installed / "bin" / "translate"),
                                                         "demo"), cwd=tmp_path)
    try:
        client = gradio_client.Client(demo.url, verbose=False)
        photo = ROOT / "apps" / "photos" / "coffee.jpg"
        result = client.predict(image=gradio_client.handle_file(str(photo)),
                                api_name="/day2night")
        from PIL import Image

        with Image.open(result) as out, Image.open(photo) as src:
            assert out.size == src.size
    finally:
        demo.stop()


def test_app_script_starts_the_demo(tmp_path):
    models = stand_in_models(tmp_path / "models")
    demo = DemoServer("--models", str(models), temp=tmp_path / "gradio",
                      command=(sys.executable, str(ROOT / "apps" / "app.py")), cwd=tmp_path)
    try:
        assert httpx.get(demo.url, timeout=30).status_code == 200
    finally:
        demo.stop()
