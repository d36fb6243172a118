"""Audio files: decoding any sample rate and channel count into mono float32, and resampling.

Decoding is libsndfile's (through ``soundfile``): WAV, FLAC, OGG/Vorbis, and MP3 where libsndfile was built with
it (1.1+). Multichannel audio is downmixed by averaging the channels, the usual choice of speech toolkits (it keeps
a voice recorded on one channel of two at half amplitude, which the backbones' normalisation absorbs).
Resampling is a polyphase filter (``scipy.signal.resample_poly``): exact rational ratios (44.1 kHz -> 16 kHz is
160/441) with a Kaiser-windowed anti-aliasing filter, so content above the new Nyquist frequency is removed
rather than folded back as noise.

Files that cannot serve as examples raise :class:`AudioDecodeError` with the reason: empty, truncated (a header
promising more samples than the file holds), undecodable, silent (digital silence carries no label), or longer
than the limit (``max_audio_seconds``, 10 minutes by default), which is checked from the header before anything
is decoded. Decoding reads a block of frames at a time, and a cropped clip reads only the frames of its centre
(:func:`load_centre`), so memory follows the audio kept, not the file's length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import DecodeError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3"}
SILENCE_PEAK = 1e-4  # -80 dBFS: below any real recording's noise floor, above rounding noise of digital silence
DEFAULT_MAX_SECONDS = 600.0  # 10 minutes: longer files are rarely one example, and decoding them costs memory
READ_BLOCK_FRAMES = 1 << 16  # frames decoded per read: 4 s at 16 kHz, a few MB even for multichannel audio
_UNKNOWN_FRAMES = 2**62  # libsndfile reports 2**63-1 frames when the header does not give the length


class AudioDecodeError(DecodeError):
    """An audio file that cannot be used as an example; the message says why."""


class AudioTooLongError(AudioDecodeError):
    """A clip longer than the decoding limit (``max_audio_seconds``), refused before it is decoded."""


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


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError("file not found")
    if path.stat().st_size == 0:
        raise AudioDecodeError("empty file (0 bytes)")
    return path


def audio_length(path: str | Path) -> tuple[int, int]:
    """``(frames, sample rate)`` from the file's header, without decoding it; frames is -1 when the header does not
    say (some streamed formats)."""
    import soundfile as sf

    try:
        info = sf.info(str(_existing(path)))
    except sf.SoundFileError as e:
        raise AudioDecodeError(f"cannot decode as audio (corrupt, truncated, or not {_formats()}): {e}") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise AudioDecodeError(f"cannot decode: {e}") from None
    frames = int(info.frames)
    return (frames if 0 < frames < _UNKNOWN_FRAMES else -1), int(info.samplerate)


def load_audio(path: str | Path, *, max_seconds: float | None = DEFAULT_MAX_SECONDS, start: int = 0,
               frames: int | None = None, block_frames: int = READ_BLOCK_FRAMES) -> Waveform:
    """Decode an audio file (or ``frames`` frames of it from ``start``) into a mono :class:`Waveform` at its own rate.

    A clip longer than ``max_seconds`` (None: no limit) is refused from its header, before any sample is decoded
    (:class:`AudioTooLongError`); a file whose header does not say is refused as soon as the decoded part passes
    the limit. Samples are read ``block_frames`` at a time and downmixed block by block, so decoding needs the
    mono result and one block, never the whole multichannel clip at once.
    """
    import soundfile as sf

    path = _existing(path)
    try:
        with sf.SoundFile(str(path)) as f:
            promised, rate = int(f.frames), int(f.samplerate)
            known = 0 < promised < _UNKNOWN_FRAMES
            if known and max_seconds is not None:
                check_length(promised / rate, max_seconds)  # before the truncation scan: it reads the file
            if reason := _wav_truncated(path):
                raise AudioDecodeError(reason)
            if start:
                f.seek(start)
            want = min(frames if frames is not None else promised, promised - start) if known else frames
            mono = _read_mono(f, want, max_seconds, max(1, int(block_frames)))
    except sf.SoundFileError as e:
        raise AudioDecodeError(f"cannot decode as audio (corrupt, truncated, or not {_formats()}): {e}") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise AudioDecodeError(f"cannot decode: {e}") from None
    if len(mono) == 0:
        raise AudioDecodeError("no samples (0-length audio)")
    if want is not None and want > 0 and len(mono) < 0.99 * want:
        raise AudioDecodeError(f"truncated: {start + len(mono)} of {start + want} samples could be decoded")
    if not np.isfinite(mono.sum(dtype=np.float64)):  # NaN or infinity anywhere makes the sum so; no copy
        raise AudioDecodeError("samples contain NaN or infinity")
    peak = max(float(mono.max()), -float(mono.min()))
    if peak < SILENCE_PEAK:
        part = "" if start == 0 and frames is None else " in the part read"
        raise AudioDecodeError(f"silent{part} (peak amplitude {peak:.1e}, below -80 dBFS)")
    return Waveform(mono, rate)


def check_length(seconds: float, max_seconds: float) -> None:
    """Refuse a clip longer than the limit, saying both and what to do."""
    if seconds > max_seconds:
        raise AudioTooLongError(
            f"{_duration(seconds)} long, above the limit of {_duration(max_seconds)} per clip; cut it into "
            f"shorter clips, or raise the limit (--max-audio-seconds, now {max_seconds:g})")


def _read_mono(f: Any, want: int | None, max_seconds: float | None, block: int) -> np.ndarray:
    """Up to ``want`` frames (None: to the end) of an open SoundFile, downmixed to mono block by block."""
    limit = None if max_seconds is None else int(max_seconds * f.samplerate)
    out = np.empty(want, dtype=np.float32) if want is not None else None
    parts: list[np.ndarray] = []
    done = 0
    while want is None or done < want:
        n = block if want is None else min(block, want - done)
        data = f.read(n, dtype="float32", always_2d=True)
        if len(data) == 0:
            break
        mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        if out is not None:
            out[done:done + len(mono)] = mono
        else:
            parts.append(mono.copy())
        done += len(mono)
        if limit is not None and max_seconds is not None and done > limit:  # a header without the length
            check_length(done / f.samplerate, max_seconds)
    if out is not None:
        return out[:done]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def load_centre(path: str | Path, rate: int, size: int, *, max_seconds: float | None = DEFAULT_MAX_SECONDS,
                block_frames: int = READ_BLOCK_FRAMES) -> Waveform:
    """The centre ``size`` samples of a clip at ``rate``, reading only the frames they come from.

    The same samples as ``windows(resample(load_audio(path), rate).samples, size, "crop")[0]``: the span read
    starts on the resampler's period (so the output grid is the whole clip's) and reaches past the anti-aliasing
    filter's half-length on both sides (so no output sample sees the span's edge). A clip no longer than
    ``size`` samples at ``rate`` is returned whole, at its own rate.
    """
    frames, own = audio_length(path)
    if frames < 0:
        return load_audio(path, max_seconds=max_seconds, block_frames=block_frames)
    if max_seconds is not None:
        check_length(frames / own, max_seconds)
    g = gcd(own, int(rate))
    up, down = int(rate) // g, own // g
    n_out = -(-frames * up // down)
    if n_out <= size:
        return load_audio(path, max_seconds=max_seconds, block_frames=block_frames)
    first = (n_out - size) // 2  # the output samples windows(..., "crop") keeps
    margin = -(-10 * max(up, down) // up) + 2  # resample_poly's filter half-length, in input samples
    start = max(0, (first * down // up - margin) // down * down)
    stop = min(frames, -(-(first + size) * down // up) + margin)
    part = load_audio(path, max_seconds=None, start=start, frames=stop - start, block_frames=block_frames)
    offset = first - start * up // down
    samples = resample(part, int(rate)).samples[offset:offset + size]
    if len(samples) < size:
        raise AudioDecodeError(f"truncated: the centre {size} samples could not be decoded")
    return Waveform(np.ascontiguousarray(samples), int(rate))


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
