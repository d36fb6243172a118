"""LoRA through PEFT on tiny BERT, ViT and CNN backbones: targets, what trains, round trips, merged export."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone
from graftwork.backbones.base import fingerprint_module
from graftwork.cli.main import main
from graftwork.data import Examples
from graftwork.errors import ConfigError
from graftwork.strategies.base import Rates
from graftwork.strategies.head import LinearHead
from graftwork.strategies.inputs import TrainingInputs
from graftwork.strategies.lora import (
    ADAPTER_MARK,
    LoraStrategy,
    adapter_parameters,
    apply_lora,
    default_targets,
    has_lora,
    remove_lora,
    resolve_targets,
)
from graftwork.strategies.plan import make_plan
from graftwork.train import Progress

from ..conftest import WORDS, add_trained_looking_adapters, make_image_folder, make_text_rows, write_csv
from ..train.tiny import make_trainer


def _lora(backbone, targets=None):
    return apply_lora(backbone, r=4, alpha=8, dropout=0.0, targets=targets)


def test_default_targets_for_a_transformer_are_block_projections_and_mlp(tiny_bert):
    bb = build_backbone(str(tiny_bert))
    targets = default_targets(bb)
    kinds = {t.rsplit(".", 1)[1] for t in targets}
    assert kinds == {"query", "key", "value", "dense"}
    assert all(".encoder.layer." in t for t in targets), "embeddings are not adapted"
    assert len(targets) == 2 * 6  # 2 blocks x (q, k, v, attention out, intermediate, out)


def test_default_targets_for_a_vit_and_a_cnn(tiny_vit):
    vit = build_backbone(str(tiny_vit))
    assert default_targets(vit) and all(re.search(r"\.layers?\.\d+\.", t) for t in default_targets(vit))
    cnn = build_backbone("timm:test_efficientnet", pretrained=False)
    targets = default_targets(cnn)
    assert targets
    for name in targets:
        module = cnn.get_submodule(name)
        assert isinstance(module, torch.nn.Linear) or module.groups == 1, f"{name} is depthwise"
    stem = {id(m) for g in cnn.layer_groups()[:1] for owner in g.modules for m in owner.modules()}
    assert not any(id(cnn.get_submodule(t)) in stem for t in targets)


def test_targets_that_match_nothing_list_what_exists(tiny_bert):
    bb = build_backbone(str(tiny_bert))
    with pytest.raises(ConfigError) as e:
        resolve_targets(bb, "q_proj,v_proj")
    assert "matches none" in str(e.value) and "query" in e.value.hint and "value" in e.value.hint
    assert resolve_targets(bb, "query,value") == [t for t in default_targets(bb) if t.endswith(("query", "value"))]
    assert len(resolve_targets(bb, r".*attention\.self\.(query|key)")) == 4
    with pytest.raises(ConfigError, match="regular expression"):
        resolve_targets(bb, "(query")


def test_lora_trains_only_adapters_and_head_and_leaves_base_weights(tiny_bert):
    bb = build_backbone(str(tiny_bert))
    spec = _lora(bb)
    base_before = {k: v.clone() for k, v in bb.state_dict().items() if ADAPTER_MARK not in k}
    rows = make_text_rows(per_class=12)
    ex = Examples("text", [t for t, _ in rows], [y for _, y in rows], [str(i) for i in range(len(rows))])
    labels = [sorted(WORDS).index(y) for _, y in rows]
    data = TrainingInputs(bb, ex, labels, augment=False, decoded=None)
    head = LinearHead(bb.feature_dim, 2)
    tuner = make_trainer(bb, head, data, data, LoraStrategy(Rates(lr=1e-2, weight_decay=0.01)), epochs=2, patience=2,
                         batch_size=8)
    n_groups = len(bb.layer_groups())
    progress = Progress(schedule=[n_groups], best={"stage": "linear probe", "val_acc": -1.0, "val_loss": math.inf},
                        stages=[{"stage": "linear probe"}])
    progress = tuner.fit(progress)
    assert progress.stages[1]["stage"] == "lora"
    with_grad = {n for n, p in tuner.net.named_parameters() if p.grad is not None}
    assert with_grad and all(ADAPTER_MARK in n or n.startswith("head.") for n in with_grad)
    assert any(n.startswith("head.") for n in with_grad)
    for k, v in bb.state_dict().items():
        if ADAPTER_MARK not in k:
            assert torch.equal(v, base_before[k]), f"{k} changed"
    assert any(float(p.abs().sum()) > 0 for n, p in bb.named_parameters() if "lora_B" in n), "adapters trained"
    adapters = sum(p.numel() for p in adapter_parameters(bb))
    assert progress.stages[1]["trainable_params"] == adapters + sum(p.numel() for p in head.parameters())
    assert len(spec.targets) == 12


def test_lora_on_a_cnn_keeps_batchnorm_statistics(tmp_path):
    folder = make_image_folder(tmp_path / "img", per_class=10, classes=("red", "green", "blue"))
    model = graftwork.fit(folder, backbone="timm:test_efficientnet", pretrained=False, strategy="lora",
                          stage_epochs=1, batch_size=8, lora_r=2)
    stage = model.metrics["stages"][1]
    assert stage["stage"] == "lora" and stage["rates"][0]["group"] == "lora adapters"
    params = model.metrics["parameters"]
    assert params["trainable"] == stage["trainable_params"] < params["total"]
    assert model.metrics["memory"]["peak_rss_mib"] > 0
    assert model.config["plan"]["details"]["adapters"].startswith("rank 2")


def _lora_model(tmp_path, tiny_bert):
    """A fitted text model whose backbone holds trained-looking (non-zero) LoRA adapters."""
    csv = write_csv(tmp_path / "texts.csv", make_text_rows(per_class=12))
    model = graftwork.fit(csv, backbone=str(tiny_bert), strategy="frozen", batch_size=8)
    add_trained_looking_adapters(model, r=4, alpha=8)
    return model, csv


def test_lora_round_trip_saves_adapters_only_and_predicts_identically(tmp_path, tiny_bert):
    model, _ = _lora_model(tmp_path, tiny_bert)
    texts = ["apple banana car", "truck bus train", "grape melon"]
    expected = model.predict_proba(texts)
    run = model.save(tmp_path / "run")
    assert (run / "adapter.safetensors").is_file() and not (run / "backbone.safetensors").exists()
    loaded = graftwork.load(run)
    assert has_lora(loaded.backbone)
    assert loaded.backbone.info.fingerprint == model.backbone.info.fingerprint
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-6)


def test_merged_export_matches_the_unmerged_model(tmp_path, tiny_bert, capsys):
    model, _ = _lora_model(tmp_path, tiny_bert)
    texts = ["apple banana car", "truck bus train", "grape melon"]
    expected = model.predict_proba(texts)
    run = model.save(tmp_path / "run")
    assert main(["export", str(run), "--merge", "--out", str(tmp_path / "merged")]) == 0
    merged = graftwork.load(tmp_path / "merged")
    assert not has_lora(merged.backbone) and (tmp_path / "merged" / "backbone.safetensors").is_file()
    np.testing.assert_allclose(merged.predict_proba(texts), expected, atol=1e-5)
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "lora" not in config["backbone"]["extra"] and "merged" in config["backbone"]["extra"]["fine_tuned"]
    assert main(["export", str(tmp_path / "merged"), "--merge", "--out", str(tmp_path / "again")]) == 2
    assert "no LoRA adapters" in capsys.readouterr().err


def test_remove_without_merge_restores_the_plain_network(tiny_bert):
    bb = build_backbone(str(tiny_bert))
    before = fingerprint_module(bb)
    _lora(bb)
    assert remove_lora(bb, merge=False) == 12
    assert fingerprint_module(bb) == before and "lora" not in bb.info.extra


def test_auto_chooses_lora_for_a_large_backbone_with_enough_data():
    counts = {"a": 200, "b": 200}
    assert make_plan("auto", counts, backbone_params=125_000_000).strategy == "lora"
    assert make_plan("auto", counts, backbone_params=22_000_000).strategy == "gradual"
    assert make_plan("auto", {"a": 10, "b": 10}, backbone_params=125_000_000).strategy == "frozen"
    assert make_plan("auto", counts, unfreeze=2, backbone_params=125_000_000).strategy == "gradual"


def test_lora_settings_are_validated():
    with pytest.raises(ConfigError) as e:
        graftwork.FitConfig(strategy="lora", lora_r=0, lora_dropout=1.5, unfreeze=2)
    text = str(e.value)
    assert "'lora_r'" in text and "'lora_dropout'" in text and "'unfreeze'" in text
