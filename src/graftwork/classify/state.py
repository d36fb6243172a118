"""``FitState``: everything a classification fit knows, passed from one step to the next.

Each step of :func:`graftwork.classify.fit.fit_steps` (prepare data, plan, probe, tune, evaluate, check, save)
takes the state and returns it with its own fields filled in; nothing else is shared between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backbones.base import Backbone
from ..config import FitConfig
from ..console import Console
from ..data import Examples, Splits
from ..diagnostics import Finding
from ..model import TransferModel
from ..strategies.base import Strategy
from ..strategies.head import LinearHead, ProbeFit
from ..strategies.plan import Plan
from ..train import Callback


@dataclass
class FitState:
    # given
    data: str | Path
    cfg: FitConfig
    out: str | Path | None
    force: bool
    resume: bool
    console: Console
    callbacks: list[Callback]
    started: float
    partial: Path | None = None  # the interrupted-run state beside --out
    # prepare data
    splits: Splits | None = None
    classes: list[str] = field(default_factory=list)
    groups: dict[str, str] | None = None  # each example's group by origin (--groups)
    backbone: Backbone | None = None
    window: Any = None  # the audio window measured from the clips
    parts: dict[str, Examples] = field(default_factory=dict)  # train, val, test
    # plan
    plan: Plan | None = None
    mismatch: Finding | None = None
    strategy: Strategy | None = None  # None: the probe is the model
    schedule: list[int] = field(default_factory=list)
    # probe
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # features, readable mask
    y: dict[str, np.ndarray] = field(default_factory=dict)  # label indices of the readable examples
    skipped: list[str] = field(default_factory=list)
    head: LinearHead | None = None
    class_weights: list[float] | None = None
    probe: ProbeFit | None = None
    small_val: bool = False
    curve: Any = None
    selection_val: dict[str, Any] | None = None  # val metrics of the head validation chose, before a refit
    stages: list[dict[str, Any]] = field(default_factory=list)
    # evaluate, check, save
    model: TransferModel | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def lp_record(self) -> dict[str, Any]:
        """The linear probe's stage record."""
        return self.stages[0]
