"""Example inputs for each tab: a few procedural test images, rendered when the demo starts
(a fraction of a second; nothing is translated until someone clicks)."""

from __future__ import annotations

import logging
from pathlib import Path

from translate.synth import render_dataset

log = logging.getLogger(__name__)


def render_examples(folder: str | Path, task: str, count: int = 3, size: int = 256,
                    seed: int = 7) -> list[Path]:
    """Render ``count`` test inputs (domain A, the task's source) of the procedural ``task``
    under ``folder/task`` and return their paths. Where this version of
    :mod:`translate.synth` has no such task, the generic ``shapes`` scenes stand in."""
    root = Path(folder) / task
    try:
        render_dataset(root, task=task, size=size, train=0, test=count, seed=seed,
                       layout="paired")
    except ValueError as err:  # an unknown task
        log.warning("no procedural %s examples (%s); using shapes instead", task, err)
        render_dataset(root, task="shapes", size=size, train=0, test=count, seed=seed,
                       layout="paired")
    return sorted((root / "test" / "A").glob("*.png"))
