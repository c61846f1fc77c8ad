"""translate bench on a tiny model: every field is there and plausible."""

import json

import numpy as np

from conftest import run_cli


def test_bench_json_fields():
    proc = run_cli("bench", "--model", "cyclegan", "--size", "32", "--ngf", "4",
                   "--iterations", "2", "--warmup", "1", "--images", "4", "--workers", "1",
                   "--json", check=True)
    r = json.loads(proc.stdout)
    assert r["model"] == "cyclegan" and r["size"] == 32 and r["precision"] == "fp32"
    assert r["device_type"] == "cpu" and r["device"]
    t, c = r["train"], r["convert"]
    for value in (t["iterations_per_s"], t["images_per_s"], t["tflops"], t["mfu"],
                  t["peak_memory_mb"], c["model_images_per_s"], c["end_to_end_images_per_s"],
                  r["matmul_peak_tflops"], r["baseline"]["train_images_per_s"],
                  r["speedup"]["train"], r["speedup"]["convert"]):
        assert value > 0
    # FLOPs of one CycleGAN step: 4 generator and 4 discriminator passes at least
    assert t["flops_per_iteration"] > 1e6
    assert 0 < t["mfu"] < 1.5


def test_bench_table_pix2pix():
    proc = run_cli("bench", "--model", "pix2pix", "--size", "32", "--ngf", "4",
                   "--iterations", "1", "--warmup", "0", "--images", "2", "--workers", "0",
                   "--batch-size", "2", "--precision", "both", check=True)
    out = proc.stdout
    assert "pix2pix at 32 px, batch 2, fp32" in out and "pix2pix at 32 px, batch 2, bf16" in out
    for word in ("training", "peak memory", "folder to folder", "eager run", "speed-up",
                 "bf16 against fp32 in this run: training x"):
        assert word in out
    assert out.count("eager run") == 1  # measured once, with the first precision


def test_bench_times_the_real_loader_from_a_folder(shapes32):
    """--data: the loader alone and training fed by it; FLOPs of a steady-state step
    (at batch 1 the first pix2pix step has no mismatched pair yet, later ones do)."""
    proc = run_cli("bench", "--model", "pix2pix", "--size", "32", "--ngf", "4",
                   "--iterations", "3", "--warmup", "0", "--images", "2", "--workers", "1",
                   "--data", str(shapes32), "--no-baseline", "--json", check=True)
    r = json.loads(proc.stdout)
    folder = r["train"]["from_folder"]
    assert folder["loader_items_per_s"] > 0 and folder["train_images_per_s"] > 0
    assert folder["workers"] == 1
    table = run_cli("bench", "--model", "pix2pix", "--size", "32", "--ngf", "4",
                    "--iterations", "1", "--warmup", "0", "--images", "2", "--workers", "0",
                    "--data", str(shapes32), "--no-baseline", "--gpu-augment",
                    check=True).stdout
    assert "from folder  loader alone" in table and "decode only" in table


def test_bench_counts_flops_of_a_steady_state_step():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from translate.devices import pick_device
    from translate.train.bench import measure_training, recipe
    from translate.train.loop import train_step
    from translate.train.schedule import make_optimizers

    config = recipe("pix2pix", 32, 1, 4, pick_device("cpu"))
    method, result = measure_training(config, torch.device("cpu"), "fp32", 1, 0)
    optimizers, _ = make_optimizers(method, config)
    batch = {k: torch.rand(1, 3, 32, 32) * 2 - 1 for k in "ab"}
    with FlopCounterMode(display=False) as later:
        train_step(method, optimizers, batch)
    assert result["flops_per_iteration"] == later.get_total_flops()


def test_quality_benchmark_end_to_end(tmp_path):
    """benchmarks/quality.py on a tiny photo folder, a few iterations: a paired and an
    unpaired task are rendered, trained and scored, rows already measured are not run
    again, and the table keeps selection and validation apart."""
    import subprocess
    import sys

    from conftest import ROOT
    from translate.images import load_rgb, save_image

    photos = tmp_path / "photos"
    for split, names in (("train", ["coffee.jpg", "wine.jpg", "sunset.jpg", "chelsea.jpg"]),
                         ("test", ["astronaut.jpg"])):
        for name in names:
            rgb = load_rgb(ROOT / "apps" / "photos" / name)
            save_image(rgb[:256, :256], photos / split / name.replace(".jpg", ".png"))
    out = tmp_path / "rows.jsonl"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--photos", str(photos),
           "--data", str(tmp_path / "data"), "--iterations", "3", "--seeds", "0", "--jobs",
           "1", "--out", str(out), "--only", "photo2sketch:reference", "denoise:l1",
           "real2anime-unpaired:cut", "--keep", str(tmp_path / "keep")]
    env = {"OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=600)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["task"], r["recipe"], r["role"]) for r in rows) == [
        ("denoise", "l1", "validation"), ("photo2sketch", "reference", "selection"),
        ("real2anime-unpaired", "cut", "validation")]
    for r in rows:
        assert r["iterations"] == 3 and r["psnr"] > 0 and r["sharpness"] > 0
    assert next(r for r in rows if r["task"] == "photo2sketch")["line_continuity"] >= 0
    again = subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=600)
    assert again.stdout == b"" and len(out.read_text().splitlines()) == 3
    table = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"),
                            "--table", str(out)], check=True, capture_output=True, text=True,
                           env=env).stdout
    assert table.index("**selection tasks**") < table.index("**validation tasks**")
    assert "| photo2sketch | reference | 1 |" in table
    sheet_png = tmp_path / "sheet.png"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality_sheets.py"), "--data",
                    str(tmp_path / "data"), "--keep", str(tmp_path / "keep"), "--task",
                    "photo2sketch", "--recipes", "reference", "--out", str(sheet_png)],
                   check=True, capture_output=True, env=env, timeout=600)
    sheet = load_rgb(sheet_png)  # input | reference | target, then the 4x crops
    assert sheet.shape == (2 * (256 + 4), 3 * (256 + 4), 3)
    crop = sheet[260:260 + 256, :256].astype(int)  # the input's crop, nearest-neighbour 4x
    assert (crop == np.repeat(np.repeat(crop[::4, ::4], 4, 0), 4, 1)).all()


def test_anime_look_benchmark_compares_a_model_with_the_renderer(tmp_path):
    """benchmarks/anime_look.py on two small photos with the shipped model: every figure of
    the summary is there, the renderer flattens, and the sweep covers the sizes asked."""
    import subprocess
    import sys

    from conftest import ROOT
    from translate.images import load_rgb, save_image

    photos = tmp_path / "photos"
    for name in ("picosdeeuropa.jpg", "coffee.jpg"):
        save_image(load_rgb(ROOT / "apps" / "photos" / name)[:192, :256],
                   photos / name.replace(".jpg", ".png"))
    out = tmp_path / "rows.jsonl"
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "anime_look.py"), "--model",
                    str(ROOT / "models" / "real2anime.safetensors"), "--photos", str(photos),
                    "--threads", "1", "--sizes", "0.02,0.05", "--json", str(out)],
                   check=True, capture_output=True, env=env, timeout=600)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    summary = rows[-1]
    assert summary["photos"] == 2 and summary["flat_gained_renderer"] > 0.1
    assert summary["flat_ratio"] == summary["flat_gained_model"] / summary[
        "flat_gained_renderer"]
    assert summary["seconds_1mp"] > 0 and summary["psnr_gain_db"] == summary["psnr_gain_db"]
    assert set(summary["periodicity_by_size"]) == {"0.02", "0.05"}
    assert summary["rim_model_worst"] is not None  # the mountain photo's cloud is found
    assert 0 <= summary["crushed_model_worst"] < 0.01  # no black blobs from the shipped model
    assert len([r for r in rows if "megapixels" in r]) == 4


def test_crushed_figure_counts_black_drawn_where_the_photo_is_not_dark():
    """anime_look.crushed: a black blob on a mid-grey photo is its area; black where the
    photo is itself dark (a night sky, a black coat) does not count."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("anime_look",
                                                  ROOT / "benchmarks" / "anime_look.py")
    anime_look = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anime_look)
    photo = np.full((40, 50, 3), 90, np.uint8)
    photo[:, :10] = 8                        # the photo's own dark strip
    out = photo.copy()
    out[10:20, 20:40] = 0                    # a black blob on grey: 200 of 2000 pixels
    out[:, :10] = 0                          # black where the photo was dark already
    assert anime_look.crushed(photo, out) == 200 / 2000
    assert anime_look.crushed(photo, photo) == 0.0
