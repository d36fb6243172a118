"""Inherited bias: per-group metrics, gaps between groups, calibration, and reading the groups of a dataset."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from graftwork.data import load_data
from graftwork.diagnostics.groups import (
    ECE_THRESHOLD,
    expected_calibration_error,
    group_metrics,
    read_groups,
    read_image_groups,
    read_text_groups,
)
from graftwork.errors import DataError
from graftwork.metrics import classification_metrics

CLASSES = ["cat", "dog"]


def flip(label: str) -> str:
    return "dog" if label == "cat" else "cat"


def two_groups(n: int, wrong_a: float, wrong_b: float, seed: int = 0):
    """n examples per group, balanced classes; a fraction of each group's predictions is wrong, chosen at random."""
    rng = np.random.default_rng(seed)
    y, pred, groups = [], [], []
    for name, wrong in (("A", wrong_a), ("B", wrong_b)):
        labels = [CLASSES[i % 2] for i in range(n)]
        bad = set(rng.choice(n, size=int(round(wrong * n)), replace=False).tolist())
        y += labels
        pred += [flip(t) if i in bad else t for i, t in enumerate(labels)]
        groups += [name] * n
    return y, pred, groups


def by_code(findings, code):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, [str(f) for f in findings]
    return found[0]


def test_worse_group_triggers_group_gap():
    y, pred, groups = two_groups(400, wrong_a=0.10, wrong_b=0.40)  # 30% of B's predictions flipped on top
    out, findings = group_metrics(y, pred, None, CLASSES, groups)
    gap = by_code(findings, "group-gap")
    assert gap.severity == "high"  # a 30-point gap, far beyond 2 x 0.05 and beyond chance
    assert out["worst_gap"]["worst"] == "B" and gap.value >= 0.30  # the worst of accuracy and per-class rates
    acc = out["gaps"]["accuracy"]
    assert acc["gap"] == pytest.approx(0.30) and acc["best"] == "A" and acc["worst"] == "B"
    assert acc["significant"] and acc["ci"][0] > 0.2
    assert out["groups"]["B"]["accuracy"]["value"] == pytest.approx(0.60)
    lo, hi = out["groups"]["B"]["accuracy"]["ci"]
    assert lo < 0.60 < hi and hi - lo < 0.15
    assert "'B'" in gap.message and gap.advice
    assert out["calibration"] is None and not any(f.code == "miscalibrated" for f in findings)
    json.dumps(out)
    json.dumps([f.to_dict() for f in findings])


def test_moderate_gap_is_a_warning():
    y, pred, groups = two_groups(1000, wrong_a=0.10, wrong_b=0.18)
    _, findings = group_metrics(y, pred, None, CLASSES, groups)
    assert by_code(findings, "group-gap").severity == "warning"


def test_equal_error_rates_do_not_trigger():
    y, pred, groups = two_groups(500, wrong_a=0.15, wrong_b=0.15, seed=3)
    out, findings = group_metrics(y, pred, None, CLASSES, groups, seed=0)
    assert by_code(findings, "group-gap").severity == "info"
    assert not out["gaps"]["accuracy"]["significant"]
    assert not any(g["significant"] and g["exceeds_threshold"]
                   for rate in ("tpr", "fpr") for g in out["gaps"][rate].values())


def test_gap_in_one_class_is_found_even_when_accuracy_is_equal():
    # B misses many cats but no dogs; A makes the same number of mistakes spread over both classes
    n = 400
    y = [CLASSES[i % 2] for i in range(n)] * 2
    pred_a = [flip(t) if i % 10 == 0 or i % 10 == 1 else t for i, t in enumerate(y[:n])]
    pred_b = [flip(t) if t == "cat" and i % 10 < 4 else t for i, t in enumerate(y[n:])]
    out, findings = group_metrics(y, pred_a + pred_b, None, CLASSES, ["A"] * n + ["B"] * n)
    assert out["gaps"]["accuracy"]["gap"] == pytest.approx(0.0)
    gap = by_code(findings, "group-gap")
    assert gap.severity == "high" and out["worst_gap"]["metric"] in ("tpr:cat", "fpr:dog")
    assert out["gaps"]["tpr"]["cat"]["worst"] == "B"


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    classes = ["a", "b", "c"]
    y = rng.choice(classes, 300).tolist()
    pred = [t if rng.random() < 0.7 else str(rng.choice(classes)) for t in y]
    groups = rng.choice(["g1", "g2"], 300).tolist()
    out, _ = group_metrics(y, pred, None, classes, groups, n_boot=50)
    for g in ("g1", "g2"):
        idx = [i for i, x in enumerate(groups) if x == g]
        ref = classification_metrics([y[i] for i in idx], [pred[i] for i in idx], classes)
        mine = out["groups"][g]
        assert mine["n"] == len(idx)
        assert mine["accuracy"]["value"] == pytest.approx(ref["accuracy"])
        assert mine["macro_f1"]["value"] == pytest.approx(ref["macro_f1"])
        for c in classes:
            assert mine["per_class"][c]["tpr"]["value"] == pytest.approx(ref["per_class"][c]["recall"])
            negatives = [i for i in idx if y[i] != c]
            fpr = sum(pred[i] == c for i in negatives) / len(negatives)
            assert mine["per_class"][c]["fpr"]["value"] == pytest.approx(fpr)


def test_tiny_group_is_flagged_and_left_out_of_the_gap():
    y, pred, groups = two_groups(100, wrong_a=0.1, wrong_b=0.1)
    y += ["cat"] * 5
    pred += ["dog"] * 5  # all wrong, but only five of them
    groups += ["C"] * 5
    out, findings = group_metrics(y, pred, None, CLASSES, groups, n_boot=200)
    small = by_code(findings, "group-too-small")
    assert small.severity == "info" and "'C' (5)" in small.message
    assert out["too_small"] == ["C"] and out["groups"]["C"]["judged"] is False
    assert out["groups"]["C"]["accuracy"]["value"] == 0.0
    assert out["gaps"]["accuracy"]["worst"] != "C"
    assert by_code(findings, "group-gap").severity == "info"


def test_no_two_judgeable_groups():
    y, pred, groups = two_groups(10, wrong_a=0.1, wrong_b=0.5)
    out, findings = group_metrics(y, pred, None, CLASSES, groups, n_boot=100)
    assert out["worst_gap"] is None and by_code(findings, "group-gap").severity == "info"
    assert by_code(findings, "group-too-small").severity == "warning"


def test_ece_by_hand():
    proba = np.array([[0.90, 0.10],   # correct, bin (0.867, 0.933]
                      [0.12, 0.88],   # wrong,   same bin
                      [0.30, 0.70],   # correct, bin (0.667, 0.733]
                      [0.60, 0.40]])  # correct, bin (0.533, 0.600]
    # 2/4 * |0.5 - 0.89| + 1/4 * |1 - 0.7| + 1/4 * |1 - 0.6| = 0.195 + 0.075 + 0.1
    assert expected_calibration_error(proba, np.array([0, 0, 1, 0])) == pytest.approx(0.37)
    y = ["cat", "cat", "dog", "cat"]
    pred = [CLASSES[i] for i in proba.argmax(axis=1)]
    out, _ = group_metrics(y, pred, proba, CLASSES, ["A"] * 4, n_boot=20)
    assert out["calibration"]["ece"] == pytest.approx(0.37)
    assert out["calibration"]["per_group"]["A"]["ece"] == pytest.approx(0.37)


def calibrated_data(n: int, seed: int, overconfident: bool = False):
    """Confidences uniform in [0.5, 1]; the top class is right with probability = confidence (or 0.6)."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)
    if overconfident:
        conf = np.full(n, 0.99)
    top = rng.integers(0, 2, n)
    right = rng.random(n) < (0.6 if overconfident else conf)
    proba = np.where(top[:, None] == np.arange(2)[None, :], conf[:, None], 1 - conf[:, None])
    pred = [CLASSES[i] for i in top]
    y = [p if r else flip(p) for p, r in zip(pred, right, strict=True)]
    return y, pred, proba


def test_ece_calibrated_and_overconfident():
    y, pred, proba = calibrated_data(4000, seed=0)
    out, findings = group_metrics(y, pred, proba, CLASSES, ["A", "B"] * 2000)
    assert out["calibration"]["ece"] < 0.03
    assert by_code(findings, "miscalibrated").severity == "info"
    assert by_code(findings, "group-calibration-gap").severity == "info"

    y, pred, proba = calibrated_data(2000, seed=1, overconfident=True)
    out, findings = group_metrics(y, pred, proba, CLASSES, ["A", "B"] * 1000)
    assert out["calibration"]["ece"] == pytest.approx(0.39, abs=0.03)
    bad = by_code(findings, "miscalibrated")
    assert bad.severity == "warning" and bad.value > ECE_THRESHOLD and "overconfident" in bad.message


def test_one_group_miscalibrated():
    y, pred, proba = calibrated_data(1000, seed=2)
    y2, pred2, proba2 = calibrated_data(1000, seed=3, overconfident=True)
    out, findings = group_metrics(y + y2, pred + pred2, np.vstack([proba, proba2]), CLASSES,
                                  ["A"] * 1000 + ["B"] * 1000)
    gap = by_code(findings, "group-calibration-gap")
    assert gap.severity == "warning" and "'B'" in gap.message and "'A'" in gap.message.split("against")[1]
    assert out["calibration"]["per_group"]["A"]["ece"] < 0.06


def test_bootstrap_is_fast_and_reproducible():
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(5)]
    y = rng.choice(classes, 4000).tolist()
    pred = [t if rng.random() < 0.8 else str(rng.choice(classes)) for t in y]
    groups = rng.choice(["a", "b", "c", "d"], 4000).tolist()
    proba = rng.dirichlet(np.ones(5), 4000)
    start = time.perf_counter()
    out, _ = group_metrics(y, pred, proba, classes, groups)
    assert time.perf_counter() - start < 3.0  # about 0.2 s; a loop over resamples would take far longer
    again, _ = group_metrics(y, pred, proba, classes, groups)
    assert json.dumps(out) == json.dumps(again)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="same length"):
        group_metrics(["cat"], ["cat", "dog"], None, CLASSES, ["A"])


# ------------------------------------------------------------------------------------------- reading groups


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_groups_line_up_with_the_rows_loaded(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label,site\none,x,north\n,y,east\n"two\nlines",y,south\n\nthree,x,north\n')
    splits = load_data(path, skip_bad_files=True)  # the row with an empty text is skipped
    assert splits.train.items == ["one", "two\nlines", "three"]
    assert read_text_groups(path, "site") == ["north", "south", "north"]
    assert read_groups(splits, "site") == {"train": ["north", "south", "north"]}
    splits.train = splits.train.subset([1, 0])  # a held-out part carved from train is matched by origin too
    assert read_groups(splits, "site") == {"train": ["south", "north"]}


def test_csv_groups_per_split_file(tmp_path):
    write(tmp_path / "train.csv", "text,label,site\na,x,n\nb,y,s\n")
    write(tmp_path / "test.csv", "text,label,site\nc,x,s\nd,y,s\ne,x,n\n")
    assert read_groups(load_data(tmp_path), "site") == {"train": ["n", "s"], "test": ["s", "s", "n"]}


def test_csv_missing_group_column(tmp_path):
    path = write(tmp_path / "d.csv", "text,label,site\none,x,north\n")
    with pytest.raises(DataError) as info:
        read_text_groups(path, "region")
    message = str(info.value)
    assert str(path) in message and "'region'" in message and "['text', 'label', 'site']" in message
    assert info.value.hint


def test_csv_empty_group_named_by_line(tmp_path):
    path = write(tmp_path / "d.csv", "text,label,site\none,x,north\ntwo,y,\n")
    with pytest.raises(DataError) as info:
        read_text_groups(path, "site")
    assert f"{path}:3" in str(info.value)


def image_folder(root):
    for name in ("cat/1.png", "cat/2.png", "dog/1.png", "dog/2.png"):
        write(root / name, "x")  # listing images does not decode them
    return root


def test_manifest_relative_and_absolute_paths(tmp_path):
    data = image_folder(tmp_path / "pets")
    manifest = write(tmp_path / "groups.csv",
                     f"path,group\ncat/1.png,indoor\ncat/2.png,outdoor\n{data / 'dog/1.png'},indoor\ndog/2.png,outdoor\n")
    splits = load_data(data)
    mapping = read_image_groups(manifest, data, splits.train.items)
    assert mapping == {str(data / "cat/1.png"): "indoor", str(data / "cat/2.png"): "outdoor",
                       str(data / "dog/1.png"): "indoor", str(data / "dog/2.png"): "outdoor"}
    assert read_groups(splits, manifest) == {"train": ["indoor", "outdoor", "indoor", "outdoor"]}


def manifest_error(tmp_path, text) -> tuple[str, str]:
    data = image_folder(tmp_path / "pets")
    manifest = write(tmp_path / "groups.csv", text)
    with pytest.raises(DataError) as info:
        read_image_groups(manifest, data, load_data(data).train.items)
    assert info.value.hint
    return str(info.value), str(manifest)


def test_manifest_missing_header_column(tmp_path):
    message, manifest = manifest_error(tmp_path, "file,group\ncat/1.png,a\n")
    assert f"{manifest}:1" in message and "'path'" in message and "['file', 'group']" in message


def test_manifest_path_not_in_data(tmp_path):
    message, manifest = manifest_error(
        tmp_path, "path,group\ncat/1.png,a\ncat/9.png,a\ncat/2.png,b\ndog/1.png,a\ndog/2.png,b\n")
    assert f"{manifest}:3: cat/9.png: no such file" in message


def test_manifest_conflicting_and_empty_rows(tmp_path):
    message, manifest = manifest_error(
        tmp_path, "path,group\ncat/1.png,a\ncat/1.png,b\ncat/2.png,\n,a\ndog/1.png,a\ndog/2.png,b\n")
    assert f"{manifest}:3: cat/1.png is already in group 'a' (line 2)" in message
    assert f"{manifest}:4: empty `group`" in message and f"{manifest}:5: empty `path`" in message


def test_manifest_missing_images_listed(tmp_path):
    message, manifest = manifest_error(tmp_path, "path,group\ncat/1.png,a\n")
    assert f"{manifest}: 3 image(s) of the data have no row: cat/2.png, dog/1.png, dog/2.png" in message
