"""Sequential transfer checked: is starting from a trained run better than starting from the original weights?

A run started from another (``--backbone run:DIR``, :mod:`graftwork.backbones.run_source`) inherits what the
source task taught the backbone, which helps when the tasks share structure and hurts when they do not: a
sentiment classifier's encoder can be a worse start for named entities than the pretrained encoder it came from,
or even than random weights. ``--control`` on such a run therefore compares three starts, each trained with the
same settings and scored on the same examples: the source run (the run itself), the original pretrained weights
and random initialisation; :func:`source_finding` reports ``source-task-hurts`` unless the source start beats the
original one by more than the margin and two paired standard errors, as the random-init control does
(:func:`graftwork.diagnostics.run_checks.control_finding`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import FitConfig
from ..console import Console
from .findings import Finding
from .run_checks import CONTROL_MARGIN
from .transferability import paired_gap

ADVICE = ("start from the original backbone instead (--backbone {name}): fine-tuning on the source task replaced "
          "features this task needs. To keep some of the source task, fine-tune the source run with a smaller "
          "learning rate or --l2sp, or try a source task closer to this one")


def source_of(extra: dict[str, Any]) -> dict[str, Any] | None:
    """The source run a backbone started from (``info.extra["source_run"]``), or None."""
    found = extra.get("source_run")
    return found if isinstance(found, dict) else None


def original_start_config(cfg: FitConfig, source: dict[str, Any]) -> FitConfig | None:
    """The settings of the original-weights start: the same settings with the source's original backbone by name;
    None when there is nothing else to train (the source never changed its backbone, or started from random
    weights, whose control is the random-init one)."""
    original = source.get("original") or {}
    if not source.get("fine_tuned") or not original.get("pretrained"):
        return None
    return FitConfig.from_dict(cfg.to_dict() | {"backbone": original["name"], "pretrained": True,
                                                "control": False, "log_to": None})


def source_finding(pred_source: np.ndarray, pred_original: np.ndarray | None, pred_random: np.ndarray,
                   labels: np.ndarray, split: str, source: dict[str, Any],
                   margin: float = CONTROL_MARGIN) -> Finding:
    """``source-task-hurts`` from the predictions of the three starts on the same ``split``.

    ``pred_original`` is None when the source run's own start was random (then the random-init start is the
    original one). Severity: ``info`` when the source start is better beyond noise, ``warning`` when it is better
    by no more than noise could explain or when the source run never changed its backbone, ``high`` otherwise."""
    original = source.get("original") or {}
    name = original.get("name", "the original backbone")
    baseline = pred_original if pred_original is not None else pred_random
    gap = paired_gap(pred_source, baseline, labels)
    vs_random = paired_gap(pred_source, pred_random, labels)
    acc = {k: float(np.mean(p == labels)) for k, p in
           (("source", pred_source), ("original", baseline), ("random_init", pred_random))}
    what = "pretrained" if pred_original is not None else "random (the source run's own start)"
    numbers = (f"{split} accuracy {acc['source']:.3f} from the source run vs {acc['original']:.3f} from the "
               f"original {what} weights and {acc['random_init']:.3f} from random initialisation (gap "
               f"{gap.gap:+.3f} +/- {gap.stderr:.3f}, {len(labels)} examples)")
    details = {"split": split, "source_run": source.get("path"), "source_task": source.get("task"),
               "original_backbone": name, **acc, "gap": gap.gap, "gap_stderr": gap.stderr,
               "gap_vs_random": vs_random.gap, "gap_vs_random_stderr": vs_random.stderr, "margin": margin}
    common: dict[str, Any] = {"value": gap.gap, "metric": "accuracy gain of the source run over the original start",
                              "details": details}
    if not source.get("fine_tuned"):
        return Finding("source-task-hurts", "warning",
                       f"the source run ({source.get('path')}) kept its backbone frozen, so this run started from "
                       f"the original weights: the source task added nothing to the backbone; {numbers}.",
                       advice=f"start from {name} directly (the same start), or from a run that fine-tuned its "
                              "backbone", **common)
    if gap.exceeds(margin, 2.0):
        return Finding("source-task-hurts", "info", f"the source task helps: {numbers}.", **common)
    if gap.exceeds(margin, 1.0):
        return Finding("source-task-hurts", "warning",
                       f"the source task may help, but by no more than noise could explain: {numbers}.",
                       advice="evaluate on more labelled examples to tell; " + ADVICE.format(name=name), **common)
    worse_than_random = not vs_random.exceeds(0.0, 1.0)
    return Finding(
        "source-task-hurts", "high",
        f"starting from the source run ({source.get('task')} task) is no better than starting from the original "
        f"weights{', nor than random initialisation' if worse_than_random else ''}: {numbers}.",
        advice=ADVICE.format(name=name), **common)


def compare_starts(fit: Callable[[FitConfig], Any], predict: Callable[[Any], np.ndarray], cfg: FitConfig,
                   extra: dict[str, Any], pred_source: np.ndarray, pred_random: np.ndarray, labels: np.ndarray,
                   split: str, console: Console) -> tuple[Finding, dict[str, Any]] | None:
    """For a run started from another (``extra``: its backbone's ``info.extra``): train the original-weights
    start with ``fit`` (settings in, fitted model out), score it with ``predict`` (a model's predictions on the
    ``split`` examples, as label indices), and judge the source start against it and against random init (their
    predictions given). None for a run that did not start from another run."""
    source = source_of(extra)
    if source is None:
        return None
    original_cfg = original_start_config(cfg, source)
    pred_original, same_start = None, None
    if original_cfg is not None:
        console.info(f"control: training from the original weights ({original_cfg.backbone}) with the same settings")
        model = fit(original_cfg)
        pred_original = predict(model)
        info = model.backbone.info
        start = info.extra.get("pretrained_fingerprint") or info.fingerprint
        same_start = start == (source.get("original") or {}).get("fingerprint")
        if not same_start:
            console.warn(f"control: the weights found for {original_cfg.backbone} are not the ones the source run "
                         "started from (another fingerprint); the comparison is with these")
    found = source_finding(pred_source, pred_original, pred_random, labels, split, source)
    console.info(f"control: {found.message}")
    keys = ("split", "source_run", "source", "original", "random_init", "gap", "gap_stderr")
    return found, {k: found.details[k] for k in keys} | {"original_is_source_start": same_start}
