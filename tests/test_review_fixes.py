"""Edge cases: models and options that used to fail with an internal error, and folders that must be safe."""

from __future__ import annotations

import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone
from graftwork.cli.main import main
from graftwork.config import FitConfig
from graftwork.errors import ConfigError, DataError, RunFolderError
from graftwork.pipeline import partial_dir, resume_fit, run_fit
from graftwork.train import Callback

from .conftest import make_image_folder

TINY = {"backbone": "timm:test_efficientnet", "pretrained": False}


def test_timm_feature_dim_includes_head_hidden_layer():
    b = build_backbone("timm:mobilenetv3_small_050", pretrained=False)
    with torch.no_grad():
        assert b.eval()(torch.zeros(1, 3, 64, 64)).shape[1] == b.feature_dim


def test_timm_unknown_weights_tag_is_a_config_error():
    with pytest.raises(ConfigError, match="no weights 'efficientnet_b0.bogus'"):
        build_backbone("timm:efficientnet_b0.bogus")


def test_hf_weights_must_be_a_folder(tiny_bert, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        build_backbone(f"hf:{tiny_bert}", weights=str(tmp_path / "w.safetensors"))


def test_image_size_the_model_cannot_take_is_a_config_error():
    b = build_backbone("timm:vit_tiny_patch16_224", pretrained=False)  # fixed 224x224 position embeddings
    with pytest.raises(ConfigError, match="does not accept 32x32"):
        b.set_image_size(32)


def test_image_size_is_used_and_saved(tmp_path, image_folder):
    model = graftwork.fit(image_folder, out=tmp_path / "run", image_size=64, **TINY)
    assert model.config["preprocessing"]["crop"] == 64
    assert graftwork.load(tmp_path / "run").backbone.preprocessing["crop"] == 64


def test_out_folder_may_not_contain_the_data(image_folder):
    with pytest.raises(RunFolderError, match="would contain the data"):
        graftwork.fit(image_folder, out=image_folder.parent, force=True, **TINY)
    assert image_folder.exists()


def test_resume_refuses_changed_data(tmp_path):
    data = make_image_folder(tmp_path / "img", per_class=8, classes=("red", "blue"))
    cfg = FitConfig(strategy="full", stage_epochs=2, batch_size=4, **TINY)

    class Crash(Callback):
        def on_epoch_end(self, trainer, state, row):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(data, cfg, out=tmp_path / "run", callbacks=[Crash()])
    assert (partial_dir(tmp_path / "run") / "checkpoint.pt").exists()
    (data / "red" / "red_0.png").rename(data / "blue" / "was_red.png")
    with pytest.raises(RunFolderError, match="data changed"):
        resume_fit(tmp_path / "run")


def test_resume_of_a_fit_given_a_relative_data_path(tmp_path, monkeypatch):
    """fit.json records the data's absolute path: the resumed fit names its examples as the first one did."""
    make_image_folder(tmp_path / "img", per_class=8, classes=("red", "blue"))
    monkeypatch.chdir(tmp_path)
    cfg = FitConfig(strategy="full", stage_epochs=2, batch_size=4, **TINY)

    class Crash(Callback):
        def on_epoch_end(self, trainer, state, row):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit("img", cfg, out="run", callbacks=[Crash()])
    model = resume_fit("run")
    assert (tmp_path / "run" / "config.json").is_file() and not partial_dir(tmp_path / "run").exists()
    assert model.metrics["stages"][-1]["history"]


def test_frozen_with_augment_trains_the_head_on_augmented_images(image_folder, tmp_path):
    model = graftwork.fit(image_folder, out=tmp_path / "run", strategy="frozen", augment=True, stage_epochs=2,
                          batch_size=4, **TINY)
    names = [s["stage"] for s in model.metrics["stages"]]
    assert names == ["linear probe", "head on augmented images"]
    assert model.metrics["stages"][1]["unfrozen_groups"] == 0
    assert not model.backbone.info.extra.get("fine_tuned")


def test_predict_reads_csv_strictly(tmp_path, tiny_bert, capsys):
    from .conftest import make_text_rows, write_csv

    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=10))
    assert main(["fit", str(data), "--out", str(tmp_path / "run"), "--backbone", f"hf:{tiny_bert}",
                 "--strategy", "frozen"]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text\napple\ncaf\xe9 pear\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "UTF-8" in err and "Traceback" not in err
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "apple pear"}\n{"text": "bus car"}\n')
    assert main(["predict", str(tmp_path / "run"), str(jsonl), "--json"]) == 0


def test_predict_bad_image_hint_names_the_flag_predict_has(image_folder, tmp_path):
    model = graftwork.fit(image_folder, **TINY)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError) as err:
        model.predict([str(broken)])
    assert "broken.png" in str(err.value) and "--skip-bad-files" in str(err.value)
    # the hint is one the user can follow: predict takes the flag (and the Python API its keyword)
    good = sorted(p for p in image_folder.rglob("*.png"))[0]
    assert [p["label"] for p in model.predict([str(good), str(broken)], skip_bad_files=True)] == \
        [model.predict([str(good)])[0]["label"]]
