"""Report section: how the model was chosen, and how much more data would help (the probe's learning curve)."""

from __future__ import annotations

from typing import Any

from .sections import Html, markup, number, table


def learning_curve(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The selection method in words, the measured learning curve and its projections to 2x and 4x the data."""
    out: list[str] = []
    selection = metrics.get("selection")
    if isinstance(selection, dict) and selection.get("how"):
        out.append(markup("<p>How the model was chosen: {}.</p>", selection["how"]))
        if selection.get("probe"):
            out.append(markup('<p class="note">Linear probe: {}.</p>', selection["probe"]))
    curve = metrics.get("learning_curve")
    if isinstance(curve, dict) and isinstance(curve.get("points"), list):
        rows = [[p.get("n"), number(p.get("accuracy")), len(p.get("runs") or [])]
                for p in curve["points"] if isinstance(p, dict)]
        out.append("<h3>Learning curve of the linear probe</h3>")
        out.append(table(["training examples", "held-out accuracy (mean)", "runs"], rows))
        projections = [p for p in curve.get("projections") or [] if isinstance(p, dict)]
        if projections:
            out.append(table(["data", "examples", "per class", "expected accuracy", "80% interval", "auto would use"],
                             [[f"{p.get('factor')}x", p.get("examples"), p.get("per_class"),
                               number(p.get("accuracy")),
                               f"{number(p.get('low')) or 0:.3f}-{number(p.get('high')) or 0:.3f}",
                               p.get("strategy")] for p in projections]))
        out.append(markup('<p class="note">Fit: {}; {} These are probe accuracies: a fine-tuned model usually ends '
                          "above them.</p>", curve.get("method"), curve.get("note") or ""))
    return Html("".join(out)) if out else None
