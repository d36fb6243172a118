"""The report's sections: each a function of (metrics, config) returning HTML, or None when its data is
absent.

Everything that comes from the run (class, group and split names, file names, messages, numbers) goes in
through one escaping path: :func:`markup` fills a template written here with values that are each formatted
(:func:`fmt`) and escaped (:func:`esc`, quotes too), and :func:`table` does the same for every cell; only
:class:`Html` values, built by this module, go in as they are. Values read as numbers go through
:func:`number` or :func:`count`, so a string where a number was expected is shown as text, never computed with.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from ..console import visible

SEVERITY_ORDER = ("high", "warning", "info")
MAX_LISTED = 50  # skipped files listed in full up to this many
ANNOTATE_UP_TO = 20  # confusion matrices with more classes than this show colours only, no counts


class Html(str):
    """Markup built by this module: inserted without escaping."""


def esc(x: Any) -> str:
    """``x`` as HTML text: ``<``, ``>``, ``&`` and both quotes escaped, so it is safe in elements and attributes;
    control characters written as visible escapes (``\\x1b``), as in the terminal."""
    return html.escape(visible(x), quote=True)


def markup(template: str, *values: Any) -> Html:
    """``template`` (written in this module, trusted) with its ``{}`` fields filled by ``values``, each shown as
    :func:`cell` shows it: formatted and escaped, unless it is :class:`Html` built here."""
    return Html(template.format(*(cell(v) for v in values)))


def fmt(x: Any) -> str:
    """A value for a table cell: numbers rounded for reading, None as a dash."""
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


def cell(x: Any) -> str:
    return x if isinstance(x, Html) else esc(fmt(x))


def table(headers: Sequence[Any] | None, rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> Html:
    """``headers``: None for a table without a header row; ``classes``: a CSS class per row (``"kept"``)."""
    head = "".join(f"<th>{cell(h)}</th>" for h in headers or [])
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(classes[i])}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>")
    return Html(f'<table>{head}<tbody>{"".join(body)}</tbody></table>')


def key_values(d: dict[str, Any]) -> Html:
    return table(None, [[Html(f"<b>{esc(k)}</b>"), v] for k, v in d.items()]) if d else Html("")


def number(x: Any) -> float | None:
    """``x`` as a finite float, or None (for missing values, NaN, infinities, booleans, strings)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def count(x: Any) -> int:
    """``x`` as a count to add up: 0 for anything that is not a finite number."""
    return int(number(x) or 0)


def matrix_of(x: Any) -> list[list[int]]:
    """A confusion matrix from metrics.json as counts (rows that are not lists are empty)."""
    return [[count(v) for v in row] if isinstance(row, list) else [] for row in x] if isinstance(x, list) else []


def stage_spans(stages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each stage lies on the run's global epoch axis: ``start`` (epochs before it) and ``epochs``."""
    spans, offset = [], 0
    for s in stages:
        rows = [r for r in (s.get("history") or []) if isinstance(r, dict)]
        spans.append({"name": str(s.get("stage", "?")), "start": offset, "epochs": len(rows), "rows": rows,
                      "kept": bool(s.get("kept")), "best_epoch": s.get("best_epoch")})
        offset += len(rows)
    return spans


def figure(chart: str, *args: Any, alt: str, caption: str = "") -> str:
    """The chart ``plots.<chart>(*args)`` embedded as an image, or a short note saying why there is none."""
    try:
        from . import plots
    except ImportError:  # the report still renders, without charts, where matplotlib is not installed
        return '<p class="note">Charts need matplotlib, which is not installed.</p>'
    try:
        uri = getattr(plots, chart)(*args)
    except Exception as e:  # a chart must never cost the rest of the report
        return markup('<p class="note">This chart could not be drawn ({}: {}).</p>', type(e).__name__, str(e))
    if uri is None:
        return ""
    cap = markup("<figcaption>{}</figcaption>", caption) if caption else ""
    return markup('<figure><img alt="{}" src="{}">{}</figure>', alt, uri, Html(cap))


def stages_of(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The training stages; a run saved before stages were recorded has one, from its top-level history."""
    stages = [s for s in metrics.get("stages") or [] if isinstance(s, dict)]
    if not stages and metrics.get("history"):
        stages = [{"stage": "linear probe", "history": metrics["history"],
                   "best_epoch": metrics.get("best_epoch"), "kept": True}]
    return stages


def eval_split(metrics: dict[str, Any]) -> str | None:
    """The split whose confusion matrix and per-class table are shown: test, else val, else train."""
    return next((s for s in ("test", "val", "train") if isinstance(metrics.get(s), dict)
                 and isinstance(metrics[s].get("confusion"), dict) and metrics[s]["confusion"]), None)


def results(metrics: dict[str, Any]) -> Html | None:
    rows = []
    for split in ("train", "val", "test"):
        m = metrics.get(split)
        if isinstance(m, dict) and "accuracy" in m:
            base = m.get("majority_baseline") or {}
            rows.append([split, m.get("n"), m.get("accuracy"), m.get("macro_f1"), base.get("accuracy"),
                         base.get("predicts"), m.get("note", "")])
    if not rows:
        return None
    headers = ["split", "examples", "accuracy", "macro F1", "majority-class accuracy", "majority class",
               "note"]
    if not any(r[-1] for r in rows):
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    return table(headers, rows)


def findings(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    items = metrics.get("findings")
    if not isinstance(items, list):
        return None
    items = [f for f in items if isinstance(f, dict)]
    if not items:
        return "<p>No checks raised anything.</p>"
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    items.sort(key=lambda f: rank.get(f.get("severity"), len(rank)))  # stable: same severity keeps its order
    counts = [f"{sum(f.get('severity') == s for f in items)} {s}" for s in SEVERITY_ORDER]
    out = [markup("<p>{}</p>", ", ".join(counts))]
    for f in items:
        sev = str(f.get("severity", "?"))
        kind = sev if sev in rank else "other"
        parts = [markup('<div class="finding sev-{}"><p><span class="badge sev-{}">{}</span> <code>{}</code> {}</p>',
                        kind, kind, sev, f.get("code", ""), f.get("message", ""))]
        if f.get("value") is not None:
            parts.append(markup('<p class="measure">Measured: {} = <b>{}</b></p>', f.get("metric") or "value",
                                f["value"]))
        if f.get("advice"):
            parts.append(markup('<p class="advice"><b>What to do:</b> {}</p>', f["advice"]))
        if isinstance(f.get("details"), dict) and f["details"]:
            parts.append(markup("<details><summary>details</summary>{}</details>", key_values(f["details"])))
        out.append("".join(parts) + "</div>")
    return "".join(out)


def data(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    d = metrics.get("data")
    if not isinstance(d, dict):
        return None
    splits = {s: d[s]["per_class"] for s in ("train", "val", "test")
              if isinstance(d.get(s), dict) and isinstance(d[s].get("per_class"), dict)}
    classes = [str(c) for c in d.get("classes") or config.get("classes") or []]
    for counts in splits.values():
        classes += [str(c) for c in counts if str(c) not in classes]
    out = [markup("<p>Source: <code>{}</code> ({}, {} classes)</p>", d.get("source", config.get("data", "?")),
                  d.get("modality", config.get("modality", "?")), len(classes))]
    fit = d["fit_split"] if isinstance(d.get("fit_split"), dict) else {}
    if "val" not in splits and fit.get("val"):
        out.append(markup("<p>No validation split was given: {} of the training examples were held out for "
                          "validation (stratified), {} were used to fit.</p>", fit["val"], fit.get("train")))
    if splits:
        out.append(figure("class_counts", splits, classes, alt="examples per class",
                          caption="Examples per class, by split."))
        rows = [[c] + [splits[s].get(c, 0) for s in splits] + [sum(count(splits[s].get(c)) for s in splits)]
                for c in classes]  # a count that is not a number is shown as it is, and not added up
        totals = [sum(count(v) for v in counts.values()) for counts in splits.values()]
        rows.append([Html("<b>total</b>"), *totals, sum(totals)])
        out.append(table(["class", *splits, "total"], rows))
    skipped = d["skipped"] if isinstance(d.get("skipped"), list) else []
    if skipped:
        listed = "".join(markup("<li><code>{}</code></li>", str(s)) for s in skipped[:MAX_LISTED])
        more = markup("<p>… and {} more.</p>", len(skipped) - MAX_LISTED) if len(skipped) > MAX_LISTED else ""
        out.append(markup("<details><summary>{} unreadable file(s) skipped</summary><ul>{}</ul>{}</details>",
                          len(skipped), Html(listed), Html(more)))
    else:
        out.append("<p>No files were skipped.</p>")
    return "".join(out)


def plan(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    p = config.get("plan")
    if not isinstance(p, dict):
        return None
    chosen = p.get("strategy", "?")
    auto = " (chosen automatically)" if p.get("requested") == "auto" else ""
    out = [markup("<p>Strategy: <b>{}</b>{}</p>", chosen, auto)]
    reasons = p["reasons"] if isinstance(p.get("reasons"), list) else []
    if reasons:
        out.append("<p>Why:</p><ul>" + "".join(markup("<li>{}</li>", r) for r in reasons) + "</ul>")
    facts = dict(p["details"]) if isinstance(p.get("details"), dict) else {}
    facts["class-weighted loss"] = bool(p.get("class_weighted"))
    if p.get("unfreeze") is not None:
        facts["unfreeze"] = p["unfreeze"]
    out.append(key_values(facts))
    return "".join(out)


def curves(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    stages = stages_of(metrics)
    if not stages:
        return None
    out = [figure("learning_curves", stages, alt="learning curves",
                  caption="Train and validation loss and accuracy per epoch; dashed lines separate stages; "
                          "the kept stage is shaded green; a stage without epochs (the linear probe) is a "
                          "dotted line at its validation score.")]
    probe = stages[0].get("probe") if isinstance(stages[0].get("probe"), dict) else metrics.get("probe")
    if not any(s["epochs"] for s in stage_spans(stages)):
        why = " (the linear probe is fitted to convergence, not epoch by epoch)" if probe else ""
        out.append(f'<p class="note">No per-epoch history was recorded{why}.</p>')
    rows, kinds = [], []
    for s in stages:
        hist = [r for r in s.get("history") or [] if isinstance(r, dict)]
        seconds = s.get("seconds")
        if seconds is None and any(number(r.get("seconds")) is not None for r in hist):
            seconds = sum(number(r.get("seconds")) or 0.0 for r in hist)
        rates = [r for r in s.get("rates") or [] if isinstance(r, dict)]
        lrs = markup("<details><summary>{} group(s)</summary>{}</details>", len(rates), table(
            ["group", "learning rate", "parameters"],
            [[r.get("group"), short(r.get("lr")), r.get("params")] for r in rates])) if rates else "—"
        rows.append([s.get("stage"), s.get("unfrozen_groups"), len(hist) or None, s.get("best_epoch"),
                     s.get("val_acc"), s.get("val_loss"), seconds, lrs, "kept" if s.get("kept") else ""])
        kinds.append("kept" if s.get("kept") else "")
    out.append(table(["stage", "unfrozen groups", "epochs", "best epoch", "val accuracy", "val loss",
                      "seconds", "learning rates", ""], rows, kinds))
    if isinstance(probe, dict):
        out.append(_probe(probe))
    refit = stages[0].get("refit")
    if isinstance(refit, dict):
        chosen = "".join(f", {k} = {short(v)}" for k, v in refit.items() if k != "examples")
        out.append(markup("<p>The head was then retrained on training + validation data ({} examples{}); "
                          "validation metrics are those of the model before this refit.</p>",
                          refit.get("examples"), chosen))
    return "".join(out)


def _probe(probe: dict[str, Any]) -> str:
    """The linear probe's regularisation: the strength kept, how it was chosen, the grid it was chosen on."""
    out = markup("<p>Linear probe: C = <b>{}</b>", short(probe.get("C")))
    out += markup(", chosen by {}.</p>", probe["selection"]) if probe.get("selection") else ".</p>"
    grid = [r for r in probe.get("grid") or [] if isinstance(r, dict)]
    if grid:
        kinds = ["kept" if r.get("C") == probe.get("C") else "" for r in grid]
        out += "<details><summary>scores of every C tried</summary>" + table(
            ["C", "held-out accuracy", "held-out loss"],
            [[short(r.get("C")), r.get("val_acc"), r.get("val_loss")] for r in grid], kinds) + "</details>"
    return out


def confusion(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    split = eval_split(metrics)
    if split is None:
        return None
    c = metrics[split]["confusion"]
    labels = [str(x) for x in c["labels"]] if isinstance(c.get("labels"), list) else []
    matrix = matrix_of(c.get("matrix"))
    n = len(labels)
    out = [markup("<p>On the <b>{}</b> split. Rows: true class; columns: predicted class; colour: share of the "
                  "true class{}</p>", split, ", numbers: counts." if n <= ANNOTATE_UP_TO else
                  "; counts are left out above 20 classes (see the table below)."),
           figure("confusion", labels, matrix, alt=f"confusion matrix ({split})")]
    pairs = sorted(((matrix[i][j], labels[i], labels[j]) for i in range(min(n, len(matrix)))
                    for j in range(min(n, len(matrix[i]))) if i != j and matrix[i][j]), key=lambda t: -t[0])
    if pairs:
        out.append("<p>Most frequent confusions:</p>" + table(
            ["true class", "predicted as", "count"], [[t, p, k] for k, t, p in pairs[:10]]))
    return "".join(out)


def per_class(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    split = eval_split(metrics) or next((s for s in ("test", "val", "train")
                                         if isinstance(metrics.get(s), dict) and metrics[s].get("per_class")),
                                        None)
    if split is None or not isinstance(metrics[split].get("per_class"), dict):
        return None
    m = metrics[split]
    pc = m["per_class"]
    conf = m["confusion"] if isinstance(m.get("confusion"), dict) else {}
    predicted = {}
    if isinstance(conf.get("labels"), list) and conf.get("matrix"):
        rows = matrix_of(conf["matrix"])
        predicted = {str(c): sum(row[j] for row in rows if j < len(row)) for j, c in enumerate(conf["labels"])}
    classes = [str(c) for c in config.get("classes") or []]
    classes += [c for c in pc if c not in classes]
    rows, kinds = [], []
    for c in classes:
        r = pc.get(c)
        if not isinstance(r, dict):
            rows.append([c, None, None, None, 0, predicted.get(c, 0), f"no examples in {split}"])
            kinds.append("muted")
            continue
        note = "never predicted" if predicted and not predicted.get(c) and r.get("support") else ""
        rows.append([c, r.get("precision"), r.get("recall"), r.get("f1"), r.get("support"), predicted.get(c),
                     note])
        kinds.append("warn" if note else "")
    return markup("<p>On the <b>{}</b> split.</p>", split) + table(
        ["class", "precision", "recall", "F1", "examples", "predicted", ""], rows, kinds)


def drift(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    rows = [r for r in metrics.get("drift") or [] if isinstance(r, dict)]
    if not rows:
        return None
    spans = stage_spans(stages_of(metrics))
    last = rows[-1]
    cka, change = last.get("cka") or {}, last.get("weight_change") or {}
    groups = list(dict.fromkeys([*cka, *change]))
    return (figure("drift", rows, spans, alt="representation drift per layer group",
                   caption="CKA between each layer group's features now and before training (1 = unchanged), "
                           "and how far its weights moved.")
            + markup("<p>At the end (stage {}, epoch {}):</p>", last.get("stage", "?"), last.get("epoch", "?"))
            + table(["layer group", "CKA to pretrained", "weight change"],
                    [[g, cka.get(g), change.get(g)] for g in groups]))


def groups(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    g = metrics.get("groups")
    if not isinstance(g, dict) or not isinstance(g.get("groups"), dict) or not g["groups"]:
        return None
    per = g["groups"]
    rows, kinds = [], []
    for name, m in per.items():
        m = m if isinstance(m, dict) else {}
        ci = m.get("accuracy_ci") or []
        ci_text = f"{fmt(ci[0])} – {fmt(ci[1])}" if isinstance(ci, list | tuple) and len(ci) == 2 else None
        rows.append([name, m.get("n"), m.get("accuracy"), ci_text, m.get("macro_f1"), m.get("ece"),
                     "too few to judge" if m.get("too_small") else ""])
        kinds.append("muted" if m.get("too_small") else "")
    out = [figure("group_accuracy", per, alt="accuracy per group"),
           table(["group", "examples", "accuracy", "confidence interval", "macro F1",
                  "calibration error (ECE)", ""], rows, kinds)]
    if isinstance(g.get("worst_gap"), dict) and g["worst_gap"]:
        out.append("<p>Largest gap between groups:</p>" + key_values(g["worst_gap"]))
    return "".join(out)


def control(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    c = metrics.get("control")
    if not isinstance(c, dict) or not c:
        return None
    pre, rand, gap = number(c.get("pretrained")), number(c.get("random_init")), number(c.get("gap"))
    if gap is None and pre is not None and rand is not None:
        gap = pre - rand
    out = ["<p>The same training with a randomly initialised backbone shows how much the pretrained weights "
           "contribute.</p>"]
    if pre is not None and rand is not None:
        out.append(figure("bars", {"pretrained": pre, "random init": rand}, "accuracy",
                          ["#2563eb", "#9ca3af"], True, alt="pretrained versus random initialisation"))
    out.append(key_values({"pretrained accuracy": pre, "random-init accuracy": rand, "gap": gap}
                          | {k: v for k, v in c.items() if k not in ("pretrained", "random_init", "gap")}))
    return "".join(out)


def mismatch(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    m = metrics.get("mismatch")
    if not isinstance(m, dict) or not m:
        return None
    out = [markup("<p>Domain mismatch score: <b>{}</b></p>", m.get("score"))]
    layers = m.get("per_layer")
    if isinstance(layers, dict) and layers:
        if all(number(v) is not None for v in layers.values()):
            out.append(figure("bars", layers, "mismatch", alt="mismatch per layer"))
        out.append(table(["layer", "value"], list(layers.items())))
    rest = {k: v for k, v in m.items() if k not in ("score", "per_layer")}
    if rest:
        out.append(key_values(rest))
    return "".join(out)


def footer(metrics: dict[str, Any], config: dict[str, Any]) -> str | None:
    out = []
    timing = metrics.get("timing")
    if isinstance(timing, dict) and timing:
        out.append("<h3>Timing (seconds)</h3>" + key_values(timing))
    b = config.get("backbone")
    if isinstance(b, dict) and b:
        extra: dict[str, Any] = b["extra"] if isinstance(b.get("extra"), dict) else {}
        keys = ("name", "source", "modality", "feature_dim", "pretrained", "weights", "fingerprint")
        out.append("<h3>Backbone</h3>" + key_values({k: b[k] for k in keys if k in b} | extra))
    versions = config.get("versions")
    if isinstance(versions, dict) and versions:
        out.append("<h3>Library versions</h3>" + key_values(versions))
    settings = {k: config[k] for k in ("fit", "preprocessing", "head") if isinstance(config.get(k), dict)}
    if settings:
        out.append("<details><summary>All settings</summary>"
                   + "".join(markup("<h3>{}</h3>{}", k, key_values(v)) for k, v in settings.items()) + "</details>")
    return "".join(out) or None
