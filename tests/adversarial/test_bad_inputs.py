"""Bad or extreme inputs get a clear answer, never a crash, a silent drop or memory in proportion to the file.

Audio longer than the limit (refused from its header, nothing decoded), long clips (read block by block, cropped
clips read only at their centre, windows encoded in slices, features unchanged), 16-bit and float images (no
float64 frame), decompression bombs (refused with the file and its pixel count), a 200K-character CSV cell, and
the feature cache (streamed hashing, a key that follows the tokenizer files and the schema, a damaged database
set aside and rebuilt).
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import graftwork
from graftwork.backbones import audio as audio_backbone
from graftwork.backbones import base as backbone_base
from graftwork.backbones import build_backbone
from graftwork.cli.main import main
from graftwork.data import load_data, load_image
from graftwork.data.audio import AudioTooLongError, load_audio, load_centre, resample, windows
from graftwork.data.images import ImageDecodeError
from graftwork.data.text import read_texts
from graftwork.errors import DataError
from graftwork.features import FeatureCache, extract_features
from graftwork.features.cache import CacheWarning, content_key

from ..conftest import make_image_folder, make_tone_folder, write_csv, write_tone

IMAGE_SETTINGS = {"backbone": "timm:test_efficientnet", "pretrained": False, "strategy": "frozen"}


def peak_bytes(fn):
    """``fn()``'s result (or the exception it raised) and the peak of Python and numpy allocations meanwhile."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - the caller checks what was raised
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def write_long_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> Path:
    """A long clip, cheap to write: 16-bit PCM with a quiet tone (not silent, so it is a valid example)."""
    n = int(seconds * rate)
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)
    sf.write(str(path), np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone, rate,
             subtype="PCM_16")
    return path


# -- audio -----------------------------------------------------------------------------------------------------

def test_clip_over_the_limit_is_refused_from_its_header_without_decoding(tmp_path):
    clip = write_long_wav(tmp_path / "meeting.wav", seconds=300)  # 5 min at 8 kHz: 2.4 M samples
    error, peak = peak_bytes(lambda: load_audio(clip, max_seconds=60, block_frames=4096))
    assert isinstance(error, AudioTooLongError)
    message = str(error)
    assert "5 min" in message and "1 min" in message and "--max-audio-seconds" in message
    assert peak < 1_000_000, f"{peak} bytes allocated: the clip (9.6 MB as float32) must not be decoded"
    assert load_audio(clip, max_seconds=None).seconds == pytest.approx(300)  # no limit: read whole


def test_fit_names_the_long_clip_and_the_cli_exits_2(tmp_path, tiny_whisper, capsys):
    data = make_tone_folder(tmp_path / "tones", per_class=4)
    long_clip = write_long_wav(data / "low" / "lecture.wav", seconds=90)
    settings = {"backbone": str(tiny_whisper), "pretrained": False, "strategy": "frozen", "audio_window": 0.5}
    with pytest.raises(DataError) as info:
        graftwork.fit(data, max_audio_seconds=60, **settings)
    assert str(long_clip) in str(info.value) and "1 min 30 s" in str(info.value)
    model = graftwork.fit(data, max_audio_seconds=60, skip_bad_files=True, **settings)  # the rest still trains
    assert any(str(long_clip) in s for s in model.metrics["data"]["skipped"])
    status = main(["fit", str(data), "--out", str(tmp_path / "run"), "--backbone", str(tiny_whisper), "--strategy",
                   "frozen", "--no-pretrained", "--audio-window", "0.5", "--max-audio-seconds", "60", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "lecture.wav" in err and "Traceback" not in err
    assert graftwork.fit(data, max_audio_seconds=120, **settings).classes == ["high", "low"]  # a higher limit


def test_decoding_reads_blocks_not_the_whole_multichannel_clip(tmp_path):
    clip = write_long_wav(tmp_path / "four.wav", seconds=60, rate=16000, channels=4)
    wave, peak = peak_bytes(lambda: load_audio(clip, block_frames=4096))
    mono_bytes = wave.samples.nbytes  # 3.84 MB; the whole clip as float32 would be 4x that
    assert peak < 1.5 * mono_bytes, f"peak {peak} bytes for a {mono_bytes}-byte result"
    whole, _ = sf.read(str(clip), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(wave.samples, whole.mean(axis=1))


@pytest.mark.parametrize("rate", [44100, 22050, 16000, 8000])
def test_centre_read_equals_cropping_the_whole_resampled_clip(tmp_path, rate):
    clip = write_tone(tmp_path / "c.flac", 700.0, seconds=20.3, rate=rate)
    whole = windows(resample(load_audio(clip), 16000).samples, 16000, "crop")[0]
    centre, peak = peak_bytes(lambda: load_centre(clip, 16000, 16000, block_frames=2048))
    np.testing.assert_allclose(centre.samples, whole, atol=1e-6)
    # decoding the whole clip takes 4 bytes a sample, resampling it 8 more: 12 bytes x 20 s; the centre, ~1 s
    assert centre.rate == 16000 and len(centre.samples) == 16000 and peak < 12 * rate * 20.3 / 4
    short = write_tone(tmp_path / "s.wav", 700.0, seconds=0.4, rate=rate)  # shorter than the window: whole clip
    np.testing.assert_array_equal(load_centre(short, 16000, 16000).samples, load_audio(short).samples)


@pytest.mark.parametrize("long", ["split", "crop"])
def test_windowed_features_equal_the_whole_clip_path(tmp_path, tiny_whisper, monkeypatch, long):
    backbone = build_backbone(str(tiny_whisper), pretrained=False, audio_window=0.1, audio_long=long)
    short = str(write_tone(tmp_path / "short.wav", 500.0, seconds=0.08, rate=22050))
    longer = str(write_tone(tmp_path / "long.wav", 900.0, seconds=2.55, rate=44100, seed=1))  # 26 windows
    items = [short, longer, short]
    ext = extract_features(backbone, "audio", items, items, cache=None, batch_size=3)
    # the path before slicing and partial reads: decode everything, crop or split, all windows at once
    monkeypatch.setattr(audio_backbone, "WINDOWS_PER_PASS", 10**6)
    with torch.inference_mode():
        batch = backbone.collate([backbone.prepare(load_audio(p, max_seconds=None)) for p in items])
        reference = backbone(batch).numpy()
    np.testing.assert_allclose(ext.features, reference, atol=1e-5, rtol=1e-4)
    np.testing.assert_array_equal(ext.features[0], ext.features[2])  # a clip's features do not depend on its batch


def test_audio_limit_is_kept_out_of_the_cache_key_and_saved_with_the_run(tiny_whisper, tmp_path):
    torch.manual_seed(0)
    a = build_backbone(str(tiny_whisper), pretrained=False, audio_window=0.5, audio_max_seconds=60)
    torch.manual_seed(0)  # the same random weights
    b = build_backbone(str(tiny_whisper), pretrained=False, audio_window=0.5)
    assert a.max_seconds == 60 and b.max_seconds == 600
    assert a.cache_key() == b.cache_key()  # the limit decides which clips are read, not their features
    assert audio_backbone.options_from_preprocessing(a.preprocessing)["audio_max_seconds"] == 60


# -- images ----------------------------------------------------------------------------------------------------

def test_16_bit_png_loads_to_8_bits_without_a_float64_frame(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 1000).astype(np.uint16), (1000, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image, peak = peak_bytes(lambda: load_image(tmp_path / "deep.png"))
    pixels = np.asarray(image)
    assert image.mode == "RGB" and pixels[..., 0].min() == 0 and pixels[..., 0].max() == 255
    np.testing.assert_array_equal(pixels[0, :, 1], ramp[0] // 257)  # grey: all channels equal, value // 257
    assert peak < 8 * ramp.size, f"peak {peak} bytes: a float64 copy of the frame alone is {8 * ramp.size}"


def test_float_tiff_loads_with_its_range_stretched(tmp_path):
    values = np.tile(np.linspace(-1.0, 3.0, 800, dtype=np.float32), (800, 1))
    values[0, 0], values[0, 1] = np.nan, np.inf
    Image.fromarray(values, "F").save(tmp_path / "depth.tif")
    image, peak = peak_bytes(lambda: load_image(tmp_path / "depth.tif"))
    pixels = np.asarray(image)[..., 0].astype(int)
    assert pixels[1].min() == 0 and pixels[1].max() == 255  # -1 -> 0, 3 -> 255
    assert np.all(np.diff(pixels[1]) >= 0) and pixels[1, 400] == pytest.approx(127, abs=1)
    assert pixels[0, 0] == 0 and pixels[0, 1] == 0  # NaN and infinity: the bottom of the range, not garbage
    assert peak < 12 * values.size, f"peak {peak} bytes: the file's bytes and a float64 frame are 12 per pixel"


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A 1-bit greyscale PNG whose header claims ``width`` x ``height``: a few hundred bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = zlib.compress(row * 4)  # a few rows only: nothing must ever try to decode the rest
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [10_000, 30_000])  # 1.1x PIL's limit (it only warns), 10x (it refuses)
def test_decompression_bomb_is_refused_with_the_file_and_its_pixel_count(tmp_path, side):
    bomb = png_bomb(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImageDecodeError) as info:
        load_image(bomb)
    assert f"{side * side:,} pixels" in str(info.value) and "decompression bomb" in str(info.value)

    data = make_image_folder(tmp_path / "imgs", per_class=4)
    shutil.copy(bomb, data / "red" / "huge.png")
    with pytest.raises(DataError) as fit_error:
        graftwork.fit(data, **IMAGE_SETTINGS)
    assert str(data / "red" / "huge.png") in str(fit_error.value) and f"{side * side:,}" in str(fit_error.value)
    (data / "red" / "huge.png").unlink()
    model = graftwork.fit(data, **IMAGE_SETTINGS)
    with pytest.raises(DataError) as predict_error:
        model.predict([str(bomb)])
    assert str(bomb) in str(predict_error.value) and "decompression bomb" in str(predict_error.value)
    shutil.copy(bomb, data / "blue" / "huge.png")
    with pytest.raises(DataError) as evaluate_error:
        model.evaluate(data)
    assert "huge.png" in str(evaluate_error.value)


# -- CSV -------------------------------------------------------------------------------------------------------

def test_csv_cell_of_200k_characters_is_read_like_any_text(tmp_path):
    long_text = ("a very long review " * 11_000)[:200_000]
    rows = [(long_text, "pos"), ("short and fine", "neg"), ("another one", "pos"), ("and more", "neg")]
    path = write_csv(tmp_path / "reviews.csv", rows)
    splits = load_data(path)
    assert splits.train.items[0] == long_text and splits.train.labels == ["pos", "neg", "pos", "neg"]
    assert read_texts(path)[0] == long_text  # the prediction path reads it too


def test_unclosed_quote_is_still_named_now_that_fields_may_be_long(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\nok,a\n"never closed,b\n' + "x" * 300_000 + ",a\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_data(path)
    assert f"{path}:3" in str(info.value) and "never closed" in str(info.value)


# -- feature cache ---------------------------------------------------------------------------------------------

def test_content_key_streams_the_file(tmp_path):
    big = tmp_path / "big.wav"
    big.write_bytes(np.random.default_rng(0).bytes(16_000_000))
    key, peak = peak_bytes(lambda: content_key("audio", str(big)))
    assert key == hashlib.sha256(big.read_bytes()).hexdigest()
    assert peak < 3_000_000, f"{peak} bytes to hash a 16 MB file: it must be read in chunks"


def damage(path: Path, how: str) -> None:
    if how == "not a database":
        path.write_bytes(b"these bytes are not an SQLite database " * 200)
    else:  # a valid header, the pages behind it overwritten
        data = bytearray(path.read_bytes())
        data[100:] = b"\xa5" * (len(data) - 100)
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["not a database", "malformed pages"])
def test_damaged_cache_is_set_aside_rebuilt_and_used_again(image_folder, count_forwards, how):
    graftwork.fit(image_folder, **IMAGE_SETTINGS)
    assert count_forwards["examples"] == 16
    [db] = (Path(graftwork.features.default_cache_dir()) / "features").glob("*.sqlite")
    gc.collect()  # the damage happens between runs: no connection of the first fit may still be open
    FeatureCache(db.parent.parent, db.stem).close()  # the last connection checkpoints the WAL into the file
    assert not list(db.parent.glob(f"{db.name}-*")), "the cache must be one file once closed"
    damage(db, how)
    damaged = db.read_bytes()
    with pytest.warns(CacheWarning, match="moved it to"):
        graftwork.fit(image_folder, **IMAGE_SETTINGS)
    assert count_forwards["examples"] == 32  # recomputed
    [kept] = db.parent.glob(f"{db.name}.corrupt-*")
    assert kept.read_bytes() == damaged  # set aside byte for byte, never deleted
    graftwork.fit(image_folder, **IMAGE_SETTINGS)
    assert count_forwards["examples"] == 32, "the third fit must use the rebuilt cache"


def edit_vocab(folder: Path) -> None:
    """Swap the ids of two words in the tokenizer's files: same weights, different token ids."""
    spec = json.loads((folder / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["apple"], vocab["banana"] = vocab["banana"], vocab["apple"]
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    if (folder / "vocab.txt").is_file():
        lines = (folder / "vocab.txt").read_text().splitlines()
        i, j = lines.index("apple"), lines.index("banana")
        lines[i], lines[j] = lines[j], lines[i]
        (folder / "vocab.txt").write_text("\n".join(lines) + "\n")


def test_cache_key_follows_the_tokenizer_files_and_the_schema(tiny_bert, tmp_path, monkeypatch):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_bert, folder)
    before = build_backbone(str(folder))
    edit_vocab(folder)
    after = build_backbone(str(folder))
    assert after.info.fingerprint == before.info.fingerprint  # the weights did not change ...
    assert after.tokenizer("apple")["input_ids"] != before.tokenizer("apple")["input_ids"]  # ... the tokens did
    assert after.cache_key() != before.cache_key()
    assert build_backbone(str(folder)).cache_key() == after.cache_key()  # and the key is stable
    key = after.cache_key()
    monkeypatch.setattr(backbone_base, "FEATURE_CACHE_SCHEMA", backbone_base.FEATURE_CACHE_SCHEMA + 1)
    assert after.cache_key() != key
    monkeypatch.setattr(type(after), "preprocessing_code", after.preprocessing_code + 1)
    monkeypatch.setattr(backbone_base, "FEATURE_CACHE_SCHEMA", backbone_base.FEATURE_CACHE_SCHEMA - 1)
    assert after.cache_key() != key  # the preprocessing code's version too

