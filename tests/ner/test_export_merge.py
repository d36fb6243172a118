"""``graftwork export RUN --merge`` on an NER LoRA run: the merged folder is an NER run that predicts the same."""

from __future__ import annotations

import json

import numpy as np

from graftwork import FitConfig
from graftwork.cli.main import main
from graftwork.ner import NerModel, run_fit_ner
from graftwork.strategies.lora import has_lora

from ..conftest import add_trained_looking_adapters
from .conftest import make_sentences, write_conll


def test_export_merge_of_an_ner_lora_run_keeps_its_own_config(tiny_bert, tmp_path, capsys):
    data = write_conll(tmp_path / "ner.conll", make_sentences(30))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", batch_size=16)  # type: ignore[arg-type]
    model = run_fit_ner(data, cfg)
    add_trained_looking_adapters(model, r=2, alpha=8)
    model.save(tmp_path / "run")
    assert (tmp_path / "run" / "adapter.safetensors").is_file()

    assert main(["export", str(tmp_path / "run"), "--merge", "--out", str(tmp_path / "merged"), "--quiet"]) == 0
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["task"] == "ner" and config["tags"] == model.tags
    assert config["backbone"]["extra"]["fine_tuned"] == "lora (merged)"
    assert not (tmp_path / "merged" / "adapter.safetensors").exists()
    assert (tmp_path / "merged" / "backbone.safetensors").is_file()

    merged = NerModel.load(tmp_path / "merged", device="cpu")
    assert not has_lora(merged.backbone)
    sentences = [["my", "apples", "and", "the", "bus"], ["i", "saw", "a", "train", "boat"]]
    before, after = model.word_logprobs(sentences), merged.word_logprobs(sentences)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert merged.predict_tokens(sentences) == model.predict_tokens(sentences)


def test_export_merge_without_adapters_is_a_clear_error(tiny_bert, tmp_path, capsys):
    data = write_conll(tmp_path / "ner.conll", make_sentences(20))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", batch_size=16)  # type: ignore[arg-type]
    run_fit_ner(data, cfg, out=tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--merge", "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert "no LoRA adapters" in err and "Traceback" not in err
    assert not (tmp_path / "merged").exists()
