"""Every command on an NER run goes through the run's task: fit, load, evaluate, predict, report, export, serve;
what a task cannot do is a clear error (exit 2), decided before any model is loaded."""

from __future__ import annotations

import json

import pytest

import graftwork
from graftwork.cli.main import main
from graftwork.config import FitConfig
from graftwork.errors import ConfigError
from graftwork.ner import NerModel

from ..ner.conftest import make_sentences, write_conll

FAST = ["--lr", "0.01", "--stage-epochs", "1", "--batch-size", "16"]
TEXTS = ["my apples and the bus", "a train and a boat"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("tasks-ner") / "data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(60, seed=0))
    write_conll(data / "dev.conll", make_sentences(15, seed=1))
    write_conll(data / "test.conll", make_sentences(15, seed=2))
    return data


@pytest.fixture(scope="module")
def ner_run(ner_data, tiny_bert):
    out = ner_data.parent / "run"
    assert main(["fit", str(ner_data), "--task", "ner", "--backbone", str(tiny_bert), "--strategy", "frozen",
                 "--out", str(out), "--quiet", *FAST]) == 0
    return out


def test_an_ner_run_goes_through_every_command(ner_run, ner_data, capsys, tmp_path):
    model = graftwork.load(ner_run, device="cpu")
    assert isinstance(model, NerModel)
    code, out, err = run(capsys, "evaluate", ner_run, ner_data, "--json")
    assert code == 0, err
    assert json.loads(out)["split"] == "test" and 0 <= json.loads(out)["f1"] <= 1
    code, out, err = run(capsys, "predict", ner_run, *TEXTS, "--json")
    assert code == 0, err
    assert json.loads(out) == model.predict(TEXTS)
    code, _, err = run(capsys, "report", ner_run, "--out", tmp_path / "r.html")
    assert code == 0, err
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    code, out, err = run(capsys, "export", ner_run, "--out", tmp_path / "onnx", "--no-verify", "--json")
    assert code == 0, err
    assert json.loads(out)["task"] == "ner" and json.loads(out)["labels"] == model.tags


def test_the_server_backend_comes_from_the_runs_task(ner_run):
    from graftwork.serve.backends import load_backend

    backend = load_backend(ner_run, device="cpu")
    assert backend.task == "ner" and backend.modality == "text"
    assert backend.labels == NerModel.load(ner_run, device="cpu").tags
    assert backend.entities(TEXTS[:1])[0]["tokens"] == ["my", "apples", "and", "the", "bus"]


@pytest.mark.parametrize(("argv", "says"), [
    (["evaluate", "{run}", "{data}", "--groups", "g"], "--groups not used for ner runs"),
    (["evaluate", "{run}", "{data}", "--outputs", "o.jsonl"], "--outputs not used for ner runs"),
    (["predict", "{run}", "apple", "--top-k", "5"], "--top-k not used for ner runs"),
    (["predict", "{run}", "apple", "--temperature", "0.7"], "--temperature not used for ner runs"),
    (["export", "{run}", "--format", "hf", "--out", "{tmp}/hf"], "not available for ner runs"),
    (["export", "{run}", "--adapter", "--out", "{tmp}/a"], "--adapter writes a generation run's LoRA adapter"),
    (["export", "{run}", "--merge", "--out", "{tmp}/m"], "no LoRA adapters to merge"),
])
def test_what_an_ner_run_does_not_read_or_write_is_an_error(ner_run, ner_data, capsys, tmp_path, argv, says):
    values = {"run": ner_run, "data": ner_data, "tmp": tmp_path}
    code, _, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 2 and says in err and "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if p.name != "o.jsonl"]  # nothing written


def test_export_merge_of_an_ner_lora_run_writes_an_ner_run(ner_data, tiny_bert, capsys, tmp_path):
    """The merged folder is an NER run again (its own config, tags and task), predicting as the LoRA run did."""
    from graftwork.strategies.lora import has_lora

    lora = graftwork.fit(ner_data, tmp_path / "lora", task="ner", backbone=str(tiny_bert), strategy="lora",
                         lora_r=2, lr=1e-2, stage_epochs=1, batch_size=16)
    code, _, err = run(capsys, "export", tmp_path / "lora", "--merge", "--out", tmp_path / "merged")
    assert code == 0, err
    assert "merged" in err
    merged = graftwork.load(tmp_path / "merged", device="cpu")
    assert isinstance(merged, NerModel) and not has_lora(merged.backbone)
    assert merged.tags == lora.tags
    got, want = merged.predict(TEXTS), lora.predict(TEXTS)
    assert [p["tags"] for p in got] == [p["tags"] for p in want]
    for a, b in zip(got, want, strict=True):
        assert [e["score"] for e in a["entities"]] == pytest.approx([e["score"] for e in b["entities"]], abs=1e-3)


@pytest.fixture
def generation_run(tmp_path):
    """A folder that says it is a generation run: enough for what is decided before any model is loaded."""
    run_dir = tmp_path / "gen"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"format": "graftwork-run/1", "task": "generate"}))
    return run_dir


def test_what_a_generation_run_cannot_do_is_said_before_loading(generation_run, capsys, tmp_path):
    from graftwork.serve.backends import load_backend

    code, _, err = run(capsys, "export", generation_run, "--format", "onnx", "--out", tmp_path / "x")
    assert code == 2 and "not available for generate runs" in err
    code, _, err = run(capsys, "evaluate", generation_run, tmp_path, "--groups", "g")
    assert code == 2 and "--groups not used for generate runs" in err
    with pytest.raises(ConfigError, match="does not serve generate runs"):
        load_backend(generation_run)
    with pytest.raises(ConfigError, match="'weights' is not used by generation runs"):
        graftwork.load(generation_run, weights="w.safetensors")


def test_run_fit_is_the_classification_pipeline_only(ner_data):
    from graftwork.pipeline import run_fit

    with pytest.raises(ConfigError, match="trained by its own task"):
        run_fit(ner_data, FitConfig(task="ner"))


def test_report_of_a_generation_run_is_its_own_page(generation_run, capsys, tmp_path):
    """`graftwork report` on a generation run writes the generation report (not the classification layout),
    with the run's texts escaped; an existing file that is not a graftwork report is refused."""
    metrics = {"best_epoch": 2, "history": [{"epoch": 1, "train_loss": 2.0, "val": {"loss": 1.5}}],
               "test": {"exact_match": 0.5, "rougeL": 0.6, "chrf": 70.0, "n": 1,
                        "samples": [{"prompt": "say <script>x</script>", "reference": "a", "generation": "b"}]}}
    (generation_run / "metrics.json").write_text(json.dumps(metrics))
    code, _, err = run(capsys, "report", generation_run)
    assert code == 0, err
    page = (generation_run / "report.html").read_text()
    assert "Language model fine-tuning" in page and "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    mine = tmp_path / "notes.html"
    mine.write_text("my own notes")
    code, _, err = run(capsys, "report", generation_run, "--out", mine)
    assert code == 2 and mine.read_text() == "my own notes"
