"""Steps 5 and 6 of a classification fit: evaluate the kept model on every part, then check it (the findings:
baseline, subgroups, the ``--control`` run, the learning curve, and what training reported)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..backbones.base import Backbone
from ..config import FitConfig
from ..console import SILENT, Console
from ..data import Examples
from ..diagnostics import Finding
from ..diagnostics.run_checks import baseline_finding, control_finding
from ..diagnostics.sequential import compare_starts
from ..model import TransferModel
from ..run.provenance import library_versions
from .probe import split_metrics
from .state import FitState


def evaluate(state: FitState) -> FitState:
    """The model (kept backbone and head, with its run config) and its metrics on train, val and test."""
    backbone, head, plan, y = state.backbone, state.head, state.plan, state.y
    assert backbone is not None and head is not None and plan is not None and state.probe is not None
    config = run_config(backbone, state.classes, state.cfg, plan.to_dict(), str(state.data))
    state.model = TransferModel(backbone, head, state.classes, config, device=state.cfg.device,
                                console=state.console, cache_dir=state.cfg.cache_dir)
    stages, splits = state.stages, state.splits
    assert splits is not None
    metrics: dict[str, Any] = {"stages": stages, "kept_stage": next(s["stage"] for s in stages if s.get("kept")),
                               "probe": state.probe.to_dict(),
                               "data": splits.summary() | {"skipped": state.skipped, "fit_split": {
                                   "train": len(y["train"]), "val": len(y.get("val", []))}}}
    for name in state.parts:
        metrics[name] = split_metrics(head, state.feats[name][0], y[name], y["train"], state.classes)
    if state.selection_val is not None:
        metrics["val"] = {"note": "before the refit on training + validation data"} | state.selection_val
    metrics["drift"] = [row for s in stages for row in s.get("drift", [])]
    metrics["selection"] = plan.selection | {"probe": state.probe.describe()}
    state.metrics = metrics
    return state


def check(state: FitState, run_fit: Callable[..., TransferModel]) -> FitState:
    """The findings of the run, most from the test split (or validation without one). ``run_fit`` trains the
    ``--control`` runs."""
    metrics, model, cfg = state.metrics, state.model, state.cfg
    assert model is not None
    findings = [Finding.from_dict(f) for s in state.stages for f in s.get("findings", [])]
    if state.mismatch is not None:
        findings.append(state.mismatch)
        metrics["mismatch"] = {"score": state.mismatch.value, "per_layer": state.mismatch.details.get("layers")}
    parts = state.parts
    split = "test" if "test" in parts else ("val" if "val" in parts else None)
    if split is not None and (base := baseline_finding(split, metrics[split])):
        findings.append(base)
    if state.groups is not None and split is not None:
        metrics["groups"], found = group_metrics(model, parts[split], state.feats[split], state.y[split],
                                                 state.groups)
        findings += found
    if cfg.control and split is not None:
        found, metrics["control"] = control(run_fit, state.data, cfg, model, parts[split], state.feats[split],
                                            state.y[split], split, state.console)
        findings += found
    if state.curve is not None:
        metrics["learning_curve"] = state.curve.to_dict()
        findings.append(state.curve.finding())
    state.findings = findings
    metrics["findings"] = [f.to_dict() for f in findings]
    return state


def group_metrics(model: TransferModel, examples: Examples, feats: tuple[np.ndarray, np.ndarray],
                  y: np.ndarray, groups: dict[str, str]) -> tuple[dict[str, Any], list[Finding]]:
    """Metrics per subgroup (``--groups``), with confidence intervals and the worst gap."""
    from ..diagnostics.groups import group_metrics as per_group

    kept = [groups[origin] for origin, ok in zip(examples.origins, feats[1], strict=True) if ok]
    proba = model.probabilities(feats[0])
    classes = model.classes
    return per_group([classes[i] for i in y], [classes[i] for i in proba.argmax(1)], proba, classes, kept)


def control(run_fit: Callable[..., TransferModel], data: Any, cfg: FitConfig, model: TransferModel,
            examples: Examples, feats: tuple[np.ndarray, np.ndarray], y: np.ndarray, split: str,
            console: Console) -> tuple[list[Finding], dict[str, Any]]:
    """--control: the same network and settings from random initialisation, compared on ``split``; for a run
    started from another run, the original weights too (:func:`~graftwork.diagnostics.sequential.compare_starts`)."""
    console.info("control: training the same network from random initialisation with the same settings")
    control_cfg = FitConfig.from_dict(cfg.to_dict() | {"pretrained": False, "weights": None, "control": False,
                                                       "log_to": None})
    random_start = run_fit(data, control_cfg, console=SILENT)
    items = [item for item, ok in zip(examples.items, feats[1], strict=True) if ok]
    x_random, _ = random_start.features(items, use_cache=cfg.cache, skip_bad=True)
    pred, pred_random = model.probabilities(feats[0]).argmax(1), random_start.probabilities(x_random).argmax(1)
    found = control_finding(pred, pred_random, y, split)
    console.info(f"control: {found.message}")
    summary = {k: found.details[k] for k in ("split", "pretrained", "random_init", "gap", "gap_stderr")} | {
        "kept_stage": random_start.metrics["kept_stage"]}
    sequential = compare_starts(lambda c: run_fit(data, c, console=SILENT),
                                lambda m: m.probabilities(m.features(items, use_cache=cfg.cache, skip_bad=True)[0]
                                                          ).argmax(1),
                                cfg, model.backbone.info.extra, pred, pred_random, y, split, console)
    if sequential is None:
        return [found], summary
    return [found, sequential[0]], summary | {"sequential": sequential[1]}


def run_config(backbone: Backbone, classes: list[str], cfg: FitConfig, plan: dict[str, Any],
               data: str) -> dict[str, Any]:
    """The run's ``config.json``: what a run folder needs to load, predict and explain itself."""
    from dataclasses import asdict

    info = backbone.info.to_dict()
    tag = info.get("weights_tag")
    info["load_name"] = f"{info['name']}.{tag}" if tag and info["source"] == "torchvision" else info["name"]
    return {
        "format": "graftwork-run/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "classification",
        "modality": backbone.modality,
        "classes": classes,
        "backbone": info,
        "preprocessing": backbone.preprocessing,
        "head": {"type": "linear", "in_features": backbone.feature_dim, "standardize": True},
        "plan": plan,
        "fit": asdict(cfg),
        "data": data,
        "versions": library_versions(),
    }
