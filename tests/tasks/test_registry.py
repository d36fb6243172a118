"""The task registry: names to tasks, run folders to tasks, data to tasks, and each task's unsupported settings."""

from __future__ import annotations

import json

import pytest

from graftwork.config import FitConfig
from graftwork.errors import ConfigError, RunFolderError
from graftwork.tasks import detect_task, get_task, task_names, task_of_run

from ..ner.conftest import make_sentences, write_conll, write_jsonl


def test_get_task_takes_the_option_and_the_run_folder_names():
    assert get_task("classify") is get_task("classification")
    assert get_task("classify").name == "classification"
    assert [get_task(n).name for n in ("ner", "generate")] == ["ner", "generate"]
    assert task_names() == ["classify", "ner", "generate"]


def test_an_unknown_task_names_the_choices_and_the_close_one():
    with pytest.raises(ConfigError, match="classify, ner, generate") as e:
        get_task("nerr")
    assert "'ner'" in e.value.hint


def _run(folder, config):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return folder


def test_task_of_run_reads_config_json(tmp_path):
    assert task_of_run(_run(tmp_path / "n", {"task": "ner"})).name == "ner"
    assert task_of_run(_run(tmp_path / "g", {"task": "generate"})).name == "generate"
    assert task_of_run(_run(tmp_path / "old", {"classes": ["a", "b"]})).name == "classification"  # before tasks


@pytest.mark.parametrize(("config", "says"), [
    ({"task": "segmentation"}, "'task' must be one of classification, ner, generate"),
    ("{not json", "damaged JSON"),
    ('["a list"]', "expected a JSON object"),
])
def test_task_of_a_damaged_run_is_a_run_folder_error(tmp_path, config, says):
    with pytest.raises(RunFolderError, match=says):
        task_of_run(_run(tmp_path / "run", config))


def test_a_folder_that_is_not_a_run_says_so(tmp_path):
    with pytest.raises(RunFolderError, match="not a graftwork run folder"):
        task_of_run(tmp_path)
    with pytest.raises(RunFolderError, match="not a folder"):
        task_of_run(tmp_path / "missing")


def test_detect_task_tells_tagged_tokens_from_labelled_examples(tmp_path):
    sentences = make_sentences(3)
    assert detect_task(write_conll(tmp_path / "a.conll", sentences)) == "ner"
    assert detect_task(write_jsonl(tmp_path / "b.jsonl", sentences)) == "ner"
    (tmp_path / "corpus").mkdir()
    write_conll(tmp_path / "corpus" / "train.iob2", sentences)
    assert detect_task(tmp_path / "corpus") == "ner"
    (tmp_path / "c.jsonl").write_text('{"text": "apple", "label": "fruit"}\n')
    (tmp_path / "d.csv").write_text("text,label\napple,fruit\n")
    assert detect_task(tmp_path / "c.jsonl") == detect_task(tmp_path / "d.csv") == "classify"


@pytest.mark.parametrize(("task", "setting", "value"), [
    ("ner", "image_size", 96), ("ner", "probe_c", 0.5), ("ner", "groups", "g"), ("ner", "max_new_tokens", 8),
    ("generate", "unfreeze", 2), ("generate", "image_size", 96),
    ("classify", "max_new_tokens", 8), ("classify", "trust_remote_code", True),
])
def test_a_setting_the_task_does_not_read_is_an_error_naming_it(task, setting, value):
    with pytest.raises(ConfigError) as e:
        FitConfig(task=task, **{setting: value})
    assert [p.where for p in e.value.problems] == [f"'{setting}'"]
    assert f"--{setting.replace('_', '-')}" in str(e.value)


def test_settings_the_task_reads_are_accepted():
    FitConfig(task="ner", lr=1e-2, stage_epochs=1, batch_size=16, strategy="lora", lora_r=2, seed=3)
    FitConfig(task="ner", cache=False)  # NER keeps no feature cache: "no cache" holds as asked
    FitConfig(task="generate", max_new_tokens=8, gradient_accumulation=2, strategy="lora")
    FitConfig(task="classify", gradient_accumulation=2)  # the staged trainer accumulates for every task
    assert FitConfig(task="classification", image_size=96).task == "classify"  # a run folder's name for it


def test_every_unsupported_setting_is_a_real_setting():
    """The tasks' lists name FitConfig fields (a renamed field must not leave a rule that never fires)."""
    from graftwork.generate.settings import NOT_FOR_GENERATE
    from graftwork.ner.settings import NER_UNSUPPORTED
    from graftwork.tasks.classify import ONLY_FOR_GENERATE

    fields = set(FitConfig.__dataclass_fields__)
    assert set(NER_UNSUPPORTED) | set(NOT_FOR_GENERATE) | set(ONLY_FOR_GENERATE) <= fields


def test_the_report_sections_are_the_tasks(tmp_path):
    """Every task lays out its own sections in the shared page; the report takes them from the task."""
    from graftwork.report import sections_for

    for name in ("classification", "ner", "generate"):
        config = {"task": name}
        titles = [s.title for s in get_task(name).report_sections(config, {})]
        assert titles and titles == [s.title for s in sections_for(config, {})]
    assert len({tuple(s.title for s in get_task(n).report_sections({}, {})) for n in ("classification", "ner",
                                                                                        "generate")}) == 3


def test_generation_passes_trainer_callbacks_to_its_fit(tmp_path, monkeypatch):
    """Generation trains on the staged trainer: callbacks reach its fit (a real fit with one: tests/generate)."""
    import graftwork.generate.fit as gen_fit

    seen = {}
    monkeypatch.setattr(gen_fit, "run_fit_generate", lambda data, cfg, **kw: seen.update(kw) or "fitted")
    callback = object()
    assert get_task("generate").fit(tmp_path / "d", FitConfig(task="generate"), callbacks=[callback]) == "fitted"
    assert seen["callbacks"] == [callback]
