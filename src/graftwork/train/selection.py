"""Which epoch and which stage are kept: best-stage selection with its eligibility rules, early stopping inside
a stage, and unfreezing patience across stages (callbacks of :class:`.trainer.StagedTrainer`).

A stage is never kept, whatever its score, when its validation predictions collapse onto one class or its
validation loss is worse than the linear probe's (an epoch that does either is not eligible as the stage's best);
with a small validation split (``probe_margin``) it must also beat the probe by more than the standard error of
the paired difference on the validation examples (see :mod:`graftwork.strategies.selection`). The best stage's
weights are kept, so the result is never worse on validation than the probe.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..console import SILENT, Console
from ..strategies.selection import collapse_reason, json_figures, margin, margin_text
from .callbacks import Callback
from .state import Progress, Score

if TYPE_CHECKING:
    from .trainer import StagedTrainer

PROBE = "linear probe"


def _score_text(name: str) -> str:
    return {"val_acc": "val accuracy", "val_f1": "val F1"}.get(name, name)


class BestStageSelection(Callback):
    """Keeps each stage's best eligible epoch, and of the stages the best one (the probe's included)."""

    def __init__(self, *, probe_margin: bool = False, console: Console = SILENT):
        self.probe_margin, self.console = probe_margin, console

    def on_stage_start(self, trainer: StagedTrainer, state: Progress) -> None:
        if not trainer.resumed_stage:
            trainer.snapshots["stage_best"] = trainer.snapshot()
            trainer.snapshots["stage_top"] = trainer.snapshots["stage_best"]

    def on_epoch_end(self, trainer: StagedTrainer, state: Progress, row: dict[str, Any]) -> None:
        name = trainer.score_name
        score = Score.of(row, name)
        assert score is not None
        rejected = self.ineligible(trainer.last, score, state)
        if rejected:
            row["rejected"] = rejected
        if not rejected and score.beats(Score.of(state.stage_best, name)):
            last = trainer.last
            pred, losses = (last.pred, last.losses) if last is not None else (None, None)
            state.stage_best = {"epoch": state.epoch, name: score.score, "val_loss": score.loss,
                                "pred": pred.tolist() if pred is not None else None,
                                "losses": losses.tolist() if losses is not None else None}
            trainer.snapshots["stage_best"] = trainer.snapshot()

    @staticmethod
    def ineligible(val: Any, score: Score, state: Progress) -> str | None:
        """Why an epoch's model may not be kept whatever its score: collapsed, or a worse loss than the probe."""
        if val is not None and val.pred is not None and val.truth is not None:
            truth = np.asarray(val.truth)
            reason = collapse_reason(np.asarray(val.pred), truth, int(truth.max(initial=0)) + 1)
            if reason:
                return reason
        probe = next((r for r in state.stages if r.get("stage") == PROBE), {})
        probe_loss = probe.get("val_loss", math.inf)
        if score.loss > probe_loss + 1e-9:
            return f"validation loss {score.loss:.4f} is worse than the linear probe's {probe_loss:.4f}"
        return None

    def on_stage_end(self, trainer: StagedTrainer, state: Progress, record: dict[str, Any]) -> None:
        trainer.restore(trainer.snapshots["stage_best"])
        if self._wins(trainer, state, record):
            state.best = {"stage": record["stage"], trainer.score_name: record[trainer.score_name],
                          "val_loss": record["val_loss"]}
            trainer.snapshots["best"] = trainer.snapshot()
            state.stale_stages = 0
        else:
            state.stale_stages += 1
        trainer.restore(trainer.snapshots["stage_top"])  # the next stage starts where this one did best

    def on_fit_end(self, trainer: StagedTrainer, state: Progress) -> None:
        trainer.restore(trainer.snapshots["best"])
        for r in state.stages:
            r["kept"] = r["stage"] == state.best.get("stage")

    def _wins(self, trainer: StagedTrainer, state: Progress, record: dict[str, Any]) -> bool:
        """Record the stage's result; True when it is kept over the best so far."""
        name, sb = trainer.score_name, state.stage_best
        if sb is None:  # no eligible epoch: report the best one, and why it was not kept
            raw = max(record["history"], key=lambda r: (r[name], -r["val_loss"]), default=None)
            record.update({"best_epoch": raw["epoch"] if raw else 0, name: raw[name] if raw else 0.0,
                           "val_loss": raw["val_loss"] if raw else math.inf,
                           "rejected": raw.get("rejected", "no epoch trained") if raw else "no epoch trained"})
            wins = False
        else:
            record.update({"best_epoch": sb["epoch"], name: sb[name], "val_loss": sb["val_loss"]})
            wins = bool(Score.of(sb, name).beats(Score.of(state.best, name)))  # type: ignore[union-attr]
            short = (self._short_of_margin(trainer, sb, state, record) if state.best.get("stage") == PROBE
                     else None)
            if wins and short:
                record["rejected"], wins = short, False
        so_far = (f" (best so far {state.best[name]:.4f}, {state.best['stage']})" if name in state.best else "")
        self.console.info(f"  stage {record['stage']}: {_score_text(name)} {record[name]:.4f}{so_far}"
                          + (f"; not kept: {record['rejected']}" if record.get("rejected") else ""))
        return wins

    def _short_of_margin(self, trainer: StagedTrainer, best: dict[str, Any], state: Progress,
                         record: dict[str, Any]) -> str | None:
        """With a small validation split: why a stage's best epoch does not beat the probe by more than the noise
        of the validation examples (:func:`graftwork.strategies.selection.margin`: the paired gain in accuracy or
        log-loss against its standard error), or None. The figures are kept in the stage's record (``margin``)."""
        pred = best.get("pred")
        if not self.probe_margin or state.probe_pred is None or pred is None:
            return None
        truth = (trainer.last or trainer.validate()).truth
        if truth is None:
            return None
        losses, probe_losses = best.get("losses"), state.probe_losses
        figures, wins = margin(np.asarray(pred), np.asarray(state.probe_pred), np.asarray(truth),
                               None if losses is None else np.asarray(losses),
                               None if probe_losses is None else np.asarray(probe_losses))
        record["margin"] = json_figures(figures)
        return None if wins else margin_text(figures, "validation examples")


class EarlyStopping(Callback):
    """Ends a stage after ``patience`` epochs without any gain; the stage's best epoch, eligible or not, is where
    training and the next stage go on from. Comes after :class:`BestStageSelection` in the callbacks."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, trainer: StagedTrainer, state: Progress, row: dict[str, Any]) -> None:
        name = trainer.score_name
        score = Score.of(row, name)
        assert score is not None
        # patience counts epochs without any gain, so a stage whose first epochs are not eligible (a loss still
        # above the probe's) trains as long as it would otherwise
        if score.beats(Score.of(state.stage_top, name)):
            state.stage_top, state.bad_epochs = {name: score.score, "val_loss": score.loss}, 0
            new_best = state.stage_best is not None and state.stage_best["epoch"] == state.epoch
            trainer.snapshots["stage_top"] = trainer.snapshots["stage_best"] if new_best else trainer.snapshot()
        else:
            state.bad_epochs += 1
        state.stop_stage = state.bad_epochs >= self.patience


class UnfreezePatience(Callback):
    """Stops unfreezing after ``patience`` + 1 stages in a row that were not kept: a small group (a single 1x1
    convolution) may not move validation by itself. Comes after :class:`BestStageSelection`."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_stage_end(self, trainer: StagedTrainer, state: Progress, record: dict[str, Any]) -> None:
        state.done = state.stale_stages > self.patience
