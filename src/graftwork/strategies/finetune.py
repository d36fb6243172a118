"""Fine-tuning stages after the linear probe: gradual unfreezing, full fine-tuning, or a fixed ``--unfreeze N``.

The recipe (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution"; gradual unfreezing and discriminative rates from Howard & Ruder 2018, "ULMFiT"):

1. the head is first trained on cached frozen features until it converges (the linear probe, stage 0);
2. each later stage unfreezes more layer groups from the top (a quarter of them, then twice as many, up to
   all, for ``gradual``; all of them at once for ``full``), each group at its own learning rate, smaller toward
   the input, with AdamW, linear warm-up and cosine decay, gradient clipping, and early stopping on validation;
3. a stage that does not beat the best so far on validation ends the schedule, and the best stage's weights are
   kept, so the result is never worse on validation than the linear probe.

A stage is never kept, whatever its accuracy, when its validation predictions collapse onto one class or its
validation loss is worse than the probe's (an epoch that does either is not eligible as the stage's best); with a
small validation split (``probe_margin``) it must also beat the probe by more than the standard error of the
paired difference on the validation examples (see :mod:`.selection`).

State is checkpointed atomically at the end of every epoch, and every epoch re-seeds the random generators from
``(seed, stage, epoch)``, so a run resumed after a crash ends exactly where an uninterrupted one would (on CPU).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..backbones.base import Backbone
from ..console import SILENT, Console
from .drift import PROBE_BATCH, DriftMonitor, forgetting
from .freezing import discriminative_rates, param_groups, set_train_mode, unfreeze_top
from .inputs import collate_for
from .lora import ADAPTER_MARK, lora_param_groups, set_lora_train_mode
from .selection import collapse_reason, paired_gap

CHECKPOINT = "checkpoint.pt"


class TransferNet(nn.Module):
    """Backbone and head as one network, for training end to end."""

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, batch: Any) -> torch.Tensor:
        return self.head(self.backbone(batch))


def stage_schedule(n_groups: int, strategy: str, unfreeze: int | None = None) -> list[int]:
    """Numbers of unfrozen groups, one per stage after the linear probe.

    ``gradual`` unfreezes the top quarter of the layer groups first, then doubles (a quarter, a half, all of
    them: 5, 10, 19 of MobileNetV2's 19 groups; 2, 4, 8 of a 6-block encoder's 8). Backbones cut their layers
    into groups of very different sizes (a single 1x1 convolution, or a whole stage), and a first stage of one
    small group rarely moves validation: it cost a full stage of epochs for nothing. Measured on MobileNetV2 /
    Fashion-MNIST, 200 per class (BENCHMARKS.md), starting from a quarter was as accurate as starting from one
    group, in two thirds of the time.
    """
    if unfreeze is not None:
        return [min(unfreeze, n_groups)]
    if strategy == "full":
        return [n_groups]
    steps, n = [], max(1, math.ceil(n_groups / 4))
    while n < n_groups:
        steps.append(n)
        n *= 2
    return steps + [n_groups]


@dataclass
class FineTuneSettings:
    stage_epochs: int
    stage_patience: int
    lr: float
    lr_ratio: float
    lr_decay: float
    weight_decay: float
    batch_size: int
    seed: int
    grad_clip: float = 1.0
    unfreeze_patience: int = 1
    label_smoothing: float = 0.0
    warmup_fraction: float = 0.1
    class_weights: list[float] | None = None
    bf16: bool = False
    l2sp: float = 0.0  # strength of the pull toward the pretrained weights (0: off)
    wise: bool = False  # interpolate pretrained and fine-tuned weights, chosen on validation
    backoff: bool = False  # on a forgetting finding: lower the stage's rates and restore its best weights
    backoff_factor: float = 0.1
    lora: bool = False  # the backbone holds LoRA adapters: train them (and the head), nothing else
    workers: int = 0  # data-loading processes (decoding is cached; augmentation runs in them)
    bn_stats: str = "pretrained"  # BatchNorm running statistics while fine-tuning: "pretrained" or "update"
    probe_margin: bool = False  # small validation: a stage must beat the probe by more than the standard error


@dataclass
class Score:
    val_acc: float
    val_loss: float

    def beats(self, other: Score | None) -> bool:
        """Higher validation accuracy wins; equal accuracy is decided by lower validation loss."""
        if other is None:
            return True
        if abs(self.val_acc - other.val_acc) > 1e-9:
            return self.val_acc > other.val_acc
        return self.val_loss < other.val_loss - 1e-9


@dataclass
class Progress:
    """Where the schedule is; JSON-able, saved in every checkpoint."""

    schedule: list[int]
    stage: int = 0  # index into schedule (0 = first stage after the probe)
    epoch: int = 0  # epochs completed in the current stage
    bad_epochs: int = 0
    stage_best: dict[str, float] | None = None  # {"epoch", "val_acc", "val_loss"}: the best eligible epoch
    stage_top: dict[str, float] | None = None  # the best epoch, eligible or not: early stopping follows it
    best: dict[str, Any] = field(default_factory=dict)  # {"stage", "val_acc", "val_loss"}
    stages: list[dict[str, Any]] = field(default_factory=list)  # one record per stage, probe first
    stale_stages: int = 0  # consecutive stages that did not beat the best so far
    done: bool = False
    done_wise: bool = False
    probe_pred: list[int] | None = None  # the probe's validation predictions (for the paired margin)


def _seed_epoch(seed: int, stage: int, epoch: int) -> torch.Generator:
    """Every epoch's randomness (order, augmentation, dropout) is a function of (seed, stage, epoch)."""
    s = (seed * 1_000_003 + (stage + 1) * 10_007 + epoch) % (2**63)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up over ``warmup_fraction`` of the steps, then cosine to 0."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Atomic: written to a temporary file in the same folder, then renamed over the old checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, folder / CHECKPOINT)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(folder: Path) -> dict[str, Any]:
    return torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)


class FineTuner:
    """Runs the stages of a schedule on one network; see the module docstring for the recipe."""

    def __init__(self, net: TransferNet, train: Dataset, val: Dataset, settings: FineTuneSettings, *,
                 device: torch.device, checkpoint_dir: Path | None = None, console: Console = SILENT,
                 on_epoch_end: list[Callable[[Progress], None]] | None = None):
        self.net, self.train_ds, self.val_ds, self.s = net, train, val, settings
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.console = console
        self.on_epoch_end = on_epoch_end or []
        collate = collate_for(net.backbone)
        self.val_loader = DataLoader(val, batch_size=settings.batch_size * 2, shuffle=False, collate_fn=collate,
                                     num_workers=settings.workers)
        self.collate = collate
        weights = settings.class_weights
        self.loss_weight = torch.tensor(weights, dtype=torch.float32, device=device) if weights else None
        # the network holds the pretrained backbone and the probe's head now (also when resuming: the checkpoint
        # is loaded later), which is what drift, L2-SP and WiSE-FT compare against; the drift monitor keeps the
        # backbone's starting weights, so a second full copy is made only for WiSE-FT, which needs the head's too
        self.initial_state = ({k: v.detach().clone() for k, v in net.state_dict().items()} if settings.wise
                              else None)
        probe = [val[i] for i in range(min(PROBE_BATCH, len(val)))]  # type: ignore[arg-type]
        # LoRA leaves the base weights untouched: no copy of them is kept (it would cost what LoRA saves)
        self.drift = (DriftMonitor(net.backbone, collate(probe)[0], device, track_weights=not settings.lora)
                      if len(probe) > 1 else None)
        labels = getattr(val, "labels", None)
        if labels is None:
            labels = [val[i][1] for i in range(len(val))]  # type: ignore[arg-type]
        self.val_labels = np.asarray(labels)
        self.last_pred = np.zeros(0, dtype=np.int64)  # predictions of the latest validate()
        self._probe_pred: list[int] | None = None

    # -- evaluation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> Score:
        self.net.eval()
        total_loss, correct, n, preds = 0.0, 0, 0, []
        for batch, y in self.val_loader:
            with self._autocast():
                logits = self.net(self.net.backbone.batch_to(batch, self.device)).float()
            y = y.to(self.device)
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            preds.append(logits.argmax(1).cpu())
            n += len(y)
        self.last_pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
        return Score(correct / max(n, 1), total_loss / max(n, 1))

    def probe_score(self) -> Score:
        """Validate the network as it is now (the probe's head on the frozen backbone), remembering its
        predictions, against which the stages are compared."""
        score = self.validate()
        self._probe_pred = self.last_pred.tolist()
        return score

    # -- which stage may be kept ------------------------------------------------------------------------------
    def _ineligible(self, score: Score, progress: Progress) -> str | None:
        """Why an epoch's model may not be kept whatever its accuracy: collapsed, or a worse loss than the probe."""
        reason = collapse_reason(self.last_pred, self.val_labels, int(self.val_labels.max(initial=0)) + 1)
        if reason:
            return reason
        probe_loss = progress.stages[0].get("val_loss", math.inf) if progress.stages else math.inf
        if score.val_loss > probe_loss + 1e-9:
            return f"validation loss {score.val_loss:.4f} is worse than the linear probe's {probe_loss:.4f}"
        return None

    def _short_of_margin(self, pred: list[int] | None, progress: Progress) -> str | None:
        """With a small validation split: why a stage's gain over the probe is within its noise, or None."""
        if not self.s.probe_margin or progress.probe_pred is None or pred is None:
            return None
        truth = self.val_labels
        gap, se = paired_gap(np.asarray(pred) == truth, np.asarray(progress.probe_pred) == truth)
        if gap > se:
            return None
        return (f"its gain over the linear probe ({gap:+.4f}) is within the standard error ({se:.4f}) on "
                f"{len(truth)} validation examples: the simpler probe is kept")

    def _autocast(self):
        if self.s.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    # -- one stage -----------------------------------------------------------------------------------------
    def _optimizer(self, n_unfrozen: int) -> tuple[torch.optim.Optimizer, Any, list[dict[str, Any]]]:
        if self.s.lora:
            groups, rates = lora_param_groups(self.net.backbone, self.net.head, self.s.lr, self.s.weight_decay)
        else:
            unfrozen = unfreeze_top(self.net.backbone, n_unfrozen)
            for p in self.net.head.parameters():
                p.requires_grad_(True)
            found = discriminative_rates(unfrozen, self.s.lr, self.s.lr_ratio, self.s.lr_decay)
            groups = param_groups(self.net.head, unfrozen, found, self.s.lr, self.s.weight_decay)
            rates = [r.to_dict() for r in found]
        opt = torch.optim.AdamW(groups)
        steps = self.s.stage_epochs * self._batches_per_epoch()
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, self.s.warmup_fraction))
        return opt, sched, rates

    def _batches_per_epoch(self) -> int:
        n, bs = len(self.train_ds), self.s.batch_size
        return n // bs if self._drop_last() else math.ceil(n / bs)

    def _drop_last(self) -> bool:
        """A last batch of a few examples gives noisy BatchNorm statistics and gradients: dropped when there is
        at least one full batch."""
        return len(self.train_ds) > self.s.batch_size

    def _train_epoch(self, opt: torch.optim.Optimizer, sched: Any, n_unfrozen: int,
                     generator: torch.Generator) -> tuple[float, float]:
        loader = DataLoader(self.train_ds, batch_size=self.s.batch_size, shuffle=True, generator=generator,
                            collate_fn=self.collate, drop_last=self._drop_last(), num_workers=self.s.workers)
        if self.s.lora:
            set_lora_train_mode(self.net)
        else:
            set_train_mode(self.net, self.net.backbone, n_unfrozen, bn_stats=self.s.bn_stats)
        params = [p for g in opt.param_groups for p in g["params"]]
        total, correct, n = 0.0, 0, 0
        for batch, y in loader:
            y = y.to(self.device)
            with self._autocast():
                logits = self.net(self.net.backbone.batch_to(batch, self.device)).float()
            loss = F.cross_entropy(logits, y, weight=self.loss_weight, label_smoothing=self.s.label_smoothing)
            if self.s.l2sp > 0 and self.drift is not None:
                loss = loss + 0.5 * self.s.l2sp * self.drift.l2sp_penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.s.grad_clip)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
        return total / max(n, 1), correct / max(n, 1)

    # -- the schedule --------------------------------------------------------------------------------------
    def run(self, progress: Progress, resume: dict[str, Any] | None = None) -> Progress:
        """Run (or continue) the schedule; the network ends with the best stage's weights."""
        best_state = self._snapshot() if resume is None else resume["best_net"]
        if resume is None and progress.probe_pred is None and self.s.probe_margin:
            progress.probe_pred = self._probe_pred if self._probe_pred is not None else (
                self.validate(), self.last_pred.tolist())[1]
        while progress.stage < len(progress.schedule) and not progress.done:
            n_unfrozen = progress.schedule[progress.stage]
            opt, sched, rates = self._optimizer(n_unfrozen)
            fresh = True
            if resume is not None:
                self._restore(resume["net"])
                if progress.epoch > 0 and resume["optimizer"] is not None:  # continue inside this stage
                    opt.load_state_dict(resume["optimizer"])
                    sched.load_state_dict(resume["scheduler"])
                    fresh = False
                resume_stage_top = resume["stage_best_net"]
                resume_stage_best = resume.get("stage_eligible_net", resume_stage_top)
                resume = None
            # two states per stage: the best eligible epoch (what may be kept) and the best epoch (where training
            # and the next stage go on from, as they always did)
            stage_best_state = self._snapshot() if fresh else resume_stage_best
            stage_top_state = stage_best_state if fresh else resume_stage_top
            if fresh:
                name = ("lora" if self.s.lora else f"unfreeze {n_unfrozen}" if n_unfrozen
                        else "head on augmented images")
                trainable = sum(p.numel() for g in opt.param_groups for p in g["params"])
                progress.stages.append({"stage": name, "unfrozen_groups": 0 if self.s.lora else n_unfrozen,
                                        "rates": rates, "trainable_params": trainable, "history": []})
                progress.stage_best, progress.stage_top, progress.bad_epochs = None, None, 0
            record = progress.stages[-1]
            label = (f"stage {progress.stage + 1}/{len(progress.schedule)}: "
                     + ("LoRA adapters and head trainable" if self.s.lora else
                        f"top {n_unfrozen} group(s) trainable"))
            with self.console.progress(label, self.s.stage_epochs - progress.epoch) as advance:
                while progress.epoch < self.s.stage_epochs and progress.bad_epochs < self.s.stage_patience:
                    t0 = time.perf_counter()
                    gen = _seed_epoch(self.s.seed, progress.stage, progress.epoch)
                    train_loss, train_acc = self._train_epoch(opt, sched, n_unfrozen, gen)
                    score = self.validate()
                    progress.epoch += 1
                    record["history"].append({"epoch": progress.epoch, "train_loss": train_loss,
                                              "train_acc": train_acc, "val_loss": score.val_loss,
                                              "val_acc": score.val_acc, "seconds": time.perf_counter() - t0})
                    prev = progress.stage_best
                    rejected = self._ineligible(score, progress)
                    if rejected:
                        record["history"][-1]["rejected"] = rejected
                    eligible = not rejected and score.beats(Score(prev["val_acc"], prev["val_loss"]) if prev
                                                            else None)
                    if eligible:
                        progress.stage_best = {"epoch": progress.epoch, **asdict(score),
                                               "pred": self.last_pred.tolist()}
                        stage_best_state = self._snapshot()
                    # patience counts epochs without any gain, so a stage whose first epochs are not eligible
                    # (a loss still above the probe's) trains as long as it would otherwise
                    top = progress.stage_top
                    if score.beats(Score(top["val_acc"], top["val_loss"]) if top else None):
                        progress.stage_top, progress.bad_epochs = asdict(score), 0
                        stage_top_state = stage_best_state if eligible else self._snapshot()
                    else:
                        progress.bad_epochs += 1
                    # forgetting is drift without any gain over the best model so far (the probe included)
                    gained = score.beats(Score(progress.best["val_acc"], progress.best["val_loss"]))
                    if self._check_drift(record, progress, n_unfrozen, gained, opt, sched):
                        self._restore(stage_top_state)
                    self._checkpoint(progress, opt, sched, best_state, stage_top_state, stage_best_state)
                    for callback in self.on_epoch_end:
                        callback(progress)
                    advance(1)
            self._restore(stage_best_state)
            if self._stage_wins(record, progress):
                progress.best = {"stage": record["stage"], "val_acc": record["val_acc"],
                                 "val_loss": record["val_loss"]}
                best_state = self._snapshot()
                progress.stale_stages = 0
            else:
                progress.stale_stages += 1
            self._restore(stage_top_state)  # the next stage starts where this one did best, kept or not
            # a small group (a single 1x1 convolution) may not move validation by itself: unfreezing goes on
            # through `unfreeze_patience` stages without improvement before it stops
            progress.done = progress.stale_stages > self.s.unfreeze_patience
            progress.stage += 1
            progress.epoch = 0
            self._checkpoint(progress, None, None, best_state, stage_top_state)
        self._restore(best_state)
        if self.s.wise and progress.best["stage"] != "linear probe" and not progress.done_wise:
            self._wise(progress)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        for r in progress.stages:
            r["kept"] = r["stage"] == progress.best["stage"]
        return progress

    def _stage_wins(self, record: dict[str, Any], progress: Progress) -> bool:
        """Record the stage's result; True when it is kept over the best so far (see the module docstring)."""
        sb = progress.stage_best
        if sb is None:  # no eligible epoch: report the most accurate one, and why it was not kept
            raw = max(record["history"], key=lambda r: (r["val_acc"], -r["val_loss"]), default=None)
            record.update({"best_epoch": raw["epoch"] if raw else 0, "val_acc": raw["val_acc"] if raw else 0.0,
                           "val_loss": raw["val_loss"] if raw else math.inf,
                           "rejected": raw.get("rejected", "no epoch trained") if raw else "no epoch trained"})
            wins = False
        else:
            record.update({"best_epoch": sb["epoch"], "val_acc": sb["val_acc"], "val_loss": sb["val_loss"]})
            best = Score(progress.best["val_acc"], progress.best["val_loss"])
            wins = Score(sb["val_acc"], sb["val_loss"]).beats(best)
            short = (self._short_of_margin(sb.get("pred"), progress)
                     if progress.best["stage"] == "linear probe" else None)
            if wins and short:
                record["rejected"], wins = short, False
        self.console.info(f"  stage {record['stage']}: val accuracy {record['val_acc']:.4f} "
                          f"(best so far {progress.best['val_acc']:.4f}, {progress.best['stage']})"
                          + (f"; not kept: {record['rejected']}" if record.get("rejected") else ""))
        return wins

    def _snapshot(self, copy: bool = True) -> dict[str, torch.Tensor]:
        """The weights a stage can change: everything, or with LoRA only the adapters and the head (the base
        weights stay the pretrained ones, and copying them at every improvement would cost what LoRA saves)."""
        state = self.net.state_dict()
        if self.s.lora:
            state = {k: v for k, v in state.items() if ADAPTER_MARK in k or k.startswith("head.")}
        return {k: v.detach().clone() for k, v in state.items()} if copy else state

    def _restore(self, state: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(state, strict=not self.s.lora)

    def _check_drift(self, record: dict[str, Any], progress: Progress, n_unfrozen: int, improved: bool,
                     opt: torch.optim.Optimizer, sched: Any) -> bool:
        """Measure drift for this epoch; on forgetting, report it and (with ``backoff``, once per stage) lower
        the stage's learning rates. Returns True when the stage's best weights must be restored."""
        if self.drift is None or n_unfrozen == 0:
            return False
        rows = record.setdefault("drift", [])
        rows.append({"stage": record["stage"], "epoch": progress.epoch, **self.drift.measure()})
        names = [g.name for g in self.drift.groups[len(self.drift.groups) - n_unfrozen:]]
        history = [r for stage in progress.stages for r in stage.get("drift", [])]  # across stages, oldest first
        finding = forgetting(history, names, improved)
        if finding is None:
            return False
        record.setdefault("findings", []).append(finding.to_dict())
        self.console.warn(f"{finding.message}")
        if not self.s.backoff or record.get("backoff"):
            return False
        factor = self.s.backoff_factor
        sched.base_lrs = [b * factor for b in sched.base_lrs]
        for group in opt.param_groups:
            group["lr"] *= factor
            group["initial_lr"] = group.get("initial_lr", group["lr"] / factor) * factor
        opt.state.clear()  # the moments belong to the trajectory being abandoned
        record["backoff"] = {"epoch": progress.epoch, "factor": factor}
        self.console.warn(f"  backing off: learning rates x{factor:g}, stage restarted from its best weights")
        return True

    @torch.no_grad()
    def _wise(self, progress: Progress) -> None:
        """WiSE-FT (Wortsman et al. 2022): the weights ``(1 - a) * start + a * fine_tuned`` for a few ``a``, the
        one best on validation kept (a = 1 is the fine-tuned model, already scored)."""
        assert self.initial_state is not None
        start = self.initial_state
        tuned = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

        def mixed(alpha: float) -> dict[str, torch.Tensor]:
            return {k: torch.lerp(start[k].to(v.device), v, alpha) if v.is_floating_point() else v
                    for k, v in tuned.items()}

        best = Score(progress.best["val_acc"], progress.best["val_loss"])
        tried, chosen = [{"alpha": 1.0, **asdict(best)}], 1.0
        for alpha in (0.25, 0.5, 0.75):
            self.net.load_state_dict(mixed(alpha))
            score = self.validate()
            tried.append({"alpha": alpha, **asdict(score)})
            if score.beats(best):
                best, chosen = score, alpha
        self.net.load_state_dict(tuned if chosen == 1.0 else mixed(chosen))
        record = next(r for r in progress.stages if r["stage"] == progress.best["stage"])
        record["wise"] = {"tried": tried, "alpha": chosen}
        progress.best |= {"val_acc": best.val_acc, "val_loss": best.val_loss, "wise_alpha": chosen}
        progress.done_wise = True
        self.console.info(f"  WiSE-FT: interpolation {chosen:g} kept (val accuracy {best.val_acc:.4f})")

    def _checkpoint(self, progress: Progress, opt: Any, sched: Any, best: dict[str, torch.Tensor],
                    stage_top: dict[str, torch.Tensor], stage_eligible: dict[str, torch.Tensor] | None = None) -> None:
        if self.checkpoint_dir is None:
            return
        extra = {} if stage_eligible is None or stage_eligible is stage_top else {"stage_eligible_net": stage_eligible}
        save_checkpoint(self.checkpoint_dir, extra | {
            "format": 1, "progress": asdict(progress), "net": self._snapshot(copy=False), "best_net": best,
            "stage_best_net": stage_top, "optimizer": opt.state_dict() if opt else None,
            "scheduler": sched.state_dict() if sched else None, "rng": torch.get_rng_state()})
