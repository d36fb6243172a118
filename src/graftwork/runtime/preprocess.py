"""The export's preprocessing in numpy: what each backbone's ``prepare``/``collate`` computes, without torch.

Each class is built from the manifest's ``preprocessing`` record and reproduces the PyTorch path of the run
(the parity check at export time measures the whole pipeline, so a difference here would fail the export):

* images: resize the shorter side with PIL, centre crop, scale to [0, 1], normalise (``ImageBackbone``);
* text: the run's own tokenizer (``tokenizer.json`` through the ``tokenizers`` library), truncated to the
  run's ``max_length`` and padded to the longest text of the batch (``TextBackbone.collate``);
* audio: mono, resampled (``scipy.signal.resample_poly``), cut into the run's windows, zero-padded, then the
  waveform normalised per window (Wav2Vec2-style) or Whisper's log-mel spectrogram (:mod:`.logmel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.audio import Waveform, resample, windows
from ..data.images import resized_centre_crop
from ..errors import RunFolderError
from .logmel import LogMel
from .manifest import MEL_FILTERS_FILE, TOKENIZER_FILE

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST}


class ImagePre:
    """Resize the shorter side (torchvision's rounding), centre crop, scale to [0, 1], normalise: ``[3, crop,
    crop]`` float32 from an RGB PIL image."""

    def __init__(self, pre: dict[str, Any]):
        self.resize, self.crop = int(pre["resize"]), int(pre["crop"])
        self.resample = _RESAMPLE[pre.get("interpolation", "bilinear")]
        self.mean = np.asarray(pre["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(pre["std"], dtype=np.float32).reshape(3, 1, 1)

    def __call__(self, image: Image.Image) -> np.ndarray:
        x = np.asarray(resized_centre_crop(image, self.resize, self.crop, self.resample), dtype=np.uint8)
        x = x.transpose(2, 0, 1).astype(np.float32) * np.float32(1.0 / 255)
        return (x - self.mean) / self.std


def load_tokenizer(folder: Path, pre: dict[str, Any]) -> Any:
    """The run's tokenizer from the export's ``tokenizer.json``, truncating to ``max_length``."""
    from tokenizers import Tokenizer

    file = folder / TOKENIZER_FILE
    if not file.is_file():
        raise RunFolderError(f"{folder}: the export has no {TOKENIZER_FILE}.", hint="export the run again.")
    tok = Tokenizer.from_file(str(file))
    tok.no_padding()
    tok.enable_truncation(int(pre["max_length"]), direction=pre.get("truncation_side", "right"))
    return tok


class TextPre:
    """Texts to the graph's inputs (``input_ids``, ``attention_mask``, ...), padded to the batch's longest."""

    def __init__(self, folder: Path, pre: dict[str, Any], input_names: list[str]):
        self.tokenizer = load_tokenizer(folder, pre)
        self.pad_id = int(pre.get("pad_id", 0))
        self.left = pre.get("padding_side") == "left"
        self.input_names = input_names

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts)]

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        encs = self.tokenizer.encode_batch(texts)
        return pad_encodings(encs, self.pad_id, self.input_names, left=self.left)


def pad_encodings(encs: list[Any], pad_id: int, input_names: list[str], *, left: bool = False
                  ) -> dict[str, np.ndarray]:
    """``tokenizers`` encodings as padded int64 arrays (on the right, or the left as the run's tokenizer
    pads), named as the graph's inputs."""
    n, width = len(encs), max((len(e.ids) for e in encs), default=0)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64)
    for i, e in enumerate(encs):
        k = len(e.ids)
        at = slice(width - k, width) if left else slice(0, k)
        ids[i, at], mask[i, at], types[i, at] = e.ids, e.attention_mask, e.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: arrays[name] for name in input_names}


class AudioPre:
    """A clip to its windows: ``values`` ``[windows, samples]`` (or ``[windows, mels, frames]`` for Whisper) and
    ``lengths`` (samples of audio in each window)."""

    def __init__(self, folder: Path, pre: dict[str, Any]):
        self.rate = int(pre["sample_rate"])
        self.window = int(round(float(pre["window_s"]) * self.rate))
        self.long = pre.get("long", "split")
        self.normalise = bool(pre.get("normalise", False))
        self.logmel = LogMel(np.load(folder / MEL_FILTERS_FILE, allow_pickle=False), int(pre["n_fft"]),
                             int(pre["hop_length"])) if pre.get("log_mel") else None

    def __call__(self, wave: Waveform) -> tuple[np.ndarray, np.ndarray]:
        pieces = windows(resample(wave, self.rate).samples, self.window, self.long)
        padded = np.zeros((len(pieces), self.window), dtype=np.float32)
        for i, p in enumerate(pieces):
            if self.normalise:  # zero mean, unit variance over the audio, as Wav2Vec2FeatureExtractor does
                p = (p - p.mean()) / np.sqrt(p.var() + 1e-7)
            padded[i, :len(p)] = p
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        values = np.stack([self.logmel(x) for x in padded]) if self.logmel is not None else padded
        return values.astype(np.float32), lengths
