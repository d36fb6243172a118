"""``--backbone run:DIR``: a new fit starts from a trained run's backbone, checked as any run folder load is."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone
from graftwork.backbones.base import fingerprint_module
from graftwork.errors import ConfigError, RunFolderError

from ..conftest import add_trained_looking_adapters, make_image_folder, make_text_rows, write_csv

IMAGE = {"backbone": "timm:test_efficientnet", "pretrained": False, "strategy": "frozen"}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _fine_tune_looking(model: graftwork.TransferModel) -> None:
    """Move a fitted model's backbone weights and record it as fine-tuned, as a kept fine-tuning stage does (on
    these tiny colour tasks the probe always wins, so no stage would be kept)."""
    bb = model.backbone
    pretrained = bb.info.fingerprint
    torch.manual_seed(1)
    with torch.no_grad():
        for p in bb.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bb.info.extra |= {"fine_tuned": "top 1 group(s)", "pretrained_fingerprint": pretrained}
    bb.refresh_fingerprint()
    model.config["backbone"] = bb.info.to_dict() | {"load_name": model.config["backbone"]["load_name"]}


@pytest.fixture
def images(tmp_path):
    return make_image_folder(tmp_path / "img", per_class=8)


def test_a_run_started_from_a_classification_run_has_its_backbone(images, tmp_path):
    source = graftwork.fit(images, out=tmp_path / "source", **IMAGE)
    new = graftwork.fit(images, out=tmp_path / "new", backbone=f"run:{tmp_path / 'source'}", strategy="frozen")
    assert _same_weights(new.backbone, source.backbone)
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    recorded = config["backbone"]["extra"]["source_run"]
    assert recorded["path"] == str((tmp_path / "source").absolute())
    assert recorded["fingerprint"] == source.backbone.info.fingerprint and recorded["task"] == "classification"
    assert config["backbone"]["name"] == config["backbone"]["load_name"] == "timm:test_efficientnet"
    assert "kept its backbone frozen" in config["backbone"]["weights"]  # said, not hidden
    # the new run is self-contained: it loads without the run it started from
    shutil.rmtree(tmp_path / "source")
    assert _same_weights(graftwork.load(tmp_path / "new").backbone, source.backbone)


def test_a_pretrained_then_fine_tuned_source_is_saved_with_the_new_run(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=10))
    source = graftwork.fit(data, backbone=f"hf:{tiny_bert}", strategy="frozen")
    _fine_tune_looking(source)
    source.save(tmp_path / "source")
    pretrained = build_backbone(f"hf:{tiny_bert}")
    start = build_backbone(str(tmp_path / "source"))  # a run folder's path works as well as run:DIR
    assert _same_weights(start, source.backbone) and not _same_weights(start, pretrained)
    assert start.info.extra["source_run"]["fine_tuned"] is True
    assert start.info.extra["source_run"]["original"] == {"name": f"hf:{tiny_bert}", "pretrained": True,
                                                          "fingerprint": pretrained.info.fingerprint}
    new = graftwork.fit(data, out=tmp_path / "new", backbone=f"run:{tmp_path / 'source'}", strategy="frozen")
    assert (tmp_path / "new" / "backbone.safetensors").is_file()  # not the pretrained weights: stored
    shutil.rmtree(tmp_path / "source")
    assert _same_weights(graftwork.load(tmp_path / "new").backbone, source.backbone)
    assert _same_weights(new.backbone, source.backbone)


def test_lora_source_adapters_are_merged_into_the_start(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=10))
    source = graftwork.fit(data, backbone=f"hf:{tiny_bert}", strategy="frozen")
    add_trained_looking_adapters(source, r=2, alpha=4.0)
    source.save(tmp_path / "source")
    start = build_backbone(f"run:{tmp_path / 'source'}")
    assert not any("lora_" in name for name, _ in start.named_parameters())
    texts = ["apple pear melon", "bus car boat"]
    with torch.no_grad():
        expected = source.backbone(source.backbone.collate([source.backbone.prepare(t) for t in texts]))
        got = start(start.collate([start.prepare(t) for t in texts]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert start.info.extra["source_run"]["fine_tuned"] is True


def test_an_ner_run_can_start_a_classifier_and_back(tmp_path, tiny_bert):
    from graftwork import FitConfig
    from graftwork.ner import run_fit_ner

    from ..ner.conftest import make_sentences, write_conll

    ner = run_fit_ner(write_conll(tmp_path / "ner.conll", make_sentences(30)),
                      FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", batch_size=16),
                      out=tmp_path / "ner")
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=10))
    new = graftwork.fit(data, backbone=f"run:{tmp_path / 'ner'}", strategy="frozen")
    assert _same_weights(new.backbone, ner.backbone)
    assert new.config["backbone"]["extra"]["source_run"]["task"] == "ner"
    new.save(tmp_path / "classifier")  # and the reverse: a classifier starts an NER model
    back = run_fit_ner(tmp_path / "ner.conll", FitConfig(task="ner", backbone=f"run:{tmp_path / 'classifier'}",
                                                         strategy="frozen", batch_size=16))
    assert _same_weights(back.backbone, ner.backbone)
    assert back.config["backbone"]["extra"]["source_run"]["task"] == "classification"


def test_a_run_cannot_start_from_the_run_it_would_replace(images, tmp_path):
    graftwork.fit(images, out=tmp_path / "run", **IMAGE)
    before = (tmp_path / "run" / "config.json").read_bytes()
    with pytest.raises(ConfigError, match="output folder of this fit"):
        graftwork.fit(images, out=tmp_path / "run", force=True, backbone=f"run:{tmp_path / 'run'}",
                      strategy="frozen")
    assert (tmp_path / "run" / "config.json").read_bytes() == before


def test_random_init_of_a_run_is_its_architecture_untrained(images, tmp_path):
    source = graftwork.fit(images, out=tmp_path / "source", **IMAGE)
    random = build_backbone(f"run:{tmp_path / 'source'}", pretrained=False)
    assert type(random) is type(source.backbone) and "source_run" not in random.info.extra
    assert random.preprocessing == source.backbone.preprocessing


def test_missing_or_damaged_source_runs_are_clear_errors(images, tmp_path):
    with pytest.raises(RunFolderError, match="no such run folder"):
        build_backbone(f"run:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="not a graftwork run folder"):
        build_backbone(f"run:{tmp_path / 'empty'}")
    graftwork.fit(images, out=tmp_path / "source", **IMAGE)
    weights = tmp_path / "source" / "backbone.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match="not the file this run wrote"):
        graftwork.fit(images, backbone=f"run:{tmp_path / 'source'}", strategy="frozen")


def test_a_run_folder_naming_another_run_is_not_followed(images, tmp_path):
    graftwork.fit(images, out=tmp_path / "a", **IMAGE)
    graftwork.fit(images, out=tmp_path / "b", **IMAGE)
    config_file = tmp_path / "b" / "config.json"
    config = json.loads(config_file.read_text())
    config["backbone"]["load_name"] = f"run:{tmp_path / 'a'}"
    config_file.write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match="names another run"):
        build_backbone(f"run:{tmp_path / 'b'}")
    with pytest.raises(RunFolderError, match="names another run"):
        graftwork.load(tmp_path / "b")


def test_a_path_that_is_neither_a_backbone_nor_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a backbone name or an existing folder"):
        build_backbone(str(tmp_path / "no-such-folder"))
    with pytest.raises(ConfigError, match="does not name a run folder"):
        build_backbone("run:")


def test_a_generation_run_cannot_start_a_fit(tmp_path):
    """Its model is a whole language model, not an encoder backbone: refused by its task, before anything else."""
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "config.json").write_text(json.dumps({"format": "graftwork-run/1", "task": "generate"}))
    for name in (f"run:{tmp_path / 'gen'}", str(tmp_path / "gen")):
        with pytest.raises(ConfigError, match="is a 'generate' run"):
            build_backbone(name)


def test_fingerprint_mismatch_in_config_is_refused(images, tmp_path):
    graftwork.fit(images, out=tmp_path / "source", **IMAGE)
    config_file = tmp_path / "source" / "config.json"
    config = json.loads(config_file.read_text())
    config["backbone"]["fingerprint"] = fingerprint_module(torch.nn.Linear(2, 2))
    config_file.write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match="does not match"):
        build_backbone(f"run:{tmp_path / 'source'}")


def test_cli_reports_a_missing_source_run_without_a_traceback(images, tmp_path, capsys):
    from graftwork.cli.main import main

    code = main(["fit", str(images), "--backbone", f"run:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "new")])
    err = capsys.readouterr().err
    assert code == 2 and "no such run folder" in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()
