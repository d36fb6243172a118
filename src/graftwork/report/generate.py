"""The report of a language-model fine-tuning run (``--task generate``): what fine-tuning bought against the
base model prompted without training, the epochs, forgetting on general text and sample generations, between
the sections every task shares (:mod:`.sections`: findings, plan, cost, backbone and versions).

The curves are inline SVG polylines drawn from numbers only (``line_chart``), so a generation run's report
needs no matplotlib; prompts, references and generations are user text and are shown as text.
``sections(config, metrics)`` is what the generation task hands to :func:`graftwork.report.render`.
"""

from __future__ import annotations

from typing import Any

from . import sections as shared
from .sections import Section
from .templating import Html, render
from .values import dicts, mapping, number

COLOURS = ("#1f77b4", "#d62728", "#2ca02c")
WIDTH, HEIGHT, PAD = 420, 180, 30


def line_chart(title: str, series: dict[str, list[tuple[Any, Any]]], x_label: str = "epoch") -> dict[str, Any] | None:
    """What the ``line_chart`` macro draws: one polyline per series of (x, y) points (non-numbers left out, a
    series without points too), scaled into the box; None when no series has a point."""
    clean = {name: [(float(x), float(y)) for x, y in pts if number(x) is not None and number(y) is not None]
             for name, pts in series.items()}
    points = [p for pts in clean.values() for p in pts]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1

    def at(x: float, y: float) -> str:
        px = PAD + (x - x0) / max(x1 - x0, 1e-9) * (WIDTH - 2 * PAD)
        return f"{px:.1f},{HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD):.1f}"

    lines = [{"name": name, "colour": COLOURS[i % len(COLOURS)], "points": " ".join(at(x, y) for x, y in pts)}
             for i, (name, pts) in enumerate(clean.items()) if pts]
    return {"title": title, "width": str(WIDTH), "height": str(HEIGHT), "lines": lines, "x_label": x_label,
            "top": f"{y1:.3g}", "bottom": f"{y0:.3g}", "top_y": str(PAD), "bottom_y": str(HEIGHT - PAD)}


def results(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The fine-tuned model on validation and test beside the base model, zero-shot and few-shot."""
    rows = []
    for split in ("val", "test"):
        m = metrics.get(split)
        if isinstance(m, dict) and m:
            rows.append([f"fine-tuned ({split})", m.get("exact_match"), m.get("rougeL"), m.get("chrf"),
                         m.get("loss"), m.get("perplexity"), m.get("n")])
    control = mapping(metrics.get("control"))
    for name in ("zero_shot", "few_shot"):
        c = control.get(name)
        if isinstance(c, dict):
            k = f" (k={control.get('k')})" if name == "few_shot" else ""
            rows.append([f"base, {name.replace('_', '-')}{k}", c.get("exact_match"), c.get("rougeL"), c.get("chrf"),
                         None, None, c.get("n")])
    if not rows:
        return None
    return render("sections/gen_results.html.j2", rows=rows,
                  headers=["model", "exact match", "ROUGE-L", "chrF", "loss", "perplexity", "examples"])


def training(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Loss per epoch (train, validation) and a row per epoch; the kept epoch marked."""
    history = dicts(metrics.get("history"))
    if not history:
        return None
    best = metrics.get("best_epoch")
    chart = line_chart("loss per epoch", {
        "train": [(h.get("epoch"), h.get("train_loss")) for h in history],
        "validation": [(h.get("epoch"), mapping(h.get("val")).get("loss")) for h in history]})
    rows = [[h.get("epoch"), h.get("train_loss"), mapping(h.get("val")).get("loss"),
             mapping(h.get("val")).get("perplexity"), mapping(h.get("val")).get("exact_match"),
             mapping(h.get("general_text")).get("loss"), h.get("seconds")]
            for h in history]
    kinds = ["kept" if best is not None and h.get("epoch") == best else "" for h in history]
    return render("sections/gen_training.html.j2", chart=chart, rows=rows, kinds=kinds, best_epoch=best)


def forgetting(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The loss on general text per epoch: a rise is the model forgetting."""
    history = dicts(metrics.get("history"))
    chart = line_chart("loss on general text", {
        "general text": [(h.get("epoch"), mapping(h.get("general_text")).get("loss")) for h in history]})
    return render("sections/gen_forgetting.html.j2", chart=chart) if chart else None


def samples(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Generations of the fine-tuned model beside the references, on the test split (else validation)."""
    split = "test" if isinstance(metrics.get("test"), dict) else "val"
    rows = [[s.get("prompt"), s.get("reference"), s.get("generation")]
            for s in dicts(mapping(metrics.get(split)).get("samples"))]
    return render("sections/gen_samples.html.j2", split=split, rows=rows) if rows else None


SECTIONS: list[Section] = [
    Section("results", "What fine-tuning bought", results, headline=True),
    Section("findings", "Findings", shared.findings),
    Section("plan", "The plan and why", shared.plan),
    Section("training", "Training", training),
    Section("forgetting", "Forgetting", forgetting),
    Section("samples", "Sample generations", samples),
    Section("cost", "What it cost", shared.cost),
    Section("about", "Backbone, versions and settings", shared.footer),
]


def sections(config: dict[str, Any], metrics: dict[str, Any]) -> list[Section]:
    """The sections of a generation run's report, in page order."""
    return list(SECTIONS)
