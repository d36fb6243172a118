"""Reading CoNLL and JSONL, BIO checks, and errors that name the file and line."""

from __future__ import annotations

import pytest

from graftwork.errors import DataError
from graftwork.ner.data import hold_out, load_ner_data, tag_list, to_iob2

from .conftest import make_sentences, write_conll, write_jsonl


def _problems(excinfo: pytest.ExceptionInfo[DataError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_conll_two_and_four_columns_and_docstart(tmp_path):
    sents = make_sentences(5)
    two = load_ner_data(write_conll(tmp_path / "a.conll", sents))
    four = load_ner_data(write_conll(tmp_path / "b.txt", sents, columns=4))
    assert [(s.tokens, s.tags) for s in two.train] == [(t, g) for t, g in sents]
    assert [(s.tokens, s.tags) for s in four.train] == [(t, g) for t, g in sents]
    assert two.train[0].lines[0] == 3  # line 1 is -DOCSTART-, line 2 blank
    assert two.entity_types == ["FRUIT", "VEH"]
    assert tag_list(two.entity_types) == ["O", "B-FRUIT", "I-FRUIT", "B-VEH", "I-VEH"]


def test_folder_with_dev_and_jsonl_test(ner_folder):
    splits = load_ner_data(ner_folder)
    assert (len(splits.train), len(splits.val or []), len(splits.test or [])) == (60, 15, 15)
    assert splits.summary()["train"]["sentences"] == 60


def test_malformed_lines_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Ann B-PER\nLee\n\nin O extra\nOslo B-LOC\n\nBob PER\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_ner_data(path)
    problems = _problems(e)
    assert any(p.startswith(f"{path}:2:") and "token tag" in p for p in problems)
    assert any(p.startswith(f"{path}:4:") and "3 columns, but line 1 has 2" in p for p in problems)
    assert any(p.startswith(f"{path}:7:") and "'PER' is not O, B-TYPE or I-TYPE" in p for p in problems)
    assert "--skip-bad-files" in (e.value.hint or "")


def test_skip_bad_files_drops_only_bad_sentences(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Ann B-PER\nLee\n\nBob B-PER\nruns O\n", encoding="utf-8")
    splits = load_ner_data(path, skip_bad=True)
    assert [s.tokens for s in splits.train] == [["Bob", "runs"]]
    assert len(splits.skipped) == 1


def test_jsonl_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\nnot json\n{"text": "x"}\n'
                    '{"tokens": ["Ann"], "tags": ["B-PER"]}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_ner_data(path)
    assert [p.split(": ")[0] for p in _problems(e)] == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_iob1_file_is_converted_with_a_note(tmp_path):
    path = tmp_path / "iob1.conll"
    path.write_text("Ann I-PER\nLee I-PER\nBob B-PER\nin O\nOslo I-LOC\n", encoding="utf-8")
    splits = load_ner_data(path)
    assert splits.train[0].tags == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert any("IOB1" in n for n in splits.notes)
    assert to_iob2(["I-A", "I-B", "O", "I-B", "B-B"]) == ["B-A", "B-B", "O", "B-B", "B-B"]


def test_invalid_bio_mixing_schemes_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "mixed.conll"
    path.write_text("Ann B-PER\nLee I-PER\n\nin O\nOslo I-LOC\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_ner_data(path)
    (problem,) = _problems(e)
    assert problem.startswith(f"{path}:5:") and "'I-LOC' follows 'O'" in problem


def test_unknown_type_in_test_names_the_line(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    write_conll(root / "train.conll", [(["Ann", "runs"], ["B-PER", "O"])])
    write_jsonl(root / "test.jsonl", [(["Ann"], ["B-PER"]), (["in", "Oslo"], ["O", "B-LOC"])])
    with pytest.raises(DataError) as e:
        load_ner_data(root)
    (problem,) = _problems(e)
    assert problem.startswith(f"{root / 'test.jsonl'}:2:") and "'LOC'" in problem


def test_no_entities_and_wrong_suffix(tmp_path):
    with pytest.raises(DataError, match="no entities"):
        load_ner_data(write_conll(tmp_path / "o.conll", [(["a", "b"], ["O", "O"])]))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="CoNLL"):
        load_ner_data(tmp_path / "x.csv")


def test_hold_out_is_seeded_and_never_empty():
    sents = [object() for _ in range(10)]
    a, b = hold_out(sents, 0.2, seed=3)  # type: ignore[arg-type]
    assert len(b) == 2 and len(a) == 8 and hold_out(sents, 0.2, seed=3) == (a, b)  # type: ignore[arg-type]
