"""The networks that are exported: backbone and head as one module with probabilities out.

Each wrapper takes exactly the tensors the light runtime feeds (named in :data:`INPUTS`) and repeats its
backbone's PyTorch forward (pooling included) so that the graph computes what ``TransferModel.predict_proba``
does. Image networks are exported with their BatchNorm layers fused into the convolutions before them
(``torch.nn.utils.fusion.fuse_conv_bn_eval``: the eval-mode affine map folded into the weights), which the
graph then holds as plain convolutions.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..backbones.audio import AudioBackbone
from ..backbones.fold import conv_bn_pairs
from ..backbones.hf import TextBackbone
from ..backbones.vision import ImageBackbone

OUTPUT = "probabilities"


def fuse_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode) with each conv → BatchNorm pair of :func:`conv_bn_pairs` fused into one
    convolution; returns it and the number of pairs fused."""
    fused = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    pairs = {(id(c), id(b)) for c, b in conv_bn_pairs(fused)}
    count = 0
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if (id(conv), id(bn)) in pairs:
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)  # type: ignore[arg-type]
                seq._modules[b] = nn.Identity()
                count += 1
    return fused, count


class ImageGraph(nn.Module):
    """``pixel_values [batch, 3, H, W]`` → class probabilities."""

    def __init__(self, backbone: ImageBackbone, head: nn.Module):
        super().__init__()
        self.net, self.folded = fuse_batchnorm(backbone.model)
        self.head = head

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.net(pixel_values)
        feats = out.flatten(1) if out.ndim > 2 else out
        return torch.softmax(self.head(feats), dim=-1)


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class TextGraph(nn.Module):
    """Tokenizer outputs (``input_ids``, ``attention_mask``, maybe ``token_type_ids``) → class probabilities,
    with ``TextBackbone``'s masked mean pooling."""

    def __init__(self, backbone: TextBackbone, head: nn.Module, input_names: list[str]):
        super().__init__()
        self.model, self.head, self.input_names = backbone.model, head, input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.input_names, inputs, strict=True))
        hidden = self.model(**batch).last_hidden_state
        return torch.softmax(self.head(_masked_mean(hidden, batch["attention_mask"])), dim=-1)


class TokenGraph(nn.Module):
    """Tokenizer outputs → per word piece tag probabilities ``[batch, pieces, tags]`` (NER)."""

    def __init__(self, model: nn.Module, head: nn.Module, input_names: list[str]):
        super().__init__()
        self.model, self.head, self.input_names = model, head, input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.model(**dict(zip(self.input_names, inputs, strict=True))).last_hidden_state
        return torch.softmax(self.head(hidden), dim=-1)


class AudioGraph(nn.Module):
    """``values`` (windows), ``lengths`` (samples of audio per window) and ``clip_weights`` ``[clips, windows]``
    (each clip's row averages its windows) → class probabilities per clip: ``AudioBackbone.forward`` with the
    window-to-clip averaging as a matrix the runtime builds."""

    def __init__(self, backbone: AudioBackbone, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, values: torch.Tensor, lengths: torch.Tensor, clip_weights: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        if b.whisper:
            hidden = b.encoder(input_features=values).last_hidden_state
        else:
            kwargs: dict[str, Any] = {}
            if b.use_attention_mask:
                kwargs["attention_mask"] = (torch.arange(values.shape[1])[None] < lengths[:, None]).long()
            hidden = b.encoder(input_values=values, **kwargs).last_hidden_state
        frames = b._frames(lengths, hidden.shape[1])
        mask = (torch.arange(hidden.shape[1])[None] < frames[:, None]).unsqueeze(-1).to(hidden.dtype)
        per_window = (hidden * mask).sum(1) / mask.sum(1)
        return torch.softmax(self.head(clip_weights @ per_window), dim=-1)
