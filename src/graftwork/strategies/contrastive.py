"""Contrastive tuning of a text encoder on pairs of labelled examples: the body stage of SetFit.

SetFit (Tunstall et al. 2022) fine-tunes a sentence encoder so that texts of the same class embed close together
and texts of different classes apart, then fits a logistic regression on the new embeddings. With a handful of
texts per class this gives far more training signal than the texts alone: n texts make about n^2/2 pairs.
graftwork uses the same loss (sentence-transformers' ``CosineSimilarityLoss``: the squared error between the
cosine similarity of a pair's embeddings and 1 for the same class, 0 for different classes), the same optimiser
settings (AdamW at 2e-5, weight decay 0.01, 10 % linear warm-up then linear decay, one epoch, 16 pairs a batch)
and the same pairs (every same-class pair and every different-class pair, the rarer kind repeated to as many as
the other: SetFit's default "oversampling"). Two things differ, both for speed: a batch's pairs share their
texts, and each text of a batch is encoded once (SetFit encodes both sides of every pair); and the number of
pairs is capped at ``MAX_PAIRS`` (half of each kind, drawn at random), which binds from about 90 texts in 2
classes, 70 in many (SetFit's default trains 3,584 pairs on 64 texts in 8 classes, 14,336 on 128). A cap of
1,024 pairs cost 2.8 points of test accuracy against all 3,584 on 64 texts in 8 classes (one draw of a
development set); more pairs than SetFit's default on 16 texts (40 a text, the SetFit paper's recipe) moved
accuracy by 0, +1.9, +6.8 and -5.0 points on four draws: not adopted.

The head on the tuned encoder is SetFit's beside scikit-learn's default: logistic regressions with C=1 on the
embeddings scaled to unit length and on the raw embeddings, logits averaged (:func:`.head.fit_probe` with
``features="raw+normalised"``, see :mod:`graftwork.classify.fewshot_text`); its C is not cross-validated, since
the encoder was tuned on the very texts the folds would hold out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.base import Backbone

CONTRASTIVE = "contrastive"  # the candidate's name in a run's stages
LR = 2e-5
WEIGHT_DECAY = 0.01
WARMUP = 0.1
PAIR_BATCH = 16
MAX_PAIRS = 4096


@dataclass
class Pairs:
    """Pairs of example indices and their targets (1.0: same class, 0.0: different classes)."""

    left: np.ndarray
    right: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def make_pairs(labels: np.ndarray | list[int], seed: int, max_pairs: int = MAX_PAIRS) -> Pairs:
    """Every same-class pair and every different-class pair of ``labels``, the rarer kind repeated (cycled, in
    random order) to as many as the other, shuffled; at most ``max_pairs``, half of each kind."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    # one class, or one example per class: only one kind of pair exists
    kinds = [k for k in (np.flatnonzero(same), np.flatnonzero(~same)) if len(k)]
    each = min(max(len(k) for k in kinds), max_pairs // len(kinds)) if kinds else 0
    chosen = []
    for k in kinds:
        order = rng.permutation(k)
        chosen.append(order[:each] if len(order) >= each else np.resize(order, each))
    index = rng.permutation(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return Pairs(i[index], j[index], same[index].astype(np.float32))


def contrastive_tune(backbone: Backbone, items: list[str], labels: np.ndarray | list[int], *, seed: int,
                     device: torch.device | None = None, max_pairs: int = MAX_PAIRS,
                     lr: float = LR) -> dict[str, float]:
    """Tune every weight of ``backbone`` on pairs of ``items`` (see the module docstring); it ends in eval mode
    with gradients off. Returns the number of pairs, steps and the mean loss of the first and last tenth."""
    device = device or torch.device("cpu")
    pairs = make_pairs(labels, seed, max_pairs)
    steps = math.ceil(len(pairs) / PAIR_BATCH)
    torch.manual_seed(seed)
    backbone.to(device).train()
    params = [p for p in backbone.parameters()]
    for p in params:
        p.requires_grad_(True)
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]  # biases and LayerNorm weights, as sentence-transformers
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay,
                                                                               "weight_decay": 0.0}], lr=lr)
    warmup = math.ceil(WARMUP * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    prepared = [backbone.prepare(x) for x in items]
    losses = []
    for s in range(steps):
        sl = slice(s * PAIR_BATCH, (s + 1) * PAIR_BATCH)
        left, right = pairs.left[sl], pairs.right[sl]
        texts, where = np.unique(np.concatenate([left, right]), return_inverse=True)
        emb = backbone(backbone.batch_to(backbone.collate([prepared[t] for t in texts]), device))
        u, v = emb[torch.from_numpy(where[:len(left)])], emb[torch.from_numpy(where[len(left):])]
        loss = F.mse_loss(F.cosine_similarity(u, v), torch.from_numpy(pairs.target[sl]).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    backbone.eval()
    for p in params:
        p.requires_grad_(False)
    tenth = max(1, len(losses) // 10)
    return {"pairs": len(pairs), "steps": steps,
            "loss_first": float(np.mean(losses[:tenth])) if losses else 0.0,
            "loss_last": float(np.mean(losses[-tenth:])) if losses else 0.0}

