"""Run folders are data, not instructions: loading one checks everything it says before using any of it.

Each test trains a tiny run through the real API, then damages, edits or moves it the way a copied, hand-edited or
tampered folder would be, and asserts the exact outcome: a RunFolderError that names the file or the config key
(exit status 2 from the CLI, no traceback), or, for a run that is merely elsewhere and read-only, the same
predictions as the original and nothing written into it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

import graftwork
from graftwork.cli.main import main
from graftwork.config import FitConfig
from graftwork.errors import RunFolderError, WeightsError
from graftwork.ner import run_fit_ner

from ..conftest import (
    add_trained_looking_adapters,
    make_image_folder,
    make_text_rows,
    make_tone_folder,
    write_csv,
)
from ..ner.conftest import make_sentences, write_conll

TEXTS = ["apple banana pear", "bus car truck", "grape melon", "boat train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert, tiny_wav2vec2) -> dict[str, Path]:
    """An image run (random-init backbone saved whole), a text run (pretrained backbone found by name), a LoRA run
    (pretrained backbone + adapters), an audio run and an NER run; no feature cache, so nothing outside them."""
    root = tmp_path_factory.mktemp("trust")
    images = make_image_folder(root / "images", per_class=6)
    graftwork.fit(images, out=root / "image", backbone="timm:test_efficientnet", pretrained=False, cache=False)
    csv = write_csv(root / "texts.csv", make_text_rows(per_class=8))
    # the frozen probe (no SetFit recipe): the backbone stays the pretrained one, found by name
    model = graftwork.fit(csv, out=root / "text", backbone=str(tiny_bert), cache=False, contrastive=False)
    add_trained_looking_adapters(model, r=2, alpha=4)
    model.save(root / "lora")
    tones = make_tone_folder(root / "tones", per_class=4)
    graftwork.fit(tones, out=root / "audio", backbone=str(tiny_wav2vec2), pretrained=False, audio_window=0.5,
                  cache=False)
    ner = root / "ner-data"
    ner.mkdir()
    write_conll(ner / "train.conll", make_sentences(40, seed=0))
    write_conll(ner / "dev.conll", make_sentences(10, seed=1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("graftwork.ner.train.HEAD_EPOCHS", 5)
        run_fit_ner(ner, FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen",  # type: ignore[arg-type]
                                   batch_size=16), out=root / "ner")
    return {"root": root, "images": images, "csv": csv, "tones": tones, "ner-data": ner} | {
        k: root / k for k in ("image", "text", "lora", "audio", "ner")}


def copy_run(runs: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(runs[kind], tmp_path / f"{kind}-copy"))


def read_config(run: Path) -> dict[str, Any]:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


def edit_config(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    config = read_config(run)
    change(config)
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")


def edit_tensors(file: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(file))
    change(tensors)
    save_file(tensors, str(file))


def record_digest(run: Path, name: str) -> None:
    """What a tamperer who also edits config.json does: record the changed file's sha256."""
    digest = hashlib.sha256((run / name).read_bytes()).hexdigest()
    edit_config(run, lambda c: c["files"].__setitem__(name, digest))


def bump_first(tensors: dict[str, torch.Tensor], part: str = "") -> None:
    key = sorted(k for k in tensors if part in k)[0]
    tensors[key] = tensors[key] + 1e-3


def refused(run: Path, *expected: str, loader: Callable[..., Any] = graftwork.load) -> str:
    with pytest.raises(RunFolderError) as caught:
        loader(run)
    message = str(caught.value)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def cli_refuses(args: list[str], capsys, *expected: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(text in err for text in expected), err


# -- every weight file is checked against its fingerprint -------------------------------------------------------
def test_a_changed_adapter_value_is_refused_naming_the_file(runs, tmp_path, capsys):
    run = copy_run(runs, "lora", tmp_path)
    edit_tensors(run / "adapter.safetensors", lambda t: bump_first(t, "lora_B"))
    refused(run, str(run / "adapter.safetensors"), "not the file this run wrote")
    cli_refuses(["predict", str(run), *TEXTS, "--json"], capsys, "adapter.safetensors", "Hint:")


def test_an_adapter_with_a_removed_key_is_refused_even_with_a_matching_fingerprint(runs, tmp_path):
    run = copy_run(runs, "lora", tmp_path)
    removed = sorted(load_file(str(run / "adapter.safetensors")))[0]
    edit_tensors(run / "adapter.safetensors", lambda t: t.pop(removed))
    refused(run, "adapter.safetensors", "not the file this run wrote")
    record_digest(run, "adapter.safetensors")
    refused(run, str(run / "adapter.safetensors"), "missing", removed)


def test_a_changed_backbone_file_is_refused(runs, tmp_path, capsys):
    run = copy_run(runs, "image", tmp_path)
    edit_tensors(run / "backbone.safetensors", lambda t: bump_first(t, "weight"))
    refused(run, str(run / "backbone.safetensors"), "not the file this run wrote")
    cli_refuses(["evaluate", str(run), str(runs["images"]), "--json"], capsys, "backbone.safetensors")


def test_a_changed_head_is_refused(runs, tmp_path, capsys):
    run = copy_run(runs, "image", tmp_path)
    edit_tensors(run / "head.safetensors", lambda t: bump_first(t, "fc.bias"))
    refused(run, str(run / "head.safetensors"), "not the file this run wrote")
    ner = copy_run(runs, "ner", tmp_path)
    edit_tensors(ner / "head.safetensors", lambda t: bump_first(t, "fc.weight"))
    cli_refuses(["evaluate", str(ner), str(runs["ner-data"] / "dev.conll")], capsys, "head.safetensors")


@pytest.mark.parametrize(("kind", "change", "expected"), [
    ("image", lambda c: c["files"].pop("backbone.safetensors"), ["backbone.safetensors", "no fingerprint"]),
    ("image", lambda c: c.pop("files"), ["head.safetensors", "no fingerprint"]),
    ("lora", lambda c: c["files"].pop("adapter.safetensors"), ["adapter.safetensors", "no fingerprint"]),
    ("image", lambda c: c["files"].__setitem__("head.safetensors", ""), ["'files.head.safetensors'", "''"]),
    ("text", lambda c: c["backbone"].__setitem__("fingerprint", ""), ["'backbone.fingerprint'", "missing or empty"]),
    ("lora", lambda c: c["backbone"]["extra"].pop("pretrained_fingerprint"),
     ["'backbone.extra.pretrained_fingerprint'", "missing or empty"]),
], ids=["backbone-file", "no-files-key", "adapter-file", "empty-digest", "pretrained", "lora-pretrained"])
def test_a_missing_or_empty_fingerprint_is_an_error_not_a_skip(runs, tmp_path, kind, change, expected):
    run = copy_run(runs, kind, tmp_path)
    edit_config(run, change)
    refused(run, *expected)


def test_weight_files_and_their_records_must_agree(runs, tmp_path):
    run = copy_run(runs, "text", tmp_path)  # uses the pretrained weights: a backbone file would override them
    shutil.copy(runs["image"] / "backbone.safetensors", run / "backbone.safetensors")
    refused(run, str(run / "backbone.safetensors"), "no fingerprint", "was not loaded")
    lora = copy_run(runs, "lora", tmp_path)
    (lora / "adapter.safetensors").unlink()  # without it the run would load as the plain pretrained model
    refused(lora, str(lora / "adapter.safetensors"), "missing, but config.json records it")


def test_the_pretrained_backbone_must_be_the_one_trained_with(runs, tmp_path, tiny_bert):
    from transformers import BertConfig, BertModel

    local = Path(shutil.copytree(tiny_bert, tmp_path / "bert"))
    # frozen (no SetFit recipe): the run names the pretrained weights instead of saving a tuned copy
    model = graftwork.fit(runs["csv"], out=tmp_path / "run", backbone=str(local), cache=False, contrastive=False)
    expected = [p["label"] for p in model.predict(TEXTS)]
    torch.manual_seed(1)  # the same architecture with other weights, in the folder the run names
    BertModel(BertConfig.from_pretrained(local), add_pooling_layer=False).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", local / "model.safetensors")
    refused(tmp_path / "run", "not the ones this model was trained with", "'backbone.fingerprint'")
    (local / "model.safetensors").unlink()
    shutil.copy(Path(tiny_bert) / "model.safetensors", local / "model.safetensors")
    assert [p["label"] for p in graftwork.load(tmp_path / "run").predict(TEXTS)] == expected


# -- the config agrees with the weights, and its values are checked before use -----------------------------------
def test_the_class_count_must_match_the_head(runs, tmp_path, capsys):
    run = copy_run(runs, "image", tmp_path)
    edit_config(run, lambda c: c["classes"].append("green"))
    refused(run, str(run / "head.safetensors"), "2 outputs", "lists 3 classes")
    ner = copy_run(runs, "ner", tmp_path)
    edit_config(ner, lambda c: c["tags"].remove("I-VEH"))
    cli_refuses(["predict", str(ner), "my apples and the bus"], capsys, "head.safetensors", "lists 4 tags")


@pytest.mark.parametrize(("kind", "key", "value"), [
    ("image", "classes", ["red", "red"]),
    ("image", "classes", ["", "red"]),
    ("image", "classes", "red,blue"),
    ("image", "preprocessing.crop", 0),
    ("image", "preprocessing.crop", "32"),
    ("image", "preprocessing.crop", 10 ** 9),
    ("image", "preprocessing.resize", -1),
    ("image", "head.in_features", 0),
    ("image", "format", "something-else/9"),
    ("audio", "preprocessing.window_s", 0),
    ("audio", "preprocessing.window_s", 3600),
    ("audio", "preprocessing.window_s", "0.5"),
    ("audio", "preprocessing.sample_rate", 0),
    ("lora", "backbone.extra.lora.r", 0),
    ("lora", "backbone.extra.lora.alpha", -4),
    ("lora", "backbone.extra.lora.targets", []),
    ("ner", "tags", ["O", "B-FRUIT", "X-FRUIT"]),
])
def test_bad_config_values_are_named_with_their_key_and_value(runs, tmp_path, capsys, kind, key, value):
    run = copy_run(runs, kind, tmp_path)

    def change(config: dict[str, Any]) -> None:
        *path, last = key.split(".")
        section = config
        for part in path:
            section = section[part]
        section[last] = value

    edit_config(run, change)
    message = refused(run, str(run / "config.json"), f"'{key}'", repr(value)[:60])
    assert "Hint:" in message
    cli_refuses(["predict", str(run), "x", "--json"], capsys, f"'{key}'")


def test_values_that_the_rebuilt_backbone_contradicts_are_refused(runs, tmp_path):
    run = copy_run(runs, "audio", tmp_path)
    edit_config(run, lambda c: c["preprocessing"].__setitem__("sample_rate", 8000))
    refused(run, "'preprocessing.sample_rate' is 8000", "uses 16000")
    lora = copy_run(runs, "lora", tmp_path)
    edit_config(lora, lambda c: c["backbone"]["extra"]["lora"].__setitem__("targets", ["not.a.layer"]))
    refused(lora, "'backbone.extra.lora.targets'", "not.a.layer")


# -- paths come from the machine that loads the run --------------------------------------------------------------
def test_the_recorded_cache_dir_is_neither_used_nor_created(runs, tmp_path, monkeypatch):
    run = copy_run(runs, "image", tmp_path)
    elsewhere, absent = tmp_path / "someone-elses-cache", tmp_path / "no" / "such" / "cache"
    elsewhere.mkdir()
    here = tmp_path / "this-machines-cache"
    monkeypatch.setenv("GRAFTWORK_CACHE", str(here))
    for recorded in (elsewhere, absent):
        edit_config(run, lambda c, r=recorded: c["fit"].__setitem__("cache_dir", str(r)))
        result = graftwork.load(run).evaluate(runs["images"], use_cache=True)
        assert result["accuracy"] >= 0.5
    assert not any(elsewhere.iterdir()) and not absent.parent.parent.exists()
    assert list((here / "features").glob("*.sqlite"))
    chosen = tmp_path / "chosen"
    graftwork.load(run).evaluate(runs["images"])  # the default: $GRAFTWORK_CACHE
    from graftwork.model import TransferModel

    TransferModel.load(run, cache_dir=chosen).evaluate(runs["images"], use_cache=True)
    assert list((chosen / "features").glob("*.sqlite"))


def test_the_recorded_weights_path_is_never_used(runs, tmp_path, tiny_bert):
    from transformers import BertConfig, BertModel

    other = tmp_path / "other-bert"
    shutil.copytree(tiny_bert, other)
    torch.manual_seed(7)
    BertModel(BertConfig.from_pretrained(other), add_pooling_layer=False).save_pretrained(other)
    run = copy_run(runs, "text", tmp_path)
    expected = graftwork.load(runs["text"]).predict_proba(TEXTS)
    for recorded in (other, tmp_path / "missing"):  # another model's weights, and a path that is not there
        edit_config(run, lambda c, r=recorded: c["fit"].__setitem__("weights", str(r)))
        torch.testing.assert_close(graftwork.load(run).predict_proba(TEXTS), expected)
    with pytest.raises(RunFolderError, match="not the ones this model was trained with"):
        graftwork.load(run, weights=str(other))  # an explicit location is checked like any other


def test_weights_moved_on_this_machine_are_found_by_an_explicit_location(runs, tmp_path, tiny_bert, capsys):
    local = Path(shutil.copytree(tiny_bert, tmp_path / "bert"))
    model = graftwork.fit(runs["csv"], out=tmp_path / "run", backbone=str(local), cache=False)
    moved = local.rename(tmp_path / "bert-moved")
    with pytest.raises(WeightsError) as caught:
        graftwork.load(tmp_path / "run")
    assert str(local) in str(caught.value) and "--weights" in str(caught.value)
    loaded = graftwork.load(tmp_path / "run", weights=str(moved))
    torch.testing.assert_close(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))
    cli_refuses(["predict", str(tmp_path / "run"), *TEXTS, "--json"], capsys, str(local), "--weights")
    assert main(["predict", str(tmp_path / "run"), *TEXTS, "--json", "--weights", str(moved)]) == 0
    labels = [p["label"] for p in json.loads(capsys.readouterr().out)]
    assert labels == [p["label"] for p in model.predict(TEXTS)]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "",
                                         p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))} | {
        ".": ("", folder.stat().st_mtime_ns)}


def read_only_copy(runs: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    """The run copied to another path (the first copy deleted, so nothing can point back at it), made read-only."""
    first = copy_run(runs, kind, tmp_path / "first")
    run = Path(shutil.copytree(first, tmp_path / "another" / "place" / kind))
    shutil.rmtree(first)
    for p in [run, *run.rglob("*")]:
        p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    return run


@pytest.fixture
def writable_again(tmp_path):
    yield
    for p in tmp_path.rglob("*"):  # let pytest clean up
        p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


@pytest.mark.parametrize(("kind", "inputs", "data"), [
    ("image", None, "images"), ("lora", TEXTS, "csv"), ("audio", None, "tones"), ("ner", TEXTS, None)])
def test_a_copied_read_only_run_evaluates_and_predicts_the_same(runs, tmp_path, capsys, writable_again,
                                                               kind, inputs, data):
    items = inputs or sorted(str(p) for p in runs[data].rglob("*.*"))[::3]
    evaluate_on = str(runs[data] if data else runs["ner-data"] / "dev.conll")

    def outputs(run: Path) -> tuple[Any, Any]:
        assert main(["predict", str(run), *items, "--json"]) == 0
        predicted = json.loads(capsys.readouterr().out)
        assert main(["evaluate", str(run), evaluate_on, "--json"]) == 0
        return predicted, json.loads(capsys.readouterr().out)

    expected = outputs(runs[kind])
    run = read_only_copy(runs, kind, tmp_path)
    before = snapshot(run)
    predicted, evaluated = outputs(run)
    assert snapshot(run) == before
    assert json.dumps(predicted) == json.dumps(expected[0])
    assert {k: v for k, v in evaluated.items() if k != "data"} == {k: v for k, v in expected[1].items() if k != "data"}
