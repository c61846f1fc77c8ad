"""Which training recipe gives the best results at a fixed CPU budget, over several seeds.

Every run trains on a procedural task whose test images have true counterparts, then scores
the held-out translations: PSNR and SSIM to the truth (``translate.infer.evaluate``) and the
no-reference artefact figures against the input (``translate.infer.artefacts``: medians of
periodicity, hallucination and fidelity).

Paired tasks (pix2pix), recipes added one on top of the other:

    reference    the reference objective: method.mismatch=0
    +mismatch    mismatched-pair negatives (method.mismatch=1, the default)
    +ema         a moving average of the generator's weights (train.ema=0.99)
    +diffaug     DiffAugment on everything D sees (loss.diffaugment=color,translation)
    +sn          spectral normalisation in D (discriminator.spectral_norm=true)
    defaults     pix2pix's defaults now: mismatched pairs, DiffAugment, a weight average
                 (train.ema=0.999) and resize-convolutions in the decoder

The recipes above ``defaults`` pin the paper's networks and objective (transposed
convolutions, no DiffAugment, no weight average) and add only what they name.

Unpaired tasks: cyclegan, cut, fastcut (each with its paper's defaults at this size).

    python benchmarks/recipes.py --out docs/recipes.jsonl          # every row, 3 seeds
    python benchmarks/recipes.py --only shapes:+ema --seeds 0      # one row, one seed
    python benchmarks/recipes.py --table docs/recipes.jsonl        # the markdown table
    python benchmarks/recipes.py --precision bf16 --out docs/recipes.jsonl  # bf16 autocast

Every run states its precision (``train.precision``, fp32 unless ``--precision``); rows of
the same recipe in another precision are separate rows of the table.

Runs use one thread each and ``--jobs`` processes at a time (2 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rows import measured, run_rows  # benchmarks/rows.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# task -> (synth task, layout, image size)
PAIRED = {"shapes": ("shapes", "paired", 32), "day2night": ("day2night", "paired", 64)}
UNPAIRED = {"shapes-unpaired": ("shapes", "unpaired", 32),
            "day2night-unpaired": ("day2night", "unpaired", 64)}
# The paper's objective and networks, pinned: pix2pix's defaults have since taken up what
# this table found (DiffAugment, a weight average, resize-convolutions), so each recipe
# below states everything it adds.
PAPER = {"loss": {"diffaugment": ""}, "train": {"ema": 0.0},
         "generator": {"upsample": "transpose"}}
PAIRED_RECIPES = {
    "reference": {"method": {"mismatch": 0}},
    "+mismatch": {"method": {"mismatch": 1}},
    "+ema": {"method": {"mismatch": 1}, "train": {"ema": 0.99}},
    "+diffaug": {"method": {"mismatch": 1}, "train": {"ema": 0.99},
                 "loss": {"diffaugment": "color,translation"}},
    "+sn": {"method": {"mismatch": 1}, "train": {"ema": 0.99},
            "loss": {"diffaugment": "color,translation"},
            "discriminator": {"spectral_norm": True}},
    "defaults": None,  # pix2pix as shipped, nothing pinned: what the table led to
}
UNPAIRED_RECIPES = {
    "cyclegan": {"model": "cyclegan", "method": {"identity": 0}},
    "cut": {"model": "cut", "method": {"variant": "cut"}},
    "fastcut": {"model": "cut", "method": {"variant": "fastcut"}},
}
ITERATIONS = 400


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def rows_to_run(only: list[str] | None) -> list[tuple[str, str]]:
    pairs = [(t, r) for t in PAIRED for r in PAIRED_RECIPES]
    pairs += [(t, r) for t in UNPAIRED for r in UNPAIRED_RECIPES]
    if only:
        pairs = [p for p in pairs if f"{p[0]}:{p[1]}" in only]
    return pairs


def render(task: str, data_dir: str) -> Path:
    """The task's dataset (64 train and 16 test images per domain), rendered once."""
    from translate.data.synth import render_dataset

    synth, layout, size = {**PAIRED, **UNPAIRED}[task]
    root = Path(data_dir) / task
    if not root.exists():
        render_dataset(root, synth, size=size, train=64, test=16, layout=layout)
    return root


def run_one(task: str, recipe: str, seed: int, data_dir: str, precision: str = "fp32"
            ) -> dict:
    """Train ``recipe`` on ``task`` with ``seed`` and score it; one JSON-ready row."""
    import torch

    torch.set_num_threads(1)
    from conftest import overrides
    from translate.infer.engine import Translator
    from translate.infer.evaluate import evaluate, score_artefacts
    from translate.train.config import load_config
    from translate.train.loop import train

    _, layout, size = {**PAIRED, **UNPAIRED}[task]
    root = render(task, data_dir)
    if recipe in UNPAIRED_RECIPES:
        extra = UNPAIRED_RECIPES[recipe]
    else:  # None: pix2pix's defaults
        extra = {} if PAIRED_RECIPES[recipe] is None else merge(PAPER, PAIRED_RECIPES[recipe])
    tree = merge({"model": "pix2pix", "data": {"root": str(root), "load_size": size + 4,
                                               "crop_size": size, "workers": 0},
                  "generator": {"ngf": 16, "depth": 5 if size < 64 else 6,
                                "dropout": False},
                  "discriminator": {"ndf": 16, "layers": 2},
                  "train": {"iterations": ITERATIONS, "batch_size": 4, "lr": 5e-4,
                            "seed": seed, "precision": precision, "log_every": 100,
                            "sample_every": 0,
                            "checkpoint_every": ITERATIONS,
                            "out": str(Path(data_dir)
                                       / f"run-{task}-{recipe}-{seed}-{precision}")}},
                 extra)
    if tree["model"] != "pix2pix":
        tree["generator"] = {"ngf": 16, "depth": 2}
    start = time.perf_counter()
    out = train(load_config(None, overrides(tree)), progress=False)
    seconds = time.perf_counter() - start
    engine = Translator.from_checkpoint(out, direction="a2b", device="cpu")
    scores = evaluate(engine, root, "a2b")
    inputs = root / ("test" / Path("A") if layout == "paired" else Path("testA"))
    art = score_artefacts(inputs, engine=engine)
    return {"task": task, "recipe": recipe, "precision": precision, "seed": seed,
            "psnr": round(scores["psnr"], 3),
            "ssim": round(scores["ssim"], 4), "train_seconds": round(seconds, 1),
            **{k: art[k] for k in ("periodicity_median", "hallucination_median",
                                   "fidelity_median")}}


def table(lines: list[dict]) -> str:
    """Markdown: mean +- spread (population std) over seeds, per task and recipe."""
    tasks, recipes = [*PAIRED, *UNPAIRED], [*PAIRED_RECIPES, *UNPAIRED_RECIPES]
    groups: dict[tuple[int, int, str], list[dict]] = {}  # fp32 first, then by name
    for row in lines:
        precision = row.get("precision", "fp32")
        key = (tasks.index(row["task"]), recipes.index(row["recipe"]),
               "" if precision == "fp32" else precision)
        groups.setdefault(key, []).append(row)
    out = ["| task | recipe | seeds | PSNR dB | SSIM | periodicity | hallucination | "
           "fidelity | train s |", "|---|---|---|---|---|---|---|---|---|"]
    for (t, r, precision), rows in sorted(groups.items()):
        task, recipe = tasks[t], recipes[r] + (f" ({precision})" if precision else "")
        def cell(key: str, digits: int) -> str:
            values = [r[key] for r in rows if r[key] is not None]  # None: flat inputs
            if not values:
                return "undefined"
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"
        out.append(f"| {task} | {recipe} | {len(rows)} | {cell('psnr', 2)} | "
                   f"{cell('ssim', 3)} | {cell('periodicity_median', 2)} | "
                   f"{cell('hallucination_median', 3)} | {cell('fidelity_median', 3)} | "
                   f"{statistics.mean(r['train_seconds'] for r in rows):.0f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="JSON lines to append the rows to")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", metavar="TASK:RECIPE")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="train.precision of every run")
    parser.add_argument("--table", type=Path, help="print the table of a JSON lines file")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(x) for x in args.table.read_text().splitlines() if x]))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    data_dir = tempfile.mkdtemp(prefix="recipes-")
    for task in sorted({t for t, _ in rows_to_run(args.only)}):  # once, before the pool
        render(task, data_dir)
    done = measured(args.out, lambda r: (r["task"], r["recipe"], r["seed"],
                                         r.get("precision", "fp32")))  # not run again
    jobs = [(t, r, s, data_dir, args.precision) for t, r in rows_to_run(args.only)
            for s in args.seeds if (t, r, s, args.precision) not in done]
    run_rows(run_one, jobs, args.out, args.jobs)


if __name__ == "__main__":
    main()
