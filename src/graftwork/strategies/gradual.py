"""``gradual``: unfreeze the backbone from the top in stages, each group at its own, smaller rate.

The recipe (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution"; gradual unfreezing and discriminative rates from Howard & Ruder 2018, "ULMFiT"): after the
linear probe, each stage unfreezes more layer groups from the top (a quarter of them, then twice as many, up to
all), each group at its own learning rate, smaller toward the input; a stage that does not beat the best so far
ends the schedule (:mod:`graftwork.train.selection`).
"""

from __future__ import annotations

import math
from typing import Any

from ..backbones.base import Backbone
from .base import Rates, Strategy, TransferNet
from .freezing import batchnorms, discriminative_rates, param_groups, set_train_mode, unfreeze_top


def stage_schedule(n_groups: int, strategy: str, unfreeze: int | None = None) -> list[int]:
    """Numbers of unfrozen groups, one per stage after the linear probe.

    ``gradual`` unfreezes the top quarter of the layer groups first, then doubles (a quarter, a half, all of
    them: 5, 10, 19 of MobileNetV2's 19 groups; 2, 4, 8 of a 6-block encoder's 8). Backbones cut their layers
    into groups of very different sizes (a single 1x1 convolution, or a whole stage), and a first stage of one
    small group rarely moves validation: it cost a full stage of epochs for nothing. Measured on MobileNetV2 /
    Fashion-MNIST, 200 per class (BENCHMARKS.md), starting from a quarter was as accurate as starting from one
    group, in two thirds of the time.
    """
    if unfreeze is not None:
        return [min(unfreeze, n_groups)]
    if strategy == "full":
        return [n_groups]
    steps, n = [], max(1, math.ceil(n_groups / 4))
    while n < n_groups:
        steps.append(n)
        n *= 2
    return steps + [n_groups]


class GradualStrategy(Strategy):
    """The top layer groups trainable, more in each stage, with discriminative rates; see the module docstring.

    ``bn_stats``: ``"pretrained"`` keeps every BatchNorm's running statistics (see
    :func:`.freezing.set_train_mode`), ``"update"`` recomputes them in unfrozen groups. ``unfreeze``: one stage
    with that many groups instead of the schedule.
    """

    name = "gradual"

    def __init__(self, rates: Rates, *, bn_stats: str = "pretrained", unfreeze: int | None = None):
        self.rates, self.bn_stats, self.unfreeze = rates, bn_stats, unfreeze

    def schedule(self, n_groups: int) -> list[int]:
        return stage_schedule(n_groups, self.name, self.unfreeze)

    def param_groups(self, net: TransferNet, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        r = self.rates
        unfrozen = unfreeze_top(net.backbone, n_unfrozen)
        for p in net.head.parameters():
            p.requires_grad_(True)
        found = discriminative_rates(unfrozen, r.lr, r.lr_ratio, r.lr_decay)
        return param_groups(net.head, unfrozen, found, r.lr, r.weight_decay), [g.to_dict() for g in found]

    def train_mode(self, net: TransferNet, n_unfrozen: int) -> None:
        set_train_mode(net, net.backbone, n_unfrozen, bn_stats=self.bn_stats)

    def stage_name(self, n_unfrozen: int) -> str:
        return f"unfreeze {n_unfrozen}"

    def stage_label(self, n_unfrozen: int) -> str:
        return f"top {n_unfrozen} group(s) trainable"

    def describe(self, backbone: Backbone, schedule: list[int]) -> dict[str, str]:
        groups, r = backbone.layer_groups(), self.rates
        top = r.lr / r.lr_ratio
        out = {"layer groups": f"{len(groups)} ({groups[0].name} ... {groups[-1].name})",
               "stages": "probe, then top " + ", ".join(str(n) for n in schedule) + " group(s) trainable",
               "learning rates": (f"head {r.lr:g}; top group {top:g}, x{r.lr_decay:g} per group below "
                                  f"(bottom group {top * r.lr_decay ** (len(groups) - 1):.2g})")}
        if batchnorms(backbone):
            out["batchnorm"] = ("pretrained running statistics kept, scale and shift trained"
                                if self.bn_stats == "pretrained" else
                                "running statistics recomputed in unfrozen groups")
        return out
