"""Make tests/data/legacy_v0: run folders written by translate before the package was split."""
import shutil, sys, json
from pathlib import Path
import numpy as np
from PIL import Image
import torch
from safetensors.torch import save_file, load_file
from translate.config import config_from_dict
from translate.trainer import train

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
rng = np.random.default_rng(0)
data = out / "data"
for split, n in (("train", 4), ("test", 2)):
    for name in ("A", "B"):
        (data / split / name).mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        b = 255 - a  # B is the inverted A
        Image.fromarray(a).save(data / split / "A" / f"{i}.png")
        Image.fromarray(b).save(data / split / "B" / f"{i}.png")

def cfg(model, run, iterations, extra):
    raw = {"model": model,
           "data": {"root": str(data), "layout": "paired", "load_size": 24, "crop_size": 16,
                    "workers": 0},
           "generator": {"arch": "resnet", "ngf": 4, "depth": 1},
           "discriminator": {"ndf": 4, "layers": 2},
           "train": {"iterations": iterations, "batch_size": 2, "out": str(run), "log_every": 1,
                     "sample_every": 0, "checkpoint_every": 2, "seed": 3, "device": "cpu",
                     "decay_from": 2, "precision": "fp32"}}
    for k, v in extra.items():
        raw.setdefault(k, {}).update(v)
    return config_from_dict(raw)

for model, extra in (("pix2pix", {"loss": {"l1": 50.0, "mismatch": 0.5}}),
                     ("cyclegan", {"loss": {"cycle": 5.0, "identity": 0.5},
                                   "train": {"pool_size": 3}})):
    run = out / f"{model}_run"
    c = cfg(model, run, 2, extra)
    c.train.out = str(run)
    train(c, progress=False)
    full = out / f"{model}_full"
    train(cfg(model, full, 4, extra), progress=False)
    for f in full.glob("generator_*.safetensors"):
        shutil.copy(f, out / f"{model}_step4_{f.name}")
    shutil.rmtree(full)
