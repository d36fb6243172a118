"""Speech encoders from transformers (Whisper, Wav2Vec2, HuBERT, WavLM) behind the backbone contract.

Features are the mean of the encoder's last hidden states over the frames that hold audio (padding excluded),
the pooling used for utterance-level tasks on these models (SUPERB, Yang et al. 2021). Whisper contributes its
encoder only (Radford et al. 2022); the decoder is never loaded.

**Window.** A backbone sees ``window_s`` seconds at once. Shorter clips are zero-padded to the window (so a
clip's features never depend on what else is in its batch); longer clips are either cropped to their centre
(``long="crop"``, reading only the centre's frames from the file) or cut into windows whose features are averaged
(``long="split"``, the default). Windows go through the encoder ``WINDOWS_PER_PASS`` at a time, so a batch of
long clips does not need the activations of all its windows at once. Clips longer than ``max_audio_seconds``
(10 minutes by default) are refused from their header, before decoding.
Whisper was trained on 30 s inputs and transformers' encoder insists on exactly that many frames; padding a 1 s
keyword to 30 s costs ~30x the compute. So the encoder is built with ``max_source_positions`` = the window's frame
count and the first rows of its (fixed, sinusoidal) position table: the same weights, a shorter input. The model
never saw a short input in pretraining, so features shift somewhat; BENCHMARKS.md measures the trade-off.
Wav2Vec2-style models take any length; their default window is 10 s.

**Augmentation.** None: waveforms go to the backbone as they are (SpecAugment masking of wav2vec2-style
models is switched off too), so fine-tuning and the feature cache see the same inputs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.audio import DEFAULT_MAX_SECONDS, Waveform, load_audio, load_centre, resample, windows
from ..errors import ConfigError, WeightsError
from .base import Backbone, BackboneInfo, LayerGroup
from .transformer_groups import transformer_layer_groups

AUDIO_MODEL_TYPES = {"whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat",
                     "wav2vec2-conformer", "sew", "sew-d"}
MAX_WINDOW_S = 30.0
WAV2VEC2_WINDOW_S = 10.0
WHISPER_SAMPLES_PER_FRAME = 320  # 160-sample mel hop, then the stride-2 convolution
WINDOWS_PER_PASS = 16  # windows through the encoder at once: a batch of long clips is encoded in slices this size
_FROZEN_PARAMS = ("embed_positions.weight",)  # Whisper's sinusoidal table: fixed in pretraining, kept fixed


def is_audio_config(config: Any) -> bool:
    return getattr(config, "model_type", "") in AUDIO_MODEL_TYPES


def options_from_preprocessing(pre: dict[str, Any]) -> dict[str, Any]:
    """The ``build_backbone`` keyword arguments that rebuild an audio backbone's recorded preprocessing."""
    if pre.get("kind") != "audio":
        return {}
    return {"audio_window": pre.get("window_s"), "audio_long": pre.get("long", "split"),
            "audio_max_seconds": pre.get("max_s")}


class AudioBackbone(Backbone):
    """A speech encoder giving masked-mean-pooled features of fixed-length windows, averaged per clip.

    ``max_seconds`` is the longest clip it reads (checked from the file's header, before decoding); it changes
    which clips are accepted, never their features, so it is not part of the feature cache key.
    """

    cache_neutral = ("max_s",)

    def __init__(self, encoder: nn.Module, feature_extractor: Any, info: BackboneInfo, *, whisper: bool,
                 window_s: float, long: str, use_attention_mask: bool = False,
                 max_seconds: float = DEFAULT_MAX_SECONDS):
        super().__init__()
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.info = info
        self.whisper = whisper
        self.rate = int(feature_extractor.sampling_rate)
        self.window_s = window_s
        self.window = int(round(window_s * self.rate))
        self.long = long
        self.use_attention_mask = use_attention_mask
        self.max_seconds = float(max_seconds)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"kind": "audio", "sample_rate": self.rate, "window_s": self.window_s, "long": self.long,
                "max_s": self.max_seconds,
                "channels": "mean of channels", "resampling": "scipy.signal.resample_poly",
                "input": f"log-mel, {self.feature_extractor.feature_size} bins" if self.whisper else
                "waveform" + (", normalised per window" if self._normalise else ""),
                "pooling": "mean over frames with audio, then over windows", "augmentation": "none"}

    @property
    def _normalise(self) -> bool:
        return bool(getattr(self.feature_extractor, "do_normalize", False)) and not self.whisper

    def load(self, item: str) -> Waveform:
        """A clip as :meth:`prepare` takes it; a cropped long clip reads only its centre window's frames."""
        if self.long == "crop":
            return load_centre(item, self.rate, self.window, max_seconds=self.max_seconds)
        return load_audio(item, max_seconds=self.max_seconds)

    def prepare(self, raw: Waveform) -> dict[str, torch.Tensor]:
        """A clip → its windows as model input ``[n_windows, ...]`` and the samples of audio in each."""
        samples = resample(raw, self.rate).samples
        pieces = windows(samples, self.window, self.long)
        lengths = torch.tensor([len(p) for p in pieces], dtype=torch.long)
        padded = np.zeros((len(pieces), self.window), dtype=np.float32)
        for i, p in enumerate(pieces):
            if self._normalise:  # zero mean, unit variance over the audio, as Wav2Vec2FeatureExtractor does
                p = (p - p.mean()) / np.sqrt(p.var() + 1e-7)
            padded[i, :len(p)] = p
        if self.whisper:
            mel = self.feature_extractor(list(padded), sampling_rate=self.rate, return_tensors="np",
                                         padding="max_length", max_length=self.window)["input_features"]
            return {"values": torch.from_numpy(np.asarray(mel, dtype=np.float32)), "lengths": lengths}
        return {"values": torch.from_numpy(padded), "lengths": lengths}

    def collate(self, prepared: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        counts = torch.tensor([len(p["lengths"]) for p in prepared])
        return {"values": torch.cat([p["values"] for p in prepared]),
                "lengths": torch.cat([p["lengths"] for p in prepared]),
                "owner": torch.repeat_interleave(torch.arange(len(prepared)), counts)}

    def _frames(self, lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
        if self.whisper:
            frames = torch.div(lengths + WHISPER_SAMPLES_PER_FRAME - 1, WHISPER_SAMPLES_PER_FRAME,
                               rounding_mode="floor")
        else:
            frames = self.encoder._get_feat_extract_output_lengths(lengths)  # type: ignore[operator]
        return frames.clamp(1, n_frames)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        values, lengths, owner = batch["values"], batch["lengths"], batch["owner"]
        per_window = torch.cat([self._encode(values[i:i + WINDOWS_PER_PASS], lengths[i:i + WINDOWS_PER_PASS])
                                for i in range(0, len(values), WINDOWS_PER_PASS)])
        clips = nn.functional.one_hot(owner, int(owner[-1]) + 1).T.to(per_window.dtype)  # [clips, windows]
        return (clips / clips.sum(1, keepdim=True)) @ per_window  # mean of each clip's windows

    def _encode(self, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Masked mean of the encoder's last hidden states for each of a slice of windows ``[windows, dim]``."""
        if self.whisper:
            hidden = self.encoder(input_features=values).last_hidden_state
        else:
            kwargs = {}
            if self.use_attention_mask:
                kwargs["attention_mask"] = (torch.arange(values.shape[1], device=values.device)[None]
                                            < lengths[:, None]).long()
            hidden = self.encoder(input_values=values, **kwargs).last_hidden_state
        frames = self._frames(lengths, hidden.shape[1])
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None] < frames[:, None]).unsqueeze(-1)
        mask = mask.to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)

    def layer_groups(self) -> list[LayerGroup]:
        prefix = "layers" if self.whisper else "encoder.layers"
        return transformer_layer_groups(self.encoder, prefix=prefix, skip=_FROZEN_PARAMS)


def _window(window_s: float | None, default: float, limit: float) -> float:
    """The window in seconds, a multiple of 20 ms (one Whisper encoder frame), within (0, limit]."""
    w = min(default if window_s is None else float(window_s), limit, MAX_WINDOW_S)
    if w <= 0:
        raise ConfigError(f"'audio_window' must be a number of seconds in (0, 30]. Got {window_s!r} instead.")
    return max(0.02, round(round(w / 0.02) * 0.02, 2))


def _encoder_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Whisper encoder tensors of a model folder (safetensors only), keyed as in ``WhisperEncoder``."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"{folder}: no .safetensors weights (graftwork does not load pickled checkpoints).",
                           hint="convert the checkpoint to safetensors, or use a folder that has them.")
    sd: dict[str, torch.Tensor] = {}
    for file in files:
        for key, value in load_file(str(file)).items():
            head, sep, rest = key.partition("encoder.")
            if sep and head in ("", "model."):
                sd[rest] = value.float()
    return sd


def _whisper_encoder(folder: Path, config: Any, pretrained: bool, positions: int) -> nn.Module:
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = copy.deepcopy(config)
    config.max_source_positions = positions
    encoder = WhisperEncoder(config)
    if pretrained:
        sd = _encoder_tensors(folder)
        if "embed_positions.weight" in sd:
            sd["embed_positions.weight"] = sd["embed_positions.weight"][:positions]
        missing, _ = encoder.load_state_dict(sd, strict=False)
        if missing:
            raise WeightsError(f"{folder}: the Whisper encoder weights lack {len(missing)} tensor(s), e.g. "
                               f"{missing[0]}.", hint="check that the folder holds a complete Whisper model.")
    return encoder


def build(model_id: str, folder: Path, config: Any, *, pretrained: bool, weights: str,
          audio_window: float | None = None, audio_long: str = "split",
          audio_max_seconds: float | None = None) -> AudioBackbone:
    """An :class:`AudioBackbone` for the transformers model in ``folder`` (``config`` already read from it)."""
    from transformers import (
        AutoFeatureExtractor,
        AutoModel,
        Wav2Vec2FeatureExtractor,
        WhisperFeatureExtractor,
    )

    if audio_long not in ("crop", "split"):
        raise ConfigError(f"'audio_long' must be one of crop, split. Got {audio_long!r} instead.")
    if audio_max_seconds is not None and not (isinstance(audio_max_seconds, (int, float))
                                              and not isinstance(audio_max_seconds, bool) and audio_max_seconds > 0):
        raise ConfigError(f"'max_audio_seconds' must be a number of seconds > 0. Got {audio_max_seconds!r} instead.")
    whisper = config.model_type == "whisper"
    try:
        fe = AutoFeatureExtractor.from_pretrained(str(folder))
    except (OSError, ValueError):  # no preprocessor_config.json: the library defaults are the models' own
        fe = (WhisperFeatureExtractor(feature_size=config.num_mel_bins) if whisper
              else Wav2Vec2FeatureExtractor(do_normalize=True,  # models with layer-norm convolutions take a mask
                                            return_attention_mask=getattr(config, "feat_extract_norm", "") == "layer"))
    if whisper:
        limit = config.max_source_positions * WHISPER_SAMPLES_PER_FRAME / fe.sampling_rate
        window = _window(audio_window, float(getattr(fe, "chunk_length", 30)), limit)
        positions = int(round(window * fe.sampling_rate / WHISPER_SAMPLES_PER_FRAME))
        encoder = _whisper_encoder(folder, config, pretrained, positions)
        dim = int(config.d_model)
    else:
        window = _window(audio_window, WAV2VEC2_WINDOW_S, MAX_WINDOW_S)
        config.apply_spec_augment = False  # masking is augmentation; graftwork applies none to audio
        encoder = AutoModel.from_pretrained(str(folder), config=config) if pretrained else \
            AutoModel.from_config(config)
        dim = int(config.hidden_size)
    encoder = encoder.float().eval()
    info = BackboneInfo(name=f"hf:{model_id}", source="hf", arch=config.model_type, modality="audio",
                        feature_dim=dim, pretrained=pretrained, weights=weights)
    return AudioBackbone(encoder, fe, info, whisper=whisper, window_s=window, long=audio_long,
                         use_attention_mask=bool(getattr(fe, "return_attention_mask", False)) and not whisper,
                         max_seconds=DEFAULT_MAX_SECONDS if audio_max_seconds is None else audio_max_seconds)

