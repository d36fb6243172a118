"""The new task head and its training on cached features."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..console import SILENT, Console


class LinearHead(nn.Module):
    """Standardise features, then one linear layer.

    Standardising makes one learning rate and weight decay work across backbones whose feature scales differ by
    orders of magnitude (a CNN's post-ReLU averages vs a sentence encoder's mean-pooled states). It is a
    BatchNorm without affine parameters (as in fastai's heads): for the linear probe its statistics are those of
    the training features, fixed; while the backbone is fine-tuned it normalises with batch statistics, so the
    head is not thrown off when the features drift (with fixed statistics, a randomly initialised backbone's tiny
    feature spread turns its first updates into exploding logits).
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        # eps far below any real feature variance: random-init backbones have spreads around 1e-3
        self.norm = nn.BatchNorm1d(in_features, affine=False, eps=1e-10)
        self.fc = nn.Linear(in_features, num_classes)

    def set_normalization(self, features: torch.Tensor) -> None:
        self.norm.running_mean.copy_(features.mean(0))
        self.norm.running_var.copy_(features.var(0) if len(features) > 1 else torch.ones_like(self.norm.running_var))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(features))


@dataclass
class HeadTraining:
    """What happened while training a head: one row per epoch, and the epoch that was kept."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    monitor: str = "val_loss"


def evaluate_head(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    head.eval()
    with torch.no_grad():
        logits = head(x)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def train_head(head: LinearHead, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None,
               y_val: np.ndarray | None, *, epochs: int, batch_size: int, lr: float, weight_decay: float,
               patience: int, seed: int, class_weights: list[float] | None = None,
               console: Console = SILENT) -> HeadTraining:
    """AdamW on cached features with early stopping on validation loss; the best epoch's weights are kept.

    Without a validation set, trains for ``epochs`` and keeps the last epoch. ``class_weights`` weight the
    training loss (imbalanced classes); the monitored validation loss is unweighted.
    """
    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    generator = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x_train).float(), torch.from_numpy(y_train).long()
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    xv = torch.from_numpy(x_val).float() if has_val else None  # type: ignore[arg-type]
    yv = torch.from_numpy(y_val).long() if has_val else None  # type: ignore[arg-type]
    head.set_normalization(xt)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    result = HeadTraining(monitor="val_loss" if has_val else "train_loss")
    best_loss, best_state, bad_epochs = float("inf"), copy.deepcopy(head.state_dict()), 0
    n = len(xt)
    with console.progress("training head", epochs) as advance:
        for epoch in range(1, epochs + 1):
            head.train()
            head.norm.eval()  # the probe standardises with the fixed statistics of all training features
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                loss = F.cross_entropy(head(xt[idx]), yt[idx], weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            train_loss, train_acc = evaluate_head(head, xt, yt)
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
            monitored = train_loss
            if has_val:
                row["val_loss"], row["val_acc"] = evaluate_head(head, xv, yv)  # type: ignore[arg-type]
                monitored = row["val_loss"]
            result.history.append(row)
            advance(1)
            if monitored < best_loss - 1e-6:
                best_loss, best_state, bad_epochs = monitored, copy.deepcopy(head.state_dict()), 0
                result.best_epoch = epoch
            else:
                bad_epochs += 1
                if has_val and bad_epochs >= patience:
                    result.stopped_early = True
                    break
    if has_val:
        head.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history)
    return result
