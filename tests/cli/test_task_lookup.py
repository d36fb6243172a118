"""The command line through the task registry: settings a task does not read are refused (exit 2, named, nothing
written), ``advise`` knows NER data, and the parser stays importable after the split into command modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import graftwork.cli as cli_package
from graftwork.cli.main import build_parser, main
from graftwork.config import STRATEGIES

from ..conftest import make_text_rows, write_csv
from ..ner.conftest import make_sentences, write_conll, write_jsonl


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("task", "flag", "value"), [
    ("ner", "--image-size", "96"),
    ("generate", "--unfreeze", "2"),
    ("classify", "--max-new-tokens", "5"),
])
def test_fit_refuses_a_setting_the_task_does_not_read(tmp_path, capsys, task, flag, value):
    data = write_csv(tmp_path / "data.csv", make_text_rows(per_class=4))
    code, out, err = run(capsys, "fit", data, "--task", task, flag, value, "--out", tmp_path / "run")
    assert code == 2 and "Traceback" not in err
    assert f"'{flag[2:].replace('-', '_')}'" in err and flag in err and f"task={task!r}" in err
    assert out == "" and not (tmp_path / "run").exists()


def test_advise_tells_ner_data_from_the_files_and_plans_from_mentions(tmp_path, capsys):
    from graftwork.strategies.plan import FROZEN_BELOW

    data = write_conll(tmp_path / "tagged.conll", make_sentences(10, seed=0))
    code, out, err = run(capsys, "advise", data, "--json")
    assert code == 0, err
    advice = json.loads(out)
    assert advice["task"] == "ner" and set(advice["mentions_per_type"]) == {"FRUIT", "VEH"}
    assert max(advice["mentions_per_type"].values()) < FROZEN_BELOW and advice["strategy"] == "frozen"
    assert advice["sentences"] == {"train": 8, "val": 2, "test": 0}  # fit's 20 % validation hold-out
    assert advice["mentions"]["train"] == advice["mentions_per_type"]
    code, out, _ = run(capsys, "advise", data)
    assert code == 0
    assert "plan: frozen (chosen by auto)" in out and "entity mentions per type (train): FRUIT" in out
    more = write_conll(tmp_path / "more.conll", make_sentences(200, seed=0))
    code, out, _ = run(capsys, "advise", more, "--json")
    advice = json.loads(out)
    assert min(advice["mentions_per_type"].values()) >= FROZEN_BELOW and advice["strategy"] == "gradual"


def test_advise_task_ner_on_a_folder_with_a_dev_split(tmp_path, capsys):
    root = tmp_path / "corpus"
    root.mkdir()
    write_jsonl(root / "train.jsonl", make_sentences(30, seed=0))
    write_jsonl(root / "dev.jsonl", make_sentences(10, seed=1))
    code, out, err = run(capsys, "advise", root, "--task", "ner", "--strategy", "gradual", "--json")
    assert code == 0, err
    advice = json.loads(out)
    assert advice["strategy"] == "gradual" and advice["requested"] == "gradual"
    assert advice["sentences"] == {"train": 30, "val": 10, "test": 0}


def test_advise_refuses_what_it_cannot_plan(tmp_path, capsys):
    data = write_conll(tmp_path / "tagged.conll", make_sentences(10))
    code, _, err = run(capsys, "advise", data, "--task", "ner", "--class-weights", "on", "--label-column", "y")
    assert code == 2 and "'label_column'" in err


def test_advise_on_classification_data_is_unchanged(tmp_path, capsys):
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=10))
    code, out, err = run(capsys, "advise", data, "--json", "--no-curve")
    assert code == 0, err
    advice = json.loads(out)
    assert advice["task"] == "classify" and advice["modality"] == "text" and advice["strategy"] in STRATEGIES
    assert advice["learning_curve"] is None and "skipped (--no-curve)" in advice["note"]


def test_the_parser_has_every_command_and_no_cli_file_is_long():
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"fit", "evaluate", "predict", "report", "export", "serve", "backbones", "rank",
                             "advise", "demo"}
    for file in Path(cli_package.__file__).parent.rglob("*.py"):
        assert len(file.read_text().splitlines()) <= 400, file


def test_fit_on_ner_data_without_task_ner_says_so(tmp_path, capsys):
    for data in (write_conll(tmp_path / "a.conll", make_sentences(5)), write_jsonl(tmp_path / "b.jsonl",
                                                                                   make_sentences(5))):
        code, _, err = run(capsys, "fit", data, "--out", tmp_path / "run")
        assert code == 2 and "named-entity recognition" in err and "--task ner" in err
    assert not (tmp_path / "run").exists()
