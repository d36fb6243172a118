"""Step 4, with a tiny validation split: "fine-tune or keep the probe" decided by k-fold fine-tuning.

Below :data:`~graftwork.strategies.selection.MIN_LOSS_EVIDENCE` validation examples, the validation split cannot
tell a fine-tuned model from the probe: 6 examples move accuracy in steps of 17 points. When training +
validation data are small (:data:`~graftwork.strategies.selection.CV_FINE_TUNE_MAX` examples at most, so k
fine-tunings cost little), the plan's recipe is instead judged on all of them:

1. stratified k folds (5, fewer when a class has fewer examples); in each, the probe (the C already chosen by
   cross-validation) is fitted on the other folds, then the plan's stages are trained from it for their full
   length (no early stopping: the recipe is what is judged), and the probe and the end of every stage predict the
   held-out fold;
2. every example is held out once, so each stage and the probe have predictions for all of them; a stage may be
   kept only if its predictions do not collapse onto one class and its loss is no worse than the probe's, and
   the best one must beat the probe by more than the noise of the paired per-example differences
   (:func:`~graftwork.strategies.selection.margin`); near-ties go to the probe;
3. the winner is retrained on all the examples: the probe, or the probe followed by the stages up to the chosen
   one. The cross-validated figures are the run's validation figures (``metrics.json``: ``val`` and each stage's
   ``cross_validation``).

Only ``auto`` decides this way (:func:`.tune.k_fold_allowed`), and not for text, which trains SetFit's recipe
there instead (:mod:`.fewshot_text`; with ``--no-contrastive`` text is decided here too). The folds train
silently; the fit's callbacks (``--log-to`` trackers, the API's ``callbacks``) see the retraining's epochs,
whose rows have no validation figures (nothing is held out). A killed run restarts this step from the probe (it
takes k+1 short fine-tunings); the features stay cached.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from ..console import SILENT
from ..data import Examples
from ..metrics import classification_metrics, majority_baseline
from ..strategies import LinearHead, fit_probe
from ..strategies.base import TransferNet
from ..strategies.inputs import DecodedImages, TrainingInputs
from ..strategies.selection import collapse_reason, cv_splits, json_figures, margin, margin_text
from ..train import Callback, Progress, StagedTrainer
from ..train.standard import train_settings
from .probe import refit_probe
from .state import FitState
from .task import ClassificationTask
from .tune import augments, strategy_for

PROBE = "linear probe"


@dataclass
class Pooled:
    """Held-out predictions and per-example losses of one candidate, over all the examples."""

    pred: np.ndarray
    losses: np.ndarray

    def accuracy(self, truth: np.ndarray) -> float:
        return float(np.mean(self.pred == truth))

    @classmethod
    def empty(cls, n: int) -> Pooled:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(n))

    @property
    def loss(self) -> float:
        return float(self.losses.mean())


class _StageEnds(Callback):
    """Keeps the held-out predictions at the end of every stage (the trainer validates on the held-out fold)."""

    def __init__(self) -> None:
        self.ends: list[tuple[np.ndarray, np.ndarray]] = []
        self.records: list[dict[str, Any]] = []

    def on_stage_end(self, trainer: Any, state: Any, record: dict[str, Any]) -> None:
        last = trainer.last
        self.ends.append((np.asarray(last.pred), np.asarray(last.losses)))
        self.records.append(record)


def cross_validated_tune(state: FitState) -> FitState:
    """Decide by k-fold fine-tuning, then retrain the winner on all the data (see the module docstring)."""
    cfg, backbone, console = state.cfg, state.backbone, state.console
    assert backbone is not None and state.probe is not None and state.plan is not None
    examples, x, y = all_data(state)
    k, _ = cv_splits(len(y), int(np.bincount(y)[np.unique(y)].min()))  # one repeat: each costs k fine-tunings
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(x, y))
    schedule = state.schedule
    epochs = train_settings(cfg, backbone.modality).stage_epochs
    console.info(f"cross-validating fine-tuning: {k} folds over {len(y)} examples (validation has "
                 f"{len(state.y['val'])}): {len(schedule)} stage(s) of {epochs} epochs each")
    decoded = DecodedImages.for_backbone(backbone)
    train_in = TrainingInputs(backbone, examples, y.tolist(), augment=augments(cfg, backbone), decoded=decoded)
    held_in = TrainingInputs(backbone, examples, y.tolist(), augment=False, decoded=decoded)
    probe, stages = Pooled.empty(len(y)), [Pooled.empty(len(y)) for _ in schedule]
    records: list[dict[str, Any]] = []
    for i, (tr, te) in enumerate(folds):
        net = TransferNet(copy.deepcopy(backbone), _probe_head(state, x[tr], y[tr]))
        ends, (probe_pred, probe_losses), fold_records = _train_fold(state, net, train_in.subset(tr),
                                                                     held_in.subset(te), schedule)
        probe.pred[te], probe.losses[te] = probe_pred, probe_losses
        for s, (pred, losses) in enumerate(ends):
            stages[s].pred[te], stages[s].losses[te] = pred, losses
        records = records or fold_records
        console.info(f"  fold {i + 1}/{k}: probe {np.mean(probe_pred == y[te]):.3f}, "
                     + ", ".join(f"{r['stage']} {np.mean(p == y[te]):.3f}" for r, (p, _) in
                                 zip(fold_records, ends, strict=True)))
    chosen, summaries = _choose(probe, stages, records, y, len(state.classes), k)
    return _retrain(state, chosen, summaries, probe, stages, y, examples, k)


def all_data(state: FitState) -> tuple[Examples, np.ndarray, np.ndarray]:
    """The readable training + validation examples, their features and label indices."""
    parts, feats = state.parts, state.feats
    kept = [parts[n].subset(np.flatnonzero(feats[n][1])) for n in ("train", "val")]
    examples = Examples(modality=kept[0].modality, items=kept[0].items + kept[1].items,
                        labels=kept[0].labels + kept[1].labels, origins=kept[0].origins + kept[1].origins)
    x = np.concatenate([feats["train"][0], feats["val"][0]])
    return examples, x, np.concatenate([state.y["train"], state.y["val"]])


def _probe_head(state: FitState, x: np.ndarray, y: np.ndarray) -> LinearHead:
    """The probe with the cross-validated C (and the probe's class weights), fitted on ``x``, ``y``."""
    assert state.backbone is not None and state.probe is not None
    torch.manual_seed(state.cfg.seed)
    head = LinearHead(state.backbone.feature_dim, len(state.classes))
    fit_probe(head, x, y, c=state.probe.c, features=state.probe.features, class_weights=state.class_weights,
              seed=state.cfg.seed)
    return head


def _train_fold(state: FitState, net: TransferNet, train: TrainingInputs, held: TrainingInputs,
                schedule: list[int]) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray],
                                             list[dict[str, Any]]]:
    """Train ``schedule``'s stages of the plan's strategy on ``train``, from the probe in ``net``; returns the
    held-out predictions and losses at the end of each stage and of the probe, and the stage records."""
    cfg, plan = state.cfg, state.plan
    assert plan is not None
    strategy = strategy_for(plan, cfg)
    strategy.inject(net.backbone)
    task = ClassificationTask(net.backbone, train, held, batch_size=cfg.batch_size, workers=cfg.workers,
                              label_smoothing=cfg.label_smoothing, class_weights=state.class_weights)
    ends = _StageEnds()
    trainer = StagedTrainer(net, task, strategy, train_settings(cfg, net.backbone.modality), callbacks=[ends],
                            console=SILENT)
    probe_val = trainer.validate()
    trainer.fit(Progress(schedule=schedule, stages=[{"stage": PROBE}]))
    return ends.ends, (np.asarray(probe_val.pred), np.asarray(probe_val.losses)), ends.records


def _choose(probe: Pooled, stages: list[Pooled], records: list[dict[str, Any]], y: np.ndarray, classes: int,
            k: int) -> tuple[int | None, list[dict[str, Any]]]:
    """The stage to retrain (None: the probe) and each stage's summary, from the pooled held-out predictions."""
    summaries, best = [], None
    for s, (pooled, record) in enumerate(zip(stages, records, strict=True)):
        summary: dict[str, Any] = {key: record[key] for key in ("stage", "unfrozen_groups", "rates",
                                                                 "trainable_params") if key in record}
        summary |= {"val_acc": pooled.accuracy(y), "val_loss": pooled.loss,
                    "cross_validation": {"folds": k, "examples": len(y)}}
        rejected = collapse_reason(pooled.pred, y, classes)
        if rejected is None and pooled.loss > probe.loss + 1e-9:
            rejected = f"held-out loss {pooled.loss:.4f} is worse than the linear probe's {probe.loss:.4f}"
        if rejected is None:
            figures, wins = margin(pooled.pred, probe.pred, y, pooled.losses, probe.losses)
            summary["margin"] = json_figures(figures)
            if not wins:
                rejected = margin_text(figures, "cross-validated examples")
            elif best is None or (summary["val_acc"], -summary["val_loss"]) > (summaries[best]["val_acc"],
                                                                               -summaries[best]["val_loss"]):
                best = s
        if rejected:
            summary["rejected"] = rejected
        summaries.append(summary)
    return best, summaries


def _retrain(state: FitState, chosen: int | None, summaries: list[dict[str, Any]], probe: Pooled,
             stages: list[Pooled], y: np.ndarray, examples: Examples, k: int) -> FitState:
    """The winner retrained on all the examples; the stage records carry the cross-validated figures."""
    console = state.console
    lp = state.lp_record
    lp |= {"val_acc": probe.accuracy(y), "val_loss": probe.loss,
           "cross_validation": {"folds": k, "examples": len(y)}}
    for s in summaries:
        console.info(f"  stage {s['stage']}: cross-validated accuracy {s['val_acc']:.4f} (linear probe "
                     f"{lp['val_acc']:.4f})" + (f"; not kept: {s['rejected']}" if s.get("rejected") else ""))
    state.head = refit_probe(state)
    lp["kept"] = chosen is None
    if chosen is not None:
        summaries = _retrain_stages(state, chosen, summaries, examples, y)
    for s, summary in enumerate(summaries):
        summary["kept"] = s == chosen
        summary.setdefault("history", [])
    kept = PROBE if chosen is None else summaries[chosen]["stage"]
    console.info(f"kept: {kept}, retrained on all {len(y)} examples")
    state.stages = [lp, *summaries]
    pooled = probe if chosen is None else stages[chosen]
    truth = [state.classes[i] for i in y]
    note = (f"held-out predictions of {k}-fold cross-validation over training + validation ({len(y)} examples); "
            "the model was then retrained on all of them")
    state.selection_val = classification_metrics(truth, [state.classes[i] for i in pooled.pred], state.classes) | {
        "majority_baseline": majority_baseline(truth, truth), "note": note}
    return state


def _retrain_stages(state: FitState, chosen: int, summaries: list[dict[str, Any]], examples: Examples,
                    y: np.ndarray) -> list[dict[str, Any]]:
    """Train the stages up to ``chosen`` on all the examples from the probe (``state.head``, refit on all of
    them), into the run's backbone."""
    cfg, backbone, head = state.cfg, state.backbone, state.head
    assert backbone is not None and head is not None
    net = TransferNet(backbone, head)
    everything = TrainingInputs(backbone, examples, y.tolist(), augment=augments(cfg, backbone),
                                decoded=DecodedImages.for_backbone(backbone))
    nothing = everything.subset([])
    strategy = state.strategy  # the run's strategy, as the validation rule's fit injects it
    assert strategy is not None
    strategy.inject(backbone)
    task = ClassificationTask(backbone, everything, nothing, batch_size=cfg.batch_size, workers=cfg.workers,
                              label_smoothing=cfg.label_smoothing, class_weights=state.class_weights)
    trainer = StagedTrainer(net, task, strategy, train_settings(cfg, backbone.modality),
                            callbacks=[_NothingHeldOut(), *state.callbacks], console=state.console)
    progress = trainer.fit(Progress(schedule=state.schedule[:chosen + 1], stages=[{"stage": PROBE}]))
    backbone.cpu()
    head.cpu()
    for s, record in enumerate(progress.stages[1:]):
        summaries[s] = record | summaries[s] | {"history": record["history"]}
    return summaries


class _NothingHeldOut(Callback):
    """The retraining holds nothing out: its epoch rows lose the (empty) validation's figures before any other
    callback (a tracker) reads them."""

    def on_epoch_end(self, trainer: Any, state: Any, row: dict[str, Any]) -> None:
        row.pop("val_loss", None)
        row.pop(trainer.score_name, None)
