"""Gradual and full fine-tuning end to end on tiny models: stages, the probe guarantee, round trips, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graftwork
from graftwork.pipeline import partial_dir, resume_fit
from graftwork.train import Callback

from ..conftest import make_image_folder

TINY = {"backbone": "timm:test_efficientnet", "pretrained": False, "stage_epochs": 2, "batch_size": 8}


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "img", per_class=10, classes=("red", "green", "blue"))


def test_gradual_records_stages_and_never_ends_below_the_probe(folder, tmp_path):
    model = graftwork.fit(folder, out=tmp_path / "run", strategy="gradual", **TINY)
    stages = model.metrics["stages"]
    assert stages[0]["stage"] == "linear probe"
    assert len(stages) >= 2
    for s in stages[1:]:
        assert s["unfrozen_groups"] >= 1 and s["rates"] and s["history"]
        row = s["history"][0]
        assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(row)
    kept = [s for s in stages if s["kept"]]
    assert len(kept) == 1 and kept[0]["stage"] == model.metrics["kept_stage"]
    assert kept[0]["val_acc"] >= stages[0]["val_acc"]
    assert model.metrics["val"]["accuracy"] == pytest.approx(kept[0]["val_acc"])
    assert not partial_dir(tmp_path / "run").exists(), "the resumable state is removed once the run is saved"


def test_full_strategy_unfreezes_everything(folder):
    model = graftwork.fit(folder, strategy="full", **TINY)
    n_groups = len(model.backbone.layer_groups())
    assert model.metrics["stages"][1]["unfrozen_groups"] == n_groups
    assert len(model.metrics["stages"][1]["rates"]) == n_groups


def test_unfreeze_n_is_one_stage(folder):
    model = graftwork.fit(folder, strategy="gradual", unfreeze=2, **TINY)
    assert [s["unfrozen_groups"] for s in model.metrics["stages"]] == [0, 2]


def test_fine_tuned_model_round_trip(folder, tmp_path):
    model = graftwork.fit(folder, strategy="full", **TINY)
    # stand in for a fine-tuning win (which tiny random data cannot promise): change the backbone's weights
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.01 * torch.randn_like(p))
    from graftwork.backbones.base import fingerprint_module

    model.backbone.info.extra |= {"fine_tuned": "unfreeze 6", "pretrained_fingerprint": model.backbone.info.fingerprint}
    model.backbone.info.fingerprint = fingerprint_module(model.backbone)
    model.config["backbone"] = model.backbone.info.to_dict() | {"load_name": "timm:test_efficientnet"}
    model.save(tmp_path / "run")
    assert (tmp_path / "run" / "backbone.safetensors").exists()
    images = sorted(str(p) for p in folder.rglob("*.png"))
    loaded = graftwork.load(tmp_path / "run")
    np.testing.assert_allclose(model.predict_proba(images), loaded.predict_proba(images), atol=1e-5)
    # the fine-tuned backbone's features are never confused with the pretrained ones in the cache
    assert loaded.backbone.info.fingerprint == model.backbone.info.fingerprint
    assert loaded.backbone.cache_key() == model.backbone.cache_key()
    assert loaded.backbone.info.fingerprint != model.backbone.info.extra["pretrained_fingerprint"]


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("strategy", ["gradual", "lora"])
def test_resume_after_a_crash_ends_like_an_uninterrupted_run(folder, tmp_path, strategy):
    settings = TINY | {"strategy": strategy, "stage_epochs": 2, "stage_patience": 2, "seed": 7}
    whole = graftwork.fit(folder, out=tmp_path / "whole", **settings)

    class CrashAt(Callback):
        def on_epoch_end(self, trainer, state, row):
            if state.stage == 0 and state.epoch == 1:
                raise Crash("simulated kill after the checkpoint of the first fine-tuning stage, epoch 1 of 2")

    from graftwork.config import FitConfig
    from graftwork.pipeline import run_fit

    with pytest.raises(Crash):
        run_fit(folder, FitConfig(**settings), out=tmp_path / "cut", callbacks=[CrashAt()])
    assert not (tmp_path / "cut").exists()
    assert (partial_dir(tmp_path / "cut") / "checkpoint.pt").exists()
    resumed = resume_fit(tmp_path / "cut")
    assert resumed.metrics["kept_stage"] == whole.metrics["kept_stage"]
    assert _same_histories(resumed.metrics["stages"], whole.metrics["stages"])
    for split in ("train", "val"):
        assert resumed.metrics[split]["accuracy"] == whole.metrics[split]["accuracy"]
    for a, b in zip(resumed.head.state_dict().values(), whole.head.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def _same_histories(a, b) -> bool:
    """Equal up to wall-clock seconds."""
    strip = [[{k: v for k, v in row.items() if not k.endswith("seconds")} for row in s.get("history", [])] for s in a]
    strip_b = [[{k: v for k, v in row.items() if not k.endswith("seconds")} for row in s.get("history", [])] for s in b]
    return strip == strip_b


def test_resume_without_an_interrupted_run_is_a_clear_error(tmp_path):
    from graftwork.errors import RunFolderError

    with pytest.raises(RunFolderError, match="no interrupted run"):
        resume_fit(tmp_path / "nothing")


def test_text_gradual_with_tiny_bert(tmp_path, tiny_bert):
    from ..conftest import make_text_rows, write_csv

    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=15))
    model = graftwork.fit(data, backbone=f"hf:{tiny_bert}", strategy="gradual", stage_epochs=2, batch_size=8)
    first = model.metrics["stages"][1]
    assert first["unfrozen_groups"] == 1 and first["rates"][0]["group"] == "encoder.layer.1"
    assert model.metrics["val"]["accuracy"] >= model.metrics["stages"][0]["val_acc"] - 1e-9
