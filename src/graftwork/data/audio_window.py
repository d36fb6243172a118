"""The audio window from the data: how many seconds a speech encoder sees at once, when the user did not say.

A backbone's own window (Whisper: 30 s) is sized for long-form speech; every shorter clip is zero-padded to it, so
1-second keywords cost 30x the compute of a 1-second window (fit on 180 such clips: 106 s with the default,
about a tenth of that with a 1-s window, BENCHMARKS.md). The window is taken from the clip lengths instead: the
95th percentile of the training clips' durations, read from the file headers (``soundfile.info``, no decoding),
rounded up to a whole second, at least 1 s and at most 30 s (each backbone then caps it at its own maximum).
Clips longer than the window are split into windows whose features are averaged (or cropped, ``--audio-long``),
so the few clips above the percentile are still used whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILE = 95
MIN_WINDOW_S = 1.0
MAX_WINDOW_S = 30.0


@dataclass
class DataWindow:
    seconds: float
    clips: int  # clips whose length could be read
    percentile_s: float

    def describe(self) -> str:
        return (f"{self.seconds:g} s, from the clip lengths ({PERCENTILE}th percentile of {self.clips} training "
                f"clips: {self.percentile_s:.2f} s, rounded up to a whole second; --audio-window sets it)")


def clip_seconds(paths: Sequence[str]) -> list[float]:
    """Durations in seconds from the file headers; files whose header cannot be read are left out (decoding
    reports them later, with the reason)."""
    import soundfile as sf

    out = []
    for p in paths:
        try:
            info = sf.info(str(p))
        except (RuntimeError, OSError, TypeError):
            continue
        if info.samplerate > 0 and info.frames > 0:
            out.append(info.frames / info.samplerate)
    return out


def window_for(seconds: Sequence[float]) -> float | None:
    """The window for clips of these durations: see the module docstring; None without any duration."""
    if not len(seconds):
        return None
    p = float(np.percentile(np.asarray(seconds, dtype=float), PERCENTILE))
    return float(min(MAX_WINDOW_S, max(MIN_WINDOW_S, math.ceil(p - 1e-9))))


def data_window(paths: Sequence[str]) -> DataWindow | None:
    """The window for the training clips at ``paths``, or None when no header could be read."""
    seconds = clip_seconds(paths)
    window = window_for(seconds)
    if window is None:
        return None
    return DataWindow(window, len(seconds), float(np.percentile(seconds, PERCENTILE)))
