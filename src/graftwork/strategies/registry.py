"""The strategies by name: ``get_strategy`` builds the one a plan names. A new method (DoRA, IA3) is a module
beside ``frozen``, ``gradual``, ``full`` and ``lora`` and one branch here."""

from __future__ import annotations

from typing import Any

from .base import Rates, Strategy
from .frozen import FrozenStrategy
from .full import FullStrategy
from .gradual import GradualStrategy
from .lora import LoraStrategy


def get_strategy(name: str, rates: Rates, *, bn_stats: str = "pretrained", unfreeze: int | None = None,
                 lora: dict[str, Any] | None = None) -> Strategy:
    """The strategy a plan names: ``frozen`` (the head alone, on augmented inputs), ``gradual``, ``full`` or
    ``lora`` (``lora``: the keyword arguments of :class:`.lora.LoraStrategy`)."""
    if name == "lora":
        return LoraStrategy(rates, **(lora or {}))
    if name == "full":
        return FullStrategy(rates, bn_stats=bn_stats, unfreeze=unfreeze)
    if name == "gradual":
        return GradualStrategy(rates, bn_stats=bn_stats, unfreeze=unfreeze)
    if name == "frozen":
        return FrozenStrategy(rates)
    raise ValueError(f"no fine-tuning strategy {name!r}")
