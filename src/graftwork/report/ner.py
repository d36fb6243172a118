"""The report of a named-entity (NER) run: entity-level results, the data in sentences and mentions per
type, and precision/recall/F1 per entity type, between the sections every task shares (:mod:`.sections`:
findings, plan, training stages scored by entity F1, drift, cost, backbone and versions).

``sections(config, metrics)`` is what the NER task hands to :func:`graftwork.report.render`. Scores are
seqeval's strict entity-level ones, as the run recorded them (a mention counts only with its type and both
boundaries right).
"""

from __future__ import annotations

from typing import Any

from . import sections as shared
from .sections import Section
from .templating import Html, chart, render
from .values import count, mapping, number

SPLITS = ("train", "val", "test")


def _evaluated(metrics: dict[str, Any]) -> list[str]:
    """The splits the run has entity-level scores for, in order."""
    return [s for s in SPLITS if isinstance(metrics.get(s), dict) and "f1" in metrics[s]]


def results(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Entity-level precision, recall and F1 per split, with token accuracy."""
    rows = [[s, m.get("sentences"), m.get("entities"), m.get("predicted_entities"), m.get("precision"),
             m.get("recall"), m.get("f1"), m.get("macro_f1"), m.get("token_accuracy")]
            for s in _evaluated(metrics) for m in [metrics[s]]]
    if not rows:
        return None
    return render("sections/results.html.j2", rows=rows,
                  headers=["split", "sentences", "entities", "predicted entities", "precision", "recall",
                           "entity F1", "macro F1 (types)", "token accuracy"])


def entity_types(metrics: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The run's entity types: those of the config, then any others its metrics name."""
    types = [str(t) for t in config.get("entity_types") or mapping(metrics.get("data")).get("entity_types") or []]
    for s in _evaluated(metrics):
        types += [str(t) for t in mapping(metrics[s].get("per_type")) if str(t) not in types]
    return types


def data(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Where the sentences came from, and sentences, tokens and entity mentions per type in each split."""
    d = metrics.get("data")
    if not isinstance(d, dict):
        return None
    splits = [s for s in SPLITS if isinstance(d.get(s), dict)]
    mentions = {s: mapping(d[s].get("entities")) for s in splits}
    types = entity_types(metrics, config)
    for per_type in mentions.values():
        types += [str(t) for t in per_type if str(t) not in types]
    rows: list[list[Any]] = [[t, *(mentions[s].get(t, 0) for s in splits)] for t in types]
    rows += [["sentences", *(d[s].get("sentences") for s in splits)],
             ["tokens", *(d[s].get("tokens") for s in splits)]]
    figure = chart("class_counts", {s: {t: count(mentions[s].get(t)) for t in types} for s in splits}, types,
                   alt="entity mentions per type", caption="Entity mentions per type, by split.") \
        if types and splits else None
    fit = mapping(d.get("fit_split"))
    return render("sections/ner_data.html.j2", source=d.get("source", config.get("data", "?")), types=types,
                  held_out={"val": fit["val"], "train": fit.get("train")}
                  if "val" not in splits and fit.get("val") else None, chart=figure,
                  rows=rows if splits else [], headers=["entity type", *splits],
                  kinds=[""] * len(types) + ["total", "total"],
                  skipped=[str(s) for s in d["skipped"]] if isinstance(d.get("skipped"), list) else [])


def per_type(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """Precision, recall and F1 per entity type on the validation and test splits; a type the model never
    finds is marked, a type absent from a split is greyed out."""
    evaluated = [s for s in _evaluated(metrics) if s != "train"]
    if not evaluated:
        return None
    types = entity_types(metrics, config)
    shown = []
    for s in evaluated:
        m = metrics[s]
        pt = mapping(m.get("per_type"))
        rows, kinds = [], []
        for t in types:
            r = pt.get(t)
            if not isinstance(r, dict):
                rows.append([t, None, None, None, 0, f"no entities in {s}"])
                kinds.append("muted")
                continue
            missed = bool(count(r.get("support"))) and number(r.get("recall")) == 0.0
            rows.append([t, r.get("precision"), r.get("recall"), r.get("f1"), r.get("support"),
                         "never found" if missed else ""])
            kinds.append("warn" if missed else "")
        shown.append({"name": {"val": "validation", "test": "test"}.get(s, s), "rows": rows, "kinds": kinds,
                      **{k: m.get(k) for k in ("entities", "precision", "recall", "f1", "macro_f1")},
                      "predicted": m.get("predicted_entities")})
    last = metrics[evaluated[-1]]
    f1 = {t: r.get("f1") for t, r in mapping(last.get("per_type")).items() if isinstance(r, dict)}
    figure = chart("bars", f1, f"entity F1 ({evaluated[-1]})", None, True, alt="entity F1 per type") \
        if any(number(v) is not None for v in f1.values()) else None
    return render("sections/entities.html.j2", splits=shown, chart=figure,
                  scoring=last.get("scoring") or config.get("scoring"))


SECTIONS: list[Section] = [
    Section("results", "Results", results, headline=True),
    Section("findings", "Findings", shared.findings),
    Section("data", "Data", data),
    Section("plan", "The plan and why", shared.plan),
    Section("curves", "Training stages and learning curves", shared.curves),
    Section("per-type", "Entity-level metrics per type", per_type),
    Section("drift", "Representation drift", shared.drift),
    Section("control", "Pretrained versus random initialisation", shared.control),
    Section("mismatch", "Domain mismatch", shared.mismatch),
    Section("cost", "What it cost", shared.cost),
    Section("about", "Backbone, versions and settings", shared.footer),
]


def sections(config: dict[str, Any], metrics: dict[str, Any]) -> list[Section]:
    """The sections of an NER run's report, in page order."""
    return list(SECTIONS)
