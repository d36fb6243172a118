"""The audio window from the clip lengths, read from the file headers."""

from __future__ import annotations

import graftwork
from graftwork.data.audio_window import MAX_WINDOW_S, data_window, window_for


def test_window_follows_the_clip_lengths(tmp_path, tone):
    paths = [str(tone(tmp_path / f"k{i}.wav", 440.0, seconds=s, rate=8000))
             for i, s in enumerate([0.5, 0.8, 0.9, 1.3] + [0.7] * 16)]
    found = data_window(paths)
    assert found is not None and found.clips == 20
    assert found.seconds == 1.0  # the 95th percentile (0.92 s) rounded up to a whole second
    longer = [str(tone(tmp_path / f"l{i}.flac", 300.0, seconds=2.4, rate=16000)) for i in range(3)]
    assert data_window(longer).seconds == 3.0
    assert window_for([0.2, 0.3]) == 1.0  # at least a second
    assert window_for([120.0]) == MAX_WINDOW_S  # capped
    assert data_window([str(tmp_path / "missing.wav")]) is None


def test_fit_without_audio_window_uses_the_data_window_and_says_so(tmp_path, tone, tiny_whisper):
    folder = tmp_path / "tones"
    for label, freq in (("low", 300.0), ("high", 2500.0)):
        for i in range(6):
            tone(folder / label / f"{label}_{i}.wav", freq + 10 * i, seconds=0.5 + 0.25 * i, seed=i)
    model = graftwork.fit(folder, backbone=str(tiny_whisper), strategy="frozen")
    assert model.backbone.preprocessing["window_s"] == 2.0  # clips of 0.5-1.75 s: 95th percentile 1.69 s
    assert "from the clip lengths" in model.config["plan"]["details"]["audio window"]
    given = graftwork.fit(folder, backbone=str(tiny_whisper), strategy="frozen", audio_window=3.0)
    assert given.backbone.preprocessing["window_s"] == 3.0 and "audio window" not in given.config["plan"]["details"]
