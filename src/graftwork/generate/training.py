"""Supervised fine-tuning of a causal LM on the one staged trainer (:class:`graftwork.train.StagedTrainer`).

What is specific to generation lives here; the loop, the optimizer and schedule, accelerate (devices, bf16
autocast on CUDA, gradient accumulation), best-epoch selection and the atomic checkpoint are the trainer's:

* :class:`GenerationTask` (a :class:`~graftwork.train.task.TrainingTask`): packed batches (:mod:`.collate`),
  the next-token loss over completion tokens only (its count is the number of target tokens, so the epoch's
  train loss is the mean over tokens), and the validation of every epoch: the loss on the held-out completions,
  their greedy exact match (:mod:`.score`: one forward pass, no generating; the score epochs are selected on,
  ties broken by the lower validation loss) and the loss on the general-text reference set (:mod:`.forgetting`);
* :class:`CausalLMStrategy`: one stage in which what the plan made trainable (the LoRA adapters, or every
  weight) trains at one rate; snapshots and checkpoints hold those weights only;
* callbacks that put the validation's details into each epoch row (``val``, ``general_text``: what
  ``metrics.json``, the report and the forgetting check read) and print the epoch's line.

Before training, the model as it starts is evaluated the same way: epoch 0, the first stage record
(``"base model"``). An epoch is kept only when it beats it, so with LoRA (adapters starting at zero) a run that
learnt nothing keeps the base model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..console import SILENT, Console
from ..strategies.base import Strategy
from ..train import (
    CHECKPOINT,
    BestStageSelection,
    Callback,
    Checkpointing,
    Progress,
    StagedTrainer,
    TrainSettings,
    ValScore,
    load_checkpoint,
)
from ..train.task import ListDataset
from .collate import collate, token_loss
from .encode import Encoded, Formatter
from .score import completion_scores

CHECKPOINT_DIR = "checkpoint"  # inside the fit's partial folder
BASE = "base model"  # the stage record of epoch 0: the model before any training
SCORE = "val_exact_match"


class GenerationTask:
    """The language model's side of training; see the module docstring. ``details`` holds the last
    validation's measurements (``val``, ``general_text``) for the epoch row."""

    score_name = SCORE
    train_score_name = None  # no per-token accuracy: the train loss says it
    drop_last = False  # every example trains every epoch (no BatchNorm to protect from a short last batch)

    def __init__(self, formatter: Formatter, train: list[Encoded], val: list[Encoded], reference: list[Encoded],
                 *, batch_size: int, row_tokens: int, stops: set[int]):
        self.formatter, self.train, self.val, self.reference = formatter, train, val, reference
        self.batch_size, self.row_tokens, self.stops = batch_size, row_tokens, stops
        self.pad_id: int = formatter.tokenizer.pad_token_id
        self.details: dict[str, Any] = {}

    @property
    def validated(self) -> bool:
        """Whether there is anything to validate on (without it, no epoch can be preferred to another)."""
        return bool(self.val)

    def train_dataset(self) -> ListDataset:
        return ListDataset(self.train)

    def collate(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        return collate(items, self.pad_id, self.row_tokens)

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
             ) -> tuple[torch.Tensor, int, int]:
        """Mean cross-entropy over the batch's target tokens, and their number."""
        loss_sum, tokens = token_loss(net, {k: v.to(device) for k, v in batch.items()})
        return loss_sum / max(tokens, 1), tokens, 0

    @torch.no_grad()
    def validate(self, net: nn.Module, device: torch.device) -> ValScore:
        """Exact match on the held-out answers (0 without any) and the held-out completions' loss (0 without)."""
        self.details = self.measure(net, device, general_text=True)
        val = self.details.get("val", {})
        return ValScore(float(val.get("exact_match", 0.0)), float(val.get("loss", 0.0)))

    @torch.no_grad()
    def measure(self, net: nn.Module, device: torch.device, *, general_text: bool) -> dict[str, Any]:
        """Validation loss and exact match and (``general_text``) the reference-text loss."""
        out: dict[str, Any] = {}
        if self.val:
            out["val"] = completion_scores(net, self.val, batch_size=self.batch_size, pad_id=self.pad_id,
                                           row_tokens=self.row_tokens, device=device, stops=self.stops)
        if general_text and self.reference:
            out["general_text"] = completion_scores(net, self.reference, batch_size=self.batch_size * 4,
                                                    pad_id=self.pad_id, row_tokens=self.row_tokens, device=device)
        return out

    def selection_score(self, net: nn.Module, device: torch.device) -> float:
        """One number for comparing versions of the trained model (the forgetting remedy): exact match on the
        validation answers first, then the lower validation loss."""
        val = self.measure(net, device, general_text=False).get("val", {})
        return val.get("exact_match", 0.0) * 1000 - val.get("loss", 0.0)


class CausalLMStrategy(Strategy):
    """One stage: the parameters the plan made trainable (``trained``: LoRA adapters, or every weight) at one
    learning rate. Snapshots and checkpoints hold only them (the frozen base weights never change)."""

    strict_restore = False

    def __init__(self, name: str, trained: list[str], *, lr: float, weight_decay: float):
        self.name, self.trained, self.lr, self.weight_decay = name, set(trained), lr, weight_decay

    def schedule(self, n_groups: int) -> list[int]:
        return [1]

    def param_groups(self, net: Any, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        params = []
        for name, p in net.named_parameters():
            p.requires_grad_(name in self.trained)
            if name in self.trained:
                params.append(p)
        label = "lora adapters" if self.name == "lora" else "every weight"
        return ([{"name": label, "params": params, "lr": self.lr, "weight_decay": self.weight_decay}],
                [{"group": label, "lr": self.lr, "params": sum(p.numel() for p in params)}])

    def train_mode(self, net: Any, n_unfrozen: int) -> None:
        net.train()

    def trained_state(self, net: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v for k, v in net.state_dict().items() if k in self.trained}

    def stage_name(self, n_unfrozen: int) -> str:
        return self.name

    def stage_label(self, n_unfrozen: int) -> str:
        return "LoRA adapters trainable" if self.name == "lora" else "every weight trainable"


def base_record(row: dict[str, Any], val: ValScore) -> dict[str, Any]:
    """The stage record of epoch 0 (the model before training): what every epoch is compared with."""
    return {"stage": BASE, "unfrozen_groups": 0, "history": [row], "trainable_params": 0, "best_epoch": 0,
            SCORE: val.score, "val_loss": val.loss}


class EpochDetails(Callback):
    """Puts the validation's details into the epoch row (before the other callbacks read it); without
    validation data, drops the row's score and loss, which would be placeholders."""

    def __init__(self, task: GenerationTask):
        self.task = task

    def on_epoch_end(self, trainer: Any, state: Progress, row: dict[str, Any]) -> None:
        row |= self.task.details
        if not self.task.validated:
            row.pop("val_loss", None)
            row.pop(SCORE, None)


class EpochLine(Callback):
    """Prints the epoch's line (after the checkpoint is written: what is printed is what a resume continues)."""

    def __init__(self, console: Console = SILENT):
        self.console = console

    def on_epoch_end(self, trainer: Any, state: Progress, row: dict[str, Any]) -> None:
        self.console.info(epoch_line(row))


class BaseRow(Callback):
    """Sends epoch 0 (the base model's row) to the caller's callbacks as the first epoch row, so that tracked
    curves start where training did. Comes after them in the trainer's callbacks; a resumed fit sent it already."""

    def __init__(self, to: list[Callback], *, fresh: bool):
        self.to, self.fresh = to, fresh

    def on_fit_start(self, trainer: Any, state: Progress) -> None:
        if self.fresh and state.stages and state.stages[0]["stage"] == BASE:
            row = state.stages[0]["history"][0]
            for cb in self.to:
                cb.on_epoch_end(trainer, state, row)


def epoch_line(row: dict[str, Any]) -> str:
    """``epoch N: train loss ...; val loss ...; ...`` (epoch 0, before training, has no train loss)."""
    parts = [f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}" if "train_loss" in row
             else f"epoch {row['epoch']} (before training)"]
    if "val" in row:
        parts.append(f"val loss {row['val']['loss']:.4f}")
        if "exact_match" in row["val"]:
            parts.append(f"val exact match {row['val']['exact_match']:.3f} (n={row['val']['n']})")
    if "general_text" in row:
        parts.append(f"general-text loss {row['general_text']['loss']:.4f}")
    return "; ".join(parts) + (f" ({row['seconds']:.1f}s)" if "seconds" in row else "")


@dataclass
class Trained:
    """What training left: every epoch row (epoch 0, the base model, first), the kept epoch, the time taken."""

    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float


def train_model(model: nn.Module, task: GenerationTask, *, strategy: str, lr: float, weight_decay: float,
                settings: TrainSettings, partial: Path | None, resume: bool, console: Console = SILENT,
                callbacks: list[Callback] | None = None) -> tuple[Trained, StagedTrainer]:
    """Train ``model``'s trainable parameters (those the plan made trainable) for one stage of
    ``settings.stage_epochs`` epochs on the staged trainer; the model ends with the kept epoch's weights.

    With ``partial``, a checkpoint is written there (atomically) after every epoch; ``resume`` continues from it
    (exactly, on CPU) when there is one. ``callbacks`` (tracking, ...) see every epoch row, epoch 0 included."""
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    plan_strategy = CausalLMStrategy(strategy, trained, lr=lr, weight_decay=weight_decay)
    trainer = StagedTrainer(model, task, plan_strategy, settings, console=console)  # type: ignore[arg-type]
    folder = partial / CHECKPOINT_DIR if partial is not None else None
    checkpoint = load_checkpoint(folder) if resume and folder is not None and (folder / CHECKPOINT).is_file() \
        else None
    extra = list(callbacks or [])
    trainer.callbacks = [EpochDetails(task), *([BestStageSelection(console=console)] if task.validated else []),
                         *([Checkpointing(folder)] if folder is not None else []), EpochLine(console), *extra,
                         BaseRow(extra, fresh=checkpoint is None)]
    if checkpoint is not None:
        progress = Progress(**checkpoint["progress"])
        console.info(f"resuming after epoch {sum(len(s['history']) for s in progress.stages[1:])}")
    else:
        val = trainer.validate()
        row = ({"epoch": 0, "val_loss": val.loss, SCORE: val.score} if task.validated else {"epoch": 0}) | task.details
        console.info(epoch_line(row))
        progress = Progress(schedule=plan_strategy.schedule(1), stages=[base_record(row, val)],
                            best={"stage": BASE, SCORE: val.score, "val_loss": val.loss})
    started = time.perf_counter()
    progress = trainer.fit(progress, checkpoint)
    history = [r for s in progress.stages for r in s["history"]]
    if not task.validated:  # nothing to choose by: the last epoch is kept (the trainer left its weights)
        for s in progress.stages:
            s["kept"] = s is progress.stages[-1]
        best_epoch = history[-1]["epoch"]
    else:
        kept = next(s for s in progress.stages if s.get("kept"))
        best_epoch = int(kept["best_epoch"])
    return Trained(history, best_epoch, round(time.perf_counter() - started, 3)), trainer
