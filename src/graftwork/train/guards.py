"""Guards against losing the pretrained knowledge, as callbacks of :class:`.trainer.StagedTrainer`: drift
monitoring with back-off, L2-SP and WiSE-FT (the measurements themselves are in
:mod:`graftwork.strategies.drift`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..console import SILENT, Console
from ..strategies.drift import DriftMonitor, forgetting
from .callbacks import Callback
from .state import Progress, Score

if TYPE_CHECKING:
    from .trainer import StagedTrainer


class DriftWatch(Callback):
    """Measures each unfrozen group's drift from the pretrained state every epoch; on forgetting (drift without
    any gain over the best model so far) reports a finding and, with ``backoff`` (once per stage), lowers the
    stage's learning rates by ``factor``, clears the optimizer's moments and restores the stage's best weights."""

    def __init__(self, monitor: DriftMonitor, *, backoff: bool = False, factor: float = 0.1,
                 console: Console = SILENT):
        self.monitor, self.backoff, self.factor, self.console = monitor, backoff, factor, console

    def on_epoch_end(self, trainer: StagedTrainer, state: Progress, row: dict[str, Any]) -> None:
        n_unfrozen = trainer.unfrozen(state)
        if n_unfrozen == 0:
            return
        record = state.stages[-1]
        record.setdefault("drift", []).append({"stage": record["stage"], "epoch": state.epoch,
                                               **self.monitor.measure()})
        groups = self.monitor.groups
        names = [g.name for g in groups[len(groups) - n_unfrozen:]]
        history = [r for stage in state.stages for r in stage.get("drift", [])]  # across stages, oldest first
        gained = Score.of(row, trainer.score_name).beats(Score.of(state.best, trainer.score_name))  # type: ignore[union-attr]
        finding = forgetting(history, names, gained)
        if finding is None:
            return
        record.setdefault("findings", []).append(finding.to_dict())
        self.console.warn(finding.message)
        if not self.backoff or record.get("backoff"):
            return
        opt, sched = trainer.optimizer, trainer.scheduler
        sched.base_lrs = [b * self.factor for b in sched.base_lrs]
        for group in opt.param_groups:
            group["lr"] *= self.factor
            group["initial_lr"] = group.get("initial_lr", group["lr"] / self.factor) * self.factor
        opt.state.clear()  # the moments belong to the trajectory being abandoned
        record["backoff"] = {"epoch": state.epoch, "factor": self.factor}
        self.console.warn(f"  backing off: learning rates x{self.factor:g}, stage restarted from its best weights")
        trainer.restore(trainer.snapshots["stage_top"])


class L2SP(Callback):
    """L2-SP (Li et al. 2018, "Explicit Inductive Bias for Transfer Learning with Convolutional Networks"): adds
    ``strength / 2 * ||w - w0||^2`` over the trainable backbone weights to every step's loss, a pull toward the
    pretrained values instead of toward zero."""

    def __init__(self, monitor: DriftMonitor, strength: float):
        self.monitor, self.strength = monitor, strength

    def loss_term(self, trainer: StagedTrainer) -> torch.Tensor | None:
        return 0.5 * self.strength * self.monitor.l2sp_penalty()


class WiseFT(Callback):
    """WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): after training, the weights
    ``(1 - a) * start + a * fine_tuned`` for a few ``a``, the one best on validation kept (a = 1 is the
    fine-tuned model, already scored). ``start`` is the network when the fit starts (pretrained backbone and the
    probe's head; also when resuming, since the checkpoint is restored after ``on_fit_start``)."""

    ALPHAS = (0.25, 0.5, 0.75)

    def __init__(self, console: Console = SILENT):
        self.console = console
        self.start: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: StagedTrainer, state: Progress) -> None:
        self.start = {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}

    @torch.no_grad()
    def on_fit_end(self, trainer: StagedTrainer, state: Progress) -> None:
        if state.best.get("stage", "linear probe") == "linear probe" or state.done_wise or self.start is None:
            return
        name, start = trainer.score_name, self.start
        tuned = {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}

        def mixed(alpha: float) -> dict[str, torch.Tensor]:
            return {k: torch.lerp(start[k].to(v.device), v, alpha) if v.is_floating_point() else v
                    for k, v in tuned.items()}

        best = Score.of(state.best, name)
        assert best is not None
        tried, chosen = [{"alpha": 1.0, name: best.score, "val_loss": best.loss}], 1.0
        for alpha in self.ALPHAS:
            trainer.net.load_state_dict(mixed(alpha))
            val = trainer.validate()
            score = Score(val.score, val.loss)
            tried.append({"alpha": alpha, name: score.score, "val_loss": score.loss})
            if score.beats(best):
                best, chosen = score, alpha
        trainer.net.load_state_dict(tuned if chosen == 1.0 else mixed(chosen))
        record = next(r for r in state.stages if r["stage"] == state.best["stage"])
        record["wise"] = {"tried": tried, "alpha": chosen}
        state.best |= {name: best.score, "val_loss": best.loss, "wise_alpha": chosen}
        state.done_wise = True
        self.console.info(f"  WiSE-FT: interpolation {chosen:g} kept ({name} {best.score:.4f})")
