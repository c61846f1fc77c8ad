"""``translate report RUN``: a training run as one self-contained HTML page."""

from __future__ import annotations

import sys

from translate.cli.args import Terminated, terminate_as_interrupt


def run(args) -> int:
    from translate.train.report import write_report

    try:
        with terminate_as_interrupt():  # the page is written whole or not at all
            out = write_report(args.run, args.out, args.overwrite)
    except KeyboardInterrupt as stop:
        print("\ninterrupted: no report was written", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    print(f"wrote {out} (open it in a browser; it needs no network)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="write a training run's report: one HTML page with "
                       "loss curves, D scores, evaluation, health events and sample grids",
                       description="Write one self-contained HTML page about a training run "
                       "(finished, in progress, or from an earlier version): smoothed loss "
                       "curves, D's scores, the learning rate, evaluation figures with the "
                       "best step, throughput, health events, the sample grids along the run "
                       "and the config. Needs matplotlib (pip install 'translate[report]').")
    p.add_argument("run", help="the run folder (train.out)")
    p.add_argument("--out", help="the HTML file to write (default: RUN/report.html); an "
                   "existing file is replaced only if translate report wrote it")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing regular file at --out even if translate report "
                   "did not write it (links, folders and devices are never replaced)")
    p.set_defaults(func=run)
