"""Small matplotlib figures (Agg, inline base64 PNG) for the feedback page and the class summary.

``report_figures(report)`` is what ``autograder.report.feedback`` calls: it returns
``{"<check id>: <title>": "data:image/png;base64,..."}`` so the template shows each figure under
the check it belongs to. Every figure is optional: missing evidence means no figure, never an error.
Figures are drawn with the object-oriented API (no pyplot state) at a low dpi to keep pages light.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Any, Iterable, Sequence

import numpy as np

DPI = 80
_TEST_IMAGES: Any = None          # (X, y) of the MNIST test split, loaded once per process
PASS_FLOAT64 = 1e-6               # the gradient check's pass threshold (autograder.checks.gradients)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def set_test_images(X: np.ndarray | None, y: np.ndarray | None) -> None:
    """Give this process the MNIST test images (the trusted grader side loads them, never a worker)."""
    global _TEST_IMAGES
    _TEST_IMAGES = (X, y) if X is not None else None


def _test_images() -> tuple[np.ndarray, np.ndarray] | None:
    global _TEST_IMAGES
    if _TEST_IMAGES is None:
        try:
            from ..mnist import load_split
            split = load_split("test", fetch=False)
            _TEST_IMAGES = (split.X, split.y)
        except Exception:  # noqa: BLE001 - no MNIST cache: the digit grid is simply left out
            _TEST_IMAGES = False
    return _TEST_IMAGES or None


def _evidence(report, prefix: str) -> dict[str, dict]:
    return {r.name: r.evidence for r in report.results if r.name.startswith(prefix) and r.evidence}


# ---- per-student figures ----------------------------------------------------------------------

def learning_curve(curve: Sequence[dict], target: float = 0.05, budget_s: float | None = None) -> str | None:
    points = [c for c in curve if isinstance(c, dict) and _finite(c.get("epoch")) and _finite(c.get("test_error"))]
    if not points:
        return None
    fig = _figure(5.0, 2.8)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [float(c["epoch"]) for c in points]
    ax.plot(epochs, [100 * float(c["test_error"]) for c in points], "o-", color="#c62828", label="test error")
    valid = [(float(c["epoch"]), 100 * float(c["valid_error"])) for c in points if _finite(c.get("valid_error"))]
    if valid:
        ax.plot(*zip(*valid), "s--", color="#1565c0", ms=4, label="validation error")
    ax.axhline(100 * target, color="#1a7f37", lw=1, ls=":", label=f"target {target:.0%}")
    ax.set_xlim(0, max(epochs) * 1.05 + 0.02)
    ax.set_xlabel("epochs of the grader's training run")
    ax.set_ylabel("error (%)")
    top = max(100 * float(c["test_error"]) for c in points)
    ax.set_ylim(0, min(100, max(top * 1.15, 100 * target * 2)))
    last = points[-1]
    note = f"{float(last.get('seconds', 0)):.1f} s of training"
    if budget_s:
        note += f" (budget {float(budget_s):.0f} s)"
    ax.set_title(note, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.17, top=0.9)
    return to_data_uri(fig)


def confusion_matrix(conf: Sequence[Sequence[int]]) -> str | None:
    m = np.asarray(conf, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0 or m.sum() <= 0:
        return None
    k = m.shape[0]
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    off = frac.copy()
    np.fill_diagonal(off, 0.0)
    fig = _figure(4.2, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(off, cmap="Reds", vmin=0, vmax=max(off.max(), 0.05))
    # counts on the diagonal and on the (at most k) largest confusions of at least 1% of their row:
    # text is what costs most to draw, and a colour says the rest
    order = np.argsort(off, axis=None)[::-1][:k]
    biggest = {(int(i), int(j)) for i, j in zip(*np.unravel_index(order, off.shape)) if frac[i, j] >= 0.01}
    for i in range(k):
        for j in range(k):
            if m[i, j] and (i == j or (i, j) in biggest):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6,
                        color="#1a7f37" if i == j else ("white" if off[i, j] > 0.6 * off.max() else "black"))
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    errors = int(m.sum() - np.trace(m))
    ax.set_title(f"test set: {errors} of {int(m.sum())} misclassified", fontsize=9)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return to_data_uri(fig)


def misclassified_grid(indices: Sequence[int], predictions: Sequence[int], images: np.ndarray,
                       labels: np.ndarray | None = None, cols: int = 9) -> str | None:
    """A mosaic of misclassified test digits (one image, one axes: cheap to draw), true→predicted."""
    pairs = [(int(i), int(p)) for i, p in zip(indices, predictions)
             if isinstance(i, (int, np.integer)) and 0 <= int(i) < images.shape[0]]
    if not pairs:
        return None
    pairs = pairs[:36]
    side = int(round(math.sqrt(images.shape[1])))
    if side * side != images.shape[1]:
        return None
    cols = min(cols, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    pad_x, pad_y = 4, 12                      # pixels between tiles; room for the caption
    cell_w, cell_h = side + pad_x, side + pad_y
    mosaic = np.zeros((rows * cell_h, cols * cell_w), dtype=np.float32)
    for n, (idx, _) in enumerate(pairs):
        r, c = divmod(n, cols)
        mosaic[r * cell_h + pad_y - 2: r * cell_h + pad_y - 2 + side, c * cell_w + 2: c * cell_w + 2 + side] = \
            np.asarray(images[idx], dtype=np.float32).reshape(side, side)
    scale = 1.9 / DPI                         # inches per mosaic pixel
    fig = _figure(mosaic.shape[1] * scale, mosaic.shape[0] * scale + 0.25)
    ax = fig.add_axes((0, 0, 1, mosaic.shape[0] * scale / (mosaic.shape[0] * scale + 0.25)))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    for n, (idx, pred) in enumerate(pairs):
        r, c = divmod(n, cols)
        text = f"→{pred}" if labels is None else f"{int(labels[idx])}→{pred}"
        ax.text(c * cell_w + cell_w / 2, r * cell_h + 1, text, ha="center", va="top", fontsize=7, color="#c62828")
    fig.text(0.5, 0.99, "misclassified test digits (true→predicted)", ha="center", va="top", fontsize=8)
    return to_data_uri(fig)


def gradient_errors(errors: dict[str, Sequence[float]], threshold: float = PASS_FLOAT64) -> str | None:
    """Per-parameter relative errors (one point per case) on a log scale, with the pass line."""
    keys = [k for k, v in errors.items() if v]
    if not keys:
        return None
    fig = _figure(4.6, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    # log10 drawn on a linear axis (a log-scaled axis costs more to draw than the rest of the figure)
    floor = -16.5
    for x, key in enumerate(keys):
        vals = [max(math.log10(float(v)), floor) if _finite(v) and float(v) > 0 else (floor if _finite(v) else 0.0)
                for v in errors[key]]
        colors = ["#1a7f37" if v <= math.log10(threshold) else "#c62828" for v in vals]
        ax.scatter([x + (i - (len(vals) - 1) / 2) * 0.12 for i in range(len(vals))], vals, c=colors, s=28, zorder=3)
    ax.axhline(math.log10(threshold), color="#555", ls="--", lw=1)
    ax.text(len(keys) - 0.5, math.log10(threshold) + 0.3, f"pass < {threshold:.0e}", ha="right", va="bottom",
            fontsize=7, color="#555")
    ax.set_ylim(-17, 1)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"dL/d{k}" for k in keys])
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.set_ylabel("relative error")
    ax.set_yticks([-15, -12, -9, -6, -3, 0])
    ax.set_yticklabels(["1e-15", "1e-12", "1e-9", "1e-6", "1e-3", "1"])
    ax.set_title("backward vs finite differences (one dot per case)", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.88)
    return to_data_uri(fig)


def report_figures(report, target: float | None = None) -> dict[str, str]:
    """Every figure the report's evidence allows, keyed ``"<check id>: <title>"``."""
    figures: dict[str, str] = {}
    grads: dict[str, list] = {}
    for name, ev in _evidence(report, "gradients:").items():
        rel = ev.get("relative_errors")
        if isinstance(rel, list):
            grads[name.split(":", 1)[1].strip()] = [v for v in rel if isinstance(v, (int, float))]
    _add(figures, "gradients: relative error per parameter", lambda: gradient_errors(grads))
    for ev in _evidence(report, "training:").values():
        if target is None:
            target = _target()
        curve = ev.get("curve")
        if isinstance(curve, list):
            _add(figures, "training: learning curve", lambda: learning_curve(curve, target, ev.get("budget_s")))
        conf = ev.get("confusion")
        if isinstance(conf, list):
            _add(figures, "training: confusion matrix (test set)", lambda: confusion_matrix(conf))
        wrong, preds = ev.get("misclassified"), ev.get("predictions_of_misclassified")
        if isinstance(wrong, list) and isinstance(preds, list) and wrong:
            data = _test_images()
            if data is not None:
                _add(figures, "training: misclassified test digits",
                     lambda: misclassified_grid(wrong, preds, data[0], data[1]))
        break
    return figures


# ---- class summary figures --------------------------------------------------------------------

def score_histogram(totals: Iterable[float], max_score: float = 100.0) -> str | None:
    values = [float(t) for t in totals if _finite(t)]
    if not values:
        return None
    fig = _figure(5.2, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    top = max(max_score, max(values)) or 1.0
    bins = np.linspace(0, top, 11)
    ax.hist(values, bins=bins, color="#1565c0", edgecolor="white")
    ax.set_xlabel(f"total score (of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{len(values)} students, mean {np.mean(values):.1f}, median {np.median(values):.1f}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return to_data_uri(fig)


def check_averages(averages: dict[str, tuple[float, float]]) -> str | None:
    """{check id: (class average, max points)} as horizontal bars in percent of the check's points."""
    items = [(k, a, m) for k, (a, m) in averages.items() if m]
    if not items:
        return None
    fig = _figure(5.2, 0.45 * len(items) + 0.8)
    ax = fig.add_subplot(1, 1, 1)
    ys = range(len(items))
    pct = [100 * a / m for _, a, m in items]
    ax.barh(list(ys), pct, color=["#1a7f37" if p >= 80 else "#f9a825" if p >= 50 else "#c62828" for p in pct])
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"{k}  {a:.1f}/{m:g}" for k, a, m in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("class average (% of the check's points)")
    fig.tight_layout()
    return to_data_uri(fig)


# ---- helpers ----------------------------------------------------------------------------------

def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _add(figures: dict[str, str], name: str, make) -> None:
    try:
        uri = make()
    except Exception:  # noqa: BLE001 - one broken figure never costs the others (or the page)
        return
    if uri:
        figures[name] = uri


def _target() -> float:
    try:
        from ..config import load_config
        return float(load_config().training.target_error)
    except Exception:  # noqa: BLE001
        return 0.05
