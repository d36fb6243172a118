"""The command line as a user runs it: exit codes, JSON on stdout, errors without tracebacks."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from graftwork.cli.main import main

from ..conftest import make_image_folder, make_text_rows, write_csv

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(tmp_path, capsys, built_once):
    """``data`` (train and test image folders) and ``run`` fitted on it, in the test's own folder."""
    def build(folder):
        make_image_folder(folder / "data" / "train", per_class=8)
        make_image_folder(folder / "data" / "test", per_class=3, seed=1)
        code, out, err = run(capsys, "fit", folder / "data", "--out", folder / "run", *TINY)
        assert code == 0, err

    return built_once("cli-trained", build, tmp_path)


def test_fit_prints_plan_and_summary(trained, capsys, tmp_path):
    code, out, err = run(capsys, "fit", trained / "data", "--out", tmp_path / "run2", *TINY, "--json")
    assert code == 0
    assert "plan: frozen (chosen by auto)" in err
    assert "done:" in err and "test accuracy" in err
    assert "parameters:" in err and "trained of" in err and "peak rss" in err
    result = json.loads(out)
    assert set(result) >= {"train", "val", "test", "data"}


def test_evaluate_json(trained, capsys):
    code, out, err = run(capsys, "evaluate", trained / "run", trained / "data", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"accuracy", "macro_f1", "n", "per_class", "confusion"} <= set(result)
    assert result["n"] == 6 and result["split"] == "test"
    assert result["confusion"]["labels"] == ["blue", "red"]


def test_evaluate_table(trained, capsys):
    code, out, _ = run(capsys, "evaluate", trained / "run", trained / "data")
    assert code == 0
    assert "accuracy" in out and "per class" in out and "confusion" in out


def test_predict_images_and_folders(trained, capsys):
    image = next((trained / "data" / "test" / "red").iterdir())
    code, out, _ = run(capsys, "predict", trained / "run", image, trained / "data" / "test" / "blue",
                       "--json", "--top-k", "2")
    assert code == 0
    preds = json.loads(out)
    assert len(preds) == 4
    assert preds[0]["input"] == str(image)
    assert len(preds[0]["top"]) == 2 and preds[0]["label"] == preds[0]["top"][0]["label"]


def test_predict_text_args_stdin_and_csv(tmp_path, tiny_bert, capsys, monkeypatch):
    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=15))
    assert run(capsys, "fit", data, "--out", tmp_path / "run", "--backbone", f"hf:{tiny_bert}")[0] == 0
    code, out, _ = run(capsys, "predict", tmp_path / "run", "apple pear", "bus car", "--json")
    assert [p["input"] for p in json.loads(out)] == ["apple pear", "bus car"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("apple melon\n\nboat train\n"))
    code, out, _ = run(capsys, "predict", tmp_path / "run", "-", "--json")
    assert [p["input"] for p in json.loads(out)] == ["apple melon", "boat train"]
    code, out, _ = run(capsys, "predict", tmp_path / "run", data, "--json")
    assert code == 0 and len(json.loads(out)) == 30


def test_backbones_names_and_offline(capsys):
    code, out, _ = run(capsys, "backbones", "--names")
    names = out.split()
    assert code == 0 and "torchvision:mobilenet_v2" in names and all(":" in n for n in names)
    code, out, _ = run(capsys, "backbones", "--json")
    assert {"name", "modality", "feature_dim", "offline"} <= set(json.loads(out)[0])
    code, out, _ = run(capsys, "backbones", "--offline", "--json")
    assert all(r["offline"] for r in json.loads(out))


def test_errors_are_short_and_actionable(tmp_path, capsys):
    code, out, err = run(capsys, "fit", tmp_path / "nope", "--out", tmp_path / "run")
    assert code == 2
    assert "error:" in err and "no such file or folder" in err and "Traceback" not in err
    code, _, err = run(capsys, "fit", tmp_path, "--out", tmp_path / "run", "--probe-c", "0")
    assert code == 2 and "'probe_c'" in err
    code, _, err = run(capsys, "predict", tmp_path / "missing-run", "x.jpg")
    assert code == 2 and "not a folder" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        main(["--debug", "fit", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])


def test_existing_output_is_protected(trained, capsys):
    code, _, err = run(capsys, "fit", trained / "data", "--out", trained / "run", *TINY)
    assert code == 2 and "--force" in err
    assert run(capsys, "fit", trained / "data", "--out", trained / "run", *TINY, "--force")[0] == 0


def test_console_script_runs_as_a_process(tmp_path):
    """The installed entry point works end to end, with the error path of a real process."""
    proc = subprocess.run([sys.executable, "-m", "graftwork", "fit", str(tmp_path / "missing"), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
