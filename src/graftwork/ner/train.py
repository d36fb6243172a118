"""Training a token classifier in stages: NER's linear probe on cached token states, then the fine-tuning stages
on the staged trainer (:class:`graftwork.train.StagedTrainer`, with the callbacks every task uses).

**The linear probe**: the tag layer trained on cached token states of the frozen encoder.

The encoder's token states are computed once; the head (a linear layer per word) is trained on them for up to
``HEAD_EPOCHS`` epochs with AdamW, linear warm-up and cosine decay, keeping the epoch best on validation entity F1
(ties: lower loss) and stopping after ``HEAD_PATIENCE`` epochs without a better one. This is all of ``frozen``,
and the warm-up of ``gradual``, ``full`` and ``lora`` (a random head's gradients would otherwise disturb the
pretrained layers first: LP-FT, Kumar et al. 2022).

The probe is hand-written rather than run on the staged trainer because it trains on cached tensors, not on the
encoder: an epoch is a few matrix products, a whole stage a second. Its record has the shape of any stage record
(``stage``, ``unfrozen_groups``, ``history``, ``val_f1``, ``val_loss``, ``best_epoch``, ``trainable_params``).

**The fine-tuning stages** (``gradual``, ``full``, ``lora``): the strategy's schedule on
:class:`~graftwork.train.StagedTrainer` with :class:`~.task.NerTask`, scored by validation entity F1, with best-stage
selection, early stopping, unfreezing patience, drift monitoring (and back-off under ``strategy auto``), L2-SP,
WiSE-FT and checkpointing as callbacks, exactly as for classification.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_cosine_schedule_with_warmup

from ..config import FitConfig
from ..console import SILENT, Console
from ..strategies.drift import PROBE_BATCH
from ..strategies.freezing import param_groups
from ..train import Callback, Progress, Score, StagedTrainer
from ..train.standard import standard_callbacks, starting_progress
from .task import NerTask

HEAD_EPOCHS = 100  # the head stage is cheap (a linear layer on cached states): it may run long...
HEAD_PATIENCE = 10  # ...and stops after this many epochs without a better validation score
HEAD_BATCH_WORDS = 256
WARMUP_FRACTION = 0.1
PROBE = "linear probe"  # the name of the first stage, as in every task (the trainer's selection compares with it)


def _cached_states(task: NerTask, device: torch.device,
                   batch_size: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Frozen token states of the training words (with their tag ids) and of each validation sentence."""
    net = task.net
    net.to(device).eval()
    states = net.per_word([s.tokens for s in task.train], net.states, batch_size=batch_size, device=device)
    val = net.per_word([s.tokens for s in task.val], net.states, batch_size=batch_size,
                       device=device) if task.val else []
    x = torch.from_numpy(np.concatenate(states)).float()
    y = torch.tensor([task.index[t] for s in task.train for t in s.tags])
    keep = x.abs().sum(1) > 0  # words that produced no word piece have no state
    return x[keep].to(device), y[keep].to(device), [torch.from_numpy(v).to(device) for v in val]


def head_stage(task: NerTask, *, lr: float, weight_decay: float, seed: int, device: torch.device,
               batch_size: int, autocast: Any = None) -> dict[str, Any]:
    """Train the head on standardised cached states, keep its best epoch on validation, then fold the
    standardisation into its weights (``W / sd``, ``b - W mu / sd``), so that the saved head takes raw states.

    Standardising lets one learning rate work whatever the encoder's state scale (as the classification
    probe does): on MiniLM states (bench/ner_synthetic.py), 30 epochs at lr 1e-3 reached validation entity
    F1 0.66 without it and 0.83 with it. ``autocast``: a context for the encoder's forward passes (bf16 on CUDA).
    """
    t0 = time.perf_counter()
    with autocast if autocast is not None else torch.autocast("cpu", enabled=False):
        x, y, val = _cached_states(task, device, batch_size * 2)
    extract_s = time.perf_counter() - t0
    # a floor on the scale: MiniLM has a state dimension that is constant over the training words, and 1/sd
    # there would turn the slightest change of it during fine-tuning into exploding logits
    mu = x.mean(0)
    sd = x.std(0).clamp_min(max(float(x.std(0).median()) * 0.1, 1e-6))
    history, best = _train_head(task, (x - mu) / sd, y, [(v - mu) / sd for v in val], lr=lr,
                                weight_decay=weight_decay, seed=seed)
    head = task.net.head
    with torch.no_grad():
        head.fc.weight.div_(sd)
        head.fc.bias.sub_(head.fc.weight @ mu)
    record: dict[str, Any] = {"stage": PROBE, "unfrozen_groups": 0, "history": history,
                              "trainable_params": sum(p.numel() for p in head.parameters()),
                              "feature_seconds": round(extract_s, 3), "seconds": round(time.perf_counter() - t0, 3)}
    if best is not None:
        top = max(range(len(history)), key=lambda k: (history[k]["val_f1"], -history[k]["val_loss"]))
        record |= {"val_f1": best.score, "val_loss": best.loss, "best_epoch": top + 1}
    return record


def _train_head(task: NerTask, x: torch.Tensor, y: torch.Tensor, val: list[torch.Tensor], *, lr: float,
                weight_decay: float, seed: int) -> tuple[list[dict[str, Any]], Score | None]:
    head = task.net.head
    for p in task.net.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(param_groups(head, [], [], lr, weight_decay))
    steps = math.ceil(len(x) / HEAD_BATCH_WORDS)
    total_steps = HEAD_EPOCHS * steps
    sched = get_cosine_schedule_with_warmup(opt, max(1, round(total_steps * WARMUP_FRACTION)), total_steps)
    gen = torch.Generator().manual_seed(seed)
    weight = torch.tensor(task.weights, dtype=torch.float32, device=x.device) if task.weights else None
    best: Score | None = None
    best_state, history, bad = copy.deepcopy(head.state_dict()), [], 0
    for epoch in range(1, HEAD_EPOCHS + 1):
        head.train()
        order = torch.randperm(len(x), generator=gen).to(x.device)
        total = 0.0
        for b in range(steps):
            i = order[b * HEAD_BATCH_WORDS:(b + 1) * HEAD_BATCH_WORDS]
            loss = F.cross_entropy(head(x[i]), y[i], weight=weight, label_smoothing=task.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(i)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(len(x), 1)}
        if val:
            head.eval()
            with torch.no_grad():
                val_score = task.score([head(v).float().cpu().numpy() for v in val])
            row |= {"val_f1": val_score.score, "val_loss": val_score.loss}
            score = Score(val_score.score, val_score.loss)
            if score.beats(best):
                best, best_state, bad = score, copy.deepcopy(head.state_dict()), 0
            else:
                bad += 1
        history.append(row)
        if bad >= HEAD_PATIENCE:
            break
    if val:
        head.load_state_dict(best_state)
    return history, best



def fine_tune(trainer: StagedTrainer, schedule: list[int], probe: dict[str, Any], cfg: FitConfig, *,
              partial: Path | None, resume: dict[str, Any] | None, console: Console = SILENT,
              callbacks: list[Callback] | None = None) -> Progress:
    """Run the fine-tuning ``schedule`` after the linear probe (its stage record ``probe``), or continue it from the
    checkpoint ``resume``; the network ends with the kept stage's weights (the probe's, if no stage beats it).

    ``trainer`` holds the network as the probe left it (pretrained encoder, trained tag layer): the drift
    monitor, L2-SP and WiSE-FT take their reference from it, also when resuming (the checkpoint is restored
    after)."""
    task: NerTask = trainer.task  # type: ignore[assignment]
    trainer.callbacks = standard_callbacks(
        trainer, cfg, modality="text", probe_batch=task.probe_batch(PROBE_BATCH),
        unfreeze_patience=cfg.unfreeze_patience, partial=partial, console=console, extra=callbacks or [])
    progress = starting_progress(resume, lambda: Progress(
        schedule=schedule, best={"stage": PROBE, "val_f1": probe["val_f1"], "val_loss": probe["val_loss"]},
        stages=[probe]), console)
    progress = trainer.fit(progress, resume)
    console.info(f"kept: {progress.best['stage']} (val entity F1 {progress.best['val_f1']:.4f})")
    return progress


def rescore_probe(trainer: StagedTrainer, probe: dict[str, Any]) -> None:
    """Score the probe through the full network, as the stages are scored, so that "a stage beats the probe"
    compares like with like (its own score came from the standardised cached states)."""
    val = trainer.validate()
    probe |= {"val_f1": val.score, "val_loss": val.loss}
