"""The report's charts: matplotlib figures drawn on their own Agg canvas, returned as PNG ``data:`` URIs.

Every chart is a :class:`matplotlib.figure.Figure` with a :class:`FigureCanvasAgg` of its own; pyplot is
never imported, so no figure is registered globally, no GUI backend is touched and nothing leaks between
calls. Style settings apply only while a chart is drawn (``rc_context``). Labels that come from users (class
names, layer groups) go through :func:`label`, so a ``$`` never switches matplotlib into math mode and a long
name never squeezes the plot.
"""

from __future__ import annotations

import base64
import functools
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .values import ANNOTATE_UP_TO, number, stage_spans

DPI = 110
NAMED_BARS_UP_TO = 40  # classes; above this, the examples-per-class chart shows the distribution, unnamed
SCORE_LABELS = {"acc": "accuracy", "f1": "entity F1"}
SPLIT_COLOURS = {"train": "#2563eb", "val": "#ea580c", "test": "#16a34a"}
_STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
          "ytick.labelsize": 8, "legend.fontsize": 8, "legend.frameon": False, "axes.spines.top": False,
          "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "image.cmap": "Blues"}


def label(text: Any, limit: int = 40) -> str:
    """A user-supplied name made safe for a chart: one line, at most ``limit`` characters, ``$`` literal."""
    s = " ".join(str(text).split())
    if len(s) > limit:  # keep both ends: names often share a prefix ("class 001 ...") or a suffix
        head = (limit - 1) * 3 // 5
        s = s[:head] + "…" + s[len(s) - (limit - 1 - head):]
    return s.replace("$", r"\$")


def _chart(draw: Callable[..., Figure | None]) -> Callable[..., str | None]:
    """Run ``draw`` under the report's style; return its figure as a PNG data URI (None: nothing to draw)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        with matplotlib.rc_context(cast(Any, _STYLE)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = draw(*args, **kwargs)
            if fig is None:
                return None
            buf = io.BytesIO()
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", bbox_inches="tight")  # tight: rotated stage names are not clipped
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    return wrapper


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _names(ax: Any, axis: str, names: Sequence[Any], length_in: float, limit: int = 30, **kw: Any) -> None:
    """Category names along ``axis``, sized to the room each has; left out when there is too little room."""
    n = len(names)
    size = min(8.0, 0.7 * length_in * 72 / max(n, 1))  # font points: about 70% of the spacing between ticks
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    if size < 3.5:
        set_ticks([])
        ax.text(0.0, 1.01, f"{n} classes: names in the table below", transform=ax.transAxes, fontsize=7)
    else:
        set_ticks(range(n), [label(c, limit) for c in names], fontsize=size, **kw)


def _stage_marks(ax: Any, spans: list[dict[str, Any]], names: bool) -> None:
    """Vertical lines between stages, the kept stage shaded, stage names above the top axes."""
    spans = [s for s in spans if s["epochs"]]  # a stage without epochs (a closed-form probe) has no place
    total = sum(s["epochs"] for s in spans) or 1
    for i, s in enumerate(spans):
        lo, hi = s["start"] + 0.5, s["start"] + s["epochs"] + 0.5
        if i:
            ax.axvline(lo, color="#6b7280", linestyle="--", linewidth=0.8)
        if s["kept"]:
            ax.axvspan(lo, hi, color="#16a34a", alpha=0.08, linewidth=0)
        if names:
            text = label(s["name"], 24) + (" (kept)" if s["kept"] else "")
            narrow = (hi - lo) / total * 70 < len(text)  # about 70 characters fit across the axes
            ax.text((lo + hi) / 2, 1.02, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7, rotation=90 if narrow else 0, fontweight="bold" if s["kept"] else "normal",
                    color="#166534" if s["kept"] else "#374151")


@_chart
def learning_curves(stages: Sequence[dict[str, Any]], score: str = "acc") -> Figure | None:
    """Loss and the score per epoch (train and val), every stage on one epoch axis; ``score``: the key the
    epoch rows hold it under (``acc``: accuracy, ``f1``: entity F1)."""
    spans = stage_spans(stages)
    if not any(s["epochs"] for s in spans):
        return None
    fig = _figure(9, 6)
    loss_ax, acc_ax = fig.subplots(2, 1, sharex=True)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, score)):
        for stage in stages:  # a stage without epochs (the linear probe) as a reference line of its val score
            y = number(stage.get(f"val_{metric}"))
            if not stage.get("history") and y is not None:
                kept = bool(stage.get("kept"))
                ax.axhline(y, color="#16a34a" if kept else "#6b7280", linestyle=":", linewidth=1.5,
                           label=f"{label(stage.get('stage', '?'), 24)} val" + (" (kept)" if kept else ""))
        for split in ("train", "val"):
            labelled = False
            for s in spans:
                pts = [(s["start"] + i + 1, number(r.get(f"{split}_{metric}")), r.get("epoch"))
                       for i, r in enumerate(s["rows"])]
                pts = [p for p in pts if p[1] is not None]
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=SPLIT_COLOURS[split],
                        linewidth=1.4, marker="o" if len(pts) < 30 else None, markersize=3,
                        label=None if labelled else split)
                labelled = True
                best = [p for p in pts if p[2] == s["best_epoch"]]
                if split == "val" and metric == score and s["kept"] and best:
                    ax.plot([best[0][0]], [best[0][1]], marker="*", markersize=13, color="#16a34a",
                            linestyle="none", label="kept: best epoch")
        _stage_marks(ax, spans, names=ax is loss_ax)
        ax.set_ylabel("loss" if metric == "loss" else SCORE_LABELS.get(score, score))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
    accs = [a for s in spans for r in s["rows"] for k in (f"train_{score}", f"val_{score}")
            if (a := number(r.get(k))) is not None]
    if accs:
        acc_ax.set_ylim(max(0.0, min(accs) - 0.05), max(1.02, max(accs) + 0.02))
    acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.set_xlabel("epoch (all stages, in order)")
    return fig


@_chart
def class_counts(per_split: dict[str, dict[str, int]], classes: Sequence[str]) -> Figure | None:
    """Examples per class, stacked by split (train, val, test): one named bar per class; above
    ``NAMED_BARS_UP_TO`` classes, unnamed bars from the largest class to the smallest (the shape of the
    imbalance; the names are in the table)."""
    if not classes or not per_split:
        return None
    n = len(classes)
    values = {split: np.array([number(counts.get(c)) or 0 for c in classes], dtype=float)
              for split, counts in per_split.items()}
    total = np.sum(list(values.values()), axis=0)
    named = n <= NAMED_BARS_UP_TO
    fig = _figure(8, min(max(0.22 * n + 1.0, 2.2), 10) if named else 3.2)
    ax = fig.subplots()
    order = np.arange(n) if named else np.argsort(-total, kind="stable")
    base = np.zeros(n)
    for split, v in values.items():
        colour = SPLIT_COLOURS.get(split, "#6b7280")
        if named:
            ax.barh(np.arange(n), v[order], left=base, color=colour, label=split)
        else:
            ax.bar(np.arange(n), v[order], bottom=base, color=colour, label=split)
        base = base + v[order]
    if named:
        if n <= 30:
            for y, t in enumerate(total):
                ax.text(t, y, f" {int(t)}", va="center", fontsize=7)
        _names(ax, "y", classes, fig.get_figheight() - 0.6)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel("examples")
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks([])
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_xlabel(f"{n} classes, from the most examples to the fewest (names in the table below)")
        ax.set_ylabel("examples")
        ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@_chart
def confusion(labels: Sequence[str], matrix: Sequence[Sequence[float]]) -> Figure | None:
    """Row-normalised confusion matrix as a heatmap, with counts written in when there are few classes."""
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if n == 0 or counts.shape != (n, n):
        return None
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = min(max(0.45 * n + 2.5, 4.5), 15)
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.7, label="share of the true class")
    if n <= ANNOTATE_UP_TO:
        size = 9 if n <= 8 else 7
        for i in range(n):
            for j in range(n):
                if counts[i, j] or i == j:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=size,
                            color="white" if share[i, j] > 0.55 else "#111827")
    limit = 24 if n <= ANNOTATE_UP_TO else 16
    _names(ax, "x", labels, side - 1.5, limit, rotation=90)
    _names(ax, "y", labels, side - 1.5, limit)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(visible=False)
    return fig


@_chart
def drift(rows: Sequence[dict[str, Any]], spans: list[dict[str, Any]]) -> Figure | None:
    """CKA to the pretrained features, and relative weight change, per layer group over the run's epochs."""
    start = {s["name"]: s["start"] for s in spans}
    series: dict[str, dict[str, list[tuple[float, float]]]] = {"cka": {}, "weight_change": {}}
    for i, r in enumerate(rows):
        x = start.get(str(r.get("stage")), None)
        x = (x + (number(r.get("epoch")) or 0)) if x is not None else i
        for key, per_group in series.items():
            for group, v in (r.get(key) or {}).items():
                if number(v) is not None:
                    per_group.setdefault(str(group), []).append((x, float(v)))
    present = [k for k in series if series[k]]
    if not present:
        return None
    xs_all = [x for k in present for pts in series[k].values() for x, _ in pts]
    lo, hi = min(xs_all), max(xs_all)
    spans = [s for s in spans if s["start"] + s["epochs"] + 0.5 >= lo and s["start"] + 0.5 <= hi]
    fig = _figure(9, 3.2 * len(present) + 0.6)
    axes = np.atleast_1d(fig.subplots(len(present), 1, sharex=True))
    for ax, key in zip(axes, present, strict=True):
        groups = list(series[key])
        colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(groups)))
        for colour, group in zip(colours, groups, strict=True):
            xs, ys = zip(*series[key][group], strict=True)
            ax.plot(xs, ys, color=colour, linewidth=1.3, marker="o" if len(xs) < 30 else None, markersize=2.5,
                    label=label(group, 28))
        _stage_marks(ax, spans, names=ax is axes[0])
        ax.set_ylabel("CKA to pretrained" if key == "cka" else "relative weight change")
        if len(groups) <= 16:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        else:
            ax.set_title(f"{len(groups)} layer groups; colour from {label(groups[0], 20)} (dark) "
                         f"to {label(groups[-1], 20)} (light)", fontsize=8)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("epoch (all stages, in order)")
    return fig


@_chart
def group_accuracy(groups: dict[str, dict[str, Any]]) -> Figure | None:
    """Accuracy per group with its confidence interval; groups too small to judge are grey."""
    names = [g for g, m in groups.items() if isinstance(m, dict) and number(m.get("accuracy")) is not None]
    if not names:
        return None
    n = len(names)
    fig = _figure(8, min(max(0.3 * n + 1.2, 2.2), 12))
    ax = fig.subplots()
    for y, g in enumerate(names):
        m = groups[g]
        acc = float(m["accuracy"])
        ci = m.get("accuracy_ci") or []
        lo, hi = (number(ci[0]), number(ci[1])) if len(ci) == 2 else (None, None)
        colour = "#9ca3af" if m.get("too_small") else "#2563eb"
        err = [[acc - lo], [hi - acc]] if lo is not None and hi is not None else None
        ax.errorbar([acc], [y], xerr=err, fmt="o", color=colour, capsize=3)
    _names(ax, "y", names, fig.get_figheight() - 0.6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("accuracy (bars: confidence interval; grey: too few examples to judge)")
    return fig


@_chart
def bars(values: dict[str, float], xlabel: str, colours: Sequence[str] | None = None,
         share: bool = False) -> Figure | None:
    """One horizontal bar per named number (the control comparison, per-layer mismatch scores); ``share``:
    the numbers are fractions (accuracies), drawn on a 0-1 axis."""
    items = [(k, float(v)) for k, v in values.items() if number(v) is not None]
    if not items:
        return None
    n = len(items)
    fig = _figure(7, min(max(0.3 * n + 1.0, 1.8), 10))
    ax = fig.subplots()
    ax.barh(range(n), [v for _, v in items], color=list(colours) if colours else "#2563eb", height=0.6)
    for y, (_, v) in enumerate(items):
        ax.text(v, y, f" {v:.3g}", va="center", fontsize=7)
    _names(ax, "y", [k for k, _ in items], fig.get_figheight() - 0.6)
    ax.set_ylim(n - 0.5, -0.5)
    if share:
        ax.set_xlim(0, 1.05)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    return fig
