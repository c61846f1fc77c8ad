"""Running the rows of a training benchmark (quality.py, recipes.py): each row is one
training run that returns a dict; the rows are run in a process pool and each one is
printed and appended to a JSON lines file as soon as it is done, so an interrupted
benchmark keeps what it measured and the next call runs only what is missing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


def measured(out: Path | None, key: Callable[[dict], tuple]) -> set[tuple]:
    """``key(row)`` of every row already in ``out`` (JSON lines); empty when there is none."""
    if out is None or not out.exists():
        return set()
    return {key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()}


def run_rows(run_one: Callable[..., dict], jobs: Iterable[tuple], out: Path | None,
             workers: int) -> None:
    """``run_one(*job)`` for each job, ``workers`` at a time. A run that fails is reported
    on stderr and does not stop the others."""
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(run_one, *job): job for job in jobs}
        for future in as_completed(futures):
            try:
                line = json.dumps(future.result())
            except Exception as err:  # one failed run does not lose the others
                print(f"failed: {futures[future][:3]}: {err!r}", file=sys.stderr, flush=True)
                continue
            print(line, flush=True)
            if out:
                with open(out, "a") as f:
                    f.write(line + "\n")
