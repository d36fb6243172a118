"""LoRA adapters on any backbone, through PEFT.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") keeps a pretrained weight ``W``
frozen and learns a low-rank update beside it: a layer computes ``W x + (alpha / r) * B A x`` with ``A`` of shape
``r x in`` and ``B`` of shape ``out x r``; ``B`` starts at zero, so training starts from the pretrained network
exactly. Only ``A`` and ``B`` (and the new head) are trained: gradients and AdamW moments exist for ~1% of the
weights, and after training ``B A`` can be merged into ``W`` so that inference costs nothing extra.

The adapters come from the PEFT library (``peft.inject_adapter_in_model``, its state-dict helpers and its layers'
``merge``); graftwork only decides *where* they go. The default targets come from the backbone contract, not
from a per-architecture table: every linear layer, transformers ``Conv1D`` and non-depthwise convolution in every
layer group but the first (the embeddings or the stem). For a transformer that is the attention projections and
the MLP of every block; for a CNN such as MobileNetV2 the pointwise (1x1) and full convolutions of every block
(PEFT's LoRA does not adapt depthwise convolutions, whose per-channel kernels have no low-rank structure to
exploit).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..backbones.base import Backbone
from ..errors import ConfigError, RunFolderError
from .base import Rates, Strategy, TransferNet
from .freezing import batchnorms, param_groups

ADAPTER_MARK = "lora_"


@dataclass
class LoraSpec:
    """What was adapted and how; saved with a run so that loading rebuilds exactly the same adapters."""

    r: int
    alpha: float
    dropout: float
    targets: list[str]  # full module names within the backbone
    kinds: dict[str, int] | None = None  # layer types adapted, e.g. {"Linear": 36}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in (self.kinds or {}).items())
        return (f"rank {self.r}, alpha {self.alpha:g}, dropout {self.dropout:g}, on {len(self.targets)} layers"
                + (f" ({kinds})" if kinds else ""))


def _adaptable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return module.groups == 1  # depthwise/grouped convolutions: not supported by PEFT's LoRA
    return type(module).__name__ == "Conv1D"  # transformers' GPT-2-style linear layer, supported by PEFT


def adaptable_modules(backbone: Backbone) -> list[str]:
    """Names of every module LoRA can adapt, in definition order."""
    return [name for name, m in backbone.named_modules() if name and _adaptable(m)]


def default_targets(backbone: Backbone) -> list[str]:
    """Adaptable layers of every layer group but the first (embeddings or stem), see the module docstring."""
    names = {id(m): n for n, m in backbone.named_modules()}
    targets: list[str] = []
    for group in backbone.layer_groups()[1:]:
        for owner in group.modules:
            for sub in owner.modules():
                name = names.get(id(sub))
                if name and _adaptable(sub) and name not in targets:
                    targets.append(name)
    return targets


def resolve_targets(backbone: Backbone, requested: str | None) -> list[str]:
    """Module names from ``--lora-targets``: comma-separated names (a name matches a module whose full name is it
    or ends with ``.name``) or one regular expression matched against full names; default: :func:`default_targets`.

    Matching nothing is an error that lists what exists: LoRA applied to nothing would silently train only the
    head.
    """
    available = adaptable_modules(backbone)
    if requested is None or not requested.strip():
        chosen = default_targets(backbone)
        if not chosen:
            raise ConfigError(f"{backbone.info.name}: no layer LoRA can adapt was found above the first layer group.",
                              hint=_listing(available))
        return chosen
    parts = [p.strip() for p in requested.split(",") if p.strip()]
    if len(parts) == 1 and re.search(r"[\\^$*+?()\[\]|{}]", parts[0]):
        try:
            pattern = re.compile(parts[0])
        except re.error as e:
            raise ConfigError(f"'lora_targets': {parts[0]!r} is not a valid regular expression ({e}).") from None
        chosen = [n for n in available if pattern.fullmatch(n)]
    else:
        chosen = [n for n in available if any(n == p or n.endswith("." + p) for p in parts)]
    if not chosen:
        raise ConfigError(f"'lora_targets': {requested!r} matches none of the {len(available)} layers of "
                          f"{backbone.info.name} that LoRA can adapt.", hint=_listing(available))
    return chosen


def _listing(available: list[str]) -> str:
    if not available:
        return "this backbone has no linear or (non-depthwise) convolution layers; use --strategy gradual."
    short = sorted({n.rpartition(".")[2] for n in available})
    return (f"layer names that exist: {', '.join(short[:30])}{' ...' if len(short) > 30 else ''}; full names look "
            f"like {available[0]}, {available[-1]}. Pass names (--lora-targets query,value) or a regular "
            "expression matched against full names (--lora-targets '.*attention.*').")


def apply_lora(backbone: Backbone, *, r: int, alpha: float, dropout: float, targets: str | list[str] | None
               ) -> LoraSpec:
    """Inject LoRA adapters into ``backbone`` in place; base weights frozen, adapters trainable.

    ``targets``: ``--lora-targets`` text, an explicit list of full module names (a saved run), or ``None``.
    """
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model

    if has_lora(backbone):
        raise ConfigError(f"{backbone.info.name} already has LoRA adapters.")
    names = list(targets) if isinstance(targets, list) else resolve_targets(backbone, targets)
    kinds: dict[str, int] = {}
    for name in names:
        kind = type(backbone.get_submodule(name)).__name__
        kinds[kind] = kinds.get(kind, 0) + 1
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none")
    inject_adapter_in_model(config, backbone)
    for name, p in backbone.named_parameters():
        p.requires_grad_(ADAPTER_MARK in name)
    spec = LoraSpec(r=r, alpha=float(alpha), dropout=float(dropout), targets=names, kinds=kinds)
    backbone.info.extra["lora"] = spec.to_dict()
    return spec


def has_lora(module: nn.Module) -> bool:
    return any(ADAPTER_MARK in name for name, _ in module.named_parameters())


def adapter_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [p for name, p in module.named_parameters() if ADAPTER_MARK in name]


def adapter_state(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The adapter weights only (PEFT's naming), for ``adapter.safetensors``."""
    from peft.functional import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(backbone).items()}


def load_adapter_state(backbone: Backbone, state: dict[str, torch.Tensor], *, source: str = "the saved adapters"
                       ) -> None:
    """Load saved adapter weights into adapters already applied to ``backbone``; all of them or nothing.

    A missing adapter tensor would silently keep its initial value (``B = 0``: that layer's adaptation gone), an
    unexpected one means the adapters were made for another network: both are refused, as is a shape mismatch.
    """
    from peft.functional import set_peft_model_state_dict

    expected = adapter_state(backbone)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''} ({len(keys)})" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)) if keys]
        raise RunFolderError(f"{source}: the adapter weights do not fit this backbone's adapters: "
                             f"{'; '.join(parts)}.", hint="the adapters were saved for another backbone or LoRA "
                                                          "setting, or the file was edited: re-run `graftwork fit`.")
    set_peft_model_state_dict(backbone, state)


@torch.no_grad()
def remove_lora(backbone: Backbone, *, merge: bool) -> int:
    """Take the adapters out, merging ``(alpha / r) B A`` into the base weights first when ``merge``; the backbone
    is then a plain network again. Returns the number of layers that held adapters."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [(name, m) for name, m in backbone.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in layers:
        if merge:
            layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        setattr(parent, child, layer.get_base_layer())
    backbone.info.extra.pop("lora", None)
    return len(layers)


def lora_param_groups(backbone: Backbone, head: nn.Module, lr: float, weight_decay: float
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Make the adapters and the head (only) trainable; their optimizer groups and the record of their rate.

    The adapters learn at the head's rate: ``B`` starts at zero, so a high rate cannot jump away from the
    pretrained function the way it would on the full weights (Hu et al. 2021 use 1e-4 to 5e-4 with larger
    batches).
    """
    adapters = adapter_parameters(backbone)
    for p in backbone.parameters():
        p.requires_grad_(False)
    for p in [*adapters, *head.parameters()]:
        p.requires_grad_(True)
    groups = param_groups(head, [], [], lr, weight_decay)
    groups.append({"name": "lora adapters", "params": adapters, "lr": lr, "weight_decay": weight_decay})
    return groups, [{"group": "lora adapters", "lr": lr, "params": sum(p.numel() for p in adapters)}]


def set_lora_train_mode(net: nn.Module) -> None:
    """Train mode (dropout, including the adapters'), except BatchNorm: its weights are frozen, so its running
    statistics stay the pretrained ones too (the same policy as for frozen layer groups)."""
    net.train()
    for m in batchnorms(net):
        m.eval()


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters of ``module``."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


class LoraStrategy(Strategy):
    """One stage: the LoRA adapters (injected by :meth:`inject`) and the head train together, nothing else.

    Snapshots hold only the adapters and the head: the base weights stay the pretrained ones, and copying them
    at every improvement would cost what LoRA saves.
    """

    name = "lora"
    strict_restore = False

    def __init__(self, rates: Rates, *, r: int = 8, alpha: float = 16, dropout: float = 0.0,
                 targets: str | list[str] | None = None):
        self.rates, self.r, self.alpha, self.dropout, self.targets = rates, r, alpha, dropout, targets

    def schedule(self, n_groups: int) -> list[int]:
        return [n_groups]  # every group is adapted (drift is watched in all of them)

    def inject(self, backbone: Backbone) -> dict[str, str]:
        spec = apply_lora(backbone, r=self.r, alpha=self.alpha, dropout=self.dropout, targets=self.targets)
        return {"adapters": spec.describe()}

    def param_groups(self, net: TransferNet, n_unfrozen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return lora_param_groups(net.backbone, net.head, self.rates.lr, self.rates.weight_decay)

    def train_mode(self, net: TransferNet, n_unfrozen: int) -> None:
        set_lora_train_mode(net)

    def trained_state(self, net: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v for k, v in net.state_dict().items() if ADAPTER_MARK in k or k.startswith("head.")}

    def stage_name(self, n_unfrozen: int) -> str:
        return "lora"

    def stage_label(self, n_unfrozen: int) -> str:
        return "LoRA adapters and head trainable"

    def describe(self, backbone: Backbone, schedule: list[int]) -> dict[str, str]:
        names = list(self.targets) if isinstance(self.targets, list) else resolve_targets(backbone, self.targets)
        kinds: dict[str, int] = {}
        for name in names:
            kind = type(backbone.get_submodule(name)).__name__
            kinds[kind] = kinds.get(kind, 0) + 1
        spec = LoraSpec(r=self.r, alpha=float(self.alpha), dropout=float(self.dropout), targets=names, kinds=kinds)
        return {"adapters": spec.describe(),
                "stages": "probe, then the LoRA adapters and the head trained together",
                "learning rates": f"head and adapters {self.rates.lr:g}"}
