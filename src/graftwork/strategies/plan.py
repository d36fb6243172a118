"""Choosing a strategy from the data: the plan is printed before training and saved with the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Plan:
    requested: str
    strategy: str
    reasons: list[str] = field(default_factory=list)
    examples_per_class: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        counts = list(self.examples_per_class.values())
        lines = [f"plan: {self.strategy}" + (" (chosen by auto)" if self.requested == "auto" else "")]
        if counts:
            lines.append(f"  data: {len(counts)} classes, {min(counts)}-{max(counts)} training examples per class "
                         f"(median {int(np.median(counts))})")
        lines += [f"  why: {r}" for r in self.reasons]
        return "\n".join(lines)


def make_plan(requested: str, class_counts: dict[str, int]) -> Plan:
    """The plan for ``requested`` (``auto`` decides from examples per class)."""
    counts = list(class_counts.values())
    median = int(np.median(counts)) if counts else 0
    plan = Plan(requested=requested, strategy="frozen", examples_per_class=dict(class_counts))
    if requested == "frozen":
        plan.reasons.append("asked for: backbone frozen, features computed once and cached, a new linear head "
                            "trained on them")
        return plan
    plan.reasons.append(
        f"{median} examples per class (median): a frozen backbone with a new linear head uses what the "
        "pretrained features already separate and cannot damage them; it is the standard choice up to a few "
        "hundred examples per class, and takes seconds on cached features")
    if counts and max(counts) > 3 * max(min(counts), 1):
        plan.reasons.append(f"classes are imbalanced (largest {max(counts)} vs smallest {min(counts)}): "
                            "look at macro F1 and per-class recall, not only accuracy")
    return plan
