"""The experiments' outputs: learning-curve plots (matplotlib Agg), results.csv and a self-contained report.html."""
from __future__ import annotations

import base64
import csv
import html
import io
import os
import tempfile
from pathlib import Path

from .result import ExperimentResult
from .training import RunResult, Settings
from .words import pct, signed

TEMPLATE = "experiments.html.j2"
CSV_FIELDS = ("experiment", "variant", "final_train_error", "final_valid_error", "final_test_error",
              "test_error_vs_baseline_points", "seconds", "diverged")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # a report to share, not a secret (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_curves(path: Path, title: str, runs: list[RunResult], baseline: RunResult, settings: Settings,
                group_size: int = 1) -> Path:
    """Training and validation error (log scale) per evaluation: exact backprop dashed, each variant a line.

    ``group_size`` > 1 colours consecutive variants as shades of one hue (e.g. three noise levels of one
    noise position).
    """
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if group_size > 1 and group_size <= 4 and len(runs) <= 5 * group_size:
        shades = plt.get_cmap("tab20c")

        def color(i: int):
            return shades((i // group_size) * 4 + i % group_size)
    else:
        palette = plt.get_cmap("tab20" if len(runs) > 10 else "tab10")

        def color(i: int):
            return palette(i % palette.N)

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2), sharey=True)
    for ax, key, name in ((axes[0], "train_error", "training error"), (axes[1], "valid_error", "validation error")):
        ax.plot(baseline.epochs, [max(e, 1e-4) for e in getattr(baseline, key)], "k--", lw=2, label="exact backprop")
        for i, run in enumerate(runs):
            label = run.variant + (" (diverged)" if run.diverged else "")
            ax.plot(run.epochs, [max(e, 1e-4) for e in getattr(run, key)], "-", color=color(i), lw=1.4, label=label)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{100 * y:g}%"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("error (log scale)")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"{title}\n{settings.mode} mode: {settings.activation}, {settings.n_train:,} training examples, "
                 f"{settings.epochs} epochs, SGD lr {settings.learning_rate:g}, batch {settings.batch_size}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    _atomic_write(Path(path), buf.getvalue())
    return Path(path)


def rows(experiments: list[ExperimentResult]) -> list[dict]:
    """One row per run: exact backprop first, then every family's variants."""
    if not experiments:
        return []
    base = experiments[0].baseline
    out = [_row(base, base)]
    for exp in experiments:
        out += [_row(r, exp.baseline) for r in exp.runs]
    return out


def _row(run: RunResult, baseline: RunResult) -> dict:
    return {
        "experiment": run.experiment,
        "variant": run.variant,
        "final_train_error": round(run.final_train_error, 5),
        "final_valid_error": round(run.final_valid_error, 5),
        "final_test_error": round(run.final_test_error, 5),
        "test_error_vs_baseline_points": round(100 * (run.final_test_error - baseline.final_test_error), 2),
        "seconds": round(run.seconds, 2),
        "diverged": run.diverged,
    }


def write_csv(path: Path, experiments: list[ExperimentResult]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(experiments))
    _atomic_write(Path(path), buf.getvalue().encode())
    return Path(path)


def _inline_png(path: Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_html(experiments: list[ExperimentResult], settings: Settings, meta: dict) -> str:
    """The report page: every plot inlined as base64 PNG, the table of final errors, the measured sentences."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(Path(__file__).resolve().parent.parent / "templates")),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = pct
    env.filters["signed"] = signed
    template = env.get_template(TEMPLATE)
    sections = [{"name": e.name, "title": e.title, "question": e.question, "sentence": e.sentence,
                 "image": _inline_png(e.plot), "rows": [_row(r, e.baseline) for r in e.runs]} for e in experiments]
    baseline = experiments[0].baseline if experiments else None
    return template.render(sections=sections, table=rows(experiments), settings=settings,
                           settings_text=settings.describe(), meta=meta,
                           baseline_sentence=meta.get("baseline_sentence", ""),
                           baseline=baseline, escape=html.escape)


def write_html(path: Path, experiments: list[ExperimentResult], settings: Settings, meta: dict) -> Path:
    _atomic_write(Path(path), render_html(experiments, settings, meta).encode("utf-8"))
    return Path(path)
