"""The preprocessing of a run as data an export carries: the records in the manifest and the files beside it
(the tokenizer as ``tokenizer.json`` for the ``tokenizers`` library; Whisper's mel filter bank as ``.npy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..backbones.audio import AudioBackbone
from ..backbones.base import Backbone
from ..backbones.hf import TextBackbone
from ..backbones.vision import ImageBackbone
from ..errors import ConfigError
from ..runtime.manifest import MEL_FILTERS_FILE, TOKENIZER_FILE


def image_record(backbone: ImageBackbone) -> dict[str, Any]:
    return {"kind": "image", **backbone.pre.to_dict()}


def text_record(backbone: TextBackbone, tokenizer: Any, stage: Path) -> dict[str, Any]:
    """Writes ``tokenizer.json`` (the fast tokenizer's own serialisation) and describes how it is called."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"'backbone': {backbone.info.name} has a slow (Python) tokenizer "
                          f"({type(tokenizer).__name__}); an ONNX export needs a fast one (tokenizer.json).",
                          hint="fit the run with a backbone that ships a tokenizer.json.")
    backend.save(str(stage / TOKENIZER_FILE))
    return {"kind": "text", "tokenizer": TOKENIZER_FILE, "max_length": int(backbone.max_length),
            "pad_id": int(tokenizer.pad_token_id or 0), "padding_side": getattr(tokenizer, "padding_side", "right"),
            "truncation_side": getattr(tokenizer, "truncation_side", "right"), "pooling": "mean"}


def audio_record(backbone: AudioBackbone, stage: Path) -> dict[str, Any]:
    """Sample rate, window and long-clip rule; Whisper's log-mel settings and filter bank, or the per-window
    waveform normalisation of Wav2Vec2-style models."""
    rec: dict[str, Any] = {"kind": "audio", "sample_rate": backbone.rate, "window_s": backbone.window_s,
                           "long": backbone.long, "channels": "mean of channels",
                           "resampling": "scipy.signal.resample_poly", "normalise": backbone._normalise,
                           "log_mel": backbone.whisper}
    if backbone.whisper:
        fe = backbone.feature_extractor
        np.save(stage / MEL_FILTERS_FILE, np.asarray(fe.mel_filters, dtype=np.float64), allow_pickle=False)
        rec |= {"n_fft": int(fe.n_fft), "hop_length": int(fe.hop_length), "n_mels": int(fe.feature_size),
                "mel_filters": MEL_FILTERS_FILE}
    return rec


def record(backbone: Backbone, stage: Path, tokenizer: Any = None) -> dict[str, Any]:
    """The preprocessing record of ``backbone`` (writing its files into ``stage``)."""
    if isinstance(backbone, ImageBackbone):
        return image_record(backbone)
    if isinstance(backbone, TextBackbone):
        return text_record(backbone, tokenizer or backbone.tokenizer, stage)
    if isinstance(backbone, AudioBackbone):
        return audio_record(backbone, stage)
    raise ConfigError(f"'format': onnx export does not support {type(backbone).__name__} backbones.",
                      hint="image, text and audio classifiers and NER runs can be exported.")
