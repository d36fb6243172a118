"""What the staged trainer needs from a task: its training data, its loss, and its validation score.

A task (classification, NER, ...) supplies these four things; everything else (stages, strategies, early
stopping, selection, drift, checkpointing, devices) is the trainer's (:mod:`graftwork.train.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn


@dataclass
class ValScore:
    """One validation pass: the task's score (higher is better; ties broken by lower loss) and its loss."""

    score: float
    loss: float
    pred: np.ndarray | None = None  # per-example predictions (classification: for collapse/margin checks)
    truth: np.ndarray | None = None
    losses: np.ndarray | None = None  # per-example losses (classification: for the paired margin)


class ListDataset(torch.utils.data.Dataset):
    """Training examples already prepared in a list (NER's word chunks, generation's encoded examples); the
    trainer draws each epoch's order and batches them."""

    def __init__(self, items: list[Any]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


class TrainingTask(Protocol):
    """The task side of training; see the module docstring."""

    score_name: str  # key of the score in epoch rows: "val_acc", "val_f1"

    def train_dataset(self) -> torch.utils.data.Dataset:
        """The training examples; the trainer builds the DataLoader (shuffled, seeded per epoch)."""
        ...

    def collate(self, items: list) -> Any:
        """A batch from a list of the training dataset's items."""
        ...

    def loss(self, net: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int, int]:
        """Mean loss of the batch, examples (or targets) in it, correct ones (0 if not meaningful)."""
        ...

    def validate(self, net: nn.Module, device: torch.device) -> ValScore:
        """The score on the FULL validation set, in every process (so every process takes the same decisions)."""
        ...
