"""Speech backbones (tiny random Whisper and Wav2Vec2) through the contract, the CTranslate2 converter, and
audio runs end to end: frozen, gradual and full through run_fit and the CLI, saved and reloaded."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone, default_backbone
from graftwork.backbones.audio import AudioBackbone
from graftwork.backbones.whisper_ct2 import convert_folder
from graftwork.cli.main import main
from graftwork.data import load_audio
from graftwork.errors import DataError

from ..conftest import write_tone

FAST = {"audio_window": 0.5, "stage_epochs": 1, "batch_size": 12, "seed": 0}


def features(backbone: AudioBackbone, paths: list[Path]) -> torch.Tensor:
    with torch.inference_mode():
        return backbone(backbone.collate([backbone.prepare(load_audio(p)) for p in paths]))


@pytest.mark.parametrize("fixture", ["tiny_whisper", "tiny_wav2vec2"])
def test_contract(request, fixture, tmp_path):
    backbone = build_backbone(str(request.getfixturevalue(fixture)), pretrained=False, audio_window=0.5)
    assert isinstance(backbone, AudioBackbone) and backbone.modality == "audio" and backbone.feature_dim == 32
    groups = [g.name for g in backbone.layer_groups()]
    blocks = ["layers.0", "layers.1"] if fixture == "tiny_whisper" else ["encoder.layers.0", "encoder.layers.1"]
    assert groups[:3] == ["embeddings", *blocks]  # feature encoder / convolutions first, then each block
    grouped = {id(p) for g in backbone.layer_groups() for p in g.params}
    assert all(id(p) in grouped for n, p in backbone.named_parameters() if "embed_positions" not in n)
    pre = backbone.preprocessing
    assert pre["kind"] == "audio" and pre["window_s"] == 0.5 and pre["long"] == "split" and pre["sample_rate"] == 16000
    clips = [write_tone(tmp_path / f"{i}.wav", 300.0 + 500 * i, seconds=0.2 + 0.4 * i, rate=22050) for i in range(3)]
    together = features(backbone, clips)
    assert together.shape == (3, 32) and torch.isfinite(together).all()
    alone = torch.cat([features(backbone, [c]) for c in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)  # no dependence on batch neighbours


def test_whisper_encoder_is_built_for_the_window(tiny_whisper):
    backbone = build_backbone(str(tiny_whisper), pretrained=True, audio_window=1.0)
    assert backbone.encoder.embed_positions.weight.shape[0] == 50  # 20 ms per encoder frame
    full = build_backbone(str(tiny_whisper), pretrained=True)
    assert full.preprocessing["window_s"] == 30.0 and full.encoder.embed_positions.weight.shape[0] == 1500
    torch.testing.assert_close(backbone.encoder.embed_positions.weight, full.encoder.embed_positions.weight[:50])
    torch.testing.assert_close(backbone.encoder.conv1.weight, full.encoder.conv1.weight)


def test_long_clips_are_split_or_cropped(tiny_whisper, tmp_path):
    clip = write_tone(tmp_path / "long.wav", 440.0, seconds=1.3)
    split = build_backbone(str(tiny_whisper), audio_window=0.5)
    crop = build_backbone(str(tiny_whisper), audio_window=0.5, audio_long="crop")
    assert len(split.prepare(load_audio(clip))["lengths"]) == 3
    assert crop.prepare(load_audio(clip))["lengths"].tolist() == [8000]
    assert crop.preprocessing["long"] == "crop" and crop.cache_key() != split.cache_key()


def test_default_audio_backbone_is_whisper_tiny():
    assert default_backbone("audio")[0] == "hf:openai/whisper-tiny.en"


def write_ct2(path: Path, encoder_sd: dict[str, torch.Tensor], heads: int) -> None:
    """A CTranslate2 (binary version 6) Whisper model.bin holding an encoder, as ctranslate2 writes one."""
    def name(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    ct2: dict[str, np.ndarray] = {"encoder/num_heads": np.array(heads, dtype=np.int16)}
    simple = {"conv1": "conv1", "conv2": "conv2", "layer_norm": "layer_norm"}
    for k, v in encoder_sd.items():
        a = v.numpy().astype(np.float16)
        parts = k.split(".")
        if parts[0] in simple:
            ct2[f"encoder/{parts[0]}/" + {"weight": "weight", "bias": "bias"}[parts[1]]
                .replace("weight", "gamma" if parts[0] == "layer_norm" else "weight")
                .replace("bias", "beta" if parts[0] == "layer_norm" else "bias")] = a
        elif parts[0] == "embed_positions":
            ct2["encoder/position_encodings/encodings"] = a
    layers = {int(k.split(".")[1]) for k in encoder_sd if k.startswith("layers.")}
    for i in layers:
        g = {k.split(f"layers.{i}.", 1)[1]: v.numpy().astype(np.float16) for k, v in encoder_sd.items()
             if k.startswith(f"layers.{i}.")}
        p = f"encoder/layer_{i}/"
        ct2[p + "self_attention/linear_0/weight"] = np.concatenate([g[f"self_attn.{x}_proj.weight"] for x in "qkv"])
        ct2[p + "self_attention/linear_0/bias"] = np.concatenate(
            [g["self_attn.q_proj.bias"], np.zeros_like(g["self_attn.q_proj.bias"]), g["self_attn.v_proj.bias"]])
        for ours, theirs in {"self_attn.out_proj": "self_attention/linear_1", "fc1": "ffn/linear_0",
                             "fc2": "ffn/linear_1"}.items():
            ct2[p + theirs + "/weight"], ct2[p + theirs + "/bias"] = g[ours + ".weight"], g[ours + ".bias"]
        for ours, theirs in {"self_attn_layer_norm": "self_attention/layer_norm",
                             "final_layer_norm": "ffn/layer_norm"}.items():
            ct2[p + theirs + "/gamma"], ct2[p + theirs + "/beta"] = g[ours + ".weight"], g[ours + ".bias"]
    blob = struct.pack("<I", 6) + name("WhisperSpec") + struct.pack("<II", 3, len(ct2))
    for k, a in sorted(ct2.items()):
        dtype = {np.dtype(np.float16): 4, np.dtype(np.int16): 2}[a.dtype]
        blob += name(k) + struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        blob += struct.pack("<BI", dtype, a.nbytes) + a.tobytes()
    path.write_bytes(blob + struct.pack("<I", 0))


def test_ctranslate2_whisper_converts_to_the_same_encoder(tiny_whisper, tmp_path):
    reference = build_backbone(str(tiny_whisper), audio_window=0.5)
    full = build_backbone(str(tiny_whisper))
    package = tmp_path / "pkg"
    package.mkdir()
    write_ct2(package / "model.bin", {k: v.half().float() for k, v in full.encoder.state_dict().items()}, heads=2)
    folder = convert_folder(package, tmp_path / "cache")
    assert convert_folder(package, tmp_path / "cache") == folder  # converted once, then reused
    assert json.loads((folder / "config.json").read_text())["encoder_layers"] == 2
    converted = build_backbone(str(folder), audio_window=0.5)
    clip = write_tone(tmp_path / "c.wav", 600.0, seconds=0.4)
    torch.testing.assert_close(features(converted, [clip]), features(reference, [clip]), atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("strategy", ["frozen", "gradual", "full", "lora"])
def test_strategies_run_end_to_end_and_reload(tone_folder, tiny_whisper, tmp_path, strategy):
    model = graftwork.fit(tone_folder, out=tmp_path / "run", backbone=str(tiny_whisper), strategy=strategy,
                          pretrained=False, **FAST)
    assert model.modality == "audio" and model.classes == ["high", "low"]
    assert model.metrics["train"]["accuracy"] >= 0.75  # 300 Hz vs 2.5 kHz: easy even for random features
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preprocessing"]["window_s"] == 0.5 and config["modality"] == "audio"
    clips = sorted(str(p) for p in tone_folder.rglob("*.*"))
    loaded = graftwork.load(tmp_path / "run")
    np.testing.assert_allclose(model.predict_proba(clips), loaded.predict_proba(clips), atol=1e-5)
    assert loaded.backbone.preprocessing == model.backbone.preprocessing


def test_wav2vec2_fits_and_reloads(tone_folder, tiny_wav2vec2, tmp_path):
    model = graftwork.fit(tone_folder, out=tmp_path / "run", backbone=str(tiny_wav2vec2), strategy="gradual",
                          pretrained=False, audio_long="crop", **FAST)
    clips = sorted(str(p) for p in tone_folder.rglob("*.*"))
    np.testing.assert_allclose(model.predict_proba(clips), graftwork.load(tmp_path / "run").predict_proba(clips),
                               atol=1e-5)


def test_bad_clip_stops_the_fit_or_is_skipped(tone_folder, tiny_whisper, tmp_path):
    bad = tone_folder / "low" / "cut.wav"
    data = (tone_folder / "low" / "low_0.wav").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as info:
        graftwork.fit(tone_folder, backbone=str(tiny_whisper), strategy="frozen", pretrained=False, **FAST)
    assert str(bad) in str(info.value) and "truncated" in str(info.value)
    model = graftwork.fit(tone_folder, backbone=str(tiny_whisper), strategy="frozen", pretrained=False,
                          skip_bad_files=True, **FAST)
    assert any(str(bad) in s for s in model.metrics["data"]["skipped"])


def test_cli_fit_predict_evaluate(tone_folder, tiny_whisper, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", str(tone_folder), "--out", str(run), "--backbone", str(tiny_whisper), "--strategy",
                 "frozen", "--no-pretrained", "--audio-window", "0.5", "--audio-long", "crop", "--quiet"]) == 0
    clip = str(tone_folder / "high" / "high_0.wav")
    capsys.readouterr()
    assert main(["predict", str(run), clip, "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred[0]["input"] == clip and pred[0]["label"] in ("high", "low")
    assert main(["predict", str(run), str(tone_folder / "low"), "--json"]) == 0  # a folder: its audio files
    assert len(json.loads(capsys.readouterr().out)) == 6
    assert main(["evaluate", str(run), str(tone_folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.75
    assert main(["predict", str(run), str(tmp_path / "missing.wav")]) != 0
    assert "missing.wav" in capsys.readouterr().err
