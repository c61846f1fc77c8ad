"""Rebuild a shipped model from scratch: assemble the corpus of freely licensed real photos,
render its paired targets, train the committed recipe, score it on the held-out photos
(against the rendered targets next to the identity baseline, and with the no-reference
artefact figures at the photos' full size) and export the generator in half precision with
its model card.

    python configs/build_models.py day2night       # or real2anime; both: python configs/build_models.py all

Everything goes through the public commands (translate data photos, data synth --from,
train, eval, export), so this script is the recipe written down, not a different code path.
Training resumes if the run folder already holds a checkpoint.
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
TRAINED_ON = ("34 real photographs (nature, landscapes, lakes, forests, flowers, objects, a "
              "rocket) from Debian's lomiri-wallpapers, mate-backgrounds and "
              "plasma-workspace-wallpapers packages and the scikit-image wheel, under CC0, "
              "CC BY 4.0, CC BY-SA 3.0/4.0, GPL-2+, LGPL-3 and public domain "
              "(datasets/photos/SOURCES.md after translate data photos); targets rendered "
              "from each photo by this project (translate/scenes/photo.py), 288 px tiles at "
              "4 scales")
TASKS = {
    "day2night": {
        "title": "Day to night (real photos)",
        "summary": "Turns a daylight photo into the same scene at night, as film crews "
                   "grade day for night: much darker, blue and nearly colourless, the sky "
                   "a deep night blue, small bright lights in the photo glowing. It adds "
                   "nothing that is not in the photo.",
        "limits": "It does not switch on lights that are off by day (windows, street "
                  "lamps), draw stars or a moon, or relight the scene; sunsets and skies "
                  "it does not recognise stay as they are, only darker. No people were "
                  "among the training photos: faces get the same grade as everything else.",
    },
    "real2anime": {
        "title": "Photo to anime (real photos)",
        "summary": "Gives a photo a light cel-shaded anime look: smoother, somewhat "
                   "flatter tones, a more vivid but capped palette, clean skies without "
                   "outlines and dark strokes only along strong edges, with skin kept "
                   "smooth and natural and the scene and faces recognisable. No dark "
                   "specks or dotted lines, at any size.",
        "limits": "A filter-like style, not a redrawing: it does not change proportions "
                  "(no bigger eyes), invent line art, or make a face look like an anime "
                  "character. It flattens less than the renderer it learned from (on the "
                  "held-out photos its flat share gained is about a third of the "
                  "renderer's: 0.14 against 0.38), and less on large pictures than on "
                  "small ones (it works at a fixed pixel scale). No portraits were among "
                  "the training photos.",
    },
}
PHOTOS = ROOT / "datasets" / "photos"


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
    data = ROOT / "datasets" / f"photo_{task}"
    run = ROOT / "runs" / f"{task}_photos"
    config = ROOT / "configs" / f"{task}_photos.yaml"
    if not PHOTOS.exists():
        translate("data", "photos", "--out", str(PHOTOS))
    if not data.exists():
        translate("data", "synth", task, "--from", str(PHOTOS), "--out", str(data))
    done = [r["step"] for r in metric_rows(run)] if (run / "metrics.jsonl").exists() else []
    if not done:
        translate("train", str(config), f"train.out={run}", "--quiet")
    elif max(done) < recipe_iterations(config):  # continue, up to the recipe's length
        translate("train", str(run), "--resume",
                  f"train.iterations={recipe_iterations(config)}", "--quiet")
    minutes = sum(row.get("seconds", 0) for row in metric_rows(run)) / 60
    scores = json.loads(translate("eval", "--checkpoint", str(run), "--data", str(data),
                                  "--json"))
    figures = json.loads(translate("eval", "--checkpoint", str(run), "--photos",
                                   str(PHOTOS / "test"), "--json"))
    iterations = recipe_iterations(run / "config.yaml")
    card = {
        "task": task, **{k: TASKS[task][k] for k in ("title", "summary")},
        "trained_on": TRAINED_ON, "limits": TASKS[task]["limits"],
        "method": "pix2pix, local generator (0.34 M parameters, no normalisation, bilinear "
                  "upsampling), 70x70 PatchGAN, mismatched pairs",
        "recipe": f"configs/{task}_photos.yaml",
        "data": f"translate data photos; translate data synth {task} --from datasets/photos",
        "iterations": iterations,
        "hardware": f"{cpu_name()}, {os.cpu_count()} cores, "
                    f"{os.environ.get('OMP_NUM_THREADS', 'all')} thread(s) for this run, CPU "
                    "only",
        "training_minutes": round(minutes, 1),
        "eval": {"data": f"{scores['images']} held-out photos (translate data photos "
                         "test split, never trained on), 768 px, against their rendered "
                         "targets",
                 **{k: scores[k] for k in ("psnr", "ssim", "identity_psnr", "identity_ssim")}},
        "artefacts": {"data": f"the same {figures['images']} photos at full size "
                              "(0.1 to 12.2 megapixels), translate eval --photos",
                      **{k: v for k, v in figures.items() if k.endswith(("_median", "_worst"))}},
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
