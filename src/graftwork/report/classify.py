"""The report of a classification run: its own sections (results, data per class, confusion matrix,
per-class and per-group metrics) between the shared ones (:mod:`.sections`).

``sections(config, metrics)`` is what the classification task hands to :func:`graftwork.report.render`.
"""

from __future__ import annotations

from typing import Any

from . import sections as shared
from .curve import learning_curve
from .sections import Section
from .templating import Html, chart, render
from .values import ANNOTATE_UP_TO, count, eval_split, fmt, mapping, matrix_of


def results(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Accuracy and macro F1 per split, beside the majority-class baseline."""
    rows = []
    for split in ("train", "val", "test"):
        m = metrics.get(split)
        if isinstance(m, dict) and "accuracy" in m:
            base = mapping(m.get("majority_baseline"))
            rows.append([split, m.get("n"), m.get("accuracy"), m.get("macro_f1"), base.get("accuracy"),
                         base.get("predicts"), m.get("note", "")])
    if not rows:
        return None
    headers = ["split", "examples", "accuracy", "macro F1", "majority-class accuracy", "majority class", "note"]
    if not any(r[-1] for r in rows):
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    return render("sections/results.html.j2", headers=headers, rows=rows)


def data(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Where the data came from, examples per class and split, what was held out and what was skipped."""
    d = metrics.get("data")
    if not isinstance(d, dict):
        return None
    splits = {s: d[s]["per_class"] for s in ("train", "val", "test")
              if isinstance(d.get(s), dict) and isinstance(d[s].get("per_class"), dict)}
    classes = [str(c) for c in d.get("classes") or config.get("classes") or []]
    for counts in splits.values():
        classes += [str(c) for c in counts if str(c) not in classes]
    rows: list[list[Any]] = []
    if splits:  # a count that is not a number is shown as it is, and not added up
        rows = [[c, *(splits[s].get(c, 0) for s in splits), sum(count(splits[s].get(c)) for s in splits)]
                for c in classes]
        totals = [sum(count(v) for v in counts.values()) for counts in splits.values()]
        rows.append(["total", *totals, sum(totals)])
    fit = mapping(d.get("fit_split"))
    return render("sections/data.html.j2", source=d.get("source", config.get("data", "?")),
                  modality=d.get("modality", config.get("modality", "?")), n_classes=len(classes),
                  held_out={"val": fit["val"], "train": fit.get("train")}
                  if "val" not in splits and fit.get("val") else None,
                  rows=rows, kinds=[""] * len(classes) + ["total"],
                  headers=["class", *splits, "total"],
                  chart=chart("class_counts", splits, classes, alt="examples per class",
                              caption="Examples per class, by split.") if splits else None,
                  skipped=[str(s) for s in d["skipped"]] if isinstance(d.get("skipped"), list) else [])


def confusion(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The confusion matrix of the evaluation split, and its most frequent confusions."""
    split = eval_split(metrics)
    if split is None:
        return None
    c = metrics[split]["confusion"]
    labels = [str(x) for x in c["labels"]] if isinstance(c.get("labels"), list) else []
    matrix = matrix_of(c.get("matrix"))
    n = len(labels)
    pairs = sorted(((matrix[i][j], labels[i], labels[j]) for i in range(min(n, len(matrix)))
                    for j in range(min(n, len(matrix[i]))) if i != j and matrix[i][j]), key=lambda t: -t[0])
    return render("sections/confusion.html.j2", split=split, annotated=n <= ANNOTATE_UP_TO,
                  annotate_up_to=ANNOTATE_UP_TO, pairs=[[t, p, k] for k, t, p in pairs[:10]],
                  chart=chart("confusion", labels, matrix, alt=f"confusion matrix ({split})"))


def per_class(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Precision, recall, F1, examples and predictions per class; a class never predicted is marked."""
    split = eval_split(metrics) or next((s for s in ("test", "val", "train")
                                         if isinstance(metrics.get(s), dict) and metrics[s].get("per_class")),
                                        None)
    if split is None or not isinstance(metrics[split].get("per_class"), dict):
        return None
    m = metrics[split]
    pc = m["per_class"]
    conf = mapping(m.get("confusion"))
    predicted = {}
    if isinstance(conf.get("labels"), list) and conf.get("matrix"):
        rows = matrix_of(conf["matrix"])
        predicted = {str(c): sum(row[j] for row in rows if j < len(row)) for j, c in enumerate(conf["labels"])}
    classes = [str(c) for c in config.get("classes") or []]
    classes += [c for c in pc if c not in classes]
    table, kinds = [], []
    for c in classes:
        r = pc.get(c)
        if not isinstance(r, dict):
            table.append([c, None, None, None, 0, predicted.get(c, 0), f"no examples in {split}"])
            kinds.append("muted")
            continue
        note = "never predicted" if predicted and not predicted.get(c) and r.get("support") else ""
        table.append([c, r.get("precision"), r.get("recall"), r.get("f1"), r.get("support"), predicted.get(c),
                      note])
        kinds.append("warn" if note else "")
    return render("sections/per_class.html.j2", split=split, rows=table, kinds=kinds)


def groups(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Accuracy per subgroup with its confidence interval, calibration, and the worst gap between groups."""
    g = metrics.get("groups")
    if not isinstance(g, dict) or not isinstance(g.get("groups"), dict) or not g["groups"]:
        return None
    per = g["groups"]
    rows, kinds = [], []
    for name, m in per.items():
        m = mapping(m)
        ci = m.get("accuracy_ci") or []
        ci_text = f"{fmt(ci[0])} – {fmt(ci[1])}" if isinstance(ci, list | tuple) and len(ci) == 2 else None
        rows.append([name, m.get("n"), m.get("accuracy"), ci_text, m.get("macro_f1"), m.get("ece"),
                     "too few to judge" if m.get("too_small") else ""])
        kinds.append("muted" if m.get("too_small") else "")
    return render("sections/groups.html.j2", chart=chart("group_accuracy", per, alt="accuracy per group"),
                  rows=rows, kinds=kinds, worst_gap=mapping(g.get("worst_gap")))


SECTIONS: list[Section] = [
    Section("results", "Results", results, headline=True),
    Section("findings", "Findings", shared.findings),
    Section("data", "Data", data),
    Section("plan", "The plan and why", shared.plan),
    Section("curves", "Training stages and learning curves", shared.curves),
    Section("how-much-data", "Selection, and how much data you need", learning_curve),
    Section("confusion", "Confusion matrix", confusion),
    Section("per-class", "Per-class metrics", per_class),
    Section("drift", "Representation drift", shared.drift),
    Section("groups", "Per-group metrics", groups),
    Section("control", "Pretrained versus random initialisation", shared.control),
    Section("mismatch", "Domain mismatch", shared.mismatch),
    Section("cost", "What it cost", shared.cost),
    Section("about", "Backbone, versions and settings", shared.footer),
]


def sections(config: dict[str, Any], metrics: dict[str, Any]) -> list[Section]:
    """The sections of a classification run's report, in page order."""
    return list(SECTIONS)
