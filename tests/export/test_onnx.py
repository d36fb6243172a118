"""ONNX export: one graph per run, parity with PyTorch measured and enforced, nothing left on failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graftwork.cli.main import main
from graftwork.errors import GraftworkError
from graftwork.export.onnx import OPSET, export_onnx
from graftwork.model import TransferModel
from graftwork.runtime import load_export

from ..conftest import make_image_folder, write_tone
from .conftest import manifest


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_image_export_matches_pytorch_on_the_runs_data(image_run, tmp_path):
    out = tmp_path / "onnx"
    assert main(["export", str(image_run), "--format", "onnx", "--out", str(out), "--quiet"]) == 0
    assert _files(out) == ["graftwork-onnx.json", "model.onnx"]
    m = manifest(out)
    assert m["format"] == "graftwork-onnx/1" and m["opset"] == OPSET and m["task"] == "classification"
    assert m["labels"] == ["blue", "red"] and m["inputs"] == ["pixel_values"]
    assert m["preprocessing"]["kind"] == "image" and m["preprocessing"]["crop"] > 0
    p = m["parity"]
    assert p["checked"] and p["passed"] and p["inputs"] == "data"  # the run's recorded data is still there
    assert p["examples"] == 12 and p["max_abs_diff"] <= 1e-4 and p["top1_agreement"] == 1.0
    assert m["source"]["fingerprint"]["kind"] in ("file digests", "sha256 of config.json")
    # the export predicts what the run predicts, on new images of other sizes
    new = make_image_folder(tmp_path / "new", per_class=3, seed=5)
    images = sorted(str(f) for f in new.rglob("*.png"))
    reference = TransferModel.load(image_run, device="cpu").predict_proba(images)
    np.testing.assert_allclose(load_export(out).predict_proba(images), reference, atol=1e-4)


def test_text_export_with_dynamic_length_and_synthetic_parity(text_run, tmp_path):
    out = tmp_path / "onnx"
    m = export_onnx(text_run, out, data=None)
    assert set(m["inputs"]) == {"input_ids", "token_type_ids", "attention_mask"}
    assert (out / "tokenizer.json").is_file() and m["preprocessing"]["max_length"] == 64
    assert m["parity"]["passed"] and m["parity"]["examples"] >= 10
    texts = ["apple pear", "bus car truck boat train " * 30, "melon", "the bicycle is my car"]  # one past 64 pieces
    reference = TransferModel.load(text_run, device="cpu").predict(texts, top_k=2)
    ours = load_export(out).predict(texts, top_k=2)
    assert [p["label"] for p in ours] == [p["label"] for p in reference]
    for a, b in zip(ours, reference, strict=True):
        assert a["top"][0]["probability"] == pytest.approx(b["top"][0]["probability"], abs=1e-4)


def test_synthetic_inputs_when_the_run_has_no_data(text_run, tmp_path):
    config = json.loads((text_run / "config.json").read_text())
    assert "data" in config
    import shutil

    copy = tmp_path / "run-copy"
    shutil.copytree(text_run, copy)
    config["data"] = str(tmp_path / "gone.csv")  # the training data is not on this machine
    (copy / "config.json").write_text(json.dumps(config))
    m = export_onnx(copy, tmp_path / "onnx")
    assert m["parity"]["inputs"] == "synthetic" and m["parity"]["passed"]


def test_audio_export_whisper_log_mel_in_numpy(audio_run, tmp_path):
    out = tmp_path / "onnx"
    m = export_onnx(audio_run, out)
    assert (out / "mel_filters.npy").is_file()
    assert m["inputs"] == ["values", "lengths", "clip_weights"] and m["preprocessing"]["log_mel"]
    assert m["parity"]["passed"] and m["parity"]["tolerance"] == 1e-3
    clips = [str(write_tone(tmp_path / f"c{i}.wav", f, seconds=s, rate=r))
             for i, (f, s, r) in enumerate([(320, 0.3, 16000), (2500, 1.7, 22050), (350, 0.05, 8000)])]
    reference = TransferModel.load(audio_run, device="cpu").predict_proba(clips)
    np.testing.assert_allclose(load_export(out).predict_proba(clips), reference, atol=1e-3)


def test_ner_export_gives_the_same_entities(ner_run, tmp_path):
    from graftwork.ner import NerModel

    out = tmp_path / "onnx"
    m = export_onnx(ner_run, out)
    assert m["task"] == "ner" and m["parity"]["passed"] and m["parity"]["inputs"] == "data"
    texts = ["I like apples and a red car.", " ".join(["bus train apple"] * 40), "hello"]
    assert load_export(out).predict(texts) == NerModel.load(ner_run, device="cpu").predict(texts)


def test_no_verify_skips_the_check(image_run, tmp_path):
    out = tmp_path / "onnx"
    assert main(["export", str(image_run), "--out", str(out), "--no-verify", "--quiet"]) == 0
    assert manifest(out)["parity"] == {"checked": False}


def test_failing_parity_is_a_clear_error_and_leaves_nothing(image_run, tmp_path, monkeypatch, capsys):
    from graftwork.runtime import preprocess

    real = preprocess.ImagePre.__call__
    monkeypatch.setattr(preprocess.ImagePre, "__call__", lambda self, im: real(self, im)[:, ::-1].copy())  # a bug
    out = tmp_path / "onnx"
    assert main(["export", str(image_run), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not give the run's answers" in err and "Traceback" not in err and "--no-verify" in err
    assert not out.exists() and _files(tmp_path) == []  # no staging folder either
    with pytest.raises(GraftworkError, match="top-1 agreement"):
        export_onnx(image_run, out)


def test_export_refuses_a_foreign_folder_and_replaces_its_own_with_force(image_run, tmp_path):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(GraftworkError, match="not empty"):
        export_onnx(image_run, out, force=True, verify=False)
    assert (out / "notes.txt").read_text() == "mine"
    other = tmp_path / "onnx2"
    export_onnx(image_run, other, verify=False)
    with pytest.raises(GraftworkError, match="--force"):
        export_onnx(image_run, other, verify=False)
    export_onnx(image_run, other, verify=False, force=True)
    assert manifest(other)["format"] == "graftwork-onnx/1"
    with pytest.raises(GraftworkError):
        export_onnx(image_run, image_run / "inside", verify=False)  # never into the source run


def test_merge_still_needs_a_lora_run(image_run, tmp_path):
    assert main(["export", str(image_run), "--merge", "--out", str(tmp_path / "merged")]) == 2


