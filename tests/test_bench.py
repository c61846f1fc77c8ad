"""translate bench on a tiny model: every field is there and plausible."""

import json

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
                   "--batch-size", "2", check=True)
    out = proc.stdout
    assert "pix2pix at 32 px, batch 2, fp32" in out
    for word in ("training", "peak memory", "folder to folder", "baseline", "speed-up"):
        assert word in out
