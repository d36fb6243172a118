"""The report of a generation run on the shared templates: what fine-tuning bought, the epochs with inline SVG
curves, forgetting, samples shown as text, and the shared findings, plan and cost."""

from __future__ import annotations

import re

from graftwork.report import generate, render_report, sections_for
from graftwork.report.generate import line_chart

from .test_html import Checked, check_self_contained

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def synthetic_generation() -> tuple[dict, dict]:
    history = [{"epoch": 0, "val": {"loss": 3.4, "exact_match": 0.0, "n": 2},
                "general_text": {"loss": 3.41}},
               {"epoch": 1, "train_loss": 3.3, "val": {"loss": 3.1, "exact_match": 0.5, "n": 2},
                "general_text": {"loss": 3.44}, "seconds": 2.2},
               {"epoch": 2, "train_loss": 3.0, "val": {"loss": 3.2}, "general_text": {"loss": "n/a"}}]
    test = {"exact_match": 0.5, "rougeL": 0.6, "chrf": 40.0, "loss": 3.1, "perplexity": 22.2, "n": 2,
            "samples": [{"prompt": f"say {HOSTILE}", "reference": "<b>hello</b>", "generation": "line 1\nline 2"}]}
    metrics = {"task": "generate", "history": history, "best_epoch": 1, "test": test,
               "control": {"k": 3, "zero_shot": {"exact_match": 0.0, "rougeL": 0.1, "chrf": 4.0, "n": 2},
                           "few_shot": {"exact_match": 0.0, "rougeL": 0.2, "chrf": 4.7, "n": 2}},
               "parameters": {"total": 28704, "trainable": 8192, "trainable_percent": 28.5},
               "findings": [{"code": "forgetting", "severity": "warning", "message": f"rose {HOSTILE}",
                             "advice": "lower --lr", "value": 0.12, "metric": "relative rise"}]}
    config = {"task": "generate", "data": "/data/chats", "strategy": "lora",
              "backbone": {"name": "/models/tiny-llama", "model_type": "llama", "params": 20512},
              "plan": {"requested": "auto", "strategy": "lora", "reasons": ["small model"], "lr": 0.02,
                       "epochs": 2, "lora": {"r": 8}}}
    return metrics, config


def test_generation_report_sections_escaped_with_svg_curves():
    metrics, config = synthetic_generation()
    text = render_report(metrics, config)
    assert text == render_report(metrics, config), "the task's sections are found from config.json"
    doc = check_self_contained(text)
    ids = [i for i in doc.ids if i]
    assert ids == ["findings", "plan", "training", "forgetting", "samples", "cost", "about"]
    assert HOSTILE not in text and "<img" not in text and "&lt;b&gt;hello&lt;/b&gt;" in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # in the finding and in the sample
    header = text[:text.index("<nav>")]
    assert "<td>base, few-shot (k=3)</td>" in header and "<td>fine-tuned (test)</td>" in header
    assert "Language model fine-tuning" in header
    assert "kept: <b>epoch 1</b>" in header and "strategy: <b>lora</b>" in header
    training = text[text.index('id="training"'):text.index('id="forgetting"')]
    assert training.count("<polyline") == 2 and '<tr class="kept"><td>1</td>' in training
    forgetting = text[text.index('id="forgetting"'):text.index('id="samples"')]
    assert forgetting.count("<polyline") == 1
    for points in re.findall(r'points="([^"]*)"', text):
        assert re.fullmatch(r"[0-9.]+,[0-9.]+( [0-9.]+,[0-9.]+)*", points), points
    assert "lower --lr" in text and "8,192" in text and "llama" in text


def test_line_chart_skips_what_is_not_a_number_and_draws_nothing_without_points():
    chart = line_chart("t", {"a": [(0, 1.0), (1, "x"), (2, 3.0)], "b": [(None, 2.0)]})
    assert chart is not None and chart["lines"][0]["points"] == "30.0,150.0 390.0,30.0"
    assert len(chart["lines"]) == 1 and chart["top"] == "3" and chart["bottom"] == "1"
    assert line_chart("t", {"a": [(0, None)]}) is None


def test_a_generation_run_without_history_or_samples_still_renders():
    metrics, config = synthetic_generation()
    for key in ("history", "test", "control", "findings"):
        del metrics[key]
    text = render_report(metrics, config)
    assert {"plan", "cost", "about"} <= set(Checked(text).ids)
    assert not {"training", "forgetting", "samples"} & set(Checked(text).ids)
    assert [s.anchor for s in sections_for(config, metrics)] == [s.anchor for s in generate.SECTIONS]
