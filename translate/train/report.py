"""A training run as one self-contained HTML page (``translate report RUN``): smoothed loss
curves per term, D's scores, the learning rate, evaluation figures with the best step
marked, throughput, the health events, the sample grids along the run (latest first) and
the config. Everything is inlined (plots as PNG, samples as JPEG data URIs), so the file
opens anywhere without a network or TensorBoard. It reads only the run folder's files
(config.yaml, metrics.jsonl, samples/), so it works on a run still in progress and on run
folders written by earlier versions.

Plots use matplotlib's Agg backend (the optional extra ``translate[report]``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from translate.errors import UserError
from translate.files import atomic_write

SMOOTH_POINTS = 20   # the bold curves average over about 1/20 of a curve's points
MAX_SAMPLES = 24     # sample grids shown, spread evenly over the run, the latest always
SAMPLE_WIDTH = 1024  # grids wider than this are scaled down
NOT_TERMS = {"step", "lr", "seconds", "event", "message", "advice"}
# Bounds on what a run folder can make the report do: a line of metrics.jsonl longer than
# MAX_LINE bytes is left out, at most MAX_TERMS curves are drawn per plot, texts (event
# messages, the config) are cut at MAX_TEXT characters, and a sample grid above
# MAX_GRID_PIXELS (or not a readable picture) is left out; the page says what was.
MAX_LINE = 256 * 1024
MAX_TERMS = 24
MAX_TEXT = 20_000
MAX_GRID_PIXELS = 50_000_000


class ReportError(UserError):
    """The folder is not a run folder this report can read."""


@dataclass
class RunRecord:
    """What a run folder holds: metrics lines (losses), evaluation lines, events, sample
    grids by step, the config text and whether generators were exported."""
    folder: Path
    config_text: str = ""
    planned: int | None = None
    rows: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    samples: list[tuple[int, Path]] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out, and why


def _lines(path: Path, notes: list[str]):
    """The lines of ``path``, those longer than MAX_LINE bytes skipped (and counted in
    ``notes``) without ever holding more than MAX_LINE bytes of one."""
    skipped = 0
    with open(path, "rb") as f:
        while True:
            line = f.readline(MAX_LINE + 1)
            if not line:
                break
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                skipped += 1
                while (rest := f.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                    pass
                continue
            yield line.decode("utf-8", errors="replace")
    if skipped:
        notes.append(f"{skipped} line(s) of {path.name} longer than {MAX_LINE // 1024} KB "
                     "were left out")


def read_run(folder: Path) -> RunRecord:
    """The run folder's records; torn or foreign lines of metrics.jsonl are skipped."""
    folder = Path(folder)
    metrics = folder / "metrics.jsonl"
    if not folder.is_dir() or not (metrics.is_file() or (folder / "config.yaml").is_file()):
        raise ReportError(f"{folder} is not a run folder (it has no metrics.jsonl or "
                          "config.yaml); give the folder a training run writes (train.out)")
    record = RunRecord(folder)
    if (folder / "config.yaml").is_file():
        with open(folder / "config.yaml", "rb") as f:
            record.config_text = f.read(MAX_TEXT + 1).decode("utf-8", errors="replace")
        record.planned = _planned_iterations(record.config_text)
    lines = _lines(metrics, record.notes) if metrics.is_file() else []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            continue
        if "event" in row:
            record.events.append(row)
        elif any(k.startswith("eval_") for k in row):
            record.evals.append(row)
        else:
            record.rows.append(row)
    for grid in sorted((folder / "samples").glob("step_*.png")):
        try:
            step = int(grid.stem.split("_")[1])
        except ValueError:
            continue
        if grid.is_file() and not grid.is_symlink():  # not a folder, FIFO or link
            record.samples.append((step, grid))
        else:
            record.notes.append(f"samples/{grid.name} is not a plain file; left out")
    record.exported = sorted(p.name for p in folder.glob("generator_*.safetensors"))
    return record


def _planned_iterations(config_text: str) -> int | None:
    import yaml

    try:
        tree = yaml.safe_load(config_text)
        return int(tree["train"]["iterations"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Running average with bias correction (the first values are not pulled to 0); by
    default over about 1/SMOOTH_POINTS of the curve (none for short curves)."""
    if weight is None:
        weight = min(0.98, max(0.0, 1.0 - SMOOTH_POINTS / max(len(values), 1)))
    out, average = [], 0.0
    for i, v in enumerate(values, 1):
        average = weight * average + (1 - weight) * v
        out.append(average / (1 - weight ** i))
    return out


def loss_terms(rows: list[dict]) -> list[str]:
    """Logged loss terms in first-seen order (D's scores apart)."""
    keys: dict[str, None] = {}
    for row in rows:
        for k, v in row.items():
            if k not in NOT_TERMS and not k.startswith("score_") and _number(v) is not None:
                keys[k] = None
    return list(keys)


def _number(value) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, infinite, NaN, or an
    integer too large for a float such as 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], v) for r in rows if (v := _number(r.get(key))) is not None]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _label(text: str) -> str:
    """A metric name as plot text: shortened, ``$`` shown as itself (not mathtext)."""
    text = str(text)
    return ((text[:60] + "...") if len(text) > 60 else text).replace("$", r"\$")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ReportError("translate report draws its plots with matplotlib, which is not "
                          "installed: pip install 'translate[report]' (or: pip install "
                          "matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], keys: list[str], events: list[dict], columns: int = 3,
                smoothed: bool = True) -> str | None:
    """Small multiples, one per key: raw values faint, their running average bold, events
    as dashed lines; a PNG data URI (None when no key has values)."""
    keys = [k for k in keys if _series(rows, k)[0]][:MAX_TERMS]
    if not keys:
        return None
    plt = _pyplot()
    columns = min(columns, len(keys))
    n_rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.2 * columns, 2.6 * n_rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        steps, values = _series(rows, key)
        if smoothed and len(values) > 2:
            ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=1)
            ax.plot(steps, smooth(values), color="tab:blue", linewidth=2)
        else:
            ax.plot(steps, values, color="tab:blue", linewidth=2, marker="." if
                    len(values) < 30 else None)
        for event in events[:MAX_TERMS]:
            ax.axvline(event["step"], color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(_label(key), fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def plot_scores(rows: list[dict]) -> str | None:
    """D's scores on real, generated and mismatched samples, smoothed, in one plot."""
    keys = sorted({k for r in rows for k in r if k.startswith("score_")})[:MAX_TERMS]
    if not keys:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    for key in keys:
        steps, values = _series(rows, key)
        line, = ax.plot(steps, smooth(values), linewidth=2, label=_label(key))
        ax.plot(steps, values, color=line.get_color(), alpha=0.2, linewidth=1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_xlabel("step")
    ax.set_title("discriminator scores (vanilla: probability of real; LSGAN: output)",
                 fontsize=10)
    return _png(fig)


def best_eval(evals: list[dict]) -> tuple[str, dict] | None:
    """(metric, row) of the best evaluation: highest PSNR, else lowest FID."""
    for metric, pick in (("eval_psnr", max), ("eval_fid", min)):
        scored = [r for r in evals if _number(r.get(metric)) is not None]
        if scored:
            return metric, pick(scored, key=lambda r: r[metric])
    return None


def plot_evals(evals: list[dict]) -> str | None:
    """Each evaluation figure over the steps, the best checkpoint's step starred."""
    keys = loss_terms_eval(evals)[:MAX_TERMS]
    if not keys:
        return None
    plt = _pyplot()
    best = best_eval(evals)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        steps, values = _series(evals, key)
        ax.plot(steps, values, marker="o", linewidth=2)
        if best is not None and key in best[1]:
            ax.plot([best[1]["step"]], [best[1][key]], marker="*", markersize=16,
                    color="tab:orange", label=f"best ({best[0][5:]}) at {best[1]['step']}")
            ax.legend(fontsize=8)
        ax.set_title(_label(key[5:]), fontsize=10)
        ax.grid(alpha=0.3)
    return _png(fig)


def loss_terms_eval(evals: list[dict]) -> list[str]:
    keys: dict[str, None] = {}
    for row in evals:
        for k, v in row.items():
            if k.startswith("eval_") and k != "eval_images" and _number(v) is not None:
                keys[k] = None
    return list(keys)


def throughput(rows: list[dict]) -> list[dict]:
    """Iterations per second of each metrics line (the iterations since the line before
    over its ``seconds``)."""
    out, previous = [], 0
    for row in rows:
        seconds = _number(row.get("seconds"))
        if seconds is not None and seconds > 0 and row["step"] > previous:
            out.append({"step": row["step"], "iterations/s": (row["step"] - previous) / seconds})
        previous = row["step"]
    return out


def _sample_jpeg(path: Path) -> str | None:
    """The grid at ``path`` as a JPEG data URI, at most SAMPLE_WIDTH wide; None when it is
    not a picture that can be read, or declares more than MAX_GRID_PIXELS."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_GRID_PIXELS:
                return None
            image = image.convert("RGB")
            if image.width > SAMPLE_WIDTH:
                image = image.resize((SAMPLE_WIDTH, max(1, round(
                    image.height * SAMPLE_WIDTH / image.width))), Image.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=88)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def chosen_samples(samples: list[tuple[int, Path]]) -> list[tuple[int, Path]]:
    """At most MAX_SAMPLES grids, evenly over the run, the latest first."""
    if len(samples) > MAX_SAMPLES:
        picks = {round(i * (len(samples) - 1) / (MAX_SAMPLES - 1)) for i in range(MAX_SAMPLES)}
        samples = [samples[i] for i in sorted(picks)]
    return samples[::-1]


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
img { max-width: 100%; } .plot { display: block; margin: 8px 0; }
.samples { max-height: 900px; overflow-y: auto; border: 1px solid #ddd; padding: 8px; }
.samples figure { margin: 0 0 16px 0; } pre { background: #f6f6f6; padding: 12px; }
.event { color: #a00; } .muted { color: #666; }
"""


def _status(record: RunRecord) -> str:
    done = record.rows[-1]["step"] if record.rows else 0
    planned = f" of {record.planned}" if record.planned else ""
    if record.exported:
        return (f"finished: {done}{planned} iterations, exported "
                + ", ".join(record.exported))
    end = record.events[-1] if record.events else {}
    if end.get("event") in ("diverged", "stopped") and end.get("step", -1) >= done:
        if end["event"] == "diverged":
            return (f"stopped: diverged at step {end['step']}: "
                    f"{_short(end.get('message', ''), 2000)} Nothing was exported. "
                    f"{_short(end.get('advice', ''), 2000)}").strip()
        return (f"stopped at step {end['step']} by train.on_collapse=stop on "
                f"{_short(end.get('cause', 'a health event'), 60)}. Nothing exported.")
    return f"in progress or stopped: {done}{planned} iterations logged, nothing exported yet"


def _timing_rows(record: RunRecord) -> list[tuple[str, str]]:
    seconds = sum(r.get("seconds", 0) for r in record.rows
                  if isinstance(r.get("seconds"), (int, float)))
    rates = [r["iterations/s"] for r in throughput(record.rows)]
    rows = [("training time (logged)", f"{seconds / 60:.1f} min")]
    if rates:
        rows += [("iterations per second", f"mean {sum(rates) / len(rates):.2f}, "
                                           f"last {rates[-1]:.2f}")]
        done = record.rows[-1]["step"]
        if record.planned and done < record.planned and not record.exported:
            rows.append(("left at the last rate",
                         f"{(record.planned - done) / rates[-1] / 60:.1f} min"))
    best = best_eval(record.evals)
    if best is not None:
        rows.append(("best evaluation", f"{best[0][5:]} {best[1][best[0]]:.4g} at step "
                                        f"{best[1]['step']} (checkpoints/best.pt)"))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _events_html(events: list[dict]) -> str:
    if not events:
        return "<p class='muted'>No health events: no collapse, D winning, stall or " \
               "divergence was seen.</p>"
    cells = "".join(
        f"<tr class='event'><td>{e['step']}</td><td>{html.escape(_short(e['event'], 60))}</td>"
        f"<td>{html.escape(_short(e.get('message', ''), 2000))}</td>"
        f"<td>{html.escape(_short(e.get('advice', ''), 2000))}</td></tr>" for e in events)
    return ("<table><tr><th>step</th><th>event</th><th>what</th><th>advice</th></tr>"
            f"{cells}</table>")


def _plots_html(record: RunRecord) -> str:
    parts = []
    terms = loss_terms(record.rows)
    norms = [k for k in terms if k.startswith("grad_norm")]
    d_terms = [k for k in terms if k.startswith("d_") or k == "d"]
    g_terms = [k for k in terms if k not in d_terms and k not in norms]
    for group, keys in (("generator terms", g_terms), ("discriminator terms", d_terms),
                        ("gradient norms", norms)):
        if len(keys) > MAX_TERMS:
            names = ", ".join(_short(k, 40) for k in keys[MAX_TERMS:MAX_TERMS + 5])
            record.notes.append(f"{len(keys) - MAX_TERMS} more {group} than the {MAX_TERMS} "
                                f"plotted ({names}{', ...' if len(keys) > MAX_TERMS + 5 else ''})")
    for title, uri in (
            ("generator terms (raw faint, smoothed bold; dashed: health events)",
             plot_curves(record.rows, g_terms, record.events)),
            ("discriminator terms", plot_curves(record.rows, d_terms, record.events)),
            ("discriminator scores", plot_scores(record.rows)),
            ("gradient norms (before each optimizer step)",
             plot_curves(record.rows, norms, record.events)),
            ("evaluation (the starred step is checkpoints/best.pt)", plot_evals(record.evals)),
            ("learning rate and throughput",
             plot_curves(record.rows + throughput(record.rows), ["lr", "iterations/s"], [],
                         columns=2, smoothed=False))):
        if uri is not None:
            parts.append(f"<h2>{html.escape(title)}</h2><img class='plot' src='{uri}' "
                         f"alt='{html.escape(title)}'>")
    return "".join(parts)


def _samples_html(record: RunRecord) -> str:
    if not record.samples:
        return "<p class='muted'>No sample grids (train.sample_every is 0, or none is due " \
               "yet).</p>"
    shown = chosen_samples(record.samples)
    note = (f"<p class='muted'>{len(shown)} of {len(record.samples)} grids, evenly over the "
            "run.</p>" if len(shown) < len(record.samples) else "")
    figures = []
    for step, path in shown:
        uri = _sample_jpeg(path)
        if uri is None:
            record.notes.append(f"samples/{path.name} is not a picture that can be read "
                                f"(damaged, or above {MAX_GRID_PIXELS / 1e6:g} megapixels); "
                                "left out")
            continue
        figures.append(f"<figure><figcaption>step {step}</figcaption><img src='{uri}' "
                       f"alt='samples at step {step}'></figure>")
    return f"{note}<div class='samples'>{''.join(figures)}</div>"


def _short(text, limit: int = MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text) - limit} more)"


def _notes_html(record: RunRecord) -> str:
    if not record.notes:
        return ""
    return ("<h2>Left out of this report</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in record.notes) + "</ul>")


MARK = "<!-- translate report -->"  # the first line of every page this module writes


def build_report(record: RunRecord) -> str:
    """The page (a complete HTML document) for ``record``."""
    name = html.escape(f"{record.folder.resolve().parent.name}/{record.folder.name}")
    body = (f"<h1>Training run {name}</h1><p>{html.escape(_status(record))}</p>"
            f"{_table(_timing_rows(record))}"
            f"<h2>Health events</h2>{_events_html(record.events)}"
            f"{_plots_html(record)}"
            f"<h2>Sample grids (latest first)</h2>{_samples_html(record)}"
            f"<h2>Config</h2><pre>{html.escape(_short(record.config_text))}</pre>")
    return (f"{MARK}\n<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}: "
            f"training report</title><style>{STYLE}</style></head><body>{body}"
            f"{_notes_html(record)}</body></html>")


def check_target(out: Path, overwrite: bool = False) -> None:
    """:class:`ReportError` unless ``out`` may be written: absent, or a report this module
    wrote (its first line is :data:`MARK`), or, with ``overwrite``, any regular file. A
    link, a folder, a FIFO or a device is never replaced."""
    if not os.path.lexists(out):
        return
    kind = ("a symbolic link" if out.is_symlink() else "a folder" if out.is_dir()
            else None if out.is_file() else "not a regular file (a FIFO, socket or device)")
    if kind:
        raise ReportError(f"{out} is {kind}; the report never replaces it: choose another "
                          "--out")
    if overwrite:
        return
    try:
        with open(out, "rb") as f:
            first = f.read(len(MARK))
    except OSError as err:
        raise ReportError(f"{out} exists and cannot be read ({err.strerror}); choose "
                          "another --out") from None
    if first != MARK.encode():
        raise ReportError(f"{out} exists and is not a report written by translate report "
                          "(nothing was written); choose another --out, or add --overwrite "
                          "to replace it")


def write_report(folder: Path, out: Path | None = None, overwrite: bool = False) -> Path:
    """Write the report of run ``folder`` to ``out`` (default FOLDER/report.html),
    atomically; returns its path. An existing ``out`` is replaced only when this module
    wrote it, or with ``overwrite`` when it is a regular file (:func:`check_target`)."""
    out = Path(out) if out is not None else Path(folder) / "report.html"
    check_target(out, overwrite)
    record = read_run(Path(folder))
    page = build_report(record)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return out
