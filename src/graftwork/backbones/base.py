"""The one contract every backbone honours, whatever library it comes from.

A :class:`Backbone` is an ``nn.Module`` that maps a prepared batch to pooled features ``[batch, feature_dim]``.
Around that it exposes what transfer learning needs and nothing else:

* ``prepare(raw)`` turns one raw example (an RGB PIL image, or a string) into model input, and
  ``collate(prepared)`` batches them; together they are the preprocessing, described by ``preprocessing``
  (saved with a run so that prediction preprocesses exactly as training did);
* ``layer_groups()`` cuts the network into ordered groups, input to output, for freezing, gradual unfreezing and
  per-group learning rates;
* ``info`` records the name, source, weights and fingerprint of the weights actually loaded.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

# Bump when what the feature cache stores, or how its key is made, changes: older caches are then left unused.
FEATURE_CACHE_SCHEMA = 2

@dataclass
class LayerGroup:
    """Part of a backbone that is frozen, unfrozen or given a learning rate as one unit.

    ``params`` are the group's parameters; ``modules`` the modules whose train/eval mode goes with the group
    (so that a frozen group's BatchNorm keeps its running statistics).
    """

    name: str
    params: list[nn.Parameter]
    modules: list[nn.Module]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.params)


@dataclass
class BackboneInfo:
    """Identity of a backbone and of the weights it holds, as saved in a run's config."""

    name: str  # canonical name, e.g. "torchvision:mobilenet_v2"
    source: str  # torchvision | timm | hf
    arch: str  # architecture within the source
    modality: str  # image | text
    feature_dim: int
    pretrained: bool
    weights: str = ""  # where the weights came from (file, cache, package, hub), for the user
    weights_tag: str = ""  # e.g. IMAGENET1K_V1 for torchvision
    fingerprint: str = ""  # sha256 over the loaded tensors: identical weights give identical fingerprints
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backbone(nn.Module, ABC):
    """Pretrained network without its task head, giving pooled features."""

    info: BackboneInfo
    # Bump in a subclass when its prepare/collate/forward code changes the features it computes, so that features
    # cached by the older code are not mixed with new ones.
    preprocessing_code: int = 1
    # keys of ``preprocessing`` that change which inputs are accepted but never their features (kept out of the
    # cache key, so that changing them does not throw the cache away)
    cache_neutral: tuple[str, ...] = ()

    @property
    def feature_dim(self) -> int:
        return self.info.feature_dim

    @property
    def modality(self) -> str:
        return self.info.modality

    @property
    @abstractmethod
    def preprocessing(self) -> dict[str, Any]:
        """A JSON-able description of the preprocessing (sizes, normalisation, tokenizer length...)."""

    def load(self, item: str) -> Any:
        """One example as :meth:`prepare` takes it (a decoded file, or the text itself); an unreadable file raises
        a :class:`~graftwork.data.dataset.DecodeError`. Backbones that need only part of a file override this."""
        from ..data.files import load_raw

        return load_raw(self.modality, item)

    @abstractmethod
    def prepare(self, raw: Any) -> Any:
        """Turn one raw example (RGB PIL image or string) into model input."""

    @abstractmethod
    def collate(self, prepared: list[Any]) -> Any:
        """Batch prepared examples."""

    @abstractmethod
    def forward(self, batch: Any) -> torch.Tensor:
        """Pooled features ``[batch, feature_dim]``."""

    @abstractmethod
    def layer_groups(self) -> list[LayerGroup]:
        """Ordered groups of layers, from the input side to the output side."""

    def batch_to(self, batch: Any, device: torch.device | str) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(device, non_blocking=True)
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def refresh_fingerprint(self) -> str:
        """Recompute the weights fingerprint (after loading or training weights); it keys the feature cache."""
        self.info.fingerprint = fingerprint_module(self)
        return self.info.fingerprint

    def cache_key(self) -> str:
        """Identifies the features this backbone computes: the cache schema, the weights fingerprint, the
        preprocessing (settings and the content of files it reads, such as a tokenizer's vocabulary) and the
        version of the code that applies it."""
        pre = sorted((k, v) for k, v in self.preprocessing.items() if k not in self.cache_neutral)
        desc = repr((FEATURE_CACHE_SCHEMA, type(self).__name__, self.preprocessing_code, self.info.fingerprint, pre))
        return hashlib.sha256(desc.encode()).hexdigest()[:32]


def hash_file(h: Any, path: str | Path, chunk: int = 1 << 20) -> Any:
    """Feed a file's bytes to hashlib object ``h`` a chunk (1 MiB) at a time, so memory does not follow file size."""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h


def fingerprint_module(module: nn.Module) -> str:
    """sha256 over a module's tensors (names, shapes, dtypes, values).

    Independent of where the weights came from: the same weights from a package, a cache or the hub give the
    same fingerprint, and a run can check that the backbone it reloads is the one it was trained on.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        if t.dtype == torch.bfloat16:
            t = t.float()
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def groups_from_parameter_names(model: nn.Module, named: list[tuple[str, list[str]]]) -> list[LayerGroup]:
    """Layer groups from (label, parameter names) pairs; each group's modules are those owning its parameters."""
    params = dict(model.named_parameters())
    owners = {n: m for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    groups = []
    for label, names in named:
        names = [n for n in names if n in params]
        if not names:
            continue
        mods = {id(owners[o]): owners[o] for n in names if (o := n.rpartition(".")[0]) in owners}
        groups.append(LayerGroup(label, [params[n] for n in names], list(mods.values())))
    return groups


def split_by_dominant_child(model: nn.Module, prefix: str = "") -> list[LayerGroup]:
    """Generic input-to-output layer groups for a module tree.

    Walks the children in definition order; descends into a child that holds most of the parameters (the
    ``features`` of a MobileNet, the ``encoder.layers`` of a ViT), so that its blocks become groups; other
    children are one group each. Parameters owned directly by a container (a ViT's class token) go with the first
    group, which is the input side.
    """
    children = [(n, c) for n, c in model.named_children() if any(True for _ in c.parameters())]
    total = sum(p.numel() for p in model.parameters())
    groups: list[LayerGroup] = []
    for name, child in children:
        n = sum(p.numel() for p in child.parameters())
        grandchildren = [c for c in child.children() if any(True for _ in c.parameters())]
        if n > 0.5 * total and len(grandchildren) >= 2:
            groups += split_by_dominant_child(child, f"{prefix}{name}.")
        else:
            groups.append(LayerGroup(f"{prefix}{name}", list(child.parameters()), [child]))
    own = list(model.parameters(recurse=False))
    if own and groups:
        groups[0].params[:0] = own
    return groups
