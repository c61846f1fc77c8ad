"""Which training recipe translates best, measured so that choosing cannot overfit: tasks
rendered from real photographs, split into *selection* tasks (used to choose recipes) and
*validation* tasks (never used to choose; reported apart), at a realistic budget (2000
iterations at 128 px, batch 1, the paper's U-Net-128 at ngf 32), 3 seeds, fp32.

The photos are ``translate data photos`` (34 training and 8 held-out photos, disjoint).
Each paired task renders its counterparts with a renderer of :mod:`translate.data.scenes.
photo` (``translate data synth TASK --from``): 128 px tiles of every training photo at long
sides 256, 512 and 1024 px (4 tiles each), and the held-out photos whole at a long side of
256 px.

    task           renderer    direction   role
    day2night      day2night   a2b         selection   colour grade with local light
    colourise      gray        b2a         selection   gray -> colour
    photo2sketch   sketch      a2b         selection   photo -> thin continuous lines
    real2anime     cel         a2b         validation  cel shading with ink outlines
    sketch2photo   sketch      b2a         validation  lines -> photo
    denoise        noise       b2a         validation  sensor noise removed

Unpaired tasks (CycleGAN, CUT) keep the counterparts of their test photos for scoring;
their training domains come from disjoint halves of the training photos:
``day2night-unpaired`` (selection) and ``real2anime-unpaired`` (validation).

The real2anime tasks render with ``cel``, the renderer ``real2anime`` had when they were
measured (:func:`~translate.data.scenes.photo.cel_from_photo`), so that their rows stay
reproducible.

Recipes (pix2pix; each changes the reference in one respect, or this project's defaults):

    l1                    L1 alone (method.adversarial=0): the regression baseline
    reference             the paper's objective and networks (no mismatched pairs, no weight
                          average, no DiffAugment, transposed convolutions)
    transpose-defaults    this project's defaults with the paper's transposed convolutions
                          (its defaults before resize-convolutions)
    resize                reference with resize-convolutions in the decoder (Odena et al.
                          2016)
    hd                    reference with pix2pixHD's discriminator: 2 scales and feature
                          matching 10
    r1                    reference with R1 = 1 (Mescheder et al. 2018)
    resize-hd             resize and hd together
    resize-defaults       this project's defaults (resize-convolutions, mismatched pairs,
                          weight average, DiffAugment)
    resize-defaults-bf16  the same trained in bf16 autocast (the row says so; others fp32)

Unpaired recipes (the ResNet generator at 128 px: 6 blocks, ngf 32):

    cyclegan              CycleGAN as published (LSGAN, cycle 10, identity 0.5, image pool)
    cyclegan-resize       the same with resize-convolutions in the decoder
    cyclegan-extras       with what won on the paired tasks: resize-convolutions, the weight
                          average (EMA 0.999) and DiffAugment (color, translation)
    cut                   CUT as published (PatchNCE, identity NCE)
    cut-extras            CUT with the same extras
    hneg-src              CUT with Hneg-SRC's terms (hard-negative contrast, relation
                          consistency; Jung et al. 2022, their horse2zebra settings)
    qs-attn               CUT with QS-Attn's query selection (global attention; Hu et al.
                          2022)
    dclgan                DCLGAN as published (dual contrastive learning; Han et al. 2021)

Figures per run on the held-out photos: PSNR, SSIM, the sharpness ratio, the line
continuity (outline tasks), and the median no-reference artefact figures.

    python benchmarks/quality.py --photos datasets/photos --out docs/quality.jsonl
    python benchmarks/quality.py --photos P --only photo2sketch:reference --seeds 0
    python benchmarks/quality.py --table docs/quality.jsonl

Runs use one thread each and ``--jobs`` processes at a time (2 by default); rows already in
``--out`` are not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rows import measured, run_rows  # benchmarks/rows.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# task -> (renderer, direction, role)
PAIRED = {
    "day2night": ("day2night", "a2b", "selection"),
    "colourise": ("gray", "b2a", "selection"),
    "photo2sketch": ("sketch", "a2b", "selection"),
    "real2anime": ("cel", "a2b", "validation"),
    "sketch2photo": ("sketch", "b2a", "validation"),
    "denoise": ("noise", "b2a", "validation"),
}
UNPAIRED = {
    "day2night-unpaired": ("day2night", "a2b", "selection"),
    "real2anime-unpaired": ("cel", "a2b", "validation"),
}
REFERENCE = {"method": {"mismatch": 0}, "train": {"ema": 0.0}, "loss": {"diffaugment": ""},
             "generator": {"upsample": "transpose"}}
RESIZE = {"upsample": "resize"}
PAIRED_RECIPES = {
    "l1": {**REFERENCE, "method": {"mismatch": 0, "adversarial": 0}},
    "reference": REFERENCE,
    "transpose-defaults": {"generator": {"upsample": "transpose"}},
    "resize": {**REFERENCE, "generator": RESIZE},
    "hd": {**REFERENCE, "method": {"mismatch": 0, "feature_matching": 10},
           "discriminator": {"scales": 2}},
    "r1": {**REFERENCE, "method": {"mismatch": 0, "r1": 1.0}},
    "resize-hd": {**REFERENCE, "generator": RESIZE,
                  "method": {"mismatch": 0, "feature_matching": 10},
                  "discriminator": {"scales": 2}},
    "resize-defaults": {"generator": RESIZE},
    "resize-defaults-bf16": {"generator": RESIZE, "train": {"precision": "bf16"}},
}
# the unpaired papers' recipes, and each with what won on the paired tasks: resize-convolutions,
# EMA of the generators' weights and DiffAugment
EXTRAS = {"generator": RESIZE, "train": {"ema": 0.999},
          "loss": {"diffaugment": "color,translation"}}
UNPAIRED_RECIPES = {
    "cyclegan": {"model": "cyclegan"},
    "cyclegan-resize": {"model": "cyclegan", "generator": RESIZE},
    "cyclegan-extras": {"model": "cyclegan", **EXTRAS},
    "cut": {"model": "cut"},
    "cut-extras": {"model": "cut", **EXTRAS},
    "hneg-src": {"model": "cut", "method": {"variant": "hneg-src"}},
    "qs-attn": {"model": "cut", "method": {"queries": "entropy"}},
    "dclgan": {"model": "dclgan"},
}
ITERATIONS = 2000
SIZE = 128
SCALES = (256, 512, 1024)
TILES = 4
TEST_SIZE = 256


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def rows_to_run(only: list[str] | None, roles: list[str],
                recipes: list[str] | None = None) -> list[tuple[str, str]]:
    pairs = [(t, r) for t, (_, _, role) in PAIRED.items() if role in roles
             for r in PAIRED_RECIPES]
    pairs += [(t, r) for t, (_, _, role) in UNPAIRED.items() if role in roles
              for r in UNPAIRED_RECIPES]
    if only:
        pairs = [p for p in pairs if f"{p[0]}:{p[1]}" in only or p[0] in only]
    if recipes:
        pairs = [p for p in pairs if p[1] in recipes]
    return pairs


def render(task: str, photos: Path, data_dir: Path) -> Path:
    """The task's dataset, rendered once (see the module docstring)."""
    from translate.data.synth import render_from_photos

    renderer = {**PAIRED, **UNPAIRED}[task][0]
    paired = data_dir / f"paired-{renderer}"
    if not paired.exists():
        work = Path(tempfile.mkdtemp(dir=data_dir))
        render_from_photos(work, renderer, photos, tile=SIZE, tiles=TILES, scales=SCALES,
                           test_size=TEST_SIZE, log=lambda line: None)
        work.rename(paired)
    if task in PAIRED:
        return paired
    root = data_dir / task
    if not root.exists():
        unpaired_from(paired, root)
    return root


def unpaired_from(paired: Path, root: Path) -> None:
    """An unpaired layout from a paired one: trainA from the tiles of the even-numbered
    training photos, trainB from the counterparts of the odd-numbered ones (names start
    with the photo's number), testA with its true counterparts in testA_to_B."""
    work = Path(tempfile.mkdtemp(dir=root.parent))
    for folder in ("trainA", "trainB", "testA", "testB", "testA_to_B"):
        (work / folder).mkdir()
    for tile in sorted((paired / "train" / "A").iterdir()):
        photo = int(tile.name.split("-")[0])
        side, name = ("A", "trainA") if photo % 2 == 0 else ("B", "trainB")
        shutil.copy(paired / "train" / side / tile.name, work / name / tile.name)
    for image in sorted((paired / "test" / "A").iterdir()):
        shutil.copy(image, work / "testA" / image.name)
        shutil.copy(paired / "test" / "B" / image.name, work / "testA_to_B" / image.name)
        shutil.copy(paired / "test" / "B" / image.name, work / "testB" / image.name)
    work.rename(root)


def config_tree(task: str, recipe: str, seed: int, root: Path, out: Path,
                iterations: int) -> dict:
    _, direction, _ = {**PAIRED, **UNPAIRED}[task]
    extra = PAIRED_RECIPES.get(recipe, UNPAIRED_RECIPES.get(recipe))
    base = {"model": "pix2pix",
            "data": {"root": str(root), "load_size": SIZE, "crop_size": SIZE, "workers": 0,
                     "direction": direction},
            "generator": {"ngf": 32, "depth": 7},
            "train": {"iterations": iterations, "batch_size": 1, "seed": seed,
                      "precision": "fp32", "log_every": 100, "sample_every": 0,
                      "checkpoint_every": iterations, "out": str(out)}}
    tree = merge(base, extra)
    if tree["model"] != "pix2pix":  # the unpaired papers' ResNet at 128 px: 6 blocks
        tree["generator"] = {"ngf": 32, **extra.get("generator", {})}
    return tree


def run_one(task: str, recipe: str, seed: int, photos: str, data_dir: str,
            iterations: int = ITERATIONS, keep: str | None = None) -> dict:
    """Train ``recipe`` on ``task`` with ``seed`` and score it; one JSON-ready row."""
    import torch

    torch.set_num_threads(1)
    from conftest import overrides
    from translate.infer.engine import Translator
    from translate.infer.evaluate import evaluate, score_artefacts
    from translate.train.config import load_config
    from translate.train.loop import train

    root = render(task, Path(photos), Path(data_dir))
    out = Path(data_dir) / f"run-{task}-{recipe}-{seed}-{iterations}"
    shutil.rmtree(out, ignore_errors=True)
    tree = config_tree(task, recipe, seed, root, out, iterations)
    start = time.perf_counter()
    train(load_config(None, overrides(tree)), progress=False)
    seconds = time.perf_counter() - start
    _, direction, role = {**PAIRED, **UNPAIRED}[task]
    if task in UNPAIRED:
        direction = "a2b"
    engine = Translator.from_checkpoint(out, direction=direction, device="cpu")
    scores = evaluate(engine, root, direction)
    side = "A" if direction == "a2b" else "B"
    inputs = root / "test" / side if task in PAIRED else root / "testA"
    art = score_artefacts(inputs, engine=engine)
    row = {"task": task, "role": role, "recipe": recipe, "seed": seed,
           "iterations": iterations, "train_seconds": round(seconds, 1)}
    for key in ("psnr", "ssim", "identity_psnr", "sharpness", "line_continuity"):
        if key in scores:
            row[key] = round(scores[key], 4)
    row.update({k: art[k] for k in ("periodicity_median", "hallucination_median",
                                    "fidelity_median")})
    if keep and seed == 0:  # the generator of the first seed, for sheets
        Path(keep).mkdir(parents=True, exist_ok=True)
        for export in out.glob("generator_*.safetensors"):
            shutil.copy(export, Path(keep) / f"{task}-{recipe}-{export.name}")
    shutil.rmtree(out, ignore_errors=True)
    return row


FIGURES = (("psnr", "PSNR dB", 2), ("ssim", "SSIM", 3), ("sharpness", "sharpness", 2),
           ("line_continuity", "lines", 3), ("periodicity_median", "periodicity", 2),
           ("hallucination_median", "halluc.", 3))


def table(lines: list[dict]) -> str:
    """Markdown, selection and validation apart: mean +- spread (population std) over
    seeds, per task and recipe."""
    out = []
    for role in ("selection", "validation"):
        rows = [r for r in lines if r.get("role") == role]
        if not rows:
            continue
        groups: dict[tuple[str, str], list[dict]] = {}
        for row in rows:
            groups.setdefault((row["task"], row["recipe"]), []).append(row)
        out += [f"**{role} tasks**", "",
                "| task | recipe | seeds | " + " | ".join(h for _, h, _ in FIGURES)
                + " | train s |", "|---|---|---|" + "---|" * len(FIGURES) + "---|"]
        for (task, recipe), runs in groups.items():
            out.append(f"| {task} | {recipe} | {len(runs)} | "
                       + " | ".join(_cell(runs, key, digits) for key, _, digits in FIGURES)
                       + f" | {statistics.mean(r['train_seconds'] for r in runs):.0f} |")
        out.append("")
    return "\n".join(out)


def _cell(runs: list[dict], key: str, digits: int) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "-"
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, help="translate data photos --out FOLDER")
    parser.add_argument("--out", type=Path, help="JSON lines to append the rows to")
    parser.add_argument("--data", type=Path, help="folder for the rendered datasets and runs "
                        "(default: a new temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--roles", nargs="+", default=["selection", "validation"],
                        choices=("selection", "validation"))
    parser.add_argument("--only", nargs="+", metavar="TASK[:RECIPE]")
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE",
                        help="only these recipes (of the tasks chosen)")
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="folder to keep the first seed's "
                        "generators in (for sheets)")
    parser.add_argument("--table", type=Path, help="print the table of a JSON lines file")
    args = parser.parse_args(argv)
    if args.table:
        print(table([json.loads(x) for x in args.table.read_text().splitlines() if x]))
        return
    if args.photos is None or not (args.photos / "train").is_dir():
        parser.error("--photos must be a folder made by translate data photos (train/, test/)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    data_dir = args.data or Path(tempfile.mkdtemp(prefix="quality-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    todo = rows_to_run(args.only, args.roles, args.recipes)
    for task in sorted({t for t, _ in todo}):  # once, before the pool
        render(task, args.photos, data_dir)
    done = measured(args.out, lambda r: (r["task"], r["recipe"], r["seed"], r["iterations"]))
    keep = str(args.keep) if args.keep else None
    jobs = [(t, r, s, str(args.photos), str(data_dir), args.iterations, keep)
            for t, r in todo for s in args.seeds if (t, r, s, args.iterations) not in done]
    run_rows(run_one, jobs, args.out, args.jobs)


if __name__ == "__main__":
    main()
