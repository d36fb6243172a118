"""load_data on CSV/JSONL text: columns, encodings, quoting, and every bad row named by file and line."""

from __future__ import annotations

import json

import pytest

from graftwork.data import load_data
from graftwork.errors import DataError


def load_error(path, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        load_data(path, **kw)
    return info.value


def jsonl(*objects) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)


def test_csv(tmp_path, text_file):
    path = text_file(tmp_path / "reviews.csv", "text,label\ngreat film,pos\nawful,neg\nfine I guess,pos\n")
    splits = load_data(path)
    assert splits.modality == "text" and splits.source == str(path)
    assert splits.train.items == ["great film", "awful", "fine I guess"]
    assert splits.train.labels == ["pos", "neg", "pos"]
    assert splits.train.origins == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert splits.train.groups is None
    assert splits.classes == ["neg", "pos"] and splits.val is None and splits.test is None


def test_csv_with_group_column(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label,group\na,x,u1\nb,y, u2 \nc,x,\n")
    assert load_data(path).train.groups == ["u1", "u2", ""]


def test_jsonl(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "héllo", "label": "x", "group": "g1"},
                                                 {"text": "bye", "label": "y", "group": "g2", "extra": 1}))
    splits = load_data(path)
    assert splits.train.items == ["héllo", "bye"] and splits.train.labels == ["x", "y"]
    assert splits.train.groups == ["g1", "g2"]
    assert splits.train.origins == [f"{path}:1", f"{path}:2"]


def test_jsonl_non_string_labels_become_strings(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "a", "label": 0}, {"text": "b", "label": 1}))
    assert load_data(path).train.labels == ["0", "1"]


def test_csv_with_bom(tmp_path, text_file):
    path = text_file(tmp_path / "excel.csv", "\ufefftext,label\r\nhello,a\r\nworld,b\r\n")
    splits = load_data(path)
    assert splits.train.items == ["hello", "world"] and splits.train.labels == ["a", "b"]


def test_header_whitespace_is_ignored(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", " text , label \nhello,a\nworld,b\n")
    assert load_data(path).train.items == ["hello", "world"]


def test_quoted_fields_with_commas_quotes_and_newlines(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv",
                     'text,label\n'
                     '"one, two, three",a\n'                # line 2
                     '"first line\nsecond line\nthird",b\n'  # lines 3-5
                     '"she said ""hi""",a\n')               # line 6
    splits = load_data(path)
    assert splits.train.items == ["one, two, three", "first line\nsecond line\nthird", 'she said "hi"']
    assert splits.train.labels == ["a", "b", "a"]
    assert splits.train.origins == [f"{path}:2", f"{path}:3", f"{path}:6"]


def test_bad_multiline_row_is_named_by_its_first_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", 'text,label\nok,a\n"spans\ntwo lines",\nok,b\n')
    assert [p.where for p in load_error(path).problems] == [f"{path}:3"]


def test_unclosed_quote_is_named_by_its_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", 'text,label\nok,a\n"never closed,b\n' + "more,a\n" * 30_000)
    error = load_error(path)
    assert f"{path}:3" in str(error) and "never closed" in str(error.hint)


def test_missing_column_lists_found_columns(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "sentence,label\nhi,a\nho,b\n")
    error = load_error(path)
    assert str(path) in str(error)
    assert "'text'" in str(error) and "['sentence', 'label']" in str(error)
    assert error.hint and "--text-column" in error.hint


def test_missing_column_in_jsonl(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "a", "category": "x"}))
    error = load_error(path)
    assert "'label'" in str(error) and "'category'" in str(error) and "--label-column" in str(error)


def test_empty_text_names_file_and_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\nok,a\n   ,b\nok,b\n")
    error = load_error(path)
    assert [(p.where, p.what) for p in error.problems] == [(f"{path}:3", "empty `text`")]
    assert f"{path}:3: empty `text`" in str(error)


def test_missing_label_names_file_and_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\nok,a\nok,b\nno label here\nalso none, \n")
    error = load_error(path)
    assert [p.where for p in error.problems] == [f"{path}:4", f"{path}:5"]
    assert all(p.what == "missing `label`" for p in error.problems)


def test_missing_label_in_jsonl(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "a", "label": "x"}, {"text": "b", "label": None},
                                                 {"text": "c"}, {"text": "d", "label": "y"}))
    assert [p.where for p in load_error(path).problems] == [f"{path}:2", f"{path}:3"]


def test_non_utf8_bytes_name_the_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\nok,a\ncafé,b\n".encode("latin-1"))
    error = load_error(path)
    assert f"{path}, line 3" in str(error) and "UTF-8" in str(error)
    assert error.hint and "re-save" in error.hint and "UTF-8" in error.hint


def test_invalid_json_line(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label: y}\n'
                                           '{"text": "c", "label": "y"}\n')
    error = load_error(path)
    assert len(error.problems) == 1
    assert error.problems[0].where == f"{path}:2" and "not valid JSON" in error.problems[0].what


def test_json_line_that_is_not_an_object(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", '["a", "x"]\n' + jsonl({"text": "c", "label": "y"}))
    error = load_error(path)
    assert error.problems[0].where == f"{path}:1" and "JSON object" in error.problems[0].what


def test_jsonl_text_with_unicode_line_separators(tmp_path, text_file):
    # JSON allows U+2028/U+2029/U+0085 unescaped inside strings; only "\n" ends a JSON Lines record.
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "one\u2028two", "label": "x"},
                                                 {"text": "three\x85four", "label": "y"},
                                                 {"text": "five\u2029six", "label": "x"}))
    splits = load_data(path)
    assert splits.train.items == ["one\u2028two", "three\x85four", "five\u2029six"]
    assert splits.train.origins == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_custom_columns_csv(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "id,review,stars\n1,good,5\n2,bad,1\n")
    splits = load_data(path, text_column="review", label_column="stars")
    assert splits.train.items == ["good", "bad"] and splits.train.labels == ["5", "1"]


def test_custom_columns_jsonl(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"body": "good", "y": "pos"}, {"body": "bad", "y": "neg"}))
    splits = load_data(path, text_column="body", label_column="y")
    assert splits.train.items == ["good", "bad"] and splits.train.labels == ["pos", "neg"]


def test_custom_column_missing_names_it(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\na,x\nb,y\n")
    error = load_error(path, text_column="review")
    assert "'review'" in str(error) and "`review`" in str(error.hint)


def test_folder_with_split_files(tmp_path, text_file):
    root = tmp_path / "data"
    text_file(root / "train.csv", "text,label\na,x\nb,y\nc,x\n")
    text_file(root / "val.csv", "text,label\nd,x\ne,y\n")
    text_file(root / "test.csv", "text,label\nf,y\n")
    splits = load_data(root)
    assert splits.modality == "text"
    assert splits.train.items == ["a", "b", "c"]
    assert splits.val is not None and splits.val.items == ["d", "e"]
    assert splits.test is not None and splits.test.items == ["f"]
    assert splits.test.origins == [f"{root / 'test.csv'}:2"]


def test_folder_with_jsonl_split_files_and_val_alias(tmp_path, text_file):
    root = tmp_path / "data"
    text_file(root / "train.jsonl", jsonl({"text": "a", "label": "x"}, {"text": "b", "label": "y"}))
    text_file(root / "validation.jsonl", jsonl({"text": "c", "label": "y"}))
    splits = load_data(root)
    assert splits.val is not None and splits.val.items == ["c"]


def test_folder_with_val_but_no_train(tmp_path, text_file):
    root = tmp_path / "data"
    text_file(root / "val.csv", "text,label\na,x\nb,y\n")
    error = load_error(root)
    assert "val.csv" in str(error) and "no train.csv" in str(error)


def test_problems_in_several_split_files_are_reported_together(tmp_path, text_file):
    root = tmp_path / "data"
    text_file(root / "train.csv", "text,label\na,x\n,y\nc,x\n")
    text_file(root / "val.csv", "text,label\nd,\ne,y\n")
    error = load_error(root)
    assert {p.where for p in error.problems} == {f"{root / 'train.csv'}:3", f"{root / 'val.csv'}:2"}


def test_val_file_label_not_in_train(tmp_path, text_file):
    root = tmp_path / "data"
    text_file(root / "train.csv", "text,label\na,x\nb,y\n")
    text_file(root / "val.csv", "text,label\nc,z\n")
    assert "['z']" in str(load_error(root))


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl"])
def test_empty_file(tmp_path, text_file, name):
    path = text_file(tmp_path / name, b"")
    error = load_error(path)
    assert f"{path}: the file is empty" in str(error) and "text,label" in str(error.hint)


def test_header_only(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\n")
    assert "no rows found" in str(load_error(path))


def test_wrong_file_type(tmp_path, text_file):
    path = text_file(tmp_path / "t.tsv", "text\tlabel\na\tx\n")
    assert "must be .csv or .jsonl" in str(load_error(path))


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path, text_file):
    csv_path = text_file(tmp_path / "t.csv", "text,label\n\na,x\n\n\nb,y\n , \n")
    splits = load_data(csv_path)
    assert splits.train.items == ["a", "b"] and splits.train.origins == [f"{csv_path}:3", f"{csv_path}:6"]
    jsonl_path = text_file(tmp_path / "t.jsonl", '\n{"text": "a", "label": "x"}\n   \n{"text": "b", "label": "y"}\n\n')
    splits = load_data(jsonl_path)
    assert splits.train.items == ["a", "b"] and splits.train.origins == [f"{jsonl_path}:2", f"{jsonl_path}:4"]


def test_crlf_line_endings(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\r\na,x\r\n\r\n,y\r\n")
    assert [p.where for p in load_error(path).problems] == [f"{path}:4"]
    path = text_file(tmp_path / "t.jsonl", '{"text": "a", "label": "x"}\r\n{"text": "b", "label": "y"}\r\n')
    assert load_data(path).train.items == ["a", "b"]


def test_skip_bad_files_collects_bad_rows(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\na,x\n,y\nb,y\nc,\nd,x\n")
    splits = load_data(path, skip_bad_files=True)
    assert splits.train.items == ["a", "b", "d"]
    assert splits.train.origins == [f"{path}:2", f"{path}:4", f"{path}:6"]
    assert splits.skipped == [f"{path}:3: empty `text`", f"{path}:5: missing `label`"]


def test_skip_bad_files_collects_bad_json_lines(tmp_path, text_file):
    path = text_file(tmp_path / "t.jsonl", jsonl({"text": "a", "label": "x"}) + "{oops\n" + jsonl({"text": "b", "label": "y"}))
    splits = load_data(path, skip_bad_files=True)
    assert splits.train.items == ["a", "b"]
    assert len(splits.skipped) == 1 and splits.skipped[0].startswith(f"{path}:2: not valid JSON")


def test_skip_bad_files_does_not_hide_a_file_with_no_usable_rows(tmp_path, text_file):
    path = text_file(tmp_path / "t.csv", "text,label\n,x\n,y\n")
    error = load_error(path, skip_bad_files=True)
    assert "no usable training examples" in str(error)
