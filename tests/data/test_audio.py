"""Audio decoding: any rate and channel count to mono, resampling that keeps frequencies, windows, bad files,
and audio class folders through load_data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from graftwork.data import AudioDecodeError, Waveform, load_audio, load_data
from graftwork.data.audio import resample, windows
from graftwork.errors import DataError


@pytest.fixture
def write_tone(tone):
    return tone


def dominant_frequency(wave: Waveform) -> float:
    spectrum = np.abs(np.fft.rfft(wave.samples * np.hanning(len(wave.samples))))
    return float(np.fft.rfftfreq(len(wave.samples), 1 / wave.rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate", [44100, 8000, 22050])
def test_resampling_to_16k_keeps_a_sine_at_its_frequency(tmp_path, write_tone, rate):
    wave = load_audio(write_tone(tmp_path / "tone.wav", 1000.0, seconds=1.0, rate=rate))
    assert wave.rate == rate
    out = resample(wave, 16000)
    assert out.rate == 16000 and len(out.samples) == pytest.approx(16000, abs=2)
    assert dominant_frequency(out) == pytest.approx(1000.0, abs=2.0)
    assert np.abs(out.samples).max() == pytest.approx(0.4, abs=0.05)  # amplitude kept, not filtered away


def test_resampling_removes_content_above_the_new_nyquist(tmp_path, write_tone):
    wave = load_audio(write_tone(tmp_path / "t.wav", 12000.0, seconds=1.0, rate=44100))
    out = resample(wave, 16000)  # 12 kHz > 8 kHz: must not fold back to 4 kHz
    assert np.abs(out.samples[800:-800]).max() < 0.05  # the tone (0.4) is gone; only the noise (0.01) is left


def test_stereo_is_downmixed_to_the_mean_of_its_channels(tmp_path):
    t = np.arange(16000) / 16000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 880 * t)
    sf.write(str(tmp_path / "s.flac"), np.stack([left, right], 1).astype(np.float32), 16000)
    wave = load_audio(tmp_path / "s.flac")
    assert wave.samples.ndim == 1 and wave.samples.dtype == np.float32
    np.testing.assert_allclose(wave.samples, (left + right) / 2, atol=1e-3)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_formats_decode(tmp_path, write_tone, ext):
    wave = load_audio(write_tone(tmp_path / f"t.{ext}", 500.0, seconds=0.5, rate=16000))
    assert wave.seconds == pytest.approx(0.5, abs=0.01)
    assert dominant_frequency(wave) == pytest.approx(500.0, abs=3.0)


def test_windows_crop_keeps_the_centre_and_split_covers_everything():
    x = np.arange(25, dtype=np.float32)
    assert [w.tolist() for w in windows(x, 10, "crop")] == [list(range(7, 17))]
    split = windows(x, 10, "split")
    assert [w[0] for w in split] == [0, 10, 15] and all(len(w) == 10 for w in split)
    assert len(windows(x[:7], 10, "split")) == 1 and len(windows(x[:7], 10, "split")[0]) == 7


def bad_files(root: Path, write_tone) -> dict[str, Path]:
    good = write_tone(root / "good.wav", 440.0, seconds=0.5)
    data = good.read_bytes()
    files = {"empty": root / "empty.wav", "truncated": root / "cut.wav", "undecodable": root / "junk.ogg",
             "silent": root / "quiet.wav", "header only": root / "stub.flac"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["undecodable"].write_bytes(b"this is not audio at all " * 20)
    sf.write(str(files["silent"]), np.zeros(8000, dtype=np.float32), 16000)
    flac = write_tone(root / "f.flac", 440.0, seconds=0.5).read_bytes()
    files["header only"].write_bytes(flac[:40])
    return files


@pytest.mark.parametrize("kind, reason", [("empty", "empty file"), ("truncated", "truncated"),
                                          ("undecodable", "cannot decode"), ("silent", "silent"),
                                          ("header only", "cannot decode")])
def test_bad_files_give_a_reason(tmp_path, write_tone, kind, reason):
    with pytest.raises(AudioDecodeError, match=reason):
        load_audio(bad_files(tmp_path, write_tone)[kind])


def test_audio_folder_is_audio_modality(tone_folder):
    splits = load_data(tone_folder)
    assert splits.modality == "audio" and splits.classes == ["high", "low"]
    assert len(splits.train) == 12 and all(Path(p).is_file() for p in splits.train.items)


def test_empty_audio_file_is_named_and_skippable(tone_folder):
    root = tone_folder
    (root / "low" / "zero.wav").write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_data(root)
    assert str(root / "low" / "zero.wav") in str(info.value) and "--skip-bad-files" in str(info.value)
    assert len(load_data(root, skip_bad_files=True).train) == 12


def test_folder_mixing_images_and_audio_is_refused(tone_folder):
    root = tone_folder
    Image.new("RGB", (8, 8), (10, 20, 30)).save(root / "low" / "photo.png")
    with pytest.raises(DataError, match="both audio and image") as info:
        load_data(root)
    assert "photo.png" in str(info.value)
