"""``hf:ID_OR_PATH`` backbones from Hugging Face transformers.

Text encoders (BERT, RoBERTa, MiniLM, ...) give the attention-masked mean of the last hidden states, the pooling
sentence-transformers models are trained with. Image encoders (ViT, DINOv2, ConvNeXt, ...) give the [CLS] token
for ViT-style models and the model's pooled output otherwise. Speech encoders (Whisper, Wav2Vec2, HuBERT, WavLM)
are built by :mod:`.audio`. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, WeightsError
from . import audio
from .base import Backbone, BackboneInfo, LayerGroup, hash_file
from .packages import packages_for
from .transformer_groups import transformer_layer_groups
from .vision import ImageBackbone, ImagePreprocess
from .weights import ResolvedWeights, downloads_allowed, missing_weights_error

SOURCE = "hf"
_CLS_TOKEN_TYPES = {"vit", "deit", "beit", "dinov2", "data2vec-vision", "vit_msn", "vit_mae", "dinov3_vit"}


def resolve(model_id: str, explicit: str | None = None, *, allow_download: bool = True) -> ResolvedWeights | None:
    """A local folder holding the model: a path, the HF cache, a weight package, or a fresh download."""
    if explicit:
        if not Path(explicit).is_dir():
            raise ConfigError(f"'weights': {explicit} is not a Hugging Face model folder.",
                              hint="for hf: backbones, pass the model folder as the backbone "
                                   "(--backbone /path/to/folder) instead of --weights.")
        return ResolvedWeights(Path(explicit), "explicit path")
    local = Path(model_id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ConfigError(f"'backbone': {local} has no config.json; it is not a Hugging Face model folder.")
        return ResolvedWeights(local, "local folder")
    from huggingface_hub import snapshot_download

    try:
        return ResolvedWeights(Path(snapshot_download(model_id, local_files_only=True)), "huggingface cache")
    except Exception:
        pass
    for pkg in packages_for(f"{SOURCE}:{model_id}"):
        if found := pkg.resolve():
            return found
    if not (allow_download and downloads_allowed()):
        return None
    try:
        path = snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as e:
        raise WeightsError(f"Could not download hf:{model_id} ({type(e).__name__}: {e}).",
                           hint=_how_to_get(model_id)) from None
    return ResolvedWeights(Path(path), "hub download")


def _how_to_get(model_id: str) -> str:
    how = ["run once with network access (the model goes to the Hugging Face cache)",
           "pass a local model folder as --backbone hf:/path/to/folder"]
    how += [p.install for p in packages_for(f"{SOURCE}:{model_id}")]
    return "; or ".join(how)


def _is_image_config(config: Any) -> bool:
    return hasattr(config, "num_channels") and not hasattr(config, "vocab_size")


class TextBackbone(Backbone):
    """A transformers text encoder with masked mean pooling.

    ``tokenizer_sha256`` digests the tokenizer's files (vocabulary, merges, special tokens): an edited vocabulary
    tokenizes differently, so it is part of the preprocessing and of the feature cache key.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, info: BackboneInfo, max_length: int,
                 tokenizer_sha256: str = ""):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.max_length = max_length
        self.tokenizer_sha256 = tokenizer_sha256

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"kind": "text", "max_length": self.max_length, "pooling": "mean",
                "tokenizer": type(self.tokenizer).__name__, "tokenizer_sha256": self.tokenizer_sha256}

    def prepare(self, raw: str) -> str:
        return raw

    def collate(self, prepared: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(prepared, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return dict(enc)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.model(**batch)
        hidden = out.last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def layer_groups(self) -> list[LayerGroup]:
        return transformer_layer_groups(self.model)


class HFImageModel(nn.Module):
    """Wraps a transformers vision model so that ``forward(pixels)`` returns pooled features."""

    def __init__(self, model: nn.Module, use_cls: bool):
        super().__init__()
        self.model = model
        self.use_cls = use_cls

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values)
        if self.use_cls or getattr(out, "pooler_output", None) is None:
            return out.last_hidden_state[:, 0]
        return out.pooler_output.flatten(1)


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def tokenizer_digest(folder: Path, tokenizer: Any) -> str:
    """sha256 over the names and contents of the tokenizer files in ``folder`` (streamed, 1 MiB at a time)."""
    names = set(_TOKENIZER_FILES) | {n for n in getattr(tokenizer, "vocab_files_names", {}).values()
                                     if isinstance(n, str)}
    h = hashlib.sha256()
    for name in sorted(names):
        file = folder / name
        if file.is_file():
            h.update(f"{name}\0".encode())
            hash_file(h, file)
    return h.hexdigest()


def _image_preprocess(folder: Path, config: Any) -> ImagePreprocess:
    from transformers import AutoImageProcessor

    mean, std, size = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), int(getattr(config, "image_size", 224) or 224)
    try:
        proc = AutoImageProcessor.from_pretrained(str(folder))
        mean = tuple(getattr(proc, "image_mean", mean))
        std = tuple(getattr(proc, "image_std", std))
        crop = getattr(proc, "crop_size", None) or getattr(proc, "size", None) or {}
        size = int(crop.get("height") or crop.get("shortest_edge") or size) if isinstance(crop, dict) else size
    except (OSError, ValueError):
        pass  # no preprocessor_config.json: keep the defaults above
    return ImagePreprocess(int(round(size / 0.875)), size, mean, std, "bicubic")  # type: ignore[arg-type]


def build(model_id: str, *, pretrained: bool = True, weights_path: str | None = None,
          max_length: int = 256, audio_window: float | None = None, audio_long: str = "split",
          audio_max_seconds: float | None = None) -> Backbone:
    """A backbone for a transformers model; the ``audio_*`` options apply to speech encoders only."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # load reports are for transformers' own users, not ours
    hf_logging.disable_progress_bar()
    if Path(model_id).expanduser().is_dir():  # a local folder: saved runs must find it from anywhere
        model_id = str(Path(model_id).expanduser().absolute())
    resolved = resolve(model_id, weights_path)
    if resolved is None:
        raise missing_weights_error(f"{SOURCE}:{model_id}", ["huggingface cache", "installed weight packages"],
                                    [_how_to_get(model_id)])
    folder = str(resolved.path)
    config = AutoConfig.from_pretrained(folder)
    described = resolved.describe() if pretrained else f"random init (architecture from {resolved.describe()})"
    if audio.is_audio_config(config):
        speech = audio.build(model_id, resolved.path, config, pretrained=pretrained, weights=described,
                             audio_window=audio_window, audio_long=audio_long,
                             audio_max_seconds=audio_max_seconds)
        speech.refresh_fingerprint()
        return speech
    kwargs: dict[str, Any] = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta", "vit") else {}
    try:
        if pretrained:
            model = AutoModel.from_pretrained(folder, **kwargs)
        else:
            model = AutoModel.from_config(config, **kwargs)
    except TypeError:  # the architecture has no add_pooling_layer argument
        model = AutoModel.from_pretrained(folder) if pretrained else AutoModel.from_config(config)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{folder}: cannot load a transformers model ({e}).", hint=_how_to_get(model_id)) from None
    model = model.float().eval()  # checkpoints may be stored in fp16/bf16; features and training use fp32
    image = _is_image_config(config)
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "hidden_sizes", [0])[-1])
    info = BackboneInfo(
        name=f"{SOURCE}:{model_id}", source=SOURCE, arch=config.model_type, modality="image" if image else "text",
        feature_dim=hidden, pretrained=pretrained,
        weights=described,
    )
    backbone: Backbone
    if image:
        wrapped = HFImageModel(model, use_cls=config.model_type in _CLS_TOKEN_TYPES)
        backbone = ImageBackbone(wrapped, info, _image_preprocess(resolved.path, config),
                                 transformer_layer_groups(model))
    else:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        limit = int(getattr(config, "max_position_embeddings", 512) or 512)
        backbone = TextBackbone(model, tokenizer, info, min(max_length, limit),
                                tokenizer_digest(resolved.path, tokenizer))
    backbone.refresh_fingerprint()
    return backbone
