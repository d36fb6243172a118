"""Step 2 of a classification fit: the plan, decided in one place and printed once.

The strategy (``auto`` decides from examples per class and the modality), how selection works with this much
validation data, the domain check (data far from the pretraining data makes ``auto`` unfreeze longer), and the
stages and learning rates of the strategy that trains after the probe.
"""

from __future__ import annotations

import numpy as np

from ..backbones.base import Backbone
from ..config import FitConfig
from ..console import Console
from ..data import Examples
from ..diagnostics import Finding
from ..distributed import processes
from ..errors import DataError
from ..features import default_cache_dir, resolve_device
from ..strategies import Plan, make_plan
from ..strategies.plan import SETFIT_REASON, selection_for
from .state import FitState
from .tune import contrastive_candidate, k_fold_allowed, plan_training, strategy_for


def plan(state: FitState) -> FitState:
    """Decide the plan fully (strategy, selection, domain check, stages), then print it."""
    cfg, backbone, train, val = state.cfg, state.backbone, state.parts["train"], state.parts.get("val")
    assert backbone is not None
    found = make_plan(cfg.strategy, train.class_counts(), unfreeze=cfg.unfreeze, class_weights=cfg.class_weights,
                      backbone_params=sum(p.numel() for p in backbone.parameters()), modality=backbone.modality)
    if found.fine_tunes and val is None:
        raise DataError("fine-tuning needs validation data to choose how far to unfreeze.",
                        hint="give a val split, or set --val-fraction above 0, or use --strategy frozen.")
    if state.window is not None:
        found.details["audio window"] = state.window.describe()
    found.selection = selection_for(val.class_counts() if val is not None else {}, len(train), probe_c=cfg.probe_c,
                                    fine_tunes=found.fine_tunes, k_fold=k_fold_allowed(cfg),
                                    distributed=processes().is_distributed,
                                    contrastive=contrastive_candidate(cfg, backbone))
    if found.requested == "auto" and found.selection.get("fine_tuning") == "setfit":
        found.strategy = "setfit"  # the plan's stages are not trained (see classify/fewshot_text.py)
        counts = list(train.class_counts().values())
        found.reasons = [f"{int(np.median(counts))} examples per class (median): {SETFIT_REASON}"]
    state.mismatch = bn_mismatch(backbone, train, cfg, state.console)
    if state.mismatch is not None and state.mismatch.severity != "info" and cfg.strategy == "auto":
        adapt_plan_to_mismatch(found, cfg, state.mismatch)
    augmented_frozen = found.strategy == "frozen" and bool(cfg.augment) and val is not None
    if found.fine_tunes or augmented_frozen:  # a stage trains after the probe: its stages and rates
        state.strategy = strategy_for(found, cfg)
        state.schedule = plan_training(found, cfg, backbone, state.strategy)
    state.plan = found
    state.console.info(found.describe())
    return state


def bn_mismatch(backbone: Backbone, train: Examples, cfg: FitConfig, console: Console) -> Finding | None:
    """How far the data's activation statistics are from the pretrained BatchNorm statistics (64 images)."""
    from ..diagnostics.mismatch import bn_layers, check_bn_mismatch

    if backbone.modality != "image" or not backbone.info.pretrained or not bn_layers(backbone):
        return None
    # remembered beside the feature cache: a second fit on the same data needs no backbone pass
    memo = (cfg.cache_dir or default_cache_dir()) if cfg.cache else None
    procs = processes()  # launched on several: rank 0 measures (and remembers), the others take its finding
    found = procs.broadcast(check_bn_mismatch(backbone, train, device=resolve_device(cfg.device), seed=cfg.seed,
                                              memo_dir=memo) if procs.is_main else None)
    assert found is not None
    console.info(f"domain check: BatchNorm statistics shift {found.value:.2f} ({found.severity})")
    return found


def adapt_plan_to_mismatch(plan: Plan, cfg: FitConfig, mismatch: Finding) -> None:
    """Data far from the pretraining data: lower layers need to adapt too, so unfreezing goes on one stage
    longer before it gives up; with too little data to fine-tune, the plan stays frozen and says what to expect."""
    if plan.fine_tunes:  # not written into cfg: a resumed run recomputes the check and must not add it twice
        plan.details["unfreeze patience"] = cfg.unfreeze_patience + 1
        why = (f"domain mismatch ({mismatch.metric} {mismatch.value:.2f}, {mismatch.severity}): unfreezing goes "
               f"on through {cfg.unfreeze_patience + 1} stages without improvement before it stops")
    else:
        why = (f"domain mismatch ({mismatch.metric} {mismatch.value:.2f}, {mismatch.severity}): too few examples "
               "to fine-tune safely; expect lower accuracy than on data like the pretraining data")
    plan.reasons.append(why)
