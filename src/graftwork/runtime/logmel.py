"""Whisper's log-mel spectrogram in numpy (Radford et al. 2022, section 2.2), for the light runtime.

The same computation as transformers' ``WhisperFeatureExtractor`` (whose PyTorch path the run used): a
centred short-time Fourier transform with a periodic Hann window (reflect padding), power spectrum without the
last frame, the extractor's own mel filter bank (saved with the export, so no filter design is re-derived
here), ``log10`` floored at 1e-10, clipped to 8 below the maximum, then ``(x + 4) / 4``. Computing it outside the
graph keeps ``model.onnx`` to the network and lets the runtime work on any number of windows; the export's
parity check covers the difference to the PyTorch path (float rounding: about 1e-6).
"""

from __future__ import annotations

import numpy as np


class LogMel:
    """``[samples]`` float waveform → ``[n_mels, frames]`` float32 log-mel features."""

    def __init__(self, mel_filters: np.ndarray, n_fft: int, hop_length: int):
        self.filters = np.asarray(mel_filters, dtype=np.float64)  # [n_fft // 2 + 1, n_mels]
        self.n_fft, self.hop = n_fft, hop_length
        n = np.arange(n_fft)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann, torch.hann_window's default

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        half = self.n_fft // 2
        x = np.pad(np.asarray(samples, dtype=np.float64), half, mode="reflect")
        n_frames = 1 + (len(x) - self.n_fft) // self.hop
        frames = np.lib.stride_tricks.as_strided(x, (n_frames, self.n_fft), (x.strides[0] * self.hop, x.strides[0]))
        power = np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2  # [frames, bins]
        mel = power[:-1] @ self.filters  # [frames - 1, n_mels]
        log = np.log10(np.maximum(mel, 1e-10))
        log = np.maximum(log, log.max() - 8.0)
        return ((log + 4.0) / 4.0).T.astype(np.float32)
