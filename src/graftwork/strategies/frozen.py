"""``frozen`` with augmentation: the backbone stays frozen and the head trains on augmented inputs through it.

(Plain ``frozen`` never reaches the trainer: its head is the linear probe on cached features.)
"""

from __future__ import annotations

from typing import Any

from ..backbones.base import Backbone
from .base import Rates, Strategy, TransferNet
from .freezing import param_groups, unfreeze_top


class FrozenStrategy(Strategy):
    """One stage, no layer group unfrozen: the head alone trains, the whole backbone in eval mode."""

    name = "frozen"

    def __init__(self, rates: Rates):
        self.rates = rates

    def schedule(self, n_groups: int) -> list[int]:
        return [0]

    def param_groups(self, net: TransferNet, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        unfreeze_top(net.backbone, 0)
        for p in net.head.parameters():
            p.requires_grad_(True)
        return param_groups(net.head, [], [], self.rates.lr, self.rates.weight_decay), []

    def train_mode(self, net: TransferNet, n_unfrozen: int) -> None:
        net.train()
        net.backbone.eval()

    def stage_name(self, n_unfrozen: int) -> str:
        return "head on augmented images"

    def stage_label(self, n_unfrozen: int) -> str:
        return "top 0 group(s) trainable"

    def describe(self, backbone: Backbone, schedule: list[int]) -> dict[str, str]:
        return {"stages": "probe on cached features, then the head on augmented images (no cache)"}
