"""``source-task-hurts``: a run started from another run, compared with the original weights and random init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graftwork
from graftwork.config import FitConfig
from graftwork.console import SILENT
from graftwork.diagnostics.sequential import compare_starts, original_start_config, source_finding

from ..conftest import make_text_rows, write_csv

SOURCE = {"path": "/runs/sentiment", "task": "classification", "fingerprint": "f" * 64, "fine_tuned": True,
          "original": {"name": "hf:roberta-base", "pretrained": True, "fingerprint": "a" * 64}}


def _predictions(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y)) < accuracy, y, (y + 1) % 3)


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 3, 300)


def test_high_when_the_source_start_is_worse_than_the_original_and_says_so_about_random(labels):
    found = source_finding(_predictions(labels, 0.5, 1), _predictions(labels, 0.9, 2), _predictions(labels, 0.7, 3),
                           labels, "test", SOURCE)
    assert found.code == "source-task-hurts" and found.severity == "high"
    assert found.value < -0.2 and "nor than random initialisation" in found.message
    assert "--backbone hf:roberta-base" in found.advice
    assert found.details["source"] < found.details["random_init"] < found.details["original"]
    assert found.details["source_run"] == "/runs/sentiment"


def test_high_but_not_worse_than_random_when_only_the_original_start_is_better(labels):
    found = source_finding(_predictions(labels, 0.8, 1), _predictions(labels, 0.8, 1), _predictions(labels, 0.4, 3),
                           labels, "test", SOURCE)
    assert found.severity == "high" and found.value == 0 and "random" not in found.message.split(":")[0]


def test_info_when_the_source_task_helps_warning_within_noise(labels):
    better = source_finding(_predictions(labels, 0.95, 1), _predictions(labels, 0.6, 2), _predictions(labels, 0.4, 3),
                            labels, "test", SOURCE)
    assert better.severity == "info" and better.value > 0.2
    y = labels[:40]
    base = _predictions(y, 0.7, 2)
    slightly = base.copy()
    wrong = np.flatnonzero(base != y)[:2]
    slightly[wrong] = y[wrong]  # 2 of 40 more right: 0.05 better, within 2 standard errors but beyond 1
    assert source_finding(slightly, base, _predictions(y, 0.3, 3), y, "val", SOURCE).severity == "warning"


def test_a_source_that_never_changed_its_backbone_is_a_warning_without_a_second_fit(labels):
    frozen = SOURCE | {"fine_tuned": False}
    assert original_start_config(FitConfig(backbone="run:/runs/sentiment"), frozen) is None
    found = source_finding(_predictions(labels, 0.8, 1), None, _predictions(labels, 0.5, 2), labels, "test", frozen)
    assert found.severity == "warning" and "kept its backbone frozen" in found.message


def test_a_source_that_started_from_random_weights_is_compared_with_random_init(labels):
    from_random = SOURCE | {"original": {"name": "timm:resnet18", "pretrained": False, "fingerprint": "b" * 64}}
    assert original_start_config(FitConfig(), from_random) is None
    found = source_finding(_predictions(labels, 0.5, 1), None, _predictions(labels, 0.9, 2), labels, "test",
                           from_random)
    assert found.severity == "high" and "random (the source run's own start)" in found.message


def test_original_start_keeps_the_settings_but_not_the_control_or_tracking():
    cfg = FitConfig(backbone="run:/runs/sentiment", strategy="gradual", lr=3e-4, control=True, log_to="mlflow")
    original = original_start_config(cfg, SOURCE)
    assert original is not None and original.backbone == "hf:roberta-base" and original.pretrained
    assert (original.strategy, original.lr, original.control, original.log_to) == ("gradual", 3e-4, False, None)


def test_compare_starts_trains_the_original_start_and_judges(labels):
    fitted: list[FitConfig] = []

    class Fake:
        backbone = type("B", (), {"info": type("I", (), {"extra": {}, "fingerprint": "a" * 64})()})()

    def fit(cfg: FitConfig) -> Fake:
        fitted.append(cfg)
        return Fake()

    result = compare_starts(fit, lambda model: _predictions(labels, 0.9, 2), FitConfig(backbone="run:/x"),
                            {"source_run": SOURCE}, _predictions(labels, 0.5, 1), _predictions(labels, 0.6, 3),
                            labels, "test", SILENT)
    assert result is not None
    found, summary = result
    assert [c.backbone for c in fitted] == ["hf:roberta-base"] and found.severity == "high"
    assert summary["original_is_source_start"] is True and summary["original"] > summary["source"]
    assert compare_starts(fit, lambda m: labels, FitConfig(), {}, labels, labels, labels, "test", SILENT) is None


def test_control_on_a_run_started_from_a_damaged_source_reports_it(tmp_path, tiny_bert):
    """End to end: a source whose fine-tuning wiped the encoder (every weight zero) starts a new fit; --control
    trains the original tiny BERT and random init too, and the source start is flagged as worse."""
    rows = make_text_rows(per_class=30)
    (tmp_path / "d").mkdir()
    write_csv(tmp_path / "d" / "train.csv", rows[::2])
    write_csv(tmp_path / "d" / "test.csv", rows[1::2])
    source = graftwork.fit(tmp_path / "d", backbone=f"hf:{tiny_bert}", strategy="frozen")
    bb = source.backbone
    start = bb.info.fingerprint
    with torch.no_grad():
        for p in bb.parameters():
            p.zero_()
    bb.info.extra |= {"fine_tuned": "top 2 group(s)", "pretrained_fingerprint": start}
    bb.refresh_fingerprint()
    source.config["backbone"] = bb.info.to_dict() | {"load_name": source.config["backbone"]["load_name"]}
    source.save(tmp_path / "source")
    model = graftwork.fit(tmp_path / "d", out=tmp_path / "new", backbone=f"run:{tmp_path / 'source'}",
                          strategy="frozen", control=True)
    found = {f["code"]: f for f in model.metrics["findings"]}
    assert "pretrained-not-helping" in found
    hurts = found["source-task-hurts"]
    assert hurts["severity"] == "high" and hurts["details"]["original"] > hurts["details"]["source"]
    assert model.metrics["control"]["sequential"]["original_is_source_start"] is True
    html = (tmp_path / "new" / "report.html").read_text()
    assert "source-task-hurts" in html and "original-weights accuracy" in html
