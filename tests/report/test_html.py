"""The HTML run report: self-contained, escaped, ordered, and robust to missing or odd data."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import graftwork
from graftwork.errors import RunFolderError
from graftwork.report import render_report, sections, write_report

from ..conftest import make_image_folder

NASTY = '<b>&"x"'  # a class name that breaks HTML unless escaped
ESCAPED = "&lt;b&gt;&amp;&quot;x&quot;"
PNG = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area", "base", "embed", "track"}


class Checked(HTMLParser):
    """Parses a document, checking that tags nest and close, and collecting every URL-bearing attribute."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "action", "data", "poster"):
                self.urls.append((tag, k, v or ""))
            if k == "id":
                self.ids.append(v or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> does not close {self.stack[-1:]}"
        self.stack.pop()


def check_self_contained(text: str) -> Checked:
    doc = Checked(text)
    assert not {"script", "link", "iframe", "object", "embed"} & set(doc.tags)
    assert "@import" not in text and "url(" not in text
    for tag, attr, url in doc.urls:
        assert (tag == "img" and attr == "src" and url.startswith("data:image/png;base64,")) or (
            tag == "a" and attr == "href" and url.startswith("#")), (tag, attr, url[:60])
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.I)
    return doc


def images(text: str) -> list[bytes]:
    out = []
    for b64 in re.findall(r'src="data:image/png;base64,([^"]*)"', text):
        try:
            out.append(base64.b64decode(b64, validate=True))
        except binascii.Error as e:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"invalid base64 image: {e}") from None
    return out


def synthetic(classes: list[str] | None = None, *, extras: bool = True) -> tuple[dict, dict]:
    """metrics and config of a made-up gradual run, with every optional part when ``extras``."""
    classes = classes or ["cat", NASTY, "dog"]
    n = len(classes)
    matrix = [[5 if i == j else (1 if j == (i + 1) % n else 0) for j in range(n)] for i in range(n)]
    per_class = {c: {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 6} for c in classes}
    split = {"n": 6 * n, "accuracy": 0.8, "macro_f1": 0.75, "per_class": per_class,
             "confusion": {"labels": classes, "matrix": matrix},
             "majority_baseline": {"predicts": classes[0], "accuracy": 1 / n, "macro_f1": 0.1}}
    hist = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 20, "val_loss": 1.1 / e,
             "val_acc": 0.5 + e / 25} for e in range(1, 6)]
    probe = {"C": 0.01, "selection": "validation",
             "grid": [{"C": c, "val_acc": 0.6 + c / 10, "val_loss": 1 - c / 10} for c in (0.001, 0.01, 0.1)]}
    stages = [{"stage": "linear probe", "unfrozen_groups": 0, "probe": probe, "val_acc": 0.7, "val_loss": 0.3,
               "seconds": 0.5, "kept": False},
              {"stage": "unfreeze 1", "unfrozen_groups": 1, "rates": [{"group": "blocks.1", "lr": 1e-4,
                                                                      "params": 1000}],
               "history": [dict(r, seconds=0.1) for r in hist], "best_epoch": 5, "val_acc": 0.72,
               "val_loss": 0.25, "kept": False},
              {"stage": "unfreeze 2", "unfrozen_groups": 2, "rates": [{"group": "blocks.1", "lr": 1e-4},
                                                                      {"group": "blocks.0", "lr": 8e-5}],
               "history": [dict(r, seconds=0.1) for r in hist[:3]], "best_epoch": 2, "val_acc": 0.8,
               "val_loss": 0.2, "kept": True}]
    metrics = {"stages": stages, "kept_stage": "unfreeze 2", "probe": probe,
               "data": {"source": "/data/<imgs>", "modality": "image", "classes": classes,
                        "train": {"n": 10 * n, "per_class": {c: 10 for c in classes}},
                        "test": {"n": 6 * n, "per_class": {c: 6 for c in classes}},
                        "skipped": ['/data/<imgs>/bad "file".jpg: cannot identify image'],
                        "fit_split": {"train": 8 * n, "val": 2 * n}},
               "train": copy.deepcopy(split), "val": copy.deepcopy(split), "test": split,
               "timing": {"linear_probe_s": 0.5, "total_s": 3.2}}
    config = {"created": "2026-01-02T03:04:05+00:00", "data": "/data/<imgs>", "modality": "image",
              "classes": classes,
              "backbone": {"name": "timm:tiny", "weights": "random init", "pretrained": False},
              "plan": {"requested": "auto", "strategy": "gradual", "class_weighted": False,
                       "reasons": ["60 examples per class (median)"],
                       "details": {"stages": "probe, then top 1, 2 group(s) trainable"}},
              "versions": {"python": "3.11", "torch": "2.x"}, "fit": {"epochs": 5, "seed": 0}}
    if extras:
        metrics["findings"] = [
            {"code": "fyi", "severity": "info", "message": "context only", "advice": "", "value": None},
            {"code": "overfit", "severity": "warning", "message": "train beats val", "advice": "more data",
             "value": 0.25, "metric": "train-val gap"},
            {"code": "no-transfer", "severity": "high", "message": f"class {NASTY} is never learned",
             "advice": "try another backbone", "value": 0.031, "metric": "accuracy gain",
             "details": {"n": 3}},
        ]
        metrics["drift"] = [{"stage": s, "epoch": e,
                             "cka": {"blocks.0": 1 - 0.01 * e, "blocks.1": 1 - 0.05 * e},
                             "weight_change": {"blocks.0": 0.001 * e, "blocks.1": 0.01 * e}}
                            for s, e in [("unfreeze 1", 0), ("unfreeze 1", 5), ("unfreeze 2", 3)]]
        metrics["groups"] = {"groups": {"site A": {"n": 40, "accuracy": 0.85, "accuracy_ci": [0.7, 0.93],
                                                   "macro_f1": 0.8, "ece": 0.05, "too_small": False},
                                        NASTY: {"n": 3, "accuracy": 0.33, "accuracy_ci": [0.01, 0.9],
                                                "macro_f1": 0.3, "ece": 0.2, "too_small": True}},
                             "worst_gap": {"between": ["site A", NASTY], "gap": 0.52}}
        metrics["control"] = {"pretrained": 0.8, "random_init": 0.4, "gap": 0.4}
        metrics["mismatch"] = {"score": 0.42, "per_layer": {"blocks.0": 0.1, "blocks.1": 0.5}}
    return metrics, config


ORDER = ["findings", "data", "plan", "curves", "confusion", "per-class", "drift", "groups", "control",
         "mismatch", "about"]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> dict:
    """The report of a synthetic run with every part, written once for the tests that only read it."""
    import matplotlib

    rc_before, had_pyplot = dict(matplotlib.rcParams), "matplotlib.pyplot" in sys.modules
    run = tmp_path_factory.mktemp("synthetic") / "run"
    path = write_report(run, *synthetic())
    return {"run": run, "path": path, "text": path.read_text(encoding="utf-8"),
            "rc_unchanged": dict(matplotlib.rcParams) == rc_before,
            "no_pyplot": had_pyplot or "matplotlib.pyplot" not in sys.modules}


@pytest.fixture
def no_charts(monkeypatch):
    """As if matplotlib were not installed: the report renders without charts (and quickly)."""
    import graftwork.report as report

    monkeypatch.delattr(report, "plots", raising=False)
    monkeypatch.setitem(sys.modules, "graftwork.report.plots", None)


def test_synthetic_report_is_self_contained_ordered_and_escaped(full):
    assert full["path"] == full["run"] / "report.html"
    assert sorted(p.name for p in full["run"].iterdir()) == ["report.html"], "one file, no leftovers"
    text = full["text"]
    doc = check_self_contained(text)
    assert [i for i in doc.ids if i in ORDER] == ORDER, "every section, in order"
    assert NASTY not in text and ESCAPED in text
    assert "&lt;imgs&gt;" in text and "<imgs>" not in text
    assert "This chart could not be drawn" not in text and "could not be rendered" not in text
    pngs = images(text)
    assert len(pngs) >= 6 and all(p.startswith(PNG) for p in pngs)
    assert "timm:tiny" in text and "gradual" in text and "2026-01-02 03:04 UTC" in text
    assert "C = <b>0.01</b>, chosen by validation" in text


def test_charts_leave_no_global_matplotlib_state(full):
    assert full["rc_unchanged"] and full["no_pyplot"]


def test_findings_come_first_most_serious_first_with_numbers_and_advice(full):
    text = full["text"]
    section = text[text.index('id="findings"'):text.index('id="data"')]
    badges = re.findall(r'<span class="badge sev-(\w+)">(\w+)</span>', section)
    assert badges == [("high", "high"), ("warning", "warning"), ("info", "info")]
    assert section.index("no-transfer") < section.index("overfit") < section.index("fyi")
    assert "accuracy gain = <b>0.031</b>" in section and "try another backbone" in section
    assert "train-val gap = <b>0.250</b>" in section
    assert f"class {ESCAPED} is never learned" in section


def test_optional_parts_are_left_out_when_absent(no_charts):
    metrics, config = synthetic(extras=False)
    text = render_report(metrics, config)
    doc = check_self_contained(text)
    for absent in ("findings", "drift", "groups", "control", "mismatch"):
        assert absent not in doc.ids and f'href="#{absent}"' not in text
    assert {"data", "plan", "curves", "confusion", "per-class", "about"} <= set(doc.ids)
    empty = render_report({}, {})
    assert not [i for i in Checked(empty).ids if i in ORDER] and "<h1>" in empty


def test_empty_findings_list_says_so(no_charts):
    metrics, config = synthetic(extras=False)
    text = render_report(metrics | {"findings": []}, config)
    assert 'id="findings"' in text and "No checks raised anything" in text


def test_odd_runs_still_render():
    """Empty histories, a class never predicted, another absent from the test set, broken optional parts."""
    metrics, config = synthetic(["a", "b", "c", "d"])
    for s in metrics["stages"]:
        s["history"] = []
    test = metrics["test"]
    # b is never predicted
    test["confusion"] = {"labels": ["a", "b", "c"], "matrix": [[3, 0, 0], [2, 0, 0], [0, 0, 3]]}
    test["per_class"] = {c: test["per_class"][c] for c in ["a", "b", "c"]}  # d: no test examples
    metrics["drift"] = "garbage"
    metrics["groups"] = {"groups": {"g": {"n": 2, "accuracy": None, "accuracy_ci": None}}}
    metrics["control"] = {"pretrained": None, "random_init": 0.5}
    metrics["findings"].append({"code": "odd", "severity": "critical", "message": "unknown severity"})
    text = render_report(metrics, config)
    check_self_contained(text)
    assert "No per-epoch history was recorded" in text
    assert "never predicted" in text and "no examples in test" in text
    assert text.index("no-transfer") < text.index("unknown severity")  # unknown severities go last
    assert 'id="drift"' not in text


def test_runs_saved_before_stages_were_recorded_show_their_history():
    metrics, config = synthetic(extras=False)
    del metrics["stages"], metrics["probe"]
    metrics |= {"history": [{"epoch": e, "train_loss": 1 / e, "val_acc": 0.5} for e in (1, 2, 3)],
                "best_epoch": 2}
    section = sections.curves(metrics, config)
    assert "linear probe" in section and len(images(section)) == 1


def test_a_broken_section_does_not_cost_the_report(no_charts, monkeypatch):
    from graftwork.report import Section, classify

    metrics, config = synthetic()
    metrics["data"]["train"]["per_class"] = {"cat": "many"}  # not a number: shown as it is, not added up
    text = render_report(metrics, config)
    check_self_contained(text)
    assert "<td>cat</td><td>many</td>" in text and "could not be rendered" not in text

    def broken(metrics: dict, config: dict) -> str:
        raise TypeError("<b>bad</b>")

    monkeypatch.setattr(classify, "SECTIONS", [Section("data", "Data", broken), *classify.SECTIONS[3:]])
    text = render_report(metrics, config)
    check_self_contained(text)
    assert "This section could not be rendered (TypeError: &lt;b&gt;bad&lt;/b&gt;)" in text
    assert 'id="curves"' in text and 'id="confusion"' in text


def test_many_classes_with_long_names():
    classes = [f"class {i:03d} " + "with a very long name " * 6 + ("$" if i % 2 else "$$")
               for i in range(100)]
    metrics, config = synthetic(classes, extras=False)
    text = render_report(metrics, config)
    check_self_contained(text)
    assert "This chart could not be drawn" not in text
    assert "counts are left out above 20 classes" in text
    assert all(p.startswith(PNG) for p in images(text))
    assert classes[99] in text  # tables keep the full name


def test_without_matplotlib_the_report_has_tables_and_a_note(no_charts):
    text = render_report(*synthetic())
    check_self_contained(text)
    assert not images(text) and "Charts need matplotlib" in text and ESCAPED in text


def test_write_report_reads_the_run_folder_and_refuses_other_folders(tmp_path, no_charts):
    metrics, config = synthetic()
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))
    out = write_report(run, out=tmp_path / "elsewhere" / "r.html")
    text = out.read_text(encoding="utf-8")
    assert "my-run" in text and ESCAPED in text and not (run / "report.html").exists()
    with pytest.raises(RunFolderError, match="config.json"):
        write_report(tmp_path / "elsewhere")


@pytest.fixture(scope="module")
def gradual_run(tmp_path_factory) -> Path:
    import torch

    root = tmp_path_factory.mktemp("report-run")
    classes = ("red", "green", "blue")
    make_image_folder(root / "data" / "train", per_class=6, classes=classes)
    make_image_folder(root / "data" / "test", per_class=2, classes=classes, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is many times faster on a busy machine
    try:
        graftwork.fit(root / "data", out=root / "run", backbone="timm:test_efficientnet", pretrained=False,
                      strategy="gradual", stage_epochs=1, batch_size=8, image_size=32, cache=False)
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def test_report_of_a_real_gradual_run(gradual_run):
    metrics = json.loads((gradual_run / "metrics.json").read_text())
    assert len(metrics["stages"]) >= 2
    path = write_report(gradual_run)
    text = path.read_text(encoding="utf-8")
    doc = check_self_contained(text)
    assert {"data", "plan", "curves", "confusion", "per-class", "about"} <= set(doc.ids)
    for s in metrics["stages"]:
        assert s["stage"] in text
    if "probe" in metrics:
        assert "Linear probe: C = " in text
    assert "timm:test_efficientnet" in text and "run" in text
    assert "This chart could not be drawn" not in text and "could not be rendered" not in text
    pngs = images(text)
    assert len(pngs) >= 3 and all(p.startswith(PNG) for p in pngs)  # class counts, learning curves, confusion
    assert not [p.name for p in gradual_run.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_the_probe_grid_names_the_features_of_each_reference_and_marks_only_the_kept_row():
    from graftwork.report.sections import _probe

    grid = [{"C": 1.0, "features": "raw", "val_acc": 0.7, "val_loss": 0.6},
            {"C": 1.0, "features": "normalised", "val_acc": 0.8, "val_loss": 0.5},
            {"C": 1.0, "features": "standardised", "val_acc": 0.75, "val_loss": 0.55}]
    out = _probe({"C": 1.0, "features": "normalised", "selection": "cross-validation", "grid": grid})
    assert out["C"] == "1 (normalised)" and [row[0] for row in out["grid"]] == ["1 (raw)", "1 (normalised)", "1"]
    assert out["kinds"] == ["", "kept", ""]
