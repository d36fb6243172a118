"""Training a token classifier in stages, the way classification is trained (see
:mod:`graftwork.strategies.finetune` for the recipe and its references):

1. **head stage**: the encoder frozen; its token states are computed once, and the head (a linear layer per
   word) is trained on them for up to ``HEAD_EPOCHS`` epochs, keeping the epoch best on validation. This is all
   of ``frozen``, and the warm-up of ``gradual`` and ``full`` (a random head's gradients would otherwise disturb
   the pretrained layers first);
2. **fine-tuning stages**: the top quarter, half, all of the layer groups unfrozen (``gradual``; all of them
   for ``full``), each group at its own rate (``lr / lr_ratio`` for the top one, ``x lr_decay`` per group
   below), AdamW with linear warm-up and cosine decay, gradient clipping, early stopping after
   ``stage_patience`` epochs without improvement; unfreezing stops after ``unfreeze_patience`` stages that did
   not beat the best.

Every stage is scored on validation by entity F1 (ties: lower loss), and the best stage's weights are kept, so
fine-tuning never ends worse on validation than the frozen head.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import FitConfig
from ..console import SILENT, Console
from ..strategies.finetune import warmup_cosine
from ..strategies.freezing import discriminative_rates, param_groups, set_train_mode, unfreeze_top
from ..strategies.lora import lora_param_groups, set_lora_train_mode
from .align import IGNORE, chunk_sentences, encode
from .data import Sentence
from .decode import constraints, viterbi
from .metrics import span_f1
from .model import TokenClassifier, log_softmax

HEAD_EPOCHS = 100  # the head stage is cheap (a linear layer on cached states): it may run long...
HEAD_PATIENCE = 10  # ...and stops after this many epochs without a better validation score
HEAD_BATCH_WORDS = 256
WARMUP_FRACTION = 0.1


@dataclass
class Score:
    f1: float
    loss: float

    def beats(self, other: Score | None) -> bool:
        if other is None:
            return True
        if abs(self.f1 - other.f1) > 1e-9:
            return self.f1 > other.f1
        return self.loss < other.loss - 1e-9


def _schedule(opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total_steps, WARMUP_FRACTION))


class NerTrainer:
    """Runs the head stage and the fine-tuning stages on one :class:`TokenClassifier`."""

    def __init__(self, net: TokenClassifier, tags: list[str], train: list[Sentence], val: list[Sentence],
                 cfg: FitConfig, *, device: torch.device, console: Console = SILENT, lora: bool = False):
        self.net, self.tags, self.train, self.val, self.cfg = net, tags, train, val, cfg
        self.lora = lora  # the backbone holds LoRA adapters: stages train them and the head only
        self.epochs, self.patience = cfg.stage_length("text")
        self.device, self.console = device, console
        self.index = {t: i for i, t in enumerate(tags)}
        self.start, self.trans = constraints(tags)
        self.bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16")

    # -- scoring -------------------------------------------------------------------------------------------
    def _score(self, logits: list[np.ndarray]) -> Score:
        gold = [s.tags for s in self.val]
        logps = [log_softmax(x) for x in logits]
        pred = [[self.tags[i] for i in viterbi(lp, self.start, self.trans)] for lp in logps]
        nll = np.concatenate([-lp[np.arange(len(g)), [self.index[t] for t in g]] for lp, g in zip(logps, gold,
                                                                                                  strict=True)])
        return Score(span_f1(gold, pred), float(nll.mean()))

    def validate(self) -> Score:
        self.net.eval()
        with self._autocast():
            logits = self.net.per_word([s.tokens for s in self.val], self.net, batch_size=self.cfg.batch_size * 2,
                                       device=self.device)
        return self._score(logits)

    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else torch.autocast("cpu", enabled=False)

    # -- stage 0: the head on cached token states ------------------------------------------------------------
    def _cached_states(self) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Frozen token states of the training words (with their tag ids) and of each validation sentence."""
        self.net.to(self.device).eval()
        bs = self.cfg.batch_size * 2
        with self._autocast():
            states = self.net.per_word([s.tokens for s in self.train], self.net.states, batch_size=bs,
                                       device=self.device)
            val = self.net.per_word([s.tokens for s in self.val], self.net.states, batch_size=bs,
                                    device=self.device) if self.val else []
        x = torch.from_numpy(np.concatenate(states)).float()
        y = torch.tensor([self.index[t] for s in self.train for t in s.tags])
        keep = x.abs().sum(1) > 0  # words that produced no word piece have no state
        return x[keep].to(self.device), y[keep].to(self.device), [torch.from_numpy(v).to(self.device) for v in val]

    def head_stage(self) -> dict[str, Any]:
        """Train the head on standardised cached states, keep its best epoch on validation, then fold the
        standardisation into its weights (``W / sd``, ``b - W mu / sd``), so that the saved head takes raw states.

        Standardising lets one learning rate work whatever the encoder's state scale (as the classification
        probe does): on MiniLM states (bench/ner_synthetic.py), 30 epochs at lr 1e-3 reached validation entity
        F1 0.66 without it and 0.83 with it.
        """
        t0 = time.perf_counter()
        x, y, val = self._cached_states()
        extract_s = time.perf_counter() - t0
        # a floor on the scale: MiniLM has a state dimension that is constant over the training words, and 1/sd
        # there would turn the slightest change of it during fine-tuning into exploding logits
        mu = x.mean(0)
        sd = x.std(0).clamp_min(max(float(x.std(0).median()) * 0.1, 1e-6))
        history, best = self._train_head((x - mu) / sd, y, [(v - mu) / sd for v in val])
        with torch.no_grad():
            fc = self.net.head.fc
            fc.weight.div_(sd)
            fc.bias.sub_(fc.weight @ mu)
        record = {"stage": "head (frozen encoder)", "unfrozen_groups": 0, "history": history,
                  "trainable_params": sum(p.numel() for p in self.net.head.parameters()),
                  "feature_seconds": round(extract_s, 3), "seconds": round(time.perf_counter() - t0, 3)}
        if best is not None:
            record |= {"val_f1": best.f1, "val_loss": best.loss,
                       "best_epoch": max(range(len(history)), key=lambda k: (history[k]["val_f1"],
                                                                             -history[k]["val_loss"])) + 1}
        return record

    def _train_head(self, x: torch.Tensor, y: torch.Tensor,
                    val: list[torch.Tensor]) -> tuple[list[dict[str, Any]], Score | None]:
        head = self.net.head
        for p in self.net.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW(param_groups(head, [], [], self.cfg.lr, self.cfg.weight_decay))
        steps = math.ceil(len(x) / HEAD_BATCH_WORDS)
        sched = _schedule(opt, HEAD_EPOCHS * steps)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        best: Score | None = None
        best_state, history, bad = copy.deepcopy(head.state_dict()), [], 0
        for epoch in range(1, HEAD_EPOCHS + 1):
            head.train()
            order = torch.randperm(len(x), generator=gen).to(self.device)
            total = 0.0
            for b in range(steps):
                i = order[b * HEAD_BATCH_WORDS:(b + 1) * HEAD_BATCH_WORDS]
                loss = F.cross_entropy(head(x[i]), y[i], label_smoothing=self.cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(i)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(len(x), 1)}
            if val:
                head.eval()
                with torch.no_grad():
                    score = self._score([head(v).float().cpu().numpy() for v in val])
                row |= {"val_f1": score.f1, "val_loss": score.loss}
                if score.beats(best):
                    best, best_state, bad = score, copy.deepcopy(head.state_dict()), 0
                else:
                    bad += 1
            history.append(row)
            if bad >= HEAD_PATIENCE:
                break
        head.load_state_dict(best_state if val else head.state_dict())
        return history, best

    # -- fine-tuning stages -----------------------------------------------------------------------------------
    def _trainable(self, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The one place that decides what trains in a stage (a parameter-efficient stage, e.g. LoRA adapters,
        would be set up here): the head and the top ``n_unfrozen`` layer groups, with discriminative rates."""
        if self.lora:  # LoRA: the adapters (already injected into the backbone) and the head, at the head's rate
            return lora_param_groups(self.net.backbone, self.net.head, self.cfg.lr, self.cfg.weight_decay)
        unfrozen = unfreeze_top(self.net.backbone, n_unfrozen)
        for p in self.net.head.parameters():
            p.requires_grad_(True)
        rates = discriminative_rates(unfrozen, self.cfg.lr, self.cfg.lr_ratio, self.cfg.lr_decay)
        groups = param_groups(self.net.head, unfrozen, rates, self.cfg.lr, self.cfg.weight_decay)
        return groups, [r.to_dict() for r in rates]

    def _rows(self) -> list[tuple[list[str], list[int]]]:
        chunks = chunk_sentences(self.net.tokenizer, [s.tokens for s in self.train], self.net.backbone.max_length)
        return [(self.train[c.sentence].tokens[c.start:c.end],
                 [self.index[t] for t in self.train[c.sentence].tags[c.start:c.end]]) for c in chunks]

    def fine_tune_stage(self, n_unfrozen: int, stage: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Train one stage; returns its record and its best weights (the network is left holding them)."""
        t0 = time.perf_counter()
        groups, rates = self._trainable(n_unfrozen)
        opt = torch.optim.AdamW(groups)
        rows = self._rows()
        bs = self.cfg.batch_size
        steps = math.ceil(len(rows) / bs)
        sched = _schedule(opt, self.epochs * steps)
        params = [p for g in groups for p in g["params"]]
        best: Score | None = None
        best_state: dict[str, torch.Tensor] = {}
        history, bad = [], 0
        for epoch in range(1, self.epochs + 1):
            seed = (self.cfg.seed * 1_000_003 + stage * 10_007 + epoch) % (2**63)
            torch.manual_seed(seed)
            order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
            if self.lora:
                set_lora_train_mode(self.net)
            else:
                set_train_mode(self.net, self.net.backbone, n_unfrozen)
            total, n = 0.0, 0
            for b in range(steps):
                batch = [rows[i] for i in order[b * bs:(b + 1) * bs]]
                enc = encode(self.net.tokenizer, [w for w, _ in batch], self.net.backbone.max_length,
                             [t for _, t in batch])
                labels = enc.labels.to(self.device)
                with self._autocast():
                    logits = self.net({k: v.to(self.device) for k, v in enc.inputs.items()}).float()
                loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE,
                                       label_smoothing=self.cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
                opt.step()
                sched.step()
                words = int((labels != IGNORE).sum())
                total, n = total + float(loss.detach()) * words, n + words
            score = self.validate()
            history.append({"epoch": epoch, "train_loss": total / max(n, 1), "val_f1": score.f1,
                            "val_loss": score.loss, "seconds": round(time.perf_counter() - t0, 3)})
            if score.beats(best):
                best, bad = score, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
            if bad >= self.patience:
                break
        assert best is not None
        self.net.load_state_dict(best_state)
        record = {"stage": "lora" if self.lora else f"unfreeze {n_unfrozen}",
                  "unfrozen_groups": 0 if self.lora else n_unfrozen, "rates": rates,
                  "history": history, "val_f1": best.f1, "val_loss": best.loss,
                  "best_epoch": 1 + max(range(len(history)), key=lambda k: (history[k]["val_f1"],
                                                                            -history[k]["val_loss"])),
                  "trainable_params": sum(p.numel() for p in params), "seconds": round(time.perf_counter() - t0, 3)}
        return record, best_state

    def run(self, schedule: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The head stage, then ``schedule`` (numbers of unfrozen groups); the network ends with the best
        stage's weights. Returns the stage records and the kept one."""
        stages = [self.head_stage()]
        self._log(stages[0], stages[0])
        if not schedule or not self.val:
            return self._finish(stages, stages[0])
        best = stages[0]
        best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        stale = 0
        for i, n_unfrozen in enumerate(schedule, start=1):
            record, state = self.fine_tune_stage(n_unfrozen, i)
            stages.append(record)
            if Score(record["val_f1"], record["val_loss"]).beats(Score(best["val_f1"], best["val_loss"])):
                best, best_state, stale = record, state, 0
            else:
                stale += 1
            self._log(record, best)
            if stale > self.cfg.unfreeze_patience:
                break
        self.net.load_state_dict(best_state)
        return self._finish(stages, best)

    def _log(self, record: dict[str, Any], best: dict[str, Any]) -> None:
        if "val_f1" in record:
            self.console.info(f"  {record['stage']}: val entity F1 {record['val_f1']:.4f} after "
                              f"{len(record['history'])} epoch(s), {record['seconds']:.1f}s (best so far: "
                              f"{best['stage']}, {best['val_f1']:.4f})")

    def _finish(self, stages: list[dict[str, Any]], best: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                                    dict[str, Any]]:
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        for r in stages:
            r["kept"] = r is best
        return stages, best
