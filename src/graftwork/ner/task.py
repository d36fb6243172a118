"""NER as a :class:`~graftwork.train.task.TrainingTask`: what the staged trainer needs to fine-tune a token
classifier (its training rows, its token-level loss, and entity F1 on validation).

* training rows are chunks of whole words with their tag ids (a sentence longer than the encoder's window is cut
  into chunks, so no word is dropped by truncation);
* the loss is the cross-entropy of each word's first word piece (the other pieces are ignored), optionally with
  label smoothing and inverse-frequency tag weights;
* validation decodes every sentence with Viterbi under IOB2 constraints and scores exact entity spans (micro F1,
  ``val_f1``); ties are broken by the mean negative log-likelihood of the gold tags.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..strategies.plan import class_weight_vector
from ..train.task import ListDataset, ValScore
from .align import IGNORE, chunk_sentences, encode
from .data import Sentence
from .decode import constraints, viterbi
from .metrics import span_f1
from .model import TokenClassifier, log_softmax

Row = tuple[list[str], list[int]]


def tag_weights(tags: list[str], train: list[Sentence]) -> list[float]:
    """Inverse-frequency weight of each tag over the training words (all ones for balanced tags)."""
    counts = Counter(t for s in train for t in s.tags)
    return class_weight_vector(tags, dict(counts))


class NerTask:
    """The token classifier's side of training (see the module docstring); ``net`` is the unwrapped
    :class:`TokenClassifier` (its tokenizer and window), the trainer may pass a wrapped copy to :meth:`loss`
    and :meth:`validate`."""

    score_name = "val_f1"
    train_score_name = "train_token_acc"  # words tagged right in the training batches

    def __init__(self, net: TokenClassifier, tags: list[str], train: list[Sentence], val: list[Sentence], *,
                 label_smoothing: float = 0.0, weights: list[float] | None = None, batch_size: int = 32):
        self.net, self.tags, self.train, self.val = net, list(tags), train, val
        self.label_smoothing = label_smoothing
        self.weights = weights
        self.batch_size = batch_size
        self.index = {t: i for i, t in enumerate(self.tags)}
        self.start, self.trans = constraints(self.tags)
        self._rows: list[Row] | None = None

    # -- training ------------------------------------------------------------------------------------------
    def train_dataset(self) -> ListDataset:
        if self._rows is None:
            chunks = chunk_sentences(self.net.tokenizer, [s.tokens for s in self.train], self.net.backbone.max_length)
            self._rows = [(self.train[c.sentence].tokens[c.start:c.end],
                           [self.index[t] for t in self.train[c.sentence].tags[c.start:c.end]]) for c in chunks]
        return ListDataset(self._rows)  # (words, tag ids) of each chunk of each training sentence

    def collate(self, items: list[Row]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        enc = encode(self.net.tokenizer, [w for w, _ in items], self.net.backbone.max_length, [t for _, t in items])
        return enc.inputs, enc.labels

    def loss(self, net: nn.Module, batch: tuple[dict[str, torch.Tensor], torch.Tensor],
             device: torch.device) -> tuple[torch.Tensor, int, int]:
        """Mean cross-entropy over the words of the batch (their first pieces), words, words tagged right."""
        inputs, labels = batch
        labels = labels.to(device)
        logits = net({k: v.to(device) for k, v in inputs.items()}).float()
        weight = torch.tensor(self.weights, dtype=torch.float32, device=device) if self.weights else None
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=weight, ignore_index=IGNORE,
                               label_smoothing=self.label_smoothing)
        scored = labels != IGNORE
        correct = int(((logits.argmax(-1) == labels) & scored).sum())
        return loss, int(scored.sum()), correct

    # -- validation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, net: nn.Module, device: torch.device) -> ValScore:
        """Entity F1 and mean gold-tag NLL on the whole validation set."""
        net.eval()
        logits = self.net.per_word([s.tokens for s in self.val], net, batch_size=self.batch_size * 2, device=device)
        return self.score(logits)

    def score(self, logits: list[np.ndarray]) -> ValScore:
        """Score per-word logits of the validation sentences (one ``[words, tags]`` array per sentence)."""
        gold = [s.tags for s in self.val]
        logps = [log_softmax(x) for x in logits]
        pred = [[self.tags[i] for i in viterbi(lp, self.start, self.trans)] for lp in logps]
        nll = [-lp[np.arange(len(g)), [self.index[t] for t in g]] for lp, g in zip(logps, gold, strict=True)]
        return ValScore(span_f1(gold, pred), float(np.concatenate(nll).mean()) if nll else 0.0)

    def probe_batch(self, n: int) -> dict[str, torch.Tensor] | None:
        """Encoder inputs of the first ``n`` validation sentences (cut to the window): the fixed batch on which
        drift is measured; None with fewer than 2 (nothing to compare representations on)."""
        rows = [s.tokens for s in self.val[:n]]
        return encode(self.net.tokenizer, rows, self.net.backbone.max_length).inputs if len(rows) > 1 else None

    def describe(self) -> dict[str, Any]:
        return {"score": "entity F1 (exact spans, micro), Viterbi decoding under IOB2 constraints",
                "tag_weights": self.weights}
