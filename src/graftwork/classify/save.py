"""Step 7 of a classification fit: the cost of the run, the run folder written, the summary printed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..console import Console
from ..diagnostics import Finding
from ..features import resolve_device
from ..model import TransferModel
from ..resources import cost_line, parameter_counts, peak_memory
from .state import FitState


def save(state: FitState) -> FitState:
    """Timing, parameters and memory into the metrics; the run folder written when ``--out`` was given (and the
    interrupted-run state removed with it); the summary printed."""
    model, metrics = state.model, state.metrics
    assert model is not None and state.backbone is not None and state.head is not None
    metrics["timing"] = {"linear_probe_s": state.lp_record["seconds"],
                         "total_s": round(time.perf_counter() - state.started, 3)}
    metrics["parameters"] = parameter_counts(state.backbone, state.head, state.stages)
    metrics["memory"] = peak_memory(resolve_device(state.cfg.device))
    model.metrics = metrics
    if state.out is not None:
        model.save(state.out, force=state.force)
        if state.partial is not None:
            shutil.rmtree(state.partial, ignore_errors=True)  # check_out let an older fit's state through: --force
    summary(state.console, model, state.out)
    return state


def summary(console: Console, model: TransferModel, out: str | Path | None) -> None:
    """What was kept, how well it does against the majority class, what it cost, and the findings."""
    m = model.metrics
    parts = [f"kept {m['kept_stage']}"]
    for name in ("val", "test"):
        if name in m:
            parts.append(f"{name} accuracy {m[name]['accuracy']:.3f} (macro F1 {m[name]['macro_f1']:.3f}; "
                         f"majority class {m[name]['majority_baseline']['accuracy']:.3f}"
                         + ("; optimistic, see metrics.json" if m[name].get("optimistic") else "") + ")")
    console.info("done: " + "; ".join(parts) + f" in {m['timing']['total_s']:.1f}s")
    if cost := cost_line(m):
        console.info(cost)
    for f in sorted((Finding.from_dict(d) for d in m.get("findings", [])), key=lambda f: f.severity != "high"):
        if f.severity == "info":
            console.info(f"finding: {f.message}")
        else:
            console.warn(f"{f.code} ({f.severity}): {f.message}" + (f"\n  what to do: {f.advice}" if f.advice else ""))
    if out is not None:
        console.info(f"saved to {Path(out)}  (graftwork predict {out} INPUT..., graftwork evaluate {out} DATA)")
