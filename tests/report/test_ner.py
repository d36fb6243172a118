"""The report of an NER run: entity-level results, mentions per type, per-type precision/recall/F1, the
stages scored by entity F1, and drift and findings when the run has them; escaped like every report."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from graftwork.cli.main import main
from graftwork.report import Section, classify, ner, render, render_report, sections_for
from graftwork.report.values import fmt

from ..ner.conftest import make_sentences, write_conll, write_jsonl
from .test_html import ESCAPED, NASTY, Checked, check_self_contained, images

NER_IDS = ["findings", "data", "plan", "curves", "per-type", "drift", "cost", "about"]


def synthetic_ner() -> tuple[dict, dict]:
    """metrics and config of a made-up gradual NER run; one entity type has a name that breaks HTML, one is
    never found on the test split, one has no test entities at all."""
    types = ["FRUIT", NASTY, "RARE"]
    per_type = {"FRUIT": {"precision": 0.8, "recall": 0.9, "f1": 0.847, "support": 20},
                NASTY: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5}}
    split = {"precision": 0.7, "recall": 0.72, "f1": 0.71, "macro_f1": 0.42, "entities": 25,
             "predicted_entities": 26, "token_accuracy": 0.88, "sentences": 10, "tokens": 60,
             "per_type": per_type, "scoring": "seqeval strict IOB2 (type and both boundaries must match)"}
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_f1": 0.3 + e / 20} for e in (1, 2, 3)]
    stages = [{"stage": "head (frozen encoder)", "unfrozen_groups": 0, "history": hist, "best_epoch": 3,
               "val_f1": 0.45, "val_loss": 0.4, "kept": False},
              {"stage": "unfreeze 1", "unfrozen_groups": 1, "history": hist[:2], "best_epoch": 2,
               "val_f1": 0.71, "val_loss": 0.3, "kept": True,
               "rates": [{"group": "encoder.layer.1", "lr": 1e-3, "params": 100}]}]
    metrics = {"task": "ner", "stages": stages, "kept_stage": "unfreeze 1",
               "data": {"source": "/data/<ner>", "entity_types": types,
                        "train": {"sentences": 40, "tokens": 200, "entities": {"FRUIT": 30, NASTY: 9, "RARE": 2}},
                        "test": {"sentences": 10, "tokens": 60, "entities": {"FRUIT": 20, NASTY: 5}},
                        "skipped": ['/data/<ner>/test.conll:7: "four" columns'], "fit_split": {"train": 32, "val": 8}},
               "val": dict(split), "test": split,
               "parameters": {"total": 20229, "trainable": 8709, "trainable_percent": 43.05},
               "memory": {"peak_rss_mib": 900.5}, "timing": {"total_s": 5.4},
               "drift": [{"stage": "unfreeze 1", "epoch": e, "cka": {"encoder.layer.1": 1 - 0.1 * e},
                          "weight_change": {"encoder.layer.1": 0.01 * e}} for e in (0, 1, 2)],
               "findings": [{"code": "ner-type-missed", "severity": "warning", "value": 0.0, "metric": "recall",
                             "message": f"entity type {NASTY} is never found", "advice": "label more of them"}]}
    config = {"task": "ner", "created": "2026-01-02T03:04:05+00:00", "data": "/data/<ner>", "entity_types": types,
              "backbone": {"name": "hf:tiny-bert", "weights": "random init"},
              "plan": {"requested": "gradual", "strategy": "gradual", "reasons": ["asked for with --strategy"],
                       "mentions_per_type": {"FRUIT": 30, NASTY: 9, "RARE": 2}, "unfreeze": None,
                       "details": {"stages": "tag layer, top 1"}},
              "scoring": "seqeval strict IOB2 (type and both boundaries must match)"}
    return metrics, config


def section(text: str, anchor: str) -> str:
    start = text.index(f'id="{anchor}"')
    return text[start:text.index("</section>", start)]


def test_ner_report_has_its_sections_in_order_escaped():
    metrics, config = synthetic_ner()
    text = render_report(metrics, config)
    doc = check_self_contained(text)
    assert [i for i in doc.ids if i in NER_IDS] == NER_IDS
    assert not {"confusion", "per-class", "groups"} & set(doc.ids), "classification sections stay out"
    assert NASTY not in text and ESCAPED in text and "&lt;ner&gt;" in text
    assert "could not be rendered" not in text and "could not be drawn" not in text
    header = text[:text.index("<nav>")]  # the headline: entity-level scores per split
    assert "<th>entity F1</th>" in header and "<td>test</td>" in header and "<td>0.710</td>" in header
    assert "kept: <b>unfreeze 1</b>" in header


def test_per_type_metrics_mark_missed_and_absent_types():
    text = render_report(*synthetic_ner())
    part = section(text, "per-type")
    assert "<h3>validation</h3>" in part and "<h3>test</h3>" in part
    assert "seqeval strict IOB2" in part
    assert re.search(rf'<tr class="warn"><td>{re.escape(ESCAPED)}</td>.*?never found</td></tr>', part)
    assert '<tr class="muted"><td>RARE</td>' in part and "no entities in test" in part
    assert "<td>FRUIT</td><td>0.800</td><td>0.900</td><td>0.847</td><td>20</td>" in part
    assert len(images(part)) == 1  # F1 per type


def test_stages_are_scored_by_entity_f1_and_the_kept_stage_is_marked():
    text = render_report(*synthetic_ner())
    part = section(text, "curves")
    assert "<th>val entity F1</th>" in part and "val accuracy" not in part
    assert re.search(r'<tr class="kept"><td>unfreeze 1</td>', part)
    assert "entity F1 per epoch" in part and len(images(part)) == 1


def test_findings_drift_data_plan_and_cost_are_shown_when_present():
    metrics, config = synthetic_ner()
    text = render_report(metrics, config)
    assert f"entity type {ESCAPED} is never found" in section(text, "findings")
    assert "label more of them" in section(text, "findings")
    drift = section(text, "drift")
    assert "encoder.layer.1" in drift and len(images(drift)) == 1
    data = section(text, "data")
    assert f"<td>{ESCAPED}</td><td>9</td><td>5</td>" in data and '<tr class="total"><td>sentences</td>' in data
    assert "1 unreadable file(s) or line(s) skipped" in data and "&quot;four&quot;" in data
    assert "Entity mentions per type in the training data" in section(text, "plan")
    cost = section(text, "cost")
    assert "<b>8,709</b> of 20,229 (43.0%)" in cost and "900.5" in cost

    del metrics["drift"], metrics["findings"]  # as a run from before drift and findings were recorded
    ids = Checked(render_report(metrics, config)).ids
    assert "drift" not in ids and "findings" not in ids and "per-type" in ids


def test_each_task_supplies_its_sections_and_render_lays_out_any_list():
    metrics, config = synthetic_ner()
    assert all(isinstance(s, Section) for s in ner.sections(config, metrics))
    assert [s.anchor for s in sections_for(config, metrics)] == [s.anchor for s in ner.sections(config, metrics)]
    assert sections_for({}, {}) == classify.sections({}, {}), "a run without a task is a classification run"

    def custom(metrics: dict, config: dict) -> str:
        return f"{len(metrics['stages'])} stages"  # a plain string from a section is text, not markup

    text = render(config, metrics, [Section("mine", "<Mine>", custom), ner.SECTIONS[0]], name="<run>")
    doc = check_self_contained(text)
    assert [i for i in doc.ids if i] == ["mine"] and "<h2>&lt;Mine&gt;</h2>" in text
    assert "<title>graftwork report: &lt;run&gt;</title>" in text and "<th>entity F1</th>" in text


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, tiny_bert) -> Path:
    """A real gradual NER run of the tiny BERT (two stages of one epoch after the tag layer)."""
    import torch

    from graftwork import FitConfig
    from graftwork.ner import run_fit_ner

    root = tmp_path_factory.mktemp("ner-report")
    data = root / "data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(40, seed=0))
    write_conll(data / "dev.conll", make_sentences(10, seed=1))
    write_jsonl(data / "test.jsonl", make_sentences(10, seed=2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("graftwork.ner.train.HEAD_EPOCHS", 4, raising=False)  # the tag layer's budget, cut short
            cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="gradual", lr=1e-2, batch_size=16,
                            stage_epochs=1)
            run_fit_ner(data, cfg, out=root / "run")
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def test_graftwork_report_on_a_real_ner_run(ner_run, tmp_path, capsys):
    code = main(["report", str(ner_run), "--out", str(tmp_path / "r.html")])
    _, err = capsys.readouterr()
    assert code == 0, err
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    doc = check_self_contained(text)
    assert {"data", "plan", "curves", "per-type", "cost", "about"} <= set(doc.ids)
    assert "confusion" not in doc.ids
    assert "could not be rendered" not in text and "could not be drawn" not in text
    metrics = json.loads((ner_run / "metrics.json").read_text(encoding="utf-8"))
    for s in metrics["stages"]:
        assert html.escape(s["stage"]) in text
    assert re.search(rf'<tr class="kept"><td>{re.escape(html.escape(metrics["kept_stage"]))}</td>', text)
    assert f"F1 <b>{fmt(metrics['test']['f1'])}</b>" in section(text, "per-type")
    for t in ("FRUIT", "VEH"):
        assert f"<td>{t}</td><td>{fmt(metrics['test']['per_type'][t]['precision'])}</td>" in text
    assert len(images(text)) >= 3  # mentions per type, learning curves, F1 per type
