"""User strings that look like markup, HTML or terminal control, in every position the CLI and the report
show: texts to predict, class names (image folders, text labels, entity types), group names, file names,
folder names, metrics.json and config.json values.

Each is driven through the real command line (``main([...])``) on tiny random backbones. What must hold: the
exit status is 0 (2 for the deliberate errors), every string appears as written, escaped and not interpreted
(control characters as visible ``\\x1b`` / ``\\r``), no ESC byte or carriage return from the input reaches the
output, and report.html carries a Content-Security-Policy and no markup from the run. Also: what
``--skip-bad-files`` leaves out of ``evaluate`` and ``predict`` is reported, on stderr and in ``--json``.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graftwork.cli.main import main

from ..conftest import WORDS

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained"]

# class folders: markup, HTML, emoji and emoji codes, right-to-left text and an RTL override, control characters
# ("/" cannot be part of a folder or file name: "[/x]" and "</script>" are tried in texts, labels and groups)
CLASSES = ["[cat]", "[bold red]b", "<script>alert(1)", '"><img onerror=x>',
           "🐱 :smile: שלום عربي \u202e", "e\x1b[31mr\rx"]
EVIL_FILE = "[b]x <b>\x1b[2Jf\r.png"  # a file name that would clear the terminal if printed raw
TEXTS = ["[/INST] hi", "[bold red]apple[/bold red] pear", "<script>alert(1)</script> melon",
         '"><img src=x onerror=alert(1)> car', "🐱 :smile: שלום \u202e bus", "\x1b[31mtruck\x1b[0m \r boat"]
LABELS = {"fruit": "[/INST] fruit", "vehicle": '"><img onerror=x> vehicle'}
GROUPS = ["<script>g</script>", "[/x] \x1b[31mg\u202e"]


def shown(s: str) -> str:
    """How a user string must appear on a terminal: as written, control characters as visible escapes."""
    return s.replace("\x1b", "\\x1b").replace("\r", "\\r")


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\r" not in out + err, "a control character from the input was printed"
    return code, out, err


def write_images(folder: Path, classes: list[str], per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        colour = np.array([40 * k % 255, 200 - 30 * k, 90], dtype=np.float32)
        for i in range(per_class):
            pixels = np.clip(colour + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / name / f"{i}.png")


HOSTILE_OUT = "run [/x] \x1b[2J"


@pytest.fixture
def image_run(tmp_path, capsys, monkeypatch, built_once) -> Path:
    """A run fitted on class folders with hostile names, written to a hostile --out folder name; the test runs in
    its folder (``data`` beside the run)."""
    def build(folder):
        monkeypatch.chdir(folder)
        write_images(folder / "data" / "train", CLASSES, per_class=4, seed=0)
        write_images(folder / "data" / "test", CLASSES, per_class=2, seed=1)
        shutil.copy(folder / "data" / "test" / CLASSES[0] / "0.png", folder / "data" / "test" / CLASSES[0] / EVIL_FILE)
        code, _, err = run(capsys, "fit", "data", "--out", HOSTILE_OUT, *TINY, "--strategy", "frozen")
        assert code == 0, err
        assert shown(HOSTILE_OUT) in err  # "saved to ..." in the fit log

    built_once("hostile-image-run", build, tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / HOSTILE_OUT


def test_image_class_and_file_names_are_shown_as_written(image_run, capsys):
    code, out, err = run(capsys, "evaluate", image_run, "data")
    assert code == 0, err
    for name in CLASSES:
        assert shown(name) in out, name  # "[cat]" used to be an empty cell
    code, out, _ = run(capsys, "evaluate", image_run, "data", "--json")
    assert code == 0 and set(json.loads(out)["confusion"]["labels"]) == set(CLASSES)

    image = f"data/test/{CLASSES[0]}/{EVIL_FILE}"
    code, out, err = run(capsys, "predict", image_run, image, "--top-k", "1")
    assert code == 0, err
    assert shown(image) in out
    code, out, _ = run(capsys, "predict", image_run, image, "--json")
    assert json.loads(out)[0]["input"] == image and json.loads(out)[0]["label"] in CLASSES

    code, out, err = run(capsys, "advise", "data")
    assert code == 0, err


def test_errors_naming_hostile_files_cannot_rewrite_the_terminal(image_run, capsys):
    missing = "data/\x1b[2J\x1b[Hgone[/x].png"
    code, out, err = run(capsys, "predict", image_run, missing)
    assert code == 2 and out == ""
    assert shown(missing) in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:  # argparse's usage errors quote what was typed
        main(["evaluate", str(image_run), "data", "--bogus\x1b[31m"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and shown("--bogus\x1b[31m") in err and "\x1b" not in out + err


def test_report_of_hostile_class_names_escapes_them_and_forbids_scripts(image_run):
    text = (image_run / "report.html").read_text(encoding="utf-8")
    check_report(text)
    for name in CLASSES:
        assert html.escape(shown(name), quote=True) in text, name


@pytest.fixture
def text_run(tmp_path, tiny_bert, capsys, built_once) -> tuple[Path, Path]:
    """A text run whose labels and groups are hostile; its data also hold a row with an empty text."""
    def build(folder):
        rng = np.random.default_rng(0)
        with (folder / "texts.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label", "group"])
            for i in range(24):
                kind = "fruit" if i % 2 else "vehicle"
                w.writerow([" ".join(rng.choice(WORDS[kind], size=4)), LABELS[kind], GROUPS[i // 2 % 2]])
        code, _, err = run(capsys, "fit", folder / "texts.csv", "--out", folder / "run", "--backbone",
                           f"hf:{tiny_bert}", "--strategy", "frozen")
        assert code == 0, err

    built_once("hostile-text-run", build, tmp_path)
    return tmp_path / "run", tmp_path / "texts.csv"


def test_texts_labels_and_groups_are_shown_as_written(text_run, capsys):
    run_dir, data = text_run
    code, out, err = run(capsys, "predict", run_dir, *TEXTS, "--top-k", "1")
    assert code == 0, err  # "[/INST] hi" used to end in "internal error: MarkupError"
    for text in TEXTS:
        assert shown(text) in out, text
    code, out, _ = run(capsys, "predict", run_dir, *TEXTS, "--json")
    preds = json.loads(out)
    assert [p["input"] for p in preds] == TEXTS and {p["label"] for p in preds} <= set(LABELS.values())

    code, out, err = run(capsys, "evaluate", run_dir, data, "--groups", "group")
    assert code == 0, err
    for s in [*LABELS.values(), *GROUPS]:
        assert shown(s) in out, s
    code, out, _ = run(capsys, "evaluate", run_dir, data, "--groups", "group", "--json")
    assert set(json.loads(out)["groups"]["groups"]) == set(GROUPS)


def test_findings_are_printed_literally():
    import io

    from graftwork.cli.render import finding_line
    from graftwork.console import terminal

    stream = io.StringIO()
    message = "group [bold]<script>x</script>[/bold] \x1b[2J is :smile: worse"
    terminal(stream).print(finding_line({"severity": "high", "code": "group-gap", "message": message,
                                         "advice": "[/x] collect more"}))
    assert stream.getvalue() == f"[high] group-gap: {shown(message)}\n  what to do: [/x] collect more\n"


# -- report.html from a hostile metrics.json and config.json --------------------------------------------------
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def check_report(text: str) -> None:
    """CSP that forbids scripts; no script, no event handler, no image but the inline charts, no link out."""
    assert ('<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;; img-src data:; '
            "style-src &#x27;unsafe-inline&#x27;") in text
    assert "<script" not in text.lower() and "\x1b" not in text
    parser = _Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link", "base", "form"), tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/png;base64,"), attrs
        if tag == "a":
            assert (attrs.get("href") or "").startswith("#"), attrs


def hostile(metrics: dict, config: dict) -> None:
    """Put HOSTILE (or a variant) wherever the report shows a value, numbers included."""
    test = metrics["test"]
    test |= {"accuracy": HOSTILE, "n": HOSTILE, "note": HOSTILE, "majority_baseline": {"predicts": HOSTILE}}
    test["confusion"]["labels"][0] = HOSTILE
    test["confusion"]["matrix"][0][1] = HOSTILE
    test["per_class"][HOSTILE] = {"precision": HOSTILE, "support": HOSTILE}
    metrics[HOSTILE] = {"accuracy": 1.0}  # a split name nobody expects
    metrics["kept_stage"] = HOSTILE
    metrics["findings"] = [{"severity": HOSTILE, "code": HOSTILE, "message": HOSTILE, "advice": HOSTILE,
                            "metric": HOSTILE, "value": HOSTILE, "details": {HOSTILE: HOSTILE}}]
    metrics["stages"][0] |= {"stage": HOSTILE, "val_acc": HOSTILE, "seconds": HOSTILE}
    metrics["data"] |= {"source": HOSTILE, "skipped": [f"{HOSTILE}: unreadable"], "fit_split": {"val": HOSTILE}}
    metrics["data"]["train"]["per_class"][HOSTILE] = HOSTILE
    metrics["groups"] = {"groups": {HOSTILE: {"n": HOSTILE, "accuracy": HOSTILE, "accuracy_ci": [HOSTILE, 1]}},
                         "worst_gap": {HOSTILE: HOSTILE}}
    metrics["drift"] = [{"stage": HOSTILE, "epoch": HOSTILE, "cka": {HOSTILE: HOSTILE}}]
    metrics["control"] = {"pretrained": HOSTILE, "random_init": 0.5, HOSTILE: HOSTILE}
    metrics["mismatch"] = {"score": HOSTILE, "per_layer": {HOSTILE: HOSTILE}}
    metrics["timing"] = {HOSTILE: HOSTILE}
    config["backbone"] |= {"name": HOSTILE, "weights": HOSTILE, "extra": {HOSTILE: HOSTILE}}
    config["plan"] |= {"strategy": HOSTILE, "reasons": [HOSTILE], "details": {HOSTILE: HOSTILE}}
    config["created"] = HOSTILE
    config["versions"] = {HOSTILE: HOSTILE}


def test_report_from_hostile_run_files_is_escaped(image_run, tmp_path, capsys):
    metrics = json.loads((image_run / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((image_run / "config.json").read_text(encoding="utf-8"))
    hostile(metrics, config)
    (image_run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    (image_run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    code, _, err = run(capsys, "report", image_run, "--out", tmp_path / "hostile.html")
    assert code == 0, err
    text = (tmp_path / "hostile.html").read_text(encoding="utf-8")
    check_report(text)
    assert HOSTILE not in text and "<img src=x" not in text
    assert text.count(html.escape(HOSTILE, quote=True)) >= 20  # shown, as text, in every section
    assert "could not be rendered" not in text  # strings where numbers belong are shown, not a crash


# -- --skip-bad-files: what was left out is said, on stderr and in --json ------------------------------------
@pytest.fixture
def bad_inputs(image_run) -> tuple[Path, str]:
    """A damaged image in the test split (its name hostile too) and the path to it."""
    bad = f"data/test/{CLASSES[1]}/damaged [x].png"
    Path(bad).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return image_run, bad


def test_evaluate_reports_what_it_skipped(bad_inputs, capsys):
    run_dir, bad = bad_inputs
    code, out, err = run(capsys, "evaluate", run_dir, "data", "--json")
    assert code == 2 and out == "" and bad in err and "--skip-bad-files" in err
    code, out, err = run(capsys, "evaluate", run_dir, "data", "--json", "--skip-bad-files")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_skipped"] == 1 and [s["path"] for s in result["skipped"]] == [bad]
    assert result["skipped"][0]["reason"] and result["n"] == 2 * len(CLASSES) + 1
    assert "skipped 1 unreadable input(s)" in err and bad in err


def test_predict_reports_what_it_skipped(bad_inputs, capsys):
    run_dir, bad = bad_inputs
    good, missing = f"data/test/{CLASSES[2]}/0.png", "data/test/no such [/x].png"
    for argv in ([good, bad], [good, missing]):
        code, out, err = run(capsys, "predict", run_dir, *argv)
        assert code == 2 and out == "" and argv[1] in err and "Traceback" not in err
    code, out, err = run(capsys, "predict", run_dir, good, bad, missing, "--skip-bad-files", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [p["input"] for p in result["predictions"]] == [good]
    assert result["n_skipped"] == 2 and {s["path"] for s in result["skipped"]} == {bad, missing}
    assert "skipped 2 unreadable input(s)" in err and bad in err and missing in err
    code, out, err = run(capsys, "predict", run_dir, good, bad, "--skip-bad-files")  # the table, and stderr
    assert code == 0 and good in out and bad not in out and "skipped 1" in err
    code, out, err = run(capsys, "predict", run_dir, bad, "--skip-bad-files")  # nothing left: an error
    assert code == 2 and "none of the 1 input(s) could be read" in err


def test_text_evaluate_reports_skipped_rows(text_run, capsys):
    run_dir, data = text_run
    with data.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["", LABELS["fruit"], GROUPS[0]])  # an empty text: row 26
    code, out, err = run(capsys, "evaluate", run_dir, data, "--json")
    assert code == 2 and f"{data}:26" in err
    code, out, err = run(capsys, "evaluate", run_dir, data, "--json", "--skip-bad-files")
    assert code == 0, err
    result = json.loads(out)
    assert result["skipped"] == [{"path": f"{data}:26", "reason": "empty `text`"}] and result["n_skipped"] == 1
    assert "skipped 1 unreadable input(s)" in err

    code, out, err = run(capsys, "predict", run_dir, data, "--json")  # texts to predict from the same file
    assert code == 2 and out == "" and f"{data}:26" in err
    code, out, err = run(capsys, "predict", run_dir, data, "hello world", "--json", "--skip-bad-files")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["predictions"]) == 25 and result["predictions"][-1]["input"] == "hello world"
    assert result["skipped"] == [{"path": f"{data}:26", "reason": "empty `text`"}] and result["n_skipped"] == 1
    assert "skipped 1 unreadable input(s)" in err and f"{data}:26" in err


def test_ner_evaluate_and_predict_show_types_and_report_skips(tmp_path, tiny_bert, capsys):
    from graftwork import FitConfig
    from graftwork.ner import run_fit_ner

    from ..ner.conftest import make_sentences, write_conll

    def hostile_types(sentences):  # entity types with markup and HTML in their names
        rename = {"FRUIT": "[/F]<b>", "VEH": "[bold]V"}
        return [(toks, [t if t == "O" else f"{t[:2]}{rename[t[2:]]}" for t in tags]) for toks, tags in sentences]

    data = tmp_path / "ner"
    data.mkdir()
    write_conll(data / "train.conll", hostile_types(make_sentences(40, seed=0)))
    test = write_conll(data / "test.conll", hostile_types(make_sentences(10, seed=2)))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", lr=1e-2, batch_size=16)
    run_fit_ner(data, cfg, out=tmp_path / "run")

    code, out, err = run(capsys, "predict", tmp_path / "run", "[/INST] my apples \x1b[2J", "the bus")
    assert code == 0, err
    assert shown("[/INST] my apples \x1b[2J") in out
    code, out, err = run(capsys, "evaluate", tmp_path / "run", data)
    assert code == 0, err
    assert "[/F]<b>" in out and "[bold]V" in out

    test.write_text(test.read_text(encoding="utf-8") + "\nbroken line with four columns\n", encoding="utf-8")
    code, _, err = run(capsys, "evaluate", tmp_path / "run", data, "--json")
    assert code == 2 and "--skip-bad-files" in err
    code, out, err = run(capsys, "evaluate", tmp_path / "run", data, "--json", "--skip-bad-files")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_skipped"] == 1 and result["skipped"][0]["path"].startswith(f"{test}:")
    assert "skipped 1 unreadable input(s)" in err
