"""fit → save → load → predict/evaluate, through the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graftwork
from graftwork.errors import ConfigError, DataError, RunFolderError

from .conftest import make_image_folder, make_text_rows, write_csv

IMAGE = {"backbone": "timm:test_efficientnet", "pretrained": False}


def test_fit_image_folder_learns_and_reports(image_folder, tmp_path):
    model = graftwork.fit(image_folder, out=tmp_path / "run", **IMAGE)
    assert model.classes == ["blue", "red"]
    m = model.metrics
    assert {"probe", "train", "val", "data", "timing"} <= set(m)
    assert m["val"]["majority_baseline"]["accuracy"] == pytest.approx(0.5)
    assert m["train"]["accuracy"] >= 0.9  # colours are easy even for random features
    # 4 validation images: too few to choose on, so the probe is cross-validated over all 16 (issue 15)
    assert m["probe"]["selection"] == "cross-validation" and m["probe"]["examples"] == 16
    assert len(m["probe"]["grid"]) >= 5
    assert {"C", "val_acc", "val_loss"} <= set(m["probe"]["grid"][0])
    assert m["data"]["train"]["n"] == 16
    assert m["data"]["fit_split"] == {"train": 12, "val": 4}


def test_run_folder_round_trip_gives_identical_predictions(image_folder, tmp_path):
    model = graftwork.fit(image_folder, out=tmp_path / "run", **IMAGE)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["backbone.safetensors", "config.json", "head.safetensors", "metrics.json", "report.html"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["classes"] == ["blue", "red"]
    assert config["backbone"]["name"] == "timm:test_efficientnet"
    assert len(config["backbone"]["fingerprint"]) == 64
    assert config["preprocessing"]["kind"] == "image"
    assert config["plan"]["strategy"] == "frozen"
    assert {"torch", "timm", "python"} <= set(config["versions"])
    images = sorted(str(p) for p in image_folder.rglob("*.png"))
    loaded = graftwork.load(tmp_path / "run")
    np.testing.assert_allclose(model.predict_proba(images), loaded.predict_proba(images), atol=1e-6)
    assert [p["label"] for p in model.predict(images)] == [p["label"] for p in loaded.predict(images)]


def test_loaded_model_does_not_need_the_training_data(image_folder, tmp_path):
    import shutil

    probe = tmp_path / "probe.png"
    shutil.copy(image_folder / "red" / "red_0.png", probe)
    graftwork.fit(image_folder, out=tmp_path / "run", **IMAGE)
    shutil.rmtree(image_folder)
    pred = graftwork.load(tmp_path / "run").predict([str(probe)], top_k=2)[0]
    assert pred["label"] in ("red", "blue")
    assert abs(sum(t["probability"] for t in pred["top"]) - 1.0) < 1e-5


def test_same_seed_same_model_other_seed_other_split(image_folder):
    a = graftwork.fit(image_folder, **IMAGE, seed=3)
    b = graftwork.fit(image_folder, **IMAGE, seed=3)
    np.testing.assert_array_equal(a.head.fc.weight.detach().numpy(), b.head.fc.weight.detach().numpy())
    assert a.metrics["probe"] == b.metrics["probe"]
    c = graftwork.fit(image_folder, **IMAGE, seed=4)
    assert c.metrics["probe"]["grid"] != a.metrics["probe"]["grid"]


def test_text_csv_with_tiny_bert(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=15))
    model = graftwork.fit(data, out=tmp_path / "run", backbone=f"hf:{tiny_bert}")
    assert model.modality == "text"
    assert model.metrics["train"]["accuracy"] >= 0.9
    preds = graftwork.load(tmp_path / "run").predict(["apple pear melon grape", "bus car truck boat"])
    assert [p["label"] for p in preds] == ["fruit", "vehicle"]


def test_evaluate_uses_test_split_and_reports_everything(tmp_path):
    make_image_folder(tmp_path / "d" / "train", per_class=8)
    make_image_folder(tmp_path / "d" / "test", per_class=4, seed=1)
    model = graftwork.fit(tmp_path / "d", **IMAGE)
    assert "test" in model.metrics
    result = model.evaluate(tmp_path / "d")
    assert result["split"] == "test" and result["n"] == 8
    assert set(result["per_class"]) == {"red", "blue"}
    assert set(result["per_class"]["red"]) == {"precision", "recall", "f1", "support"}
    assert result["confusion"]["labels"] == ["blue", "red"]
    assert np.array(result["confusion"]["matrix"]).sum() == 8
    assert 0 <= result["macro_f1"] <= 1


def test_evaluate_rejects_unknown_classes(image_folder, tmp_path):
    model = graftwork.fit(image_folder, **IMAGE)
    other = make_image_folder(tmp_path / "other", classes=("green", "red"))
    with pytest.raises(DataError, match="not trained on: \\['green'\\]"):
        model.evaluate(other)


def test_out_folder_is_never_overwritten_without_force(image_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(RunFolderError, match="--force"):
        graftwork.fit(image_folder, out=out, **IMAGE)
    assert (out / "precious.txt").read_text() == "keep me"
    with pytest.raises(RunFolderError, match="not a graftwork run folder"):  # --force replaces only a run
        graftwork.fit(image_folder, out=out, force=True, **IMAGE)
    assert (out / "precious.txt").read_text() == "keep me"
    (out / "precious.txt").unlink()
    graftwork.fit(image_folder, out=out, **IMAGE)
    graftwork.fit(image_folder, out=out, force=True, **IMAGE)  # a run folder: --force replaces it
    assert (out / "config.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")], "no staging folders left behind"


def test_bad_image_stops_before_training_unless_skipped(image_folder, tmp_path):
    (image_folder / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(DataError) as err:
        graftwork.fit(image_folder, out=tmp_path / "run", **IMAGE)
    assert "broken.jpg" in str(err.value) and "--skip-bad-files" in str(err.value)
    assert not (tmp_path / "run").exists()
    model = graftwork.fit(image_folder, **IMAGE, skip_bad_files=True)
    assert any("broken.jpg" in s for s in model.metrics["data"]["skipped"])


def test_backbone_modality_must_match_data(text_csv):
    with pytest.raises(DataError, match="text data but timm:test_efficientnet is a image backbone"):
        graftwork.fit(text_csv, **IMAGE)


def test_settings_are_validated_together():
    with pytest.raises(ConfigError) as err:
        graftwork.FitConfig(probe_c=0, strategy="magic", val_fraction=1.5, bn_stats="frozen")
    text = str(err.value)
    assert "'probe_c'" in text and "'strategy'" in text and "'val_fraction'" in text
    assert "'bn_stats'" in text and "pretrained, update" in text
    assert "Got 0 instead" in text


def test_unknown_setting_suggests_the_right_one(image_folder):
    with pytest.raises(ConfigError, match="seeds → seed"):
        graftwork.fit(image_folder, seeds=3)


def test_backbones_listing():
    rows = graftwork.backbones()
    names = [r["name"] for r in rows]
    assert "torchvision:mobilenet_v2" in names and "hf:sentence-transformers/all-MiniLM-L6-v2" in names
    assert {r["modality"] for r in rows} == {"image", "text", "audio"}
    assert all(isinstance(r["offline"], bool) and r["feature_dim"] > 0 for r in rows)
    assert all(r["offline"] for r in graftwork.backbones(offline_only=True))


def test_frozen_head_is_refit_on_train_and_val(image_folder):
    model = graftwork.fit(image_folder, **IMAGE)
    probe = model.metrics["stages"][0]
    assert probe["refit"] == {"C": probe["probe"]["C"], "examples": 16}
    assert "before the refit" in model.metrics["val"]["note"]
    no_refit = graftwork.fit(image_folder, **IMAGE, refit=False)
    assert "refit" not in no_refit.metrics["stages"][0]
    assert not np.allclose(model.head.fc.weight.detach().numpy(), no_refit.head.fc.weight.detach().numpy())


def test_run_folder_is_as_readable_as_any_new_folder(image_folder, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        graftwork.fit(image_folder, out=tmp_path / "run", **IMAGE)
    finally:
        os.umask(mask)
    run = tmp_path / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    assert {stat.S_IMODE((run / f).stat().st_mode) for f in ("config.json", "metrics.json", "head.safetensors",
                                                             "report.html")} == {0o644}


def test_domain_mismatch_makes_auto_unfreeze_longer_or_lower_expectations():
    from graftwork.classify.planning import adapt_plan_to_mismatch
    from graftwork.config import FitConfig
    from graftwork.diagnostics import Finding
    from graftwork.strategies import make_plan

    far = Finding("domain-mismatch-bn", "high", "far", value=1.8, metric="BN shift")
    cfg = FitConfig()
    deep = make_plan("auto", {"a": 400, "b": 400})
    adapt_plan_to_mismatch(deep, cfg, far)
    assert deep.details["unfreeze patience"] == cfg.unfreeze_patience + 1 and "domain mismatch" in deep.reasons[-1]
    assert cfg.unfreeze_patience == FitConfig().unfreeze_patience  # the saved settings are not changed
    small = make_plan("auto", {"a": 10, "b": 10})
    adapt_plan_to_mismatch(small, cfg, far)
    assert small.strategy == "frozen" and "expect lower accuracy" in small.reasons[-1]


def test_the_plan_is_decided_before_it_is_printed_and_printed_once(image_folder):
    """The stages and learning rates of a fine-tuning plan belong to the plan: one printed block, before any
    feature is computed, holding them (and the saved plan holds the same)."""
    import io

    from graftwork.config import FitConfig
    from graftwork.console import Console
    from graftwork.pipeline import run_fit

    out = io.StringIO()
    cfg = FitConfig(strategy="gradual", unfreeze=1, stage_epochs=1, batch_size=4, **IMAGE)  # type: ignore[arg-type]
    model = run_fit(image_folder, cfg, console=Console(stream=out))
    text = out.getvalue()
    assert text.count("plan: gradual") == 1
    block = text[text.index("plan: gradual"):]
    assert block.index("stages: probe, then top 1 group(s) trainable") < block.index("features of")
    assert text.count("stages: probe") == 1 and text.count("learning rates: head") == 1
    assert model.config["plan"]["details"]["stages"] == "probe, then top 1 group(s) trainable"
