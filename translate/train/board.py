"""TensorBoard logging of a run (``train.tensorboard: true``; the optional extra
``translate[tensorboard]``). The event files go to the run folder's ``tb/``, so
``tensorboard --logdir runs/`` shows every run side by side.

Written (by process 0 alone under torchrun): every logged loss term (``loss/``), D's scores
(``scores/``), the gradient norms (``grad_norm/``), the learning rate and iterations per
second (``train/``) at each log step; the sample grids (``samples``) at ``sample_every``;
the evaluation figures (``eval/``) at ``eval_every``; the resolved config and each health
event as text. A resumed run opens its writer with ``purge_step`` = the step it resumes
after, so TensorBoard drops whatever the earlier session logged past that checkpoint and
no step appears twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from translate.errors import UserError

TB_FOLDER = "tb"


class BoardError(UserError):
    """train.tensorboard is on but TensorBoard is not installed."""


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BoardError("train.tensorboard needs the tensorboard package, which is not "
                         "installed: pip install 'translate[tensorboard]' (or: pip install "
                         "tensorboard), or set train.tensorboard=false") from None
    return SummaryWriter


def check_available() -> None:
    """:class:`BoardError` unless TensorBoard can be written."""
    _summary_writer()


def _tag(key: str) -> str:
    if key.startswith("score_"):
        return f"scores/{key[6:]}"
    if key.startswith("grad_norm_"):
        return f"grad_norm/{key[10:]}"
    if key == "lr":
        return "train/lr"
    return f"loss/{key}"


class Board:
    """A TensorBoard writer for the run folder ``out``, continuing after ``start`` (the
    step a resumed run starts from; 0 for a new run)."""

    def __init__(self, out: Path, start: int, config_yaml: str):
        writer = _summary_writer()
        self.writer = writer(str(Path(out) / TB_FOLDER), purge_step=start + 1 if start else
                             None, flush_secs=30)
        self.writer.add_text("config", "```\n" + config_yaml + "\n```", global_step=start)

    def metrics(self, step: int, row: dict, iterations_per_second: float | None) -> None:
        """A metrics line: its loss terms, D's scores, gradient norms and learning rate."""
        for key, value in row.items():
            if key not in ("step", "seconds") and isinstance(value, (int, float)):
                self.writer.add_scalar(_tag(key), value, step)
        if iterations_per_second is not None:
            self.writer.add_scalar("train/iterations_per_second", iterations_per_second, step)

    def evaluation(self, step: int, row: dict) -> None:
        for key, value in row.items():
            if key.startswith("eval_") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"eval/{key[5:]}", value, step)

    def samples(self, step: int, grid: Path) -> None:
        """The sample grid PNG written at ``step``."""
        from translate.images import load_rgb

        self.writer.add_image("samples", np.ascontiguousarray(load_rgb(grid)), step,
                              dataformats="HWC")

    def event(self, row: dict) -> None:
        """A health event (its metrics.jsonl line) as text."""
        self.writer.add_text("health", f"**{row['event']}** at step {row['step']}: "
                             f"{row.get('message', '')} {row.get('advice', '')}", row["step"])

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
