"""load_data on image folders: the layouts understood, and precise errors for the ones that are not usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from graftwork.data import load_data
from graftwork.errors import DataError


def load_error(path, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        load_data(path, **kw)
    return info.value


def test_class_folders(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets", {"cat": 3, "dog": 2})
    splits = load_data(root)
    assert splits.modality == "image"
    assert splits.source == str(root)
    assert splits.classes == ["cat", "dog"]
    assert splits.train.class_counts() == {"cat": 3, "dog": 2}
    assert splits.val is None and splits.test is None
    assert splits.skipped == [] and splits.notes == []
    for item, label, origin in zip(splits.train.items, splits.train.labels, splits.train.origins, strict=True):
        assert Path(item).is_file() and Path(item).parent.name == label and origin == item


def test_images_in_nested_sub_folders_of_a_class(tmp_path, class_folders, image_file):
    root = class_folders(tmp_path / "pets")
    image_file(root / "cat" / "2023" / "summer" / "deep.jpg")
    splits = load_data(root)
    assert splits.train.class_counts() == {"cat": 4, "dog": 3}
    assert str(root / "cat" / "2023" / "summer" / "deep.jpg") in splits.train.items


def test_every_image_extension_in_any_case(tmp_path, class_folders, image_file):
    root = class_folders(tmp_path / "pets", {"cat": 1, "dog": 1})
    for ext in ["jpg", "JPEG", "Png", "bmp", "webp", "gif", "tif", "TIFF"]:
        image_file(root / "cat" / f"more.{ext}")
    assert load_data(root).train.class_counts() == {"cat": 9, "dog": 1}


def test_train_val_test_layout(tmp_path, class_folders):
    root = tmp_path / "data"
    class_folders(root / "train", {"cat": 3, "dog": 3})
    class_folders(root / "val", {"cat": 1, "dog": 1})
    class_folders(root / "test", {"cat": 2, "dog": 1})
    splits = load_data(root)
    assert splits.classes == ["cat", "dog"]
    assert splits.train.class_counts() == {"cat": 3, "dog": 3}
    assert splits.val is not None and splits.val.class_counts() == {"cat": 1, "dog": 1}
    assert splits.test is not None and splits.test.class_counts() == {"cat": 2, "dog": 1}
    assert all(Path(p).is_relative_to(root / "val") for p in splits.val.items)


def test_train_only_split_layout(tmp_path, class_folders):
    class_folders(tmp_path / "data" / "train")
    splits = load_data(tmp_path / "data")
    assert splits.classes == ["cat", "dog"] and splits.val is None and splits.test is None


@pytest.mark.parametrize("alias", ["valid", "validation"])
def test_val_folder_aliases(tmp_path, class_folders, alias):
    root = tmp_path / "data"
    class_folders(root / "train")
    class_folders(root / alias, {"cat": 1, "dog": 1})
    splits = load_data(root)
    assert splits.val is not None and splits.val.class_counts() == {"cat": 1, "dog": 1}
    assert "valid" not in splits.classes and "validation" not in splits.classes


def test_val_without_train_folder(tmp_path, class_folders):
    class_folders(tmp_path / "data" / "val")
    error = load_error(tmp_path / "data")
    assert "no train/ folder" in str(error)
    assert "train/<class>" in str(error.hint)


def test_zero_byte_image_is_named(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets")
    bad = root / "dog" / "broken.jpg"
    bad.write_bytes(b"")
    error = load_error(root)
    assert [(p.where, p.what) for p in error.problems] == [(str(bad), "empty file (0 bytes)")]
    assert str(bad) in str(error) and "--skip-bad-files" in str(error)


def test_empty_class_folder_is_named(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets")
    (root / "bird").mkdir()
    error = load_error(root)
    assert len(error.problems) == 1
    assert error.problems[0].where == str(root / "bird")
    assert "holds no images" in error.problems[0].what and ".jpg" in error.problems[0].what
    assert str(root / "bird") in str(error)


def test_class_folder_with_only_other_files_counts_as_empty(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets")
    (root / "bird").mkdir()
    (root / "bird" / "readme.md").write_text("todo: add birds")
    error = load_error(root)
    assert [p.where for p in error.problems] == [str(root / "bird")]


def test_single_class(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets", {"cat": 4})
    error = load_error(root)
    assert "only one class ('cat')" in str(error) and "two or more" in str(error)


def test_single_class_accepted_when_classes_not_required(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets", {"cat": 4})
    assert load_data(root, require_classes=False).classes == ["cat"]


def test_loose_images_without_class_folders(tmp_path, image_file):
    root = tmp_path / "photos"
    for i in range(3):
        image_file(root / f"img_{i}.jpg")
    (root / "list.txt").write_text("x")
    error = load_error(root)
    assert str(root) in str(error)
    assert "no class sub-folders" in str(error) and "(3 loose images)" in str(error)
    assert error.hint and "<class name>/<image>" in error.hint and ".csv/.jsonl" in error.hint


def test_loose_images_in_train_folder(tmp_path, image_file):
    image_file(tmp_path / "data" / "train" / "a.png")
    error = load_error(tmp_path / "data")
    assert str(tmp_path / "data" / "train") in str(error) and "1 loose images" in str(error)


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    error = load_error(tmp_path / "nothing")
    assert "no class sub-folders found." in str(error)


def test_missing_path(tmp_path):
    error = load_error(tmp_path / "typo")
    assert str(tmp_path / "typo") in str(error) and "no such file or folder" in str(error)


def test_image_file_instead_of_folder(tmp_path, image_file):
    error = load_error(image_file(tmp_path / "one.png"))
    assert ".csv or .jsonl" in str(error) and "'.png'" in str(error)
    assert error.hint and "folder" in error.hint


def test_non_image_files_are_ignored_and_noted(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets")
    (root / "cat" / "notes.txt").write_text("the cat photos are from 2021")
    (root / "dog" / "labels.json").write_text("{}")
    splits = load_data(root)
    assert splits.train.class_counts() == {"cat": 3, "dog": 3}
    assert not any(p.endswith((".txt", ".json")) for p in splits.train.items)
    assert len(splits.notes) == 1
    assert "ignored 2 file(s)" in splits.notes[0] and str(root / "cat" / "notes.txt") in splits.notes[0]
    assert splits.skipped == []


def test_hidden_files_and_folders_are_ignored(tmp_path, class_folders, image_file):
    root = class_folders(tmp_path / "pets")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "cat" / "._cat_0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS metadata, not an image
    (root / "dog" / ".hidden.jpg").write_bytes(b"")  # would be an error if it were read
    image_file(root / "dog" / ".thumbnails" / "dog_0.png")
    image_file(root / ".git" / "logo.png")  # hidden folder at the top: not a class
    image_file(root / "__MACOSX" / "cat_0.png")  # nor this
    splits = load_data(root)
    assert splits.classes == ["cat", "dog"]
    assert splits.train.class_counts() == {"cat": 3, "dog": 3}
    assert not any("/." in p for p in splits.train.items)
    assert splits.notes == [] and splits.skipped == []


def test_val_class_not_in_train(tmp_path, class_folders):
    root = tmp_path / "data"
    class_folders(root / "train", {"cat": 2, "dog": 2})
    class_folders(root / "val", {"cat": 1, "dog": 1, "fox": 1})
    error = load_error(root)
    assert "val split" in str(error) and "['fox']" in str(error)


def test_test_class_not_in_train(tmp_path, class_folders):
    root = tmp_path / "data"
    class_folders(root / "train", {"cat": 2, "dog": 2})
    class_folders(root / "test", {"cat": 1, "eel": 1})
    assert "test split" in str(load_error(root)) and "['eel']" in str(load_error(root))


def test_skip_bad_files(tmp_path, class_folders):
    root = class_folders(tmp_path / "pets")
    bad = root / "cat" / "broken.png"
    bad.write_bytes(b"")
    splits = load_data(root, skip_bad_files=True)
    assert splits.train.class_counts() == {"cat": 3, "dog": 3}
    assert str(bad) not in splits.train.items
    assert splits.skipped == [f"{bad}: empty file (0 bytes)"]
    assert splits.summary()["skipped"] == splits.skipped


def test_all_problems_are_reported_at_once(tmp_path, class_folders):
    root = tmp_path / "data"
    class_folders(root / "train")
    class_folders(root / "val", {"cat": 1, "dog": 1})
    first, second = root / "train" / "cat" / "zero.jpg", root / "val" / "dog" / "zero.png"
    first.write_bytes(b"")
    second.write_bytes(b"")
    (root / "train" / "empty").mkdir()
    error = load_error(root)
    assert "3 problem(s)" in str(error)
    assert {p.where for p in error.problems} == {str(first), str(second), str(root / "train" / "empty")}
    for where in (first, second):
        assert str(where) in str(error)
