"""Classification as a :class:`graftwork.train.task.TrainingTask`: cross-entropy on labelled examples, scored by
validation accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..backbones.base import Backbone
from ..strategies.inputs import collate_for
from ..train.task import ValScore


class ClassificationTask:
    """Training examples and validation examples of ``(input, label index)``, for one backbone."""

    score_name = "val_acc"
    train_score_name = "train_acc"

    def __init__(self, backbone: Backbone, train: Dataset, val: Dataset, *, batch_size: int, workers: int = 0,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.0):
        self.backbone, self.train, self.val = backbone, train, val
        self.batch_size, self.workers = batch_size, workers
        self.class_weights, self.label_smoothing = class_weights, label_smoothing
        self._collate = collate_for(backbone)
        labels = getattr(val, "labels", None)
        if labels is None:
            labels = [val[i][1] for i in range(len(val))]  # type: ignore[arg-type]
        self.val_labels = np.asarray(labels, dtype=np.int64)

    def train_dataset(self) -> Dataset:
        return self.train

    def collate(self, items: list) -> Any:
        return self._collate(items)

    def _logits(self, net: nn.Module, x: Any, device: torch.device) -> torch.Tensor:
        return net(self.backbone.batch_to(x, device)).float()

    def loss(self, net: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int, int]:
        x, y = batch
        y = y.to(device)
        logits = self._logits(net, x, device)
        weight = torch.tensor(self.class_weights, dtype=torch.float32, device=device) if self.class_weights else None
        loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=self.label_smoothing)
        return loss, len(y), int((logits.argmax(1) == y).sum())

    @torch.no_grad()
    def validate(self, net: nn.Module, device: torch.device) -> ValScore:
        loader = DataLoader(self.val, batch_size=self.batch_size * 2, shuffle=False, collate_fn=self._collate,
                            num_workers=self.workers)
        correct, n, preds, losses = 0, 0, [], []
        for x, y in loader:
            logits = self._logits(net, x, device)
            y = y.to(device)
            losses.append(F.cross_entropy(logits.float(), y, reduction="none").cpu())
            correct += int((logits.argmax(1) == y).sum())
            preds.append(logits.argmax(1).cpu())
            n += len(y)
        pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
        each = torch.cat(losses).double().numpy() if losses else np.zeros(0)
        return ValScore(correct / max(n, 1), float(each.sum()) / max(n, 1), pred=pred, truth=self.val_labels,
                        losses=each)

    def probe_batch(self, n: int) -> Any:
        """The backbone inputs of the first ``n`` validation examples (the drift monitor's fixed batch)."""
        rows = [self.val[i] for i in range(min(n, len(self.val)))]  # type: ignore[arg-type]
        return self._collate(rows)[0] if len(rows) > 1 else None
