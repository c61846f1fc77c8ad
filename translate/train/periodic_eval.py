"""Evaluation during training (``train.eval_every``): score the generator of
``data.direction`` on the test split, log the scores, and keep the best checkpoint.

The generator is copied and scored in inference mode, so training state (weights, batch-norm
buffers, random number generators) is untouched: a run with evaluation logs the same losses
as one without. "Best" is the highest PSNR where the test split has true counterparts,
otherwise the lowest FID when Inception weights are in the torch hub cache; with neither,
scores that exist are logged and no best checkpoint is kept (said once at the start).
"""

from __future__ import annotations

import copy
import sys

import torch

from translate.train.config import Config
from translate.infer.evaluate import (EvalError, InceptionFeatures, evaluate,
                                      find_inception_weights, scoring_cases)
from translate.infer.engine import Translator


class PeriodicEval:
    """Scores every ``train.eval_every`` steps; ``state()``/``load()`` carry the best score
    across resumes. Only the process that evaluates (``main``; process 0 under torchrun)
    loads the Inception weights and prints warnings; every process agrees on ``due``."""

    def __init__(self, config: Config, device: torch.device, norm_stats: str,
                 main: bool = True):
        self.config, self.device, self.norm_stats = config, device, norm_stats
        self.every = config.train.eval_every
        self.best: dict | None = None  # {"step", "metric", "value"}
        self.features = None
        self.metric: str | None = None
        if not self.every:
            return
        d = config.data
        try:
            cases, _ = scoring_cases(d.root, d.direction, d.layout)
        except EvalError as err:
            if main:
                print(f"warning: train.eval_every is set but {err}; not evaluating",
                      file=sys.stderr)
            self.every = 0
            return
        if not main:
            return
        weights = find_inception_weights()
        if weights is not None:
            self.features = InceptionFeatures(weights)
        if any(c.truth for c in cases):
            self.metric = "psnr"
        elif self.features is not None:
            self.metric = "fid"
        else:
            print("warning: the test split has no true counterparts and no Inception weights "
                  "are cached: evaluation cannot pick a best checkpoint", file=sys.stderr)

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    def run(self, method, step: int) -> tuple[dict, bool]:
        """Score now. Returns (metrics row for metrics.jsonl, whether this is a new best)."""
        d, t = self.config.data, self.config.train
        export = next((e for e in method.exports() if e.direction == d.direction),
                      method.exports()[0])
        net = copy.deepcopy(export.net)
        info = {"arch": export.arch, "kwargs": export.kwargs, "direction": export.direction,
                "method": method.name, "step": step}
        engine = Translator(net, info, self.device, self.norm_stats)
        result = evaluate(engine, d.root, export.direction, d.layout, t.eval_images,
                          self.features)
        row = {"step": step, "eval_images": result["images"]}
        row.update({f"eval_{k}": v for k, v in result.items()
                    if isinstance(v, float)})
        improved = False
        if self.metric and f"eval_{self.metric}" in row:
            value = row[f"eval_{self.metric}"]
            better = (self.best is None or
                      (value > self.best["value"] if self.metric == "psnr"
                       else value < self.best["value"]))
            if better:
                self.best = {"step": step, "metric": self.metric, "value": value}
                improved = True
        return row, improved

    def state(self) -> dict | None:
        return self.best

    def load(self, best: dict | None) -> None:
        self.best = best
