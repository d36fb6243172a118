"""``report.html`` of a generation run: one self-contained page, no scripts.

Every value shown goes through ``html.escape`` (prompts, references and generations are user text), and a
Content-Security-Policy meta tag forbids scripts outright, so a generation holding ``<script>`` stays text.
The curves are inline SVG polylines: loss per epoch (train, validation) and the general-text loss.
"""

from __future__ import annotations

from html import escape
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _curve(title: str, series: dict[str, list[tuple[float, float]]]) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    w, h, pad = 420, 180, 30
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs) or 1, min(ys), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1

    def at(x: float, y: float) -> str:
        px = pad + (x - x0) / max(x1 - x0, 1e-9) * (w - 2 * pad)
        return f"{px:.1f},{h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad):.1f}"

    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    lines = "".join(f'<polyline fill="none" stroke="{colours[i % 3]}" stroke-width="2" '
                    f'points="{" ".join(at(x, y) for x, y in pts)}"/>' for i, pts in enumerate(series.values()))
    legend = " ".join(f'<span style="color:{colours[i % 3]}">&#9632; {_e(n)}</span>' for i, n in enumerate(series))
    return (f"<h3>{_e(title)}</h3><svg width='{w}' height='{h}' role='img'>{lines}"
            f"<text x='2' y='{pad}' font-size='10'>{y1:.3g}</text><text x='2' y='{h - pad}' font-size='10'>"
            f"{y0:.3g}</text></svg><div>{legend} (x: epoch)</div>")


def _metric_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name in ("val", "test"):
        m = metrics.get(name)
        if m:
            rows.append([f"fine-tuned ({name})", m["exact_match"], m["rougeL"], m["chrf"], m.get("loss", ""),
                         m.get("perplexity", ""), m["n"]])
    control = metrics.get("control", {})
    for name in ("zero_shot", "few_shot"):
        if name in control:
            c = control[name]
            label = f"base, {name.replace('_', '-')}" + (f" (k={control['k']})" if name == "few_shot" else "")
            rows.append([label, c["exact_match"], c["rougeL"], c["chrf"], "", "", c["n"]])
    return rows


def render_report(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    history = metrics.get("history", [])
    loss = {"train": [(h["epoch"], h["train_loss"]) for h in history if "train_loss" in h],
            "validation": [(h["epoch"], h["val"]["loss"]) for h in history if "val" in h]}
    general = {"general text": [(h["epoch"], h["general_text"]["loss"]) for h in history if "general_text" in h]}
    split = "test" if "test" in metrics else "val"
    samples = metrics.get(split, {}).get("samples", [])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        f"<title>graftwork report: {_e(config.get('backbone', {}).get('display', ''))} (generate)</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;"
        "padding:3px 6px;vertical-align:top;white-space:pre-wrap}table{border-collapse:collapse}</style></head><body>",
        f"<h1>Language model fine-tuning: {_e(config.get('backbone', {}).get('display', ''))}</h1>",
        f"<p>strategy {_e(config.get('strategy'))}; kept epoch {_e(metrics.get('best_epoch'))}; "
        f"{_e(metrics.get('parameters', {}).get('trainable', ''))} trained parameters of "
        f"{_e(metrics.get('parameters', {}).get('total', ''))}</p>",
        "<h2>What fine-tuning bought</h2>",
        _table(["model", "exact match", "rougeL", "chrF", "loss", "perplexity", "n"], _metric_rows(metrics)),
        "<h2>Training</h2>", _curve("loss per epoch", loss),
        "<h2>Forgetting</h2>", _curve("loss on general text", general),
        "".join(f"<p>[{_e(f['severity'])}] {_e(f['code'])}: {_e(f['message'])}"
                + (f" &rarr; {_e(f['advice'])}" if f.get("advice") else "") + "</p>"
                for f in metrics.get("findings", [])),
        f"<h2>Sample generations ({_e(split)})</h2>",
        _table(["prompt", "reference", "generation"], [[s["prompt"], s["reference"], s["generation"]]
                                                        for s in samples]),
        "</body></html>"]
    return "\n".join(parts)
