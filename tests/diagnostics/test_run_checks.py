"""Checks on a finished fit: majority baseline, the random-init control, and what reaches metrics and report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import graftwork
from graftwork.cli.main import main
from graftwork.diagnostics.run_checks import baseline_finding, control_finding

from ..conftest import make_image_folder, make_text_rows, write_csv

TINY = {"backbone": "timm:test_efficientnet", "pretrained": False}


def test_baseline_finding_fires_only_at_the_majority_level():
    base = {"predicts": "a", "accuracy": 0.5}
    assert baseline_finding("test", {"accuracy": 0.51, "majority_baseline": base}).severity == "high"
    assert baseline_finding("test", {"accuracy": 0.9, "majority_baseline": base}) is None


def test_control_finding_high_when_random_init_does_as_well_info_when_pretraining_helps():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    same = np.where(rng.random(400) < 0.6, y, (y + 1) % 4)
    assert control_finding(same, same.copy(), y, "test").severity == "high"
    better = np.where(rng.random(400) < 0.9, y, (y + 1) % 4)
    found = control_finding(better, same, y, "test")
    assert found.severity == "info" and found.value > 0.2 and found.details["random_init"] < 0.7


def test_fit_with_random_labels_is_flagged_and_the_report_shows_it(tmp_path):
    data = make_image_folder(tmp_path / "d" / "train", per_class=20, classes=("red", "blue"))
    make_image_folder(tmp_path / "d" / "test", per_class=20, classes=("red", "blue"), seed=5)
    for i, f in enumerate(sorted((tmp_path / "d" / "test").rglob("*.png"))):  # half the test labels swapped
        if i % 2:
            other = "blue" if f.parent.name == "red" else "red"
            f.rename(f.parent.parent / other / f"swapped_{f.name}")
    model = graftwork.fit(data.parent, out=tmp_path / "run", **TINY)
    codes = {f["code"]: f for f in model.metrics["findings"]}
    assert model.metrics["test"]["accuracy"] < 0.62  # half the test labels are wrong on purpose
    assert codes["no-better-than-majority"]["severity"] == "high"
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Findings" in report and "<script" not in report
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["findings"] == model.metrics["findings"]


def test_control_compares_with_the_same_network_untrained(tmp_path):
    make_image_folder(tmp_path / "d" / "train", per_class=12)
    make_image_folder(tmp_path / "d" / "test", per_class=6, seed=1)
    # the "pretrained" network is itself random here, seeded like its control: identical, so no gain at all
    model = graftwork.fit(tmp_path / "d", **TINY, control=True)
    control = model.metrics["control"]
    assert control["split"] == "test" and control["gap"] == 0.0
    found = next(f for f in model.metrics["findings"] if f["code"] == "pretrained-not-helping")
    assert found["severity"] == "high"


def test_evaluate_groups_from_a_csv_column(tmp_path, tiny_bert, capsys):
    rows = make_text_rows(per_class=40)
    path = tmp_path / "t.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "region"])
        for i, (text, label) in enumerate(rows):
            w.writerow([text, label, "north" if i % 2 else "south"])
    train = write_csv(tmp_path / "train.csv", make_text_rows(per_class=15, seed=3))
    assert main(["fit", str(train), "--out", str(tmp_path / "run"), "--backbone", f"hf:{tiny_bert}",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), str(path), "--groups", "region", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["groups"]["groups"]) == {"north", "south"}
    assert result["groups"]["groups"]["north"]["n"] == 40
    assert {"group-gap"} <= {f["code"] for f in result["findings"]}
    assert main(["evaluate", str(tmp_path / "run"), str(path), "--groups", "country"]) == 2
    err = capsys.readouterr().err
    assert "country" in err and "region" in err and "Traceback" not in err


def test_report_command_rewrites_the_report(tmp_path, capsys):
    make_image_folder(tmp_path / "d", per_class=8)
    graftwork.fit(tmp_path / "d", out=tmp_path / "run", **TINY)
    (tmp_path / "run" / "report.html").unlink()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_fit_with_groups_reports_them_in_metrics_and_report(tmp_path, tiny_bert):
    from graftwork.errors import DataError

    path = tmp_path / "t.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "region"])
        for i, (text, label) in enumerate(make_text_rows(per_class=30)):
            w.writerow([text, label, "north" if i % 3 else "south"])
    model = graftwork.fit(path, out=tmp_path / "run", backbone=f"hf:{tiny_bert}", groups="region")
    groups = model.metrics["groups"]["groups"]
    assert set(groups) == {"north", "south"}
    assert sum(g["n"] for g in groups.values()) == model.metrics["data"]["fit_split"]["val"]
    assert "Per-group metrics" in (tmp_path / "run" / "report.html").read_text()
    with pytest.raises(DataError, match="country") as err:
        graftwork.fit(path, backbone=f"hf:{tiny_bert}", groups="country")
    assert "region" in str(err.value)
