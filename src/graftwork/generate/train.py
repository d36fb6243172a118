"""Supervised fine-tuning of a causal LM on completion tokens, on ``accelerate``.

:class:`Accelerator` places the model and batches on the device, runs bf16 autocast on CUDA and accumulates
gradients; the learning-rate schedule comes from ``transformers.get_scheduler`` (linear decay after a short
warm-up). What is left here is what is specific to generation: packed batches (:mod:`.collate`), the loss over
completion tokens, and the per-epoch checks. After every epoch the trainer measures

* validation loss on the held-out completions,
* a generation metric on a fixed sample of validation prompts (greedy; exact match, then chrF),
* the loss on the general-text reference set (:mod:`.forgetting`),

keeps the best epoch by exact match on the sample (ties: lower validation loss), and writes a checkpoint
atomically (trainable weights, optimizer, schedule, random state), so ``--resume`` continues exactly where an
interrupted run stopped: on CPU, a resumed run ends with the same weights as an uninterrupted one (tested).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..console import SILENT, Console
from .collate import collate, epoch_batches, fixed_batches, token_loss
from .decode import generate_texts
from .encode import Encoded, Formatter
from .metrics import chrf, exact_match, loss_metrics

CHECKPOINT = "checkpoint"


@dataclass
class TrainSettings:
    """What the loop needs from the fit settings (see :class:`~graftwork.config.FitConfig` for their help)."""

    epochs: int = 3
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    accumulation: int = 1
    seed: int = 0
    mixed_precision: str = "no"  # "bf16" on CUDA
    cpu: bool = True
    row_tokens: int = 1024
    max_new_tokens: int = 64
    warmup_fraction: float = 0.05


@dataclass
class ValidationSet:
    """The held-out completions (for the loss) and a fixed sample of prompts with references (for generation)."""

    encoded: list[Encoded]
    contexts: list[list[dict[str, str]]]
    references: list[str]


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    trainable_params: int = 0
    seconds: float = 0.0


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))


@torch.no_grad()
def mean_loss(model: torch.nn.Module, encoded: list[Encoded], *, batch_size: int, pad_id: int, row_tokens: int,
              device: torch.device) -> dict[str, float]:
    """Mean next-token loss over the target tokens of ``encoded`` (and its perplexity)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in fixed_batches(encoded, batch_size):
        b = {k: v.to(device) for k, v in collate(batch, pad_id, row_tokens).items()}
        loss, n = token_loss(model, b)
        total, tokens = total + float(loss), tokens + n
    model.train(was_training)
    return loss_metrics(total, tokens)


class GenTrainer:
    """Trains ``model``'s trainable parameters on ``train``; see the module docstring for what each epoch does."""

    def __init__(self, model: torch.nn.Module, formatter: Formatter, train: list[Encoded], val: ValidationSet,
                 reference: list[Encoded], settings: TrainSettings, *, checkpoint_dir: Path | None = None,
                 console: Console = SILENT):
        self.model, self.formatter, self.train_set, self.val = model, formatter, train, val
        self.reference, self.s, self.checkpoint_dir, self.console = reference, settings, checkpoint_dir, console
        self.pad_id = formatter.tokenizer.pad_token_id

    def _setup(self) -> None:
        from accelerate import Accelerator
        from transformers import get_scheduler

        s = self.s
        self.accelerator = Accelerator(cpu=s.cpu, mixed_precision=s.mixed_precision,
                                       gradient_accumulation_steps=s.accumulation)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
        steps = s.epochs * -(-len(epoch_batches(self.train_set, s.batch_size, s.seed, 0)) // s.accumulation)
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=max(1, int(s.warmup_fraction * steps)),
                                  num_training_steps=steps)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(self.model, optimizer, scheduler)
        self.device = self.accelerator.device

    def evaluate_epoch(self) -> dict[str, Any]:
        """Validation loss, the generation sample's scores and the reference-text loss of the model as it is."""
        s, model = self.s, self.accelerator.unwrap_model(self.model)
        row: dict[str, Any] = {}
        with self.accelerator.autocast():
            if self.val.encoded:
                row["val"] = mean_loss(model, self.val.encoded, batch_size=s.batch_size, pad_id=self.pad_id,
                                       row_tokens=s.row_tokens, device=self.device)
            if self.val.contexts:
                preds = generate_texts(model, self.formatter, self.val.contexts, max_new_tokens=s.max_new_tokens)
                row["sample"] = {"exact_match": exact_match(preds, self.val.references),
                                 "chrf": round(chrf(preds, self.val.references), 4), "n": len(preds)}
            if self.reference:
                row["general_text"] = mean_loss(model, self.reference, batch_size=s.batch_size * 4,
                                                pad_id=self.pad_id, row_tokens=s.row_tokens, device=self.device)
        return row

    @staticmethod
    def score(row: dict[str, Any]) -> tuple[float, float]:
        """Selection score of an epoch: exact match on the sample, then lower validation loss."""
        em = row.get("sample", {}).get("exact_match", 0.0)
        return em, -row.get("val", {}).get("loss", 0.0)

    def _train_epoch(self, epoch: int) -> float:
        s, acc = self.s, self.accelerator
        self.model.train()
        total, tokens = 0.0, 0
        for batch in epoch_batches(self.train_set, s.batch_size, s.seed, epoch):
            b = {k: v.to(self.device) for k, v in collate(batch, self.pad_id, s.row_tokens).items()}
            with acc.accumulate(self.model), acc.autocast():
                loss_sum, n = token_loss(self.model, b)
                acc.backward(loss_sum / max(n, 1))
                if s.grad_clip and acc.sync_gradients:
                    acc.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], s.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
            total, tokens = total + float(loss_sum.detach()), tokens + n
        return total / max(tokens, 1)

    def run(self, start_state: dict[str, Any] | None = None) -> TrainResult:
        """Train for ``epochs``; ``start_state`` comes from :meth:`restore` when resuming."""
        self._setup()
        model = self.accelerator.unwrap_model(self.model)
        result = TrainResult(trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad))
        started = time.perf_counter()
        best_state = trainable_state(model)
        if start_state is None:
            result.history.append({"epoch": 0} | self.evaluate_epoch())
            first = 1
        else:
            result.history, result.best_epoch = start_state["history"], start_state["best_epoch"]
            best_state, first = start_state["best"], start_state["epoch"] + 1
            self._restore_optim(start_state)
        best = self.score(result.history[result.best_epoch])  # epoch 0: the model as it started
        for epoch in range(first, self.s.epochs + 1):
            t0 = time.perf_counter()
            train_loss = self._train_epoch(epoch)
            row = {"epoch": epoch, "train_loss": round(train_loss, 6)} | self.evaluate_epoch()
            row["seconds"] = round(time.perf_counter() - t0, 3)
            result.history.append(row)
            if self.score(row) > best:
                best, result.best_epoch, best_state = self.score(row), epoch, trainable_state(model)
            if self.checkpoint_dir is not None:
                self._checkpoint(epoch, result, best_state)
            self.console.info(_epoch_line(row))
        load_trainable(model, best_state)  # epoch 0 when no epoch beat the start (LoRA adapters still zero)
        result.seconds = round(time.perf_counter() - started, 3)
        self.model = model
        return result

    def _checkpoint(self, epoch: int, result: TrainResult, best: dict[str, torch.Tensor]) -> None:
        """Write the resumable state atomically: a new folder, then one rename over the old one."""
        root = self.checkpoint_dir
        assert root is not None
        staging = root / f".{CHECKPOINT}.writing"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model = self.accelerator.unwrap_model(self.model)
        save_file(trainable_state(model), str(staging / "trainable.safetensors"))
        save_file({k: v.contiguous() for k, v in best.items()}, str(staging / "best.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state()}, staging / "optimizer.pt")
        (staging / "trainer.json").write_text(json.dumps({"epoch": epoch, "best_epoch": result.best_epoch,
                                                          "history": result.history}), encoding="utf-8")
        final = root / CHECKPOINT
        if final.exists():
            old = root / f".{CHECKPOINT}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)

    @staticmethod
    def restore(model: torch.nn.Module, checkpoint_dir: Path) -> dict[str, Any] | None:
        """Load the last checkpoint's trainable weights into ``model``; the rest is returned for :meth:`run`."""
        folder = checkpoint_dir / CHECKPOINT
        if not (folder / "trainer.json").is_file():
            return None
        load_trainable(model, load_file(str(folder / "trainable.safetensors")))
        state = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
        state["best"] = load_file(str(folder / "best.safetensors"))
        state |= torch.load(folder / "optimizer.pt", weights_only=True)
        return state

    def _restore_optim(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])


def _epoch_line(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}"]
    if "val" in row:
        parts.append(f"val loss {row['val']['loss']:.4f}")
    if "sample" in row:
        parts.append(f"sample exact match {row['sample']['exact_match']:.3f} (chrF {row['sample']['chrf']:.1f}, "
                     f"n={row['sample']['n']})")
    if "general_text" in row:
        parts.append(f"general-text loss {row['general_text']['loss']:.4f}")
    return "; ".join(parts) + f" ({row['seconds']:.1f}s)"
