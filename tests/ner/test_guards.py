"""NER fine-tuning on the staged trainer keeps the guards classification has: drift rows in metrics.json,
forgetting findings and back-off under ``strategy auto``, L2-SP and WiSE-FT, each recorded in the run."""

from __future__ import annotations

import json

import pytest

from graftwork import FitConfig
from graftwork.errors import ConfigError
from graftwork.ner import run_fit_ner

from .conftest import make_sentences, write_conll

TUNE = {"task": "ner", "strategy": "gradual", "lr": 1e-2, "stage_epochs": 3, "batch_size": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner-guards")
    write_conll(root / "train.conll", make_sentences(60, seed=0))
    write_conll(root / "dev.conll", make_sentences(15, seed=1))
    return root


@pytest.fixture(scope="module")
def wise_run(data, tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("wise") / "run"
    run_fit_ner(data, FitConfig(backbone=str(tiny_bert), wise=True, **TUNE), out=out)  # type: ignore[arg-type]
    return json.loads((out / "metrics.json").read_text()), json.loads((out / "config.json").read_text())


def _largest_change(metrics) -> float:
    return max(max(r["weight_change"].values()) for r in metrics["drift"])


def test_drift_is_measured_every_epoch_of_every_stage_and_saved(wise_run):
    metrics, config = wise_run
    stages = metrics["stages"][1:]
    assert metrics["drift"] == [row for s in stages for row in s["drift"]]
    assert [(r["stage"], r["epoch"]) for r in metrics["drift"]] == [
        (s["stage"], row["epoch"]) for s in stages for row in s["history"]]
    groups = {"embeddings", "encoder.layer.0", "encoder.layer.1"}
    assert all(set(r["cka"]) == groups and set(r["weight_change"]) == groups for r in metrics["drift"])
    first = metrics["drift"][0]  # the top group only is trainable in the first stage
    assert first["weight_change"]["encoder.layer.1"] > 0 == first["weight_change"]["embeddings"]
    assert metrics["findings"] == []  # a sane rate does not forget
    assert "CKA" in config["plan"]["details"]["drift"]


def test_wise_ft_records_its_interpolation_and_keeps_the_best(wise_run):
    metrics, config = wise_run
    kept = next(s for s in metrics["stages"] if s["kept"])
    assert kept["stage"] != "linear probe"  # a fine-tuned stage won, so there was something to interpolate
    wise = kept["wise"]
    assert [t["alpha"] for t in wise["tried"]] == [1.0, 0.25, 0.5, 0.75]
    best = max(wise["tried"], key=lambda t: (t["val_f1"], -t["val_loss"]))
    assert wise["alpha"] == best["alpha"]
    assert metrics["val"]["f1"] == pytest.approx(best["val_f1"])  # the saved model is the interpolation kept
    assert "WiSE-FT" in config["plan"]["details"] and config["fit"]["wise"] is True


def test_l2sp_pulls_the_encoder_toward_the_pretrained_weights_and_is_recorded(data, tiny_bert, wise_run, tmp_path):
    free, _ = wise_run  # the same fit without L2-SP (WiSE-FT acts after training: drift rows are the same)
    out = tmp_path / "run"
    run_fit_ner(data, FitConfig(backbone=str(tiny_bert), wise=True, l2sp=50.0, **TUNE), out=out)  # type: ignore[arg-type]
    pulled = json.loads((out / "metrics.json").read_text())
    assert _largest_change(pulled) < 0.8 * _largest_change(free)
    first = pulled["stages"][1]["history"][0]
    assert first["train_loss"] > free["stages"][1]["history"][0]["train_loss"]  # the penalty is in the loss
    config = json.loads((out / "config.json").read_text())
    assert config["fit"]["l2sp"] == 50.0 and "strength 50" in config["plan"]["details"]["L2-SP"]


def test_auto_reports_forgetting_and_backs_off(data, tiny_bert, tmp_path):
    # a rate that destroys the encoder's representation (the top group at the head's rate of 3)
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="auto", lr=3.0, lr_ratio=1.0, stage_epochs=3,
                    stage_patience=3, batch_size=16, device="cpu")
    model = run_fit_ner(data, cfg, out=tmp_path / "run")
    assert model.config["plan"]["strategy"] == "gradual" and "x0.1" in model.config["plan"]["details"]["drift"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    found = [f for f in metrics["findings"] if f["code"] == "forgetting"]
    assert found and found[0]["severity"] == "warning" and "learning rate" in found[0]["advice"]
    backed = [s for s in metrics["stages"] if "backoff" in s]
    assert backed and backed[0]["backoff"]["factor"] == pytest.approx(0.1)
    assert any(s["backoff"]["epoch"] < len(s["history"]) for s in backed)  # a stage went on after backing off
    assert metrics["kept_stage"] == "linear probe"  # nothing that forgot is kept


def test_a_setting_ner_does_not_read_is_refused_by_name(tiny_bert):
    with pytest.raises(ConfigError) as err:
        FitConfig(task="ner", backbone=str(tiny_bert), probe_c=0.5, image_size=64)
    assert "'probe_c'" in str(err.value) and "'image_size'" in str(err.value)


def test_class_weights_on_weights_the_tag_loss_and_is_recorded(data, tiny_bert):
    from graftwork.ner.data import load_ner_data, tag_list
    from graftwork.ner.task import tag_weights

    train = load_ner_data(data).train
    tags = tag_list(["FRUIT", "VEH"])
    weights = dict(zip(tags, tag_weights(tags, train), strict=True))
    assert weights["O"] < 1 < weights["B-VEH"] < weights["I-VEH"]  # the rarer the tag, the heavier

    runs = {}
    for mode in ("auto", "on"):
        cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", batch_size=16, class_weights=mode)
        runs[mode] = run_fit_ner(data, cfg)
    assert runs["on"].config["plan"]["details"]["class weights"].startswith("on: inverse tag frequency")
    assert runs["auto"].config["plan"]["details"]["class weights"].startswith("off")
    first = [m.metrics["stages"][0]["history"][0]["train_loss"] for m in runs.values()]
    assert first[0] != pytest.approx(first[1])
