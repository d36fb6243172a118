"""End to end on a tiny random BERT: fit (frozen, gradual, full), evaluate, predict, save/load, the CLI."""

from __future__ import annotations

import json

import pytest

from graftwork import FitConfig, load
from graftwork.cli.main import main
from graftwork.errors import RunFolderError
from graftwork.ner import NerModel, run_fit_ner
from graftwork.ner.data import load_ner_data

from .conftest import make_sentences, write_conll

FAST = {"lr": 1e-2, "stage_epochs": 1, "batch_size": 16}


@pytest.fixture(scope="module")
def gradual_run(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("ner-fit")
    data = root / "data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(60, seed=0))
    write_conll(data / "dev.conll", make_sentences(15, seed=1))
    write_conll(data / "test.conll", make_sentences(15, seed=2), columns=4)
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="gradual", **FAST)  # type: ignore[arg-type]
    model = run_fit_ner(data, cfg, out=root / "run")
    return root, model


def test_gradual_fit_writes_a_complete_run(gradual_run):
    root, model = gradual_run
    config = json.loads((root / "run" / "config.json").read_text())
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert config["task"] == "ner" and config["tags"] == ["O", "B-FRUIT", "I-FRUIT", "B-VEH", "I-VEH"]
    assert [s["stage"] for s in metrics["stages"]][:2] == ["linear probe", "unfreeze 1"]
    assert sum(s["kept"] for s in metrics["stages"]) == 1
    assert set(metrics["test"]["per_type"]) == {"FRUIT", "VEH"} and 0 <= metrics["test"]["f1"] <= 1
    params = metrics["parameters"]
    assert metrics["stages"][0]["trainable_params"] == 32 * 5 + 5 < params["total"]  # the head stage: head only
    assert params["trainable_in_kept_stage"] <= params["trainable"] <= params["total"]
    assert metrics["memory"]["peak_rss_mib"] > 0
    kept = next(s for s in metrics["stages"] if s["kept"])
    assert kept["val_f1"] == max(s["val_f1"] for s in metrics["stages"])  # never worse than the head stage
    assert (root / "run" / "backbone.safetensors").is_file() == (kept["unfrozen_groups"] > 0)
    # the report is written with the run, from what metrics.json holds
    html = (root / "run" / "report.html").read_text()
    assert "Entity-level metrics per type" in html and "Representation drift" in html
    assert metrics["drift"] and metrics["findings"] == [] and all("history" in s for s in metrics["stages"])


def test_save_load_round_trip_gives_identical_predictions(gradual_run):
    root, model = gradual_run
    texts = ["my apples and the bus, hello world!", "I saw a train boat"]
    again = NerModel.load(root / "run", device="cpu")
    assert again.predict(texts) == model.predict(texts)
    assert isinstance(load(root / "run"), NerModel)  # graftwork.load knows NER runs too
    test = load_ner_data(root / "data").test
    assert again.evaluate(root / "data") == model.evaluate_sentences(test) | {"split": "test",
                                                                              "data": str(root / "data")}


def test_predict_gives_spans_with_offsets(gradual_run):
    _, model = gradual_run
    (result,) = model.predict("my apples, the truck")
    assert result["tokens"] == ["my", "apples", ",", "the", "truck"]
    for e in result["entities"]:
        assert "my apples, the truck"[e["char_start"]:e["char_end"]] == e["text"]
        assert e["type"] in ("FRUIT", "VEH") and 0 < e["score"] <= 1 and e["start"] < e["end"]
    assert model.predict([["my", "apples"]])[0]["tokens"] == ["my", "apples"]


@pytest.mark.parametrize("strategy", ["frozen", "full"])
def test_frozen_and_full(tiny_bert, tmp_path, strategy):
    data = write_conll(tmp_path / "ner.conll", make_sentences(50))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy=strategy, **FAST)  # type: ignore[arg-type]
    model = run_fit_ner(data, cfg)
    stages = [s["stage"] for s in model.metrics["stages"]]
    assert stages == (["linear probe"] if strategy == "frozen" else ["linear probe", "unfreeze 3"])
    assert model.metrics["val"]["sentences"] == 10  # val_fraction 0.2 of the sentences held out


def test_auto_picks_frozen_for_few_mentions(tiny_bert, tmp_path):
    data = write_conll(tmp_path / "ner.conll", make_sentences(12))
    model = run_fit_ner(data, FitConfig(task="ner", backbone=str(tiny_bert), **FAST))  # type: ignore[arg-type]
    assert model.config["plan"]["strategy"] == "frozen" and "mentions per type" in model.config["plan"]["reasons"][0]


def test_lora_trains_adapters_and_round_trips(tiny_bert, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(40, seed=0))
    write_conll(data / "dev.conll", make_sentences(10, seed=1))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="lora", lora_r=2, **FAST)  # type: ignore[arg-type]
    model = run_fit_ner(data, cfg)
    stage = model.metrics["stages"][1]
    assert stage["stage"] == "lora" and stage["rates"][0]["group"] == "lora adapters"
    adapters = stage["rates"][0]["params"]
    assert stage["trainable_params"] == adapters + 32 * 5 + 5 < model.metrics["parameters"]["total"] / 10
    # stand in for a LoRA win (tiny random data cannot promise one): keep the adapters with non-zero weights
    import torch

    from graftwork.backbones.base import fingerprint_module
    from graftwork.strategies.lora import adapter_parameters, apply_lora, has_lora

    bb = model.backbone
    if not has_lora(bb):
        apply_lora(bb, r=2, alpha=16, dropout=0.0, targets=None)
    with torch.no_grad():
        for p in adapter_parameters(bb):
            p.add_(0.3 * torch.randn_like(p))
    bb.info.extra |= {"fine_tuned": "lora", "pretrained_fingerprint": bb.info.extra.get(
        "pretrained_fingerprint", bb.info.fingerprint)}
    bb.info.fingerprint = fingerprint_module(bb)
    model.config["backbone"] = bb.info.to_dict() | {"load_name": bb.info.name}
    model.save(tmp_path / "run")
    assert (tmp_path / "run" / "adapter.safetensors").is_file()
    assert not (tmp_path / "run" / "backbone.safetensors").exists()
    texts = ["my apples and the bus", "I saw a train boat"]
    again = NerModel.load(tmp_path / "run", device="cpu")
    assert has_lora(again.backbone) and again.predict(texts) == model.predict(texts)


def test_cli_fit_evaluate_predict(tiny_bert, tmp_path, capsys):
    data = write_conll(tmp_path / "ner.conll", make_sentences(30))
    run = tmp_path / "run"
    args = ["fit", str(data), "--task", "ner", "--backbone", str(tiny_bert), "--strategy", "frozen", "--out",
            str(run), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2  # never overwrites without --force
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate", str(run), str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "all" and set(result["per_type"]) == {"FRUIT", "VEH"}
    assert main(["evaluate", str(run), str(data)]) == 0
    assert "overall (micro)" in capsys.readouterr().out
    assert main(["predict", str(run), "my apples and the bus", "--json"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    assert pred["input"] == "my apples and the bus" and isinstance(pred["entities"], list)
    assert main(["predict", str(run), "my apples"]) == 0
    bad = tmp_path / "bad.conll"
    bad.write_text("apples B-FRUIT\nbus\n", encoding="utf-8")
    assert main(["evaluate", str(run), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "Traceback" not in err


def test_loading_a_classification_run_as_ner_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"task": "classification"}')
    (tmp_path / "head.safetensors").write_bytes(b"")
    with pytest.raises(RunFolderError, match="not an NER run"):
        NerModel.load(tmp_path)
