"""The report's sections that every task shares (findings, plan, training stages, drift, controls, cost,
backbone and versions), and :class:`Section`, what a task's list of sections is made of.

Each section is a function of (metrics, config) that reads what it needs from the run's JSON, checking types
as it goes (:mod:`.values`), and returns its template (``templates/sections/``) rendered, or None when the run
does not have its data: such a section is left out of the page, not shown empty. Formatting and escaping are
the templates' job (:mod:`.templating`), so nothing here writes markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .templating import Html, chart, render
from .values import SEVERITY_ORDER, dicts, mapping, number, short, stage_spans, stages_of

Build = Callable[[dict[str, Any], dict[str, Any]], "str | None"]


@dataclass(frozen=True)
class Section:
    """One part of the page: ``build(metrics, config)`` gives its HTML, rendered from a template
    (:func:`.templating.render`), or None when the run has no data for it; a plain string is shown as text.

    ``headline`` sections (the results table) are shown under the title, without a heading of their own and
    without an entry in the contents; the others get ``<section id=anchor>`` with ``title`` as heading.
    """

    anchor: str
    title: str
    build: Build
    headline: bool = False


def findings(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The checks' findings, most serious first (a stable sort: the same severity keeps its order)."""
    items = metrics.get("findings")
    if not isinstance(items, list):
        return None
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    found = sorted(dicts(items), key=lambda f: rank.get(f.get("severity"), len(rank)))
    shown = [{"severity": str(f.get("severity", "?")),
              "kind": f.get("severity") if f.get("severity") in rank else "other",
              "code": f.get("code", ""), "message": f.get("message", ""), "value": f.get("value"),
              "metric": f.get("metric") or "value", "advice": f.get("advice"),
              "details": mapping(f.get("details"))} for f in found]
    counts = ", ".join(f"{sum(f.get('severity') == s for f in found)} {s}" for s in SEVERITY_ORDER)
    return render("sections/findings.html.j2", items=shown, counts=counts)


# settings a plan may hold beside its details (a generation run's plan: rates, epochs, LoRA shape)
PLAN_SETTINGS = ("lr", "epochs", "batch_size", "lora", "train_examples", "target_tokens", "trainable_params")


def plan(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The strategy, the reasons for it, and the settings it decided."""
    p = config.get("plan")
    if not isinstance(p, dict):
        return None
    facts = dict(mapping(p.get("details")))
    facts |= {k.replace("_", " "): p[k] for k in PLAN_SETTINGS if p.get(k) is not None}
    if "class_weighted" in p:
        facts["class-weighted loss"] = bool(p.get("class_weighted"))
    if p.get("unfreeze") is not None:
        facts["unfreeze"] = p["unfreeze"]
    reasons = p["reasons"] if isinstance(p.get("reasons"), list) else []
    return render("sections/plan.html.j2", strategy=p.get("strategy", "?"), auto=p.get("requested") == "auto",
                  reasons=reasons, facts=facts, mentions=list(mapping(p.get("mentions_per_type")).items()))


def score_of(stages: list[dict[str, Any]]) -> str:
    """The score a run's stages were selected on: ``f1`` (entity F1, NER) when recorded, else ``acc``."""
    rows = [*stages, *(r for s in stages for r in dicts(s.get("history")))]
    return "f1" if any("val_f1" in r for r in rows) and not any("val_acc" in r for r in rows) else "acc"


SCORE_TITLES = {"acc": "val accuracy", "f1": "val entity F1"}


def curves(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The training stages: learning curves, a row per stage (the kept one marked), the linear probe's choice
    of regularisation and the refit on training + validation data."""
    stages = stages_of(metrics)
    if not stages:
        return None
    score = score_of(stages)
    what = "accuracy" if score == "acc" else "entity F1"
    figure = chart("learning_curves", stages, score, alt="learning curves",
                   caption=f"Train and validation loss and {what} per epoch; dashed lines separate stages; the "
                           "kept stage is shaded green; a stage without epochs (the linear probe) is a dotted "
                           "line at its validation score.")
    probe = stages[0].get("probe") if isinstance(stages[0].get("probe"), dict) else metrics.get("probe")
    no_history = None
    if not any(s["epochs"] for s in stage_spans(stages)):
        no_history = " (the linear probe is fitted to convergence, not epoch by epoch)" if probe else ""
    refit = stages[0].get("refit")
    return render("sections/curves.html.j2", chart=figure, no_history=no_history,
                  score_title=SCORE_TITLES[score], stages=[_stage_row(s, score) for s in stages],
                  probe=_probe(probe) if isinstance(probe, dict) else None,
                  refit={"examples": refit.get("examples"),
                         "chosen": "".join(f", {k} = {short(v)}" for k, v in refit.items() if k != "examples")}
                  if isinstance(refit, dict) else None)


def _stage_row(s: dict[str, Any], score: str) -> dict[str, Any]:
    hist = dicts(s.get("history"))
    seconds = s.get("seconds")
    if seconds is None and any(number(r.get("seconds")) is not None for r in hist):
        seconds = sum(number(r.get("seconds")) or 0.0 for r in hist)
    return {"stage": s.get("stage"), "unfrozen": s.get("unfrozen_groups"), "epochs": len(hist) or None,
            "best_epoch": s.get("best_epoch"), "score": s.get(f"val_{score}"), "loss": s.get("val_loss"),
            "seconds": seconds, "kept": bool(s.get("kept")),
            "rates": [[r.get("group"), short(r.get("lr")), r.get("params")] for r in dicts(s.get("rates"))]}


def _probe(probe: dict[str, Any]) -> dict[str, Any]:
    """The linear probe's regularisation: the strength kept, how it was chosen, the grid it was chosen on."""
    grid = dicts(probe.get("grid"))
    kept = (probe.get("C"), probe.get("features", "standardised"))

    def label(r: dict[str, Any]) -> str:  # the references are C=1 on other features than the grid's
        kind = r.get("features", "standardised")
        return short(r.get("C")) + ("" if kind == "standardised" else f" ({kind})")

    return {"C": label(probe), "selection": probe.get("selection"),
            "grid": [[label(r), r.get("val_acc"), r.get("val_loss")] for r in grid],
            "kinds": ["kept" if (r.get("C"), r.get("features", "standardised")) == kept else "" for r in grid]}


def drift(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """How far each layer group's features and weights moved from the pretrained ones, over training."""
    rows = dicts(metrics.get("drift"))
    if not rows:
        return None
    spans = stage_spans(stages_of(metrics))
    last = rows[-1]
    cka, change = mapping(last.get("cka")), mapping(last.get("weight_change"))
    figure = chart("drift", rows, spans, alt="representation drift per layer group",
                   caption="CKA between each layer group's features now and before training (1 = unchanged), "
                           "and how far its weights moved.")
    return render("sections/drift.html.j2", chart=figure, stage=last.get("stage", "?"),
                  epoch=last.get("epoch", "?"),
                  rows=[[g, cka.get(g), change.get(g)] for g in dict.fromkeys([*cka, *change])])


def control(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The same training from random weights: what the pretrained weights contribute."""
    c = metrics.get("control")
    if not isinstance(c, dict) or not c:
        return None
    pre, rand, gap = number(c.get("pretrained")), number(c.get("random_init")), number(c.get("gap"))
    if gap is None and pre is not None and rand is not None:
        gap = pre - rand
    figure = None
    if pre is not None and rand is not None:
        figure = chart("bars", {"pretrained": pre, "random init": rand}, "accuracy", ["#2563eb", "#9ca3af"], True,
                       alt="pretrained versus random initialisation")
    facts = {"pretrained accuracy": pre, "random-init accuracy": rand, "gap": gap}
    facts |= {k: v for k, v in c.items() if k not in ("pretrained", "random_init", "gap", "sequential")}
    if isinstance(seq := c.get("sequential"), dict):  # a run started from another run (--backbone run:DIR)
        facts |= {"source run": seq.get("source_run"), "original-weights accuracy": number(seq.get("original"))}
    return render("sections/control.html.j2", chart=figure, facts=facts)


def mismatch(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """How far the target data lies from the pretraining data, overall and per layer."""
    m = metrics.get("mismatch")
    if not isinstance(m, dict) or not m:
        return None
    layers = mapping(m.get("per_layer"))
    figure = None
    if layers and all(number(v) is not None for v in layers.values()):
        figure = chart("bars", layers, "mismatch", alt="mismatch per layer")
    return render("sections/mismatch.html.j2", score=m.get("score"), chart=figure, layers=list(layers.items()),
                  rest={k: v for k, v in m.items() if k not in ("score", "per_layer")})


def cost(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """What the run cost: parameters trained of the total, peak memory, seconds."""
    p, memory, timing = mapping(metrics.get("parameters")), mapping(metrics.get("memory")), \
        mapping(metrics.get("timing"))
    if not (p or memory or timing):
        return None
    parameters = {"trainable": p.get("trainable"), "total": p.get("total"),
                  "percent": p.get("trainable_percent")} if p else None
    return render("sections/cost.html.j2", parameters=parameters, memory=memory, timing=timing)


def footer(metrics: dict[str, Any], config: dict[str, Any]) -> Html | None:
    """The backbone, the library versions and every setting, for whoever has to reproduce the run."""
    b = mapping(config.get("backbone"))
    keys = ("name", "source", "arch", "model_type", "modality", "feature_dim", "params", "pretrained", "weights",
            "fingerprint")
    backbone = {k: b[k] for k in keys if k in b} | mapping(b.get("extra")) if b else {}
    versions = mapping(config.get("versions"))
    settings = {k: config[k] for k in ("fit", "preprocessing", "head", "formatting", "generation", "lora")
                if isinstance(config.get(k), dict)}
    if not (backbone or versions or settings):
        return None
    return render("sections/about.html.j2", backbone=backbone, versions=versions, settings=settings)
