"""Few-shot text trains SetFit's recipe on all the texts (:mod:`graftwork.classify.fewshot_text`): contrastive
tuning, then its head (raw and unit-length branches); a broken tuning is dropped and the probe kept."""

from __future__ import annotations

import numpy as np
import torch

import graftwork
from graftwork.classify import fewshot_text

from ..conftest import make_text_rows, write_csv


def test_few_shot_text_trains_setfits_recipe_on_all_the_texts(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "few.csv", make_text_rows(per_class=5, seed=4))  # 4 training texts per class
    model = graftwork.fit(data, tmp_path / "run", backbone=str(tiny_bert), batch_size=4)
    m = model.metrics
    assert model.config["plan"]["strategy"] == "setfit" and "SetFit" in " ".join(model.config["plan"]["reasons"])
    assert m["selection"]["fine_tuning"] == "setfit" and "SetFit's recipe" in m["selection"]["how"]
    probe_record, contrastive = m["stages"]
    assert contrastive["stage"] == "contrastive" and contrastive["steps"] > 0
    assert contrastive["pairs"] == 2 * 25  # 5 x 5 different-class pairs of the 10 texts, as many same-class
    check = contrastive["check"]
    assert check["examples"] == 10 and "optimistic" in check["note"]
    assert contrastive["kept"] != probe_record["kept"]
    # kept exactly when the check passes: its head's cross-validated accuracy is not below the same head's on
    # the pretrained features
    assert contrastive["kept"] == ("rejected" not in contrastive)
    assert (contrastive["probe"]["features"], contrastive["probe"]["C"]) == ("raw+normalised", 1.0)
    if contrastive["kept"]:
        assert check["cv_accuracy_tuned"] >= check["cv_accuracy_pretrained"]
        assert model.head.unit_branch is not None and m["val"]["optimistic"] and "optimistic" in m["val"]["note"]
    else:
        assert "below the same head's" in contrastive["rejected"] or "one class" in contrastive["rejected"]
    off = graftwork.fit(data, tmp_path / "off", backbone=str(tiny_bert), batch_size=4, contrastive=False)
    assert [s["stage"] for s in off.metrics["stages"]] == ["linear probe"]
    assert "fine_tuning" not in off.metrics["selection"]


def test_a_broken_tuning_is_dropped_and_the_pretrained_encoder_restored(tmp_path, tiny_bert, monkeypatch):
    """An encoder broken on purpose after its real tuning (every weight zeroed: all texts embed alike) makes
    SetFit's head predict one class: the run keeps the probe on the pretrained encoder."""
    real = fewshot_text.contrastive_tune

    def tune_then_break(body, *args, **kwargs):
        fit = real(body, *args, **kwargs)
        with torch.no_grad():
            for p in body.parameters():
                p.zero_()
        return fit

    monkeypatch.setattr(fewshot_text, "contrastive_tune", tune_then_break)
    rows = make_text_rows(per_class=5, seed=4)
    data = write_csv(tmp_path / "few.csv", rows)
    model = graftwork.fit(data, tmp_path / "run", backbone=str(tiny_bert), batch_size=4)
    m = model.metrics
    probe_record, contrastive = m["stages"]
    assert m["kept_stage"] == "linear probe" and probe_record["kept"] and not contrastive["kept"]
    assert "predicts one class" in contrastive["rejected"]
    assert probe_record["refit"]["examples"] == 10  # the probe refit on all the texts
    assert "fine_tuned" not in model.backbone.info.extra
    assert not (tmp_path / "run" / "backbone.safetensors").exists()
    reference = graftwork.fit(data, tmp_path / "ref", backbone=str(tiny_bert), batch_size=4, contrastive=False)
    texts = [t for t, _ in rows]
    assert np.allclose(model.predict_proba(texts), reference.predict_proba(texts), atol=1e-5)


def test_a_kept_contrastive_encoder_is_saved_with_the_run(tmp_path, tiny_bert, monkeypatch):
    """When the tuned encoder is kept, the run holds it and the recipe's head: the reloaded run predicts what the
    fitted model predicted. (The check is made to pass here: a random tiny encoder at SetFit's learning rate does
    not reliably improve on its own.)"""
    monkeypatch.setattr(fewshot_text, "pretrained_cv_accuracy", lambda state, x, y: 0.0)
    rows = make_text_rows(per_class=5, seed=5)
    data = write_csv(tmp_path / "few.csv", rows)
    model = graftwork.fit(data, tmp_path / "run", backbone=str(tiny_bert), batch_size=4)
    m = model.metrics
    assert m["kept_stage"] == "contrastive" and m["stages"][-1]["steps"] > 0
    assert (m["stages"][-1]["probe"]["features"], m["stages"][-1]["probe"]["C"]) == ("raw+normalised", 1.0)
    assert model.backbone.info.extra["fine_tuned"] == "contrastive"
    assert (tmp_path / "run" / "backbone.safetensors").is_file()
    texts = [t for t, _ in rows]
    again = graftwork.load(tmp_path / "run")
    assert again.head.unit_branch is not None  # both branches of the head were saved and restored
    assert np.allclose(again.predict_proba(texts), model.predict_proba(texts), atol=1e-5)
    # and the ONNX export computes the same two-branch head (its parity check runs on the run's texts)
    from graftwork.export.onnx import export_onnx

    assert export_onnx(tmp_path / "run", tmp_path / "onnx", data=None)["parity"]["passed"]
