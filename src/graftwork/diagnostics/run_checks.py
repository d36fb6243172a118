"""Checks on a finished fit: is the model better than guessing, and better than the same network untrained?"""

from __future__ import annotations

from typing import Any

import numpy as np

from .findings import Finding
from .transferability import paired_gap

CONTROL_MARGIN = 0.02  # pretrained must beat the random-init control by more than this (and 2 standard errors)
BASELINE_MARGIN = 0.02


def baseline_finding(split: str, metrics: dict[str, Any]) -> Finding | None:
    """``no-better-than-majority`` (high) when the model's accuracy on ``split`` is within ``BASELINE_MARGIN``
    of always predicting the most frequent training class."""
    acc, base = metrics["accuracy"], metrics["majority_baseline"]["accuracy"]
    if acc > base + BASELINE_MARGIN:
        return None
    return Finding(
        "no-better-than-majority", "high", value=acc, metric=f"{split} accuracy",
        message=(f"{split} accuracy {acc:.3f} is no better than always predicting "
                 f"'{metrics['majority_baseline']['predicts']}' ({base:.3f}): nothing useful was learned"),
        advice="check that the labels match the inputs (a shuffled label column gives exactly this), that "
               "the classes are learnable from the inputs at all, and that there are enough examples per class",
        details={"majority_baseline": base})


def control_finding(pred_pretrained: np.ndarray, pred_random: np.ndarray, labels: np.ndarray, split: str,
                    margin: float = CONTROL_MARGIN) -> Finding:
    """``pretrained-not-helping`` from the predictions of the pretrained model and of its random-init control
    (same architecture, same settings) on the same ``split``, compared example by example."""
    gap = paired_gap(pred_pretrained, pred_random, labels)
    acc_p, acc_r = float(np.mean(pred_pretrained == labels)), float(np.mean(pred_random == labels))
    numbers = (f"{split} accuracy {acc_p:.3f} pretrained vs {acc_r:.3f} from random initialisation "
               f"(gap {gap.gap:+.3f} +/- {gap.stderr:.3f}, {len(labels)} examples)")
    details = {"split": split, "pretrained": acc_p, "random_init": acc_r, "gap": gap.gap, "gap_stderr": gap.stderr,
               "margin": margin}
    common: dict[str, Any] = {"value": gap.gap, "metric": "accuracy gain over random init", "details": details}
    if gap.exceeds(margin, 2.0):
        return Finding("pretrained-not-helping", "info", f"pretraining helps: {numbers}.", **common)
    if gap.exceeds(margin, 1.0):
        return Finding("pretrained-not-helping", "warning",
                       f"pretraining may help, but by no more than noise could explain: {numbers}.",
                       advice="evaluate on more labelled examples to tell; try a backbone pretrained on data "
                              "closer to yours (`graftwork rank`).", **common)
    return Finding(
        "pretrained-not-helping", "high",
        f"pretraining is not helping: the same network trained from random initialisation does as well: "
        f"{numbers}.",
        advice="what the backbone learned does not transfer to this task: check the labels, try backbones "
               "pretrained on closer data (`graftwork rank DATA --backbones ...`), or train a small model from "
               "scratch.", **common)
