"""Layer groups of a transformer encoder, shared by the text/image (:mod:`.hf`) and speech (:mod:`.audio`)
backbones: embeddings (everything before the first block), one group per block, then whatever follows.

It lives apart from both so that neither imports the other (they used to import each other).
"""

from __future__ import annotations

import re

from torch import nn

from .base import LayerGroup, groups_from_parameter_names


def _layers_prefix(model: nn.Module) -> str:
    """Name of the longest ``ModuleList`` (the transformer blocks), e.g. ``encoder.layer``."""
    best, size = "", 0
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > size:
            best, size = name, len(module)
    return best


def transformer_layer_groups(model: nn.Module, prefix: str | None = None,
                             skip: tuple[str, ...] = ()) -> list[LayerGroup]:
    """embeddings (everything before the first block), each block, then whatever follows (pooler, final norm).

    ``prefix`` names the blocks' ``ModuleList`` (default: the longest one); parameters named in ``skip`` belong to
    no group and so are never unfrozen.
    """
    prefix = _layers_prefix(model) if prefix is None else prefix
    if not prefix:
        return [LayerGroup("all", list(model.parameters()), [model])]
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    blocks: dict[int, list[str]] = {}
    before: list[str] = []
    after: list[str] = []
    for name, _ in model.named_parameters():
        if name in skip:
            continue
        m = pattern.match(name)
        if m:
            blocks.setdefault(int(m.group(1)), []).append(name)
        elif blocks:
            after.append(name)
        else:
            before.append(name)
    named = [("embeddings", before)] + [(f"{prefix}.{i}", blocks[i]) for i in sorted(blocks)] + [("final", after)]
    return groups_from_parameter_names(model, named)
