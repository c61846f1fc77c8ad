"""GAN health during training: the failures this field knows best, named while they happen.

The monitor reads what the trainer logs (the loss terms and D's scores of each metrics line,
the evaluation rows) and, at each log step, how different the generators' outputs are over
the fixed preview batch of the sample grids. Events, each raised once per run:

- ``collapse``: the outputs for different inputs become near-identical (mode collapse): the
  mean pairwise L1 distance of the outputs falls below COLLAPSE_RATIO of the real images of
  the output domain in the same batch, at COLLAPSE_STEPS log steps in a row, judged after
  the first WARM_UP of the iterations, and at least WARM_UP_MIN (a freshly initialised
  generator's outputs are
  near-constant: measured 0.03 of the targets' at step 10 of a healthy run, 0.11 at 30,
  0.9 from 150 on).
- ``d_wins``: the discriminator separates real from generated samples almost perfectly
  (vanilla: mean probabilities above 0.9 on real and below 0.1 on fake; lsgan: outputs
  likewise) at D_WINS_STEPS log steps in a row while G's adversarial loss climbs. Not judged
  for hinge and wgan-gp, whose scores have no fixed scale.
- ``stalled``: the evaluation has not improved for STALLED_EVALS evaluations and the
  generator's total loss (its mean between evaluations) moved less than 5 % over them.
- ``exploding``: a phase's total loss (``g_total``, ``d_total``) is EXPLODE_RATIO times its
  first value in the run or more (that value taken as at least EXPLODE_FLOOR), or above
  EXPLODE_CEILING, which no loss of these methods comes near in a healthy run (measured:
  below 200). The trainer reads the losses every CHECK_EVERY iterations, so an explosion is
  named within that many steps of where it starts.
- ``dead``: a generator's gradient norm (``grad_norm_g``) is zero at DEAD_STEPS log steps in
  a row: nothing reaches its weights any more (an output stuck past a clamp, dead
  activations), so it cannot learn again by itself (measured: a wide local generator went
  to 0 within 200 iterations of a blow-up and stayed there).
- ``diverged``: a loss or a weight is not a finite number (the trainer stops; see
  :class:`~translate.train.loop.TrainingDiverged`).

An event is a metrics.jsonl line with an ``"event"`` key: its name, the step, a plain
explanation, advice, and the figures that triggered it. Each is said once, but
:attr:`HealthMonitor.alarm` holds a collapse or an explosion for as long as it lasts, which
is what ``train.on_collapse=stop`` acts on; a resumed run keeps counting low-diversity log
steps, so one still collapsed is stopped at its first judged log step even though its
collapse was said before. Advice names only what ``translate train RUN --resume`` accepts,
or a new run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from translate.networks.norm_stats import inference_mode

COLLAPSE_RATIO = 0.1
COLLAPSE_STEPS = 3
WARM_UP = 0.1  # share of train.iterations before collapse is judged ...
WARM_UP_MIN = 50  # ... and at least this many iterations
D_WINS_STEPS = 5
D_WINS_SCORES = (0.9, 0.1)  # real above, fake below
STALLED_EVALS = 4
STALLED_LOSS_CHANGE = 0.05
SCORED_MODES = ("vanilla", "lsgan")
EXPLODE_RATIO = 1e3
EXPLODE_FLOOR = 1.0
EXPLODE_CEILING = 1e6
CHECK_EVERY = 5  # iterations between the trainer's reads of the losses
DEAD_STEPS = 2
DEAD_NORM = 1e-12  # a gradient norm at or below this is zero
ALARMS = ("collapse", "exploding", "dead")  # what train.on_collapse=stop stops on


@dataclass
class HealthEvent:
    """One named problem, found at ``step``."""
    name: str
    step: int
    message: str
    advice: str
    figures: dict = field(default_factory=dict)

    def row(self) -> dict:
        """The metrics.jsonl line."""
        return {"step": self.step, "event": self.name, "message": self.message,
                "advice": self.advice, **self.figures}

    def text(self) -> str:
        return f"{self.name} at step {self.step}: {self.message} {self.advice}"


def diversity(images: torch.Tensor) -> float:
    """Mean L1 distance over all pairs of the (N, C, H, W) ``images`` (N >= 2)."""
    n = images.shape[0]
    flat = images.detach().float().reshape(n, -1)
    pairs = list(itertools.combinations(range(n), 2))
    return float(sum((flat[i] - flat[j]).abs().mean() for i, j in pairs) / len(pairs))


def output_diversity(method, batch: dict, norm_stats: str) -> dict[str, float]:
    """For each generator (by direction): the diversity of its outputs on ``batch`` over
    that of the real images of its output domain in the batch; {} for fewer than 2 rows."""
    ratios = {}
    for e in method.exports():
        source, target = ("a", "b") if e.direction == "a2b" else ("b", "a")
        x, y = batch[source], batch[target]
        if x.shape[0] < 2:
            return {}
        with inference_mode(e.net, norm_stats):  # no gradients, dropout off
            fake = e.net(x)
        reference = diversity(y)
        ratios[e.direction] = diversity(fake) / reference if reference > 0 else 1.0
    return ratios


class HealthMonitor:
    """Watches a run; :meth:`observe` and :meth:`observe_eval` return new events."""

    def __init__(self, gan_mode: str, iterations: int, lr: float = 2e-4, run: str = "RUN"):
        self.gan_mode = gan_mode
        self.lr, self.run = lr, run  # for advice that names values and the run folder
        self.warm_up = max(WARM_UP * iterations, WARM_UP_MIN)
        self.first_losses: dict[str, float] = {}  # each phase's total at the first read
        self.alarms: dict[str, HealthEvent] = {}  # collapse, exploding: while they last
        self.raised: set[str] = set()
        self.low_diversity = 0
        self.d_history: list[tuple[float, float, float]] = []  # (real, fake, g adversarial)
        self.evals: list[tuple[float, float]] = []  # (metric, mean g total before it)
        self.g_totals: list[float] = []  # since the last evaluation
        self.first_low: int | None = None  # the step diversity was first seen below
        self.zero_gradient = 0  # log steps in a row with a generator's gradient zero

    def state(self) -> dict:
        """What it has seen, for checkpoints: a resumed run judges as an unbroken one."""
        return {"raised": sorted(self.raised), "low_diversity": self.low_diversity,
                "first_low": self.first_low, "d_history": [list(h) for h in self.d_history],
                "evals": [list(e) for e in self.evals], "g_totals": list(self.g_totals),
                "first_losses": dict(self.first_losses),
                "zero_gradient": self.zero_gradient}

    def load(self, state: dict | None) -> None:
        """Continue from :meth:`state` (an empty one: a run from before the monitor)."""
        state = state or {}
        self.raised = set(state.get("raised", []))
        self.low_diversity = int(state.get("low_diversity", 0))
        self.first_low = state.get("first_low")
        self.d_history = [tuple(h) for h in state.get("d_history", [])]
        self.evals = [tuple(e) for e in state.get("evals", [])]
        self.g_totals = list(state.get("g_totals", []))
        self.first_losses = {str(k): float(v) for k, v in
                             dict(state.get("first_losses", {})).items()}
        self.zero_gradient = int(state.get("zero_gradient", 0))
        self.alarms = {}  # judged again from what the resumed run shows (the collapse
        # count goes on, so a run still collapsed is named at its first judged log step)

    @property
    def alarm(self) -> HealthEvent | None:
        """The collapse or explosion going on now (said or not), else None."""
        return next((self.alarms[k] for k in ALARMS if k in self.alarms), None)

    def resume_advice(self) -> str:
        """How to continue this run with a lower learning rate (``train.lr`` may change on
        resume)."""
        return f"translate train {self.run} --resume train.lr={self.lr / 2:g}"

    def _once(self, event: HealthEvent) -> list[HealthEvent]:
        if event.name in self.raised:
            return []
        self.raised.add(event.name)
        return [event]

    def observe(self, step: int, means: dict[str, float], ratios: dict[str, float]
                ) -> list[HealthEvent]:
        """A metrics line's means and the output diversity ratios at ``step``."""
        if "g_total" in means:
            self.g_totals.append(means["g_total"])
        return self._collapse(step, ratios) + self._d_wins(step, means) + self._dead(
            step, means)

    def _dead(self, step: int, means: dict[str, float]) -> list[HealthEvent]:
        norms = {k: v for k, v in means.items() if k.startswith("grad_norm_g")}
        if not norms:
            return []
        key, norm = min(norms.items(), key=lambda kv: kv[1])
        if norm > DEAD_NORM:
            self.zero_gradient = 0
            self.alarms.pop("dead", None)
            return []
        self.zero_gradient += 1
        if self.zero_gradient < DEAD_STEPS:
            return []
        self.alarms["dead"] = HealthEvent(
            "dead", step,
            f"the generator's gradient ({key}) is zero ({self.zero_gradient} log steps in a "
            "row): nothing reaches its weights, so it no longer learns (its output stuck "
            "past a clamp, or dead activations); the samples show it flat or saturated.",
            f"Start a new run with a lower learning rate (train.lr={self.lr / 2:g} or less, "
            "and a new train.out); this one will not recover.",
            {"gradient": key, "log_steps": self.zero_gradient})
        return self._once(self.alarms["dead"])

    def _collapse(self, step: int, ratios: dict[str, float]) -> list[HealthEvent]:
        if not ratios or step < self.warm_up:
            return []
        direction, ratio = min(ratios.items(), key=lambda kv: kv[1])
        if ratio >= COLLAPSE_RATIO:
            self.low_diversity, self.first_low = 0, None
            self.alarms.pop("collapse", None)
            return []
        self.low_diversity += 1
        self.first_low = self.first_low if self.first_low is not None else step
        if self.low_diversity < COLLAPSE_STEPS:
            return []
        self.alarms["collapse"] = HealthEvent(
            "collapse", step,
            f"the {direction} generator gives near-identical outputs for different inputs "
            f"(their diversity is {ratio:.3f} of the real images', below {COLLAPSE_RATIO} "
            f"since step {self.first_low}): mode collapse.",
            f"Continue with a lower learning rate ({self.resume_advice()}), or start a new "
            "run with DiffAugment (loss.diffaugment=color,translation); samples/ shows it.",
            {"direction": direction, "diversity_ratio": round(ratio, 4),
             "since_step": self.first_low})
        return self._once(self.alarms["collapse"])

    def observe_losses(self, step: int, means: dict[str, float]) -> list[HealthEvent]:
        """The loss terms' means since the last metrics line, read at ``step`` (every
        CHECK_EVERY iterations): ``exploding`` when a phase's total is orders of magnitude
        above its first value. The first read sets those values."""
        totals = {k: abs(v) for k, v in means.items() if k.endswith("_total")}
        for k, v in totals.items():
            self.first_losses.setdefault(k, v)
        limits = {k: min(EXPLODE_CEILING, EXPLODE_RATIO * max(self.first_losses[k],
                                                              EXPLODE_FLOOR))
                  for k in totals}
        over = {k: v for k, v in totals.items() if v > limits[k]}
        if not over:
            self.alarms.pop("exploding", None)
            return []
        key = max(over, key=lambda k: over[k] / limits[k])
        since = self.alarms["exploding"].figures["since_step"] if "exploding" in self.alarms \
            else step
        first = self.first_losses[key]
        why = (f"far above its first value in this run ({first:.3g})"
               if over[key] > EXPLODE_RATIO * max(first, EXPLODE_FLOOR) else
               f"beyond what a healthy run reaches ({EXPLODE_CEILING:g})")
        self.alarms["exploding"] = HealthEvent(
            "exploding", step,
            f"the loss {key} is {over[key]:.3g}, {why}: training is blowing up.",
            f"Start a new run with a lower learning rate (train.lr={self.lr / 10:g}, a tenth "
            "of now, and a new train.out); with train.precision=fp16, try fp32.",
            {"loss": key, "value": float(f"{over[key]:.4g}"),
             "first_value": float(f"{self.first_losses[key]:.4g}"), "since_step": since})
        return self._once(self.alarms["exploding"])

    def _d_wins(self, step: int, means: dict[str, float]) -> list[HealthEvent]:
        if self.gan_mode not in SCORED_MODES:
            return []
        real = [v for k, v in means.items() if k.startswith("score_real")]
        fake = [v for k, v in means.items() if k.startswith("score_fake")]
        adversarial = [v for k, v in means.items() if k in ("g_gan", "adv_ab", "adv_ba")]
        if not real or not fake or not adversarial:
            return []
        self.d_history = [*self.d_history[-(D_WINS_STEPS - 1):],
                          (min(real), max(fake), sum(adversarial))]
        recent = self.d_history
        wins = all(r > D_WINS_SCORES[0] and f < D_WINS_SCORES[1] for r, f, _ in recent)
        if len(recent) < D_WINS_STEPS or not wins or recent[-1][2] <= recent[0][2]:
            return []
        r, f, g = recent[-1]
        return self._once(HealthEvent(
            "d_wins", step,
            f"the discriminator tells real from generated almost perfectly (scores {r:.2f} "
            f"on real, {f:.2f} on generated, {D_WINS_STEPS} log steps in a row) while the "
            f"generator's adversarial loss climbs ({recent[0][2]:.3g} to {g:.3g}): it no "
            "longer learns from D.",
            "Start a new run with a smaller discriminator (discriminator.ndf, "
            "discriminator.layers) or with DiffAugment (loss.diffaugment=color,translation).",
            {"score_real": round(r, 4), "score_fake": round(f, 4),
             "adversarial": round(g, 4)}))

    def observe_eval(self, step: int, row: dict, metric: str | None) -> list[HealthEvent]:
        """An evaluation row (``eval_<metric>`` keys) at ``step``; ``metric``: the one
        the best checkpoint follows (psnr: higher is better; fid: lower)."""
        key = f"eval_{metric}"
        if metric is None or key not in row or not self.g_totals:
            return []
        self.evals.append((row[key], sum(self.g_totals) / len(self.g_totals)))
        self.g_totals = []
        if len(self.evals) <= STALLED_EVALS:
            return []
        higher = metric == "psnr"
        before, window = self.evals[:-STALLED_EVALS], self.evals[-STALLED_EVALS:]
        best = (max if higher else min)(m for m, _ in before)
        new_best = any((m > best) if higher else (m < best) for m, _ in window)
        first, last = before[-1][1], window[-1][1]
        change = abs(last - first) / max(abs(first), 1e-8)
        if new_best or change >= STALLED_LOSS_CHANGE:
            return []
        return self._once(HealthEvent(
            "stalled", step,
            f"the evaluation ({metric}) has not improved for {STALLED_EVALS} "
            f"evaluations and the generator's loss moved {100 * change:.2f} % over them.",
            "More iterations will not help: stop here (checkpoints/best.pt keeps the best), "
            "or change the recipe (learning rate, model size, data).",
            {"metric": metric, "value": round(window[-1][0], 4),
             "loss_change": round(change, 5)}))
