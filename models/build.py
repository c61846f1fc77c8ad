"""Rebuild a shipped model from scratch: render its procedural dataset, train it with its
committed recipe, score it on a fresh test split (another seed) next to the identity
baseline, and export the generator in half precision with its model card.

    python models/build.py day2night       # or real2anime; both: python models/build.py all

Everything goes through the public commands (translate data synth, train, eval, export),
so this script is the recipe written down, not a different code path. Training resumes if
the run folder already holds a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = {
    "day2night": {"title": "Day to night (procedural street scenes)",
                  "summary": "Turns a daylight street or skyline into the same scene at "
                  "night: dark sky, moon and stars, lit windows, glowing lamps."},
    "real2anime": {"title": "Photo to anime (procedural portraits)",
                   "summary": "Turns a photo-like head-and-shoulders portrait into flat "
                   "cel-shaded anime style with ink outlines and larger eyes."},
}
TRAIN_SEED, EVAL_SEED, SIZE, TRAIN_COUNT, TEST_COUNT = 0, 12345, 128, 1000, 100


def translate(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "translate", *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"translate {' '.join(args)} failed with {proc.returncode}")
    return proc.stdout


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def recipe_iterations(config: Path) -> int:
    return int(next(line.split(":")[1].split("#")[0] for line in
                    config.read_text().splitlines() if line.strip().startswith("iterations:")))


def metric_rows(run: Path) -> list[dict]:
    """metrics.jsonl; its ``seconds`` fields add up to the training time, resumes included
    (evaluation time is not counted)."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]


def build(task: str) -> dict:
    data = ROOT / "datasets" / f"synth_{task}"
    fresh = ROOT / "datasets" / f"synth_{task}_eval"
    run = ROOT / "runs" / f"{task}_synth"
    config = ROOT / "configs" / f"{task}_synth.yaml"
    if not data.exists():
        translate("data", "synth", task, "--out", str(data), "--size", str(SIZE),
                  "--train", str(TRAIN_COUNT), "--test", str(TEST_COUNT),
                  "--seed", str(TRAIN_SEED))
    if not fresh.exists():
        translate("data", "synth", task, "--out", str(fresh), "--size", str(SIZE),
                  "--train", "0", "--test", str(TEST_COUNT), "--seed", str(EVAL_SEED))
    done = [r["step"] for r in metric_rows(run)] if (run / "metrics.jsonl").exists() else []
    if not done:
        translate("train", str(config), f"train.out={run}", "--quiet")
    elif max(done) < recipe_iterations(config):  # continue, up to the recipe's length
        translate("train", str(run), "--resume",
                  f"train.iterations={recipe_iterations(config)}", "--quiet")
    minutes = sum(row.get("seconds", 0) for row in metric_rows(run)) / 60
    scores = json.loads(translate("eval", "--checkpoint", str(run), "--data", str(fresh),
                                  "--json"))
    iterations = recipe_iterations(run / "config.yaml")
    card = {
        "task": task, **TASKS[task],
        "method": "pix2pix", "recipe": f"configs/{task}_synth.yaml",
        "data": f"translate data synth {task} --size {SIZE} --train {TRAIN_COUNT} "
                f"--test {TEST_COUNT} --seed {TRAIN_SEED} (procedural, made by this project)",
        "iterations": iterations,
        "hardware": f"{cpu_name()}, {os.cpu_count()} threads, CPU only",
        "training_minutes": round(minutes, 1),
        "eval": {"data": f"translate data synth {task} --seed {EVAL_SEED}, "
                         f"{scores['images']} test images",
                 **{k: scores[k] for k in ("psnr", "ssim", "identity_psnr", "identity_ssim")}},
        "note": "Trained on the project's own procedural images: a working default for the "
                "demo, not a model of real photographs.",
    }
    card_file = run / "card.json"
    card_file.write_text(json.dumps(card, indent=2))
    translate("export", "--checkpoint", str(run), "--dtype", "fp16", "--card", str(card_file),
              "--out", str(ROOT / "models" / f"{task}.safetensors"))
    print(json.dumps(card, indent=2))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=[*TASKS, "all"])
    task = parser.parse_args().task
    for name in TASKS if task == "all" else [task]:
        build(name)


if __name__ == "__main__":
    main()
