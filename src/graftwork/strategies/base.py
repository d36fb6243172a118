"""The strategy contract: what a transfer strategy decides for the staged trainer.

A strategy says which stages to run (numbers of unfrozen layer groups, from the backbone's groups), what to
inject before training (LoRA adapters), the optimizer's parameter groups of a stage (discriminative rates), the
train mode of the network during a stage, and which weights a snapshot, checkpoint or saved run holds. The
trainer (:mod:`graftwork.train.trainer`) asks, and does the rest. A new method (DoRA, IA3) is one more module
beside ``frozen``, ``gradual``, ``full`` and ``lora``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..backbones.base import Backbone


class TransferNet(nn.Module):
    """Backbone and head as one network, for training end to end."""

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, batch: Any) -> torch.Tensor:
        return self.head(self.backbone(batch))


@dataclass
class Rates:
    """The learning-rate settings of a fine-tuning strategy (see :mod:`.freezing` for discriminative rates)."""

    lr: float  # the head's rate
    lr_ratio: float = 10.0  # head rate / top group's rate
    lr_decay: float = 0.8  # each group below gets this times the rate above
    weight_decay: float = 0.0


class Strategy(ABC):
    """What to train in each stage after the linear probe; see the module docstring."""

    name: str = ""
    strict_restore: bool = True  # a snapshot holds every weight of the network (False: only the trained ones)

    @abstractmethod
    def schedule(self, n_groups: int) -> list[int]:
        """Numbers of unfrozen layer groups, one per stage."""

    def inject(self, backbone: Backbone) -> dict[str, str]:
        """Change the backbone before training (add adapters); returns plan details to show. Default: nothing."""
        return {}

    @abstractmethod
    def param_groups(self, net: TransferNet, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Make the stage's parameters (only) trainable; their optimizer groups and the record of their rates."""

    @abstractmethod
    def train_mode(self, net: TransferNet, n_unfrozen: int) -> None:
        """Put the network in the stage's train mode (frozen parts, BatchNorm statistics, dropout)."""

    def trained_state(self, net: nn.Module) -> dict[str, torch.Tensor]:
        """The weights a stage can change (what snapshots and checkpoints hold). Default: all of them."""
        return net.state_dict()

    @abstractmethod
    def stage_name(self, n_unfrozen: int) -> str:
        """The stage's name in the run's records (``"unfreeze 4"``)."""

    @abstractmethod
    def stage_label(self, n_unfrozen: int) -> str:
        """What is trainable in the stage, for the progress line."""

    def describe(self, backbone: Backbone, schedule: list[int]) -> dict[str, str]:
        """Plan details: the stages and their learning rates, as printed and saved with the run."""
        return {}
