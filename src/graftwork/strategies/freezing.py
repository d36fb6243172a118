"""Freezing, unfreezing and per-group learning rates, driven by the backbone's ordered layer groups.

The same groups serve three purposes (as fastai's splitter / ``freeze_to`` and timm's ``group_matcher`` do):

* ``unfreeze_top(backbone, n)`` makes the last ``n`` groups trainable and freezes the rest;
* ``set_train_mode(net, backbone, n)`` puts the model in train mode but keeps frozen groups in eval mode, so
  that a frozen BatchNorm keeps its pretrained running statistics; by default every BatchNorm layer keeps them,
  unfrozen ones included (their scale and shift still train): see ``set_train_mode``;
* ``param_groups(...)`` gives each unfrozen group its own learning rate, decaying geometrically from the head
  toward the input (discriminative learning rates, Howard & Ruder 2018, "ULMFiT").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..backbones.base import Backbone, LayerGroup


def unfreeze_top(backbone: Backbone, n: int) -> list[LayerGroup]:
    """Trainable: the last ``n`` layer groups; frozen: all others. Returns the unfrozen groups, input side first."""
    groups = backbone.layer_groups()
    n = max(0, min(n, len(groups)))
    for p in backbone.parameters():
        p.requires_grad_(False)
    unfrozen = groups[len(groups) - n:] if n else []
    for g in unfrozen:
        for p in g.params:
            p.requires_grad_(True)
    return unfrozen


def set_train_mode(net: nn.Module, backbone: Backbone, n_unfrozen: int, *, bn_stats: str = "pretrained") -> None:
    """Train mode for the head and unfrozen groups; eval mode (fixed BatchNorm statistics, no dropout) for the
    frozen groups.

    ``bn_stats="pretrained"`` (the default) also keeps the BatchNorm layers of unfrozen groups in eval mode:
    they normalise with their pretrained running statistics while their scale and shift train with the rest of
    the group. In train mode they would normalise each batch by its own statistics and overwrite the running
    ones within a few dozen steps, so every unfrozen group would change the features the probe's head was
    fitted to, before any weight has learned anything (Keras' transfer-learning guide gives the same advice).
    Measured on MobileNetV2 / Fashion-MNIST (BENCHMARKS.md): 1-2 points better than ``"update"``, which puts
    them in train mode as plain fine-tuning does.
    """
    net.train()
    groups = backbone.layer_groups()
    frozen = groups[: len(groups) - max(0, min(n_unfrozen, len(groups)))]
    if len(frozen) == len(groups):
        backbone.eval()
        return
    for g in frozen:
        for m in g.modules:
            m.eval()
    if bn_stats == "pretrained":
        for m in batchnorms(backbone):
            m.eval()


def batchnorms(module: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``module`` (any dimension, SyncBatchNorm included)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@dataclass
class GroupRate:
    name: str
    lr: float
    n_params: int

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.name, "lr": self.lr, "params": self.n_params}


def discriminative_rates(unfrozen: list[LayerGroup], head_lr: float, lr_ratio: float,
                         lr_decay: float) -> list[GroupRate]:
    """Rates for the unfrozen groups, output side first: the top group gets ``head_lr / lr_ratio``, each group
    below it ``lr_decay`` times the one above."""
    rates = []
    top = head_lr / lr_ratio
    for depth, g in enumerate(reversed(unfrozen)):
        rates.append(GroupRate(g.name, top * lr_decay**depth, g.num_parameters()))
    return rates


def param_groups(head: nn.Module, unfrozen: list[LayerGroup], rates: list[GroupRate], head_lr: float,
                 weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head, then each unfrozen backbone group with its own rate.

    Biases and normalisation weights (1-d tensors) get no weight decay, the usual practice for AdamW.
    """
    out: list[dict[str, Any]] = []

    def add(name: str, params: list[nn.Parameter], lr: float) -> None:
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        if decay:
            out.append({"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay})
        if no_decay:
            out.append({"name": f"{name} (no decay)", "params": no_decay, "lr": lr, "weight_decay": 0.0})

    add("head", [p for p in head.parameters() if p.requires_grad], head_lr)
    by_name = {r.name: r for r in rates}
    for g in reversed(unfrozen):
        add(g.name, [p for p in g.params if p.requires_grad], by_name[g.name].lr)
    return out
