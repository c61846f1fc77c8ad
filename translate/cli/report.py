"""``translate report RUN``: a training run as one self-contained HTML page."""

from __future__ import annotations

import sys


def run(args) -> int:
    from translate.train.report import write_report

    out = write_report(args.run, args.out)
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
    p.add_argument("--out", help="the HTML file to write (default: RUN/report.html)")
    p.set_defaults(func=run)
