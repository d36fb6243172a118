"""Audio files: decoding any sample rate and channel count into mono float32, and resampling.

Decoding is libsndfile's (through ``soundfile``): WAV, FLAC, OGG/Vorbis, and MP3 where libsndfile was built with
it (1.1+). Multichannel audio is downmixed by averaging the channels, the usual choice of speech toolkits (it keeps
a voice recorded on one channel of two at half amplitude, which the backbones' normalisation absorbs).
Resampling is a polyphase filter (``scipy.signal.resample_poly``): exact rational ratios (44.1 kHz -> 16 kHz is
160/441) with a Kaiser-windowed anti-aliasing filter, so content above the new Nyquist frequency is removed
rather than folded back as noise.

Files that cannot serve as examples raise :class:`AudioDecodeError` with the reason: empty, truncated (a header
promising more samples than the file holds), undecodable, or silent (digital silence carries no label).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from .dataset import DecodeError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3"}
SILENCE_PEAK = 1e-4  # -80 dBFS: below any real recording's noise floor, above rounding noise of digital silence


class AudioDecodeError(DecodeError):
    """An audio file that cannot be used as an example; the message says why."""


@dataclass
class Waveform:
    """Mono samples in [-1, 1] and their sample rate."""

    samples: np.ndarray  # float32 [n]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def _wav_truncated(path: Path) -> str | None:
    """For a RIFF/WAVE file whose ``data`` chunk claims more bytes than the file holds, the reason; else None.

    libsndfile silently reads what is there, so a half-copied file would otherwise train as a shorter clip.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(4) != b"RIFF" or f.read(8)[4:] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                if length not in (0, 0xFFFFFFFF) and pos + 8 + length > size:  # 0/0xFFFFFFFF: streamed, unknown
                    return f"truncated: the header promises {length} bytes of samples, the file holds {size - pos - 8}"
                return None
            pos += 8 + length + (length & 1)
    return None


def load_audio(path: str | Path) -> Waveform:
    """Decode an audio file into a mono :class:`Waveform` at its own sample rate."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError("file not found")
    if path.stat().st_size == 0:
        raise AudioDecodeError("empty file (0 bytes)")
    try:
        if reason := _wav_truncated(path):
            raise AudioDecodeError(reason)
        with sf.SoundFile(str(path)) as f:
            promised, rate = f.frames, int(f.samplerate)
            data = f.read(dtype="float32", always_2d=True)
    except sf.SoundFileError as e:
        raise AudioDecodeError(f"cannot decode as audio (corrupt, truncated, or not {_formats()}): {e}") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise AudioDecodeError(f"cannot decode: {e}") from None
    if len(data) == 0:
        raise AudioDecodeError("no samples (0-length audio)")
    if 0 < promised < 2**62 and len(data) < 0.99 * promised:  # libsndfile reports 2**63-1 when it cannot know
        raise AudioDecodeError(f"truncated: {len(data)} of {promised} samples could be decoded")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("samples contain NaN or infinity")
    peak = float(np.abs(mono).max())
    if peak < SILENCE_PEAK:
        raise AudioDecodeError(f"silent (peak amplitude {peak:.1e}, below -80 dBFS)")
    return Waveform(np.ascontiguousarray(mono, dtype=np.float32), rate)


def _formats() -> str:
    return "/".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS))


def resample(wave: Waveform, rate: int) -> Waveform:
    """The same sound at ``rate`` samples per second (polyphase filtering with an anti-aliasing low-pass)."""
    if wave.rate == rate:
        return wave
    from scipy.signal import resample_poly

    g = gcd(int(wave.rate), int(rate))
    out = resample_poly(wave.samples.astype(np.float64), rate // g, wave.rate // g)
    return Waveform(out.astype(np.float32), rate)


def windows(samples: np.ndarray, size: int, long: str) -> list[np.ndarray]:
    """Cut a clip into the pieces a backbone sees: at most ``size`` samples each.

    ``crop`` keeps the centre ``size`` samples of a longer clip; ``split`` covers the whole clip with
    ``ceil(n / size)`` windows, the last one aligned to the clip's end (overlapping its neighbour rather than
    being a near-empty sliver). A clip no longer than ``size`` is one window either way (padded later).
    """
    n = len(samples)
    if n <= size:
        return [samples]
    if long == "crop":
        start = (n - size) // 2
        return [samples[start:start + size]]
    starts = list(range(0, n - size, size)) + [n - size]
    return [samples[s:s + size] for s in starts]
