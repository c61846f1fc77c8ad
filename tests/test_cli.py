"""The command line end to end, as a user runs it: train -> export -> convert."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from translate.formats.checkpoint import read_generator_metadata

from conftest import run_cli


@pytest.fixture(scope="module")
def trained(shapes32, tmp_path_factory):
    """A tiny pix2pix trained through the CLI (b2a, so direction handling is exercised)."""
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "tiny.yaml"
    config.write_text(f"""
model: pix2pix
data: {{root: {shapes32}, load_size: 36, crop_size: 32, workers: 0, direction: b2a}}
generator: {{ngf: 8, depth: 5}}
discriminator: {{ndf: 8, layers: 2}}
train: {{iterations: 20, batch_size: 2, log_every: 10, sample_every: 10,
        checkpoint_every: 10, out: {folder / 'run'}}}
""")
    proc = run_cli("train", str(config), "--quiet", check=True)
    assert str(folder / "run") in proc.stdout
    return folder / "run"


def test_run_folder_contents(trained):
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/latest.pt",
                 "generator_b2a.safetensors", "samples/step_000010.png",
                 "samples/step_000020.png"):
        assert (trained / name).is_file(), name
    meta = read_generator_metadata(trained / "generator_b2a.safetensors")
    assert meta["direction"] == "b2a" and meta["arch"] == "unet"
    assert meta["value_range"] == "[-1, 1]" and meta["method"] == "pix2pix"
    assert '"ngf": 8' in meta["kwargs"] and meta["translate_version"]


def test_help_lists_only_working_commands():
    out = run_cli("--help", check=True).stdout
    for cmd in ("train", "export", "convert"):
        assert cmd in out


def tree(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def test_export_then_convert_a_folder(trained, tmp_path):
    exported = tmp_path / "models" / "facades.safetensors"
    run_cli("export", str(trained), "--dtype", "fp16", "--out", str(exported), check=True)
    meta = read_generator_metadata(exported)
    assert meta["direction"] == "b2a"

    src = tmp_path / "photos"
    rng = np.random.default_rng(0)
    sizes = {"a.png": (7, 13), "sub/b.jpg": (33, 20), "sub/deeper/c.png": (1, 1),
             "d.webp": (64, 40)}
    for name, (h, w) in sizes.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(src / name)
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    before = tree(src)

    out = tmp_path / "converted"
    proc = run_cli("convert", "--checkpoint", str(exported), "--input", str(src),
                   "--output", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr  # some files failed, the rest were written
    assert "notes.txt" in proc.stderr and "broken.png" in proc.stderr
    assert "converted 4 image(s)" in proc.stderr
    for name, (h, w) in sizes.items():
        with Image.open(out / name) as img:
            assert img.size == (w, h), name
    assert tree(src) == before  # inputs untouched


def test_convert_from_run_folder_and_single_file(trained, tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.full((30, 50, 3), 128, np.uint8)).save(img)
    proc = run_cli("convert", "--checkpoint", str(trained), "--input", str(img),
                   "--output", str(tmp_path / "o"), "--quiet", check=True)
    assert "b2a" in proc.stderr
    with Image.open(tmp_path / "o" / "in.png") as out:
        assert out.size == (50, 30)


def test_convert_refuses_to_write_into_its_input(trained, tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "x.png")
    for target in (src, src / "out"):
        proc = run_cli("convert", "--checkpoint", str(trained), "--input", str(src),
                       "--output", str(target))
        assert proc.returncode == 2
        assert "inside the input folder" in proc.stderr
    assert [p.name for p in src.iterdir()] == ["x.png"]


def test_convert_wrong_direction(trained, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    proc = run_cli("convert", "--checkpoint", str(trained), "--direction", "a2b",
                   "--input", str(tmp_path / "x.png"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no a2b generator" in proc.stderr


def test_train_errors_are_clear(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("data: {root: " + str(tmp_path / "missing") + "}\n"
                      "train: {out: " + str(tmp_path / "r") + "}\n")
    proc = run_cli("train", str(config), "generator.depth=5", "data.crop_size=32",
                   "data.load_size=32")
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
    assert "ROOT/train/A/NAME.png" in proc.stderr
    proc = run_cli("train", str(config), "train.lrr=1")
    assert proc.returncode == 2 and "valid keys in 'train'" in proc.stderr


def test_convert_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"not safetensors")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    proc = run_cli("convert", "--checkpoint", str(bogus), "--input", str(tmp_path / "x.png"),
                   "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not a readable safetensors file" in proc.stderr


def test_cyclegan_two_folders_resume_and_convert_both_ways(tmp_path):
    rng = np.random.default_rng(1)
    # domains of different sizes, image sizes and aspect ratios
    for domain, count, shape, ext in (("trainA", 6, (30, 44, 3), ".png"),
                                      ("trainB", 3, (50, 20, 3), ".jpg")):
        (tmp_path / "data" / domain).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(
                tmp_path / "data" / domain / f"{i}{ext}")
    config = tmp_path / "cg.yaml"
    config.write_text(f"""
model: cyclegan
data: {{root: {tmp_path / 'data'}, load_size: 36, crop_size: 32, workers: 0}}
generator: {{ngf: 4, depth: 2}}
discriminator: {{ndf: 4, layers: 2}}
train: {{iterations: 4, decay_from: 4, log_every: 2, sample_every: 4, checkpoint_every: 2,
        out: {tmp_path / 'run'}}}
""")
    run_cli("train", str(config), "--quiet", check=True)
    run_cli("train", str(tmp_path / "run"), "--resume", "train.iterations=8", "--quiet",
            check=True)
    steps = [int(line.split('"step": ')[1].split(",")[0])
             for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    for direction in ("a2b", "b2a"):
        meta = read_generator_metadata(tmp_path / "run" / f"generator_{direction}.safetensors")
        assert meta["direction"] == direction and meta["method"] == "cyclegan"
        out = tmp_path / f"out_{direction}"
        src = tmp_path / "data" / ("trainA" if direction == "a2b" else "trainB")
        proc = run_cli("convert", "--checkpoint", str(tmp_path / "run"), "--direction",
                       direction, "--input", str(src), "--output", str(out), "--quiet",
                       check=True)
        assert direction in proc.stderr
        for f in src.iterdir():
            with Image.open(f) as a, Image.open(out / f.name) as b:
                assert a.size == b.size


def test_light_subcommands_do_not_import_torch():
    """--help, data list and zoo list answer without importing PyTorch (seconds saved on
    every call); a usage error from a heavy module still exits 2 with its message."""
    import subprocess
    import sys
    code = ("import sys; from translate.cli.main import main\n"
            "for argv in (['data', 'list'], ['zoo', 'list']):\n"
            "    assert main(argv) == 0, argv\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    bad = run_cli("convert", "--checkpoint", "nowhere.safetensors", "--input", "x",
                  "--output", "y")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_export_replaces_only_its_own_files(trained, tmp_path):
    """An existing --out: an earlier export is replaced; a user's file, a link or a folder
    is refused with exit status 2 and left as it was (--overwrite: regular files only);
    --out naming a file where the export needs a folder is explained."""
    import os

    ours = tmp_path / "ours.safetensors"
    run_cli("export", str(trained), "--out", str(ours), check=True)
    run_cli("export", str(trained), "--out", str(ours), check=True)  # its own: replaced
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"my own file")
    link = tmp_path / "link.safetensors"
    link.symlink_to(mine)
    (tmp_path / "folder.safetensors").mkdir()
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for target, said in ((mine, "add --overwrite"), (link, "not a regular file"),
                         (tmp_path / "folder.safetensors", "not a regular file"),
                         (fifo, "not a regular file")):
        proc = run_cli("export", str(trained), "--out", str(target), timeout=60)
        assert proc.returncode == 2 and said in proc.stderr, (target, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert mine.read_bytes() == b"my own file" and link.is_symlink() and fifo.is_fifo()
    proc = run_cli("export", str(trained), "--out", str(link), "--overwrite")
    assert proc.returncode == 2 and link.is_symlink()
    run_cli("export", str(trained), "--out", str(mine), "--overwrite", check=True)
    assert read_generator_metadata(mine)["direction"] == "b2a"
    onnx = run_cli("export", str(trained), "--format", "onnx", "--out", str(mine))
    assert onnx.returncode == 2 and "is a file" in onnx.stderr and "Traceback" not in onnx.stderr
