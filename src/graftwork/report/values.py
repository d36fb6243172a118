"""How the report reads and shows values from a run's metrics.json and config.json: no HTML here.

A run folder is user data (it can be old, edited or damaged), so values read as numbers go through
:func:`number` or :func:`count`: a string where a number was expected is shown as text, never computed with.
:func:`fmt` is how every value is written in the page (the templates apply it to whatever they show).
Both the sections and the charts (:mod:`.plots`) read values through this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

SEVERITY_ORDER = ("high", "warning", "info")
ANNOTATE_UP_TO = 20  # confusion matrices with more classes than this show colours only, no counts


def fmt(x: Any) -> str:
    """A value as the page shows it: numbers rounded for reading, None as a dash, lists joined."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            return str(x)
        if x == 0 or 0.001 <= abs(x) < 1000:
            return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"
        return f"{x:.3g}"
    if isinstance(x, list | tuple) and all(v is None or isinstance(v, str | int | float) for v in x):
        return ", ".join(fmt(v) for v in x)
    if isinstance(x, dict | list | tuple):
        return json.dumps(x, ensure_ascii=False)
    return str(x)


def short(x: Any) -> str:
    """A hyperparameter as people write it (``0.001``, ``1e-05``, ``1``), not rounded to a fixed precision."""
    return f"{x:.3g}" if number(x) is not None else fmt(x)


def number(x: Any) -> float | None:
    """``x`` as a finite float, or None (for missing values, NaN, infinities, booleans, strings)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def count(x: Any) -> int:
    """``x`` as a count to add up: 0 for anything that is not a finite number."""
    return int(number(x) or 0)


def mapping(x: Any) -> dict[str, Any]:
    """``x`` if it is a dict, else an empty one (a part of metrics.json that is missing or malformed)."""
    return x if isinstance(x, dict) else {}


def dicts(x: Any) -> list[dict[str, Any]]:
    """The dict items of ``x`` if it is a list, else none."""
    return [v for v in x if isinstance(v, dict)] if isinstance(x, list) else []


def matrix_of(x: Any) -> list[list[int]]:
    """A confusion matrix from metrics.json as counts (rows that are not lists are empty)."""
    return [[count(v) for v in row] if isinstance(row, list) else [] for row in x] if isinstance(x, list) else []


def stage_spans(stages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each stage lies on the run's global epoch axis: ``start`` (epochs before it) and ``epochs``."""
    spans, offset = [], 0
    for s in stages:
        rows = dicts(s.get("history"))
        spans.append({"name": str(s.get("stage", "?")), "start": offset, "epochs": len(rows), "rows": rows,
                      "kept": bool(s.get("kept")), "best_epoch": s.get("best_epoch")})
        offset += len(rows)
    return spans


def stages_of(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The training stages; a run saved before stages were recorded has one, from its top-level history."""
    stages = dicts(metrics.get("stages"))
    if not stages and metrics.get("history"):
        stages = [{"stage": "linear probe", "history": metrics["history"],
                   "best_epoch": metrics.get("best_epoch"), "kept": True}]
    return stages


def eval_split(metrics: dict[str, Any]) -> str | None:
    """The split whose confusion matrix and per-class table are shown: test, else val, else train."""
    return next((s for s in ("test", "val", "train") if isinstance(metrics.get(s), dict)
                 and isinstance(metrics[s].get("confusion"), dict) and metrics[s]["confusion"]), None)
