"""The staged trainer's state: where the schedule is (``Progress``, saved in every checkpoint) and how two
validation results compare (``Score``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Score:
    """A validation result: the task's score (higher is better) and the validation loss."""

    score: float
    loss: float

    def beats(self, other: Score | None) -> bool:
        """The higher score wins; an equal score is decided by the lower loss."""
        if other is None:
            return True
        if abs(self.score - other.score) > 1e-9:
            return self.score > other.score
        return self.loss < other.loss - 1e-9

    @classmethod
    def of(cls, record: dict[str, Any] | None, score_name: str) -> Score | None:
        """The score of an epoch row or a stage record (``None`` for none, or one without a score yet)."""
        if record is None or score_name not in record:
            return None
        return cls(float(record[score_name]), float(record["val_loss"]))


@dataclass
class Progress:
    """Where the schedule is; JSON-able, saved in every checkpoint. Score dicts use the task's score name
    (``"val_acc"`` for classification) and ``"val_loss"``."""

    schedule: list[int]  # unfrozen layer groups of each stage after the probe
    stage: int = 0  # index into schedule (0 = first stage after the probe)
    epoch: int = 0  # epochs completed in the current stage
    bad_epochs: int = 0  # epochs of this stage without any gain (early stopping)
    stage_best: dict[str, Any] | None = None  # the best eligible epoch of the stage (what may be kept)
    stage_top: dict[str, Any] | None = None  # the best epoch, eligible or not: early stopping follows it
    best: dict[str, Any] = field(default_factory=dict)  # {"stage", score, "val_loss"}: the kept stage so far
    stages: list[dict[str, Any]] = field(default_factory=list)  # one record per stage, probe first
    stale_stages: int = 0  # consecutive stages that did not beat the best so far
    done: bool = False  # no further stage (unfreeze patience ran out)
    done_wise: bool = False
    probe_pred: list[int] | None = None  # the probe's validation predictions (for the paired margin)
    probe_losses: list[float] | None = None  # and its per-example validation losses
    stop_stage: bool = False  # the current stage ends after this epoch (early stopping)


def seed_epoch(seed: int, stage: int, epoch: int) -> torch.Generator:
    """Every epoch's randomness (order, augmentation, dropout) is a function of (seed, stage, epoch), so a run
    resumed from a checkpoint continues exactly as the uninterrupted one (on CPU)."""
    s = (seed * 1_000_003 + (stage + 1) * 10_007 + epoch) % (2**63)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)
