"""Report section: how the model was chosen, and how much more data would help (the probe's learning curve)."""

from __future__ import annotations

from typing import Any

from .templating import Html, render
from .values import dicts, mapping, number


def learning_curve(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The selection method in words, the measured learning curve and its projections to 2x and 4x the data."""
    selection = mapping(metrics.get("selection"))
    curve = metrics.get("learning_curve")
    shown = None
    if isinstance(curve, dict) and isinstance(curve.get("points"), list):
        shown = {"points": [[p.get("n"), number(p.get("accuracy")), len(p.get("runs") or [])]
                            for p in dicts(curve["points"])],
                 "projections": [[f"{p.get('factor')}x", p.get("examples"), p.get("per_class"),
                                  number(p.get("accuracy")), _gain(p.get("gain")),
                                  f"{number(p.get('low')) or 0:.3f}-{number(p.get('high')) or 0:.3f}",
                                  p.get("strategy")] for p in dicts(curve.get("projections"))],
                 "method": curve.get("method"), "note": curve.get("note") or ""}
    if not selection.get("how") and shown is None:
        return None
    return render("sections/how_much_data.html.j2", how=selection.get("how"), probe=selection.get("probe"),
                  curve=shown)


def _gain(value: Any) -> str:
    """What more data adds, in points ("" for a run recorded before the gain was)."""
    gain = number(value)
    return "" if gain is None else f"{gain * 100:+.1f} points"
