"""Step 4 of a classification fit: the fine-tuning stages after the linear probe (the strategy, the trainer and
its callbacks put together; the loop itself is :class:`graftwork.train.StagedTrainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..backbones.base import Backbone
from ..config import FitConfig
from ..console import Console
from ..data import Examples
from ..strategies.base import Rates, Strategy, TransferNet
from ..strategies.contrastive import CONTRASTIVE
from ..strategies.drift import PROBE_BATCH
from ..strategies.head import LinearHead
from ..strategies.inputs import DecodedImages, TrainingInputs
from ..strategies.lora import has_lora, remove_lora
from ..strategies.plan import Plan, class_weight_vector
from ..strategies.registry import get_strategy
from ..strategies.selection import cross_validates_fine_tuning
from ..train import Callback, Progress, StagedTrainer
from ..train.checkpoint import start_partial
from ..train.standard import standard_callbacks, starting_progress, train_settings
from .probe import features, refit_head
from .resume import data_signature
from .state import FitState
from .task import ClassificationTask


def tune(state: FitState) -> FitState:
    """Train the stages of the plan's strategy (resuming from the checkpoint with ``--resume``), keep the best
    stage, and recompute the features with the fine-tuned backbone. Nothing to do when the probe is the model.
    With a tiny validation split and little data, the choice is made by k-fold fine-tuning instead
    (:mod:`.crossval`), and text trains SetFit's recipe (:mod:`.fewshot_text`)."""
    from ..distributed import processes
    from .crossval import cross_validated_tune
    from .fewshot_text import setfit_recipe

    strategy, backbone, cfg, parts = state.strategy, state.backbone, state.cfg, state.parts
    if strategy is None and not cross_validates(state):  # the probe is the model, no candidate to judge
        return state
    assert backbone is not None and state.head is not None and state.plan is not None
    resume = None
    if state.partial is not None:
        resume = start_partial(state.partial, state.data, cfg.to_dict(), force=state.force,
                               signature=data_signature(parts), resume=state.resume, console=state.console)
    resume = processes().broadcast(resume)  # launched on several: rank 0 read the checkpoint
    if cross_validates(state):
        state = setfit_recipe(state) if contrastive_candidate(cfg, backbone) else cross_validated_tune(state)
    else:
        strategy.inject(backbone)
        inputs = training_inputs(backbone, parts, state.feats, state.y, cfg)
        progress = fine_tune(backbone, state.head, strategy, state.schedule, inputs, state.classes,
                             parts["train"].class_counts(), cfg, state.plan, state.lp_record,
                             partial=state.partial, resume=resume, console=state.console, callbacks=state.callbacks,
                             probe_margin=state.small_val)
        state.stages = progress.stages
        if progress.best["stage"] == "linear probe" and has_lora(backbone):
            remove_lora(backbone, merge=False)  # the probe won: its adapters are still zero, the backbone is plain
        if progress.best["stage"] == "linear probe" and state.plan.fine_tunes and cfg.refit:
            # no stage beat the probe: it is the model, so it gets the frozen strategy's refit too
            state.head, state.selection_val = refit_head(state)
    kept = next(s["stage"] for s in state.stages if s.get("kept"))
    if kept != "linear probe" and (state.plan.fine_tunes or kept == CONTRASTIVE):
        backbone.info.extra["pretrained_fingerprint"] = backbone.info.fingerprint
        backbone.info.extra["fine_tuned"] = kept
        backbone.refresh_fingerprint()
        state.feats = features(backbone, parts, cfg, state.console, [])  # final metrics with the fine-tuned one
    return state


def k_fold_allowed(cfg: FitConfig) -> bool:
    """Do the settings allow deciding fine-tuning by k-fold fine-tuning? Only for ``auto``, which decides how
    to train: a strategy asked for by name trains as asked, its stages validated, checkpointed, watched for drift
    and tracked epoch by epoch (the probe is still kept when no stage beats it by more than the noise). Not
    without the refit on all the data (``--no-refit``), and not with what needs a validation split while
    training: the drift watch behind ``--l2sp`` and WiSE-FT's interpolation chosen on validation (``--wise``)."""
    return cfg.strategy == "auto" and cfg.refit and cfg.l2sp == 0 and not cfg.wise


def contrastive_candidate(cfg: FitConfig, backbone: Backbone) -> bool:
    """Does few-shot text train SetFit's recipe (:mod:`.fewshot_text`) where other modalities decide by k-fold
    fine-tuning? For ``auto`` on text (``--no-contrastive`` turns it off); whether that regime applies is
    :func:`cross_validates`."""
    return cfg.contrastive and k_fold_allowed(cfg) and backbone.modality == "text"


def cross_validates(state: FitState) -> bool:
    """Is the data in the few-shot regime where "fine-tune or keep the probe" is decided by k-fold fine-tuning
    (:func:`graftwork.strategies.selection.cross_validates_fine_tuning` and :func:`k_fold_allowed`)? There text
    trains SetFit's recipe instead (:func:`contrastive_candidate`), even when the plan is ``frozen``."""
    from ..distributed import processes

    assert state.plan is not None and state.backbone is not None
    n_val = len(state.y.get("val", []))
    labels = np.concatenate([state.y["train"], state.y.get("val", np.zeros(0, dtype=np.int64))])
    if len(labels) == 0 or int(np.bincount(labels)[np.unique(labels)].min()) < 2:
        return False  # a class with one example cannot be in two folds
    return k_fold_allowed(state.cfg) and state.small_val and cross_validates_fine_tuning(
        n_val, len(state.y["train"]) + n_val,
        fine_tunes=state.plan.fine_tunes or contrastive_candidate(state.cfg, state.backbone),
        distributed=processes().is_distributed)


def augments(cfg: FitConfig, backbone: Backbone) -> bool:
    return cfg.augment if cfg.augment is not None else backbone.modality == "image"


def bn_stats_of(cfg: FitConfig) -> str:
    return cfg.bn_stats if cfg.pretrained else "update"  # random init has no statistics worth keeping


def strategy_for(plan: Plan, cfg: FitConfig) -> Strategy:
    """The strategy of the plan (``frozen`` here means the head on augmented inputs)."""
    rates = Rates(lr=cfg.lr, lr_ratio=cfg.lr_ratio, lr_decay=cfg.lr_decay, weight_decay=cfg.weight_decay)
    lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "targets": cfg.lora_targets}
    return get_strategy(plan.strategy if plan.fine_tunes else "frozen", rates, bn_stats=bn_stats_of(cfg),
                        unfreeze=cfg.unfreeze, lora=lora)


def plan_training(plan: Plan, cfg: FitConfig, backbone: Backbone, strategy: Strategy) -> list[int]:
    """Write the strategy's stages and rates into the plan; returns the schedule."""
    schedule = strategy.schedule(len(backbone.layer_groups()))
    plan.details |= strategy.describe(backbone, schedule)
    plan.details["augmentation"] = ("random resized crop + horizontal flip" if augments(cfg, backbone) and
                                    backbone.modality == "image" else "none")
    epochs, patience = cfg.stage_length(backbone.modality)
    plan.details["epochs per stage"] = f"up to {epochs}, stopping after {patience} without validation gain"
    return schedule


def training_inputs(backbone: Backbone, parts: dict[str, Examples], feats: dict[str, Any],
                    labels: dict[str, np.ndarray], cfg: FitConfig) -> dict[str, TrainingInputs]:
    """The training and validation examples (readable ones only) as model inputs; images decoded once."""
    decoded = DecodedImages.for_backbone(backbone)
    augment = augments(cfg, backbone)
    out = {}
    for name in ("train", "val"):
        ex = parts[name].subset(np.flatnonzero(feats[name][1]))
        out[name] = TrainingInputs(backbone, ex, labels[name].tolist(), augment=augment and name == "train",
                                   decoded=decoded)
    if decoded is not None and cfg.workers > 0:  # decode once here: worker processes inherit the cache
        for ds in out.values():
            for item in ds.items:
                decoded.get(item)
    return out


def fine_tune(backbone: Backbone, head: LinearHead, strategy: Strategy, schedule: list[int],
              inputs: dict[str, TrainingInputs], classes: list[str], counts: dict[str, int], cfg: FitConfig,
              plan: Plan, lp_record: dict[str, Any], *, partial: Path | None, resume: dict[str, Any] | None,
              console: Console, callbacks: list[Callback] | None, probe_margin: bool = False) -> Progress:
    """Train the stages of ``schedule``; the network ends with the kept stage's weights (the probe's, if no
    stage beats it). ``lp_record`` (the probe's stage record) gets the probe's score through the same inputs."""
    task = ClassificationTask(backbone, inputs["train"], inputs["val"], batch_size=cfg.batch_size,
                              workers=cfg.workers, label_smoothing=cfg.label_smoothing,
                              class_weights=class_weight_vector(classes, counts) if plan.class_weighted else None)
    trainer = StagedTrainer(TransferNet(backbone, head), task, strategy, train_settings(cfg, backbone.modality),
                            console=console)
    # the probe batch is taken while the network holds the pretrained backbone (also when resuming)
    trainer.callbacks = standard_callbacks(
        trainer, cfg, modality=backbone.modality, probe_batch=task.probe_batch(PROBE_BATCH),
        unfreeze_patience=plan.details.get("unfreeze patience", cfg.unfreeze_patience), partial=partial,
        console=console, probe_margin=probe_margin, extra=callbacks or [])

    def fresh() -> Progress:
        # score the probe through the same input pipeline as the stages, so that "a stage beats the probe"
        # compares like with like
        val = trainer.validate()
        lp_record.update(val_acc=val.score, val_loss=val.loss)
        return Progress(schedule=schedule, best={"stage": "linear probe", "val_acc": val.score,
                                                 "val_loss": val.loss}, stages=[lp_record],
                        probe_pred=val.pred.tolist() if probe_margin and val.pred is not None else None,
                        probe_losses=val.losses.tolist() if probe_margin and val.losses is not None else None)

    progress = starting_progress(resume, fresh, console)
    progress = trainer.fit(progress, resume)
    backbone.cpu()
    head.cpu()
    console.info(f"kept: {progress.best['stage']} (val accuracy {progress.best['val_acc']:.4f})")
    return progress
