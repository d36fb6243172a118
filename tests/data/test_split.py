"""stratified_split, and the Examples/Splits containers it works on."""

from __future__ import annotations

from collections import Counter

import pytest

from graftwork.data import Examples, Splits, stratified_split


def labels_of(counts: dict[str, int]) -> list[str]:
    """Interleaved labels, so that class members are not contiguous indices."""
    out: list[str] = []
    left = dict(counts)
    while any(left.values()):
        for name in counts:
            if left[name]:
                out.append(name)
                left[name] -= 1
    return out


def check_partition(labels: list[str], train: list[int], held: list[int]) -> None:
    assert train == sorted(train) and held == sorted(held)
    assert not set(train) & set(held)
    assert sorted(train + held) == list(range(len(labels)))


def test_keeps_class_proportions():
    labels = labels_of({"a": 60, "b": 30, "c": 10})
    train, held = stratified_split(labels, 0.2, seed=0)
    check_partition(labels, train, held)
    assert Counter(labels[i] for i in held) == {"a": 12, "b": 6, "c": 2}
    assert Counter(labels[i] for i in train) == {"a": 48, "b": 24, "c": 8}


def test_same_seed_same_split():
    labels = labels_of({"a": 20, "b": 20})
    assert stratified_split(labels, 0.25, seed=7) == stratified_split(labels, 0.25, seed=7)


def test_other_seed_other_split():
    labels = labels_of({"a": 20, "b": 20})
    first, second = stratified_split(labels, 0.25, seed=1), stratified_split(labels, 0.25, seed=2)
    assert first != second
    for train, held in (first, second):
        check_partition(labels, train, held)
        assert Counter(labels[i] for i in held) == {"a": 5, "b": 5}


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9, 0.99])
def test_small_classes_give_one_and_keep_one(fraction):
    labels = labels_of({"two": 2, "three": 3, "many": 40})
    train, held = stratified_split(labels, fraction, seed=0)
    check_partition(labels, train, held)
    held_counts, train_counts = Counter(labels[i] for i in held), Counter(labels[i] for i in train)
    for name in ("two", "three", "many"):
        assert held_counts[name] >= 1
        assert train_counts[name] >= 1


def test_a_class_with_one_example_stays_in_training():
    labels = labels_of({"a": 10, "solo": 1})
    train, held = stratified_split(labels, 0.5, seed=0)
    check_partition(labels, train, held)
    assert labels.index("solo") in train
    assert Counter(labels[i] for i in held) == {"a": 5}


def test_fraction_zero_holds_nothing_out():
    labels = labels_of({"a": 5, "b": 2, "c": 1})
    assert stratified_split(labels, 0.0, seed=0) == (list(range(len(labels))), [])


def test_empty_input():
    assert stratified_split([], 0.2, seed=0) == ([], [])


def test_examples_subset_and_counts():
    ex = Examples("text", ["a", "b", "c", "d"], ["x", "y", "x", "x"], ["f:2", "f:3", "f:4", "f:5"],
                  groups=["g1", "g2", "g1", "g3"])
    assert len(ex) == 4
    assert ex.class_counts() == {"x": 3, "y": 1}
    part = ex.subset([3, 1])
    assert (part.items, part.labels, part.origins, part.groups) == (["d", "b"], ["x", "y"], ["f:5", "f:3"],
                                                                    ["g3", "g2"])
    assert part.modality == "text"
    assert Examples("image", ["p"], ["x"], ["p"]).subset([0]).groups is None


def test_split_then_subset_round_trip():
    labels = labels_of({"a": 8, "b": 4})
    ex = Examples("text", [f"t{i}" for i in range(len(labels))], labels, [f"f:{i + 2}" for i in range(len(labels))])
    train, held = stratified_split(ex.labels, 0.25, seed=3)
    assert ex.subset(train).class_counts() == {"a": 6, "b": 3}
    assert ex.subset(held).class_counts() == {"a": 2, "b": 1}


def test_splits_summary():
    train = Examples("image", ["1", "2", "3"], ["dog", "cat", "dog"], ["1", "2", "3"])
    val = Examples("image", ["4"], ["cat"], ["4"])
    splits = Splits(source="pets", train=train, val=val, skipped=["x.jpg: empty file (0 bytes)"])
    assert splits.modality == "image" and splits.classes == ["cat", "dog"]
    assert splits.summary() == {
        "source": "pets", "modality": "image", "classes": ["cat", "dog"],
        "train": {"n": 3, "per_class": {"cat": 1, "dog": 2}},
        "val": {"n": 1, "per_class": {"cat": 1}},
        "skipped": ["x.jpg: empty file (0 bytes)"],
    }
