"""Every bad-input case is reported at once, with its file and line; unsupported settings are named."""

from __future__ import annotations

import pytest

from graftwork.config import FitConfig
from graftwork.errors import ConfigError, DataError
from graftwork.generate.data import load_generation_data
from graftwork.tasks import fit as run_fit

from .conftest import colour_pairs, write_jsonl


def test_every_bad_line_is_reported_at_once_with_file_and_line(tmp_path, tiny_lm_dir):
    path = tmp_path / "bad.jsonl"
    good = '{"prompt": "what colour is it ?", "completion": "red"}'
    long = '{"prompt": "' + " ".join(["the cat"] * 200) + '", "completion": "red"}'
    lines = [good.encode(), b'{"prompt": "what", "completion": ""}', b'{"prompt": "what colour"}',
             b'{"prompt": "broken', b'{"prompt": "caf\xe9", "completion": "red"}', b'{"question": "x"}',
             b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]}',
             long.encode(), good.encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError) as e:
        run_fit(path, FitConfig(task="generate", backbone=str(tiny_lm_dir), max_length=64), out=tmp_path / "run")
    where = {p.where: p.what for p in e.value.problems}
    assert set(where) == {f"{path}:{n}" for n in (2, 3, 4, 5, 6, 7, 8)}
    assert "empty completion" in where[f"{path}:2"]
    assert "missing column" in where[f"{path}:3"]
    assert "broken JSON" in where[f"{path}:4"]
    assert "not UTF-8" in where[f"{path}:5"]
    assert "missing column" in where[f"{path}:6"]
    assert "empty assistant" in where[f"{path}:7"]
    assert "over-long" in where[f"{path}:8"]
    assert not (tmp_path / "run").exists()


def test_csv_missing_column_and_empty_completion(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,completion\nwhat colour,red\nwhat colour,\n", encoding="utf-8")
    splits = load_generation_data(path)
    assert len(splits.train) == 1 and [p.where for p in splits.problems] == [f"{path}:3"]
    bad = tmp_path / "e.csv"
    bad.write_text("question,answer\na,b\n", encoding="utf-8")
    assert "missing column" in load_generation_data(bad).problems[0].what


def test_folder_of_split_files_and_chat_and_text_rows(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", colour_pairs(4) + [
        {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]},
        {"text": "the cat is red ."}])
    write_jsonl(tmp_path / "dev.jsonl", colour_pairs(2))
    splits = load_generation_data(tmp_path)
    assert len(splits.train) == 6 and len(splits.val or []) == 2 and splits.test is None
    assert splits.kinds() == {"pair", "chat", "text"}


def test_settings_a_task_does_not_use_are_errors_that_name_them():
    with pytest.raises(ConfigError) as e:
        FitConfig(task="generate", image_size=96, unfreeze=2, strategy="lora")
    names = {p.where for p in e.value.problems}
    assert {"'image_size'", "'unfreeze'"} <= names
    with pytest.raises(ConfigError, match="max_new_tokens"):
        FitConfig(task="classify", max_new_tokens=10)
    with pytest.raises(ConfigError, match="strategy"):
        FitConfig(task="generate", strategy="gradual")
