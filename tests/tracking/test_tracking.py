"""--log-to tensorboard|mlflow: settings, every epoch's metrics, findings and the run folder, read back with each
tool's own reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import graftwork
from graftwork.config import FitConfig
from graftwork.errors import ConfigError
from graftwork.tracking import FitSession, Tracker, TrackingCallback, open_trackers

from ..conftest import make_image_folder

TINY = {"backbone": "timm:test_efficientnet", "pretrained": False, "strategy": "full", "stage_epochs": 2,
        "batch_size": 8}


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _texts(folder: Path) -> dict[str, str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return {tag.removesuffix("/text_summary"): b"\n".join(v for e in events.Tensors(tag)
                                                          for v in e.tensor_proto.string_val).decode()
            for tag in events.Tags()["tensors"]}


def _epoch_rows(metrics: dict) -> list[dict]:
    return [row for stage in metrics["stages"] for row in stage.get("history", [])]


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "img", per_class=10, classes=("red", "green", "blue"))


def test_tensorboard_records_every_epoch_the_settings_and_findings(folder, tmp_path):
    model = graftwork.fit(folder, out=tmp_path / "run", **TINY, log_to="tensorboard", log_dir=str(tmp_path / "tb"))
    [run] = list((tmp_path / "tb").iterdir())
    assert run.name == "run"  # named after --out
    scalars = _scalars(run)
    rows = _epoch_rows(model.metrics)
    assert len(rows) >= 2
    assert [step for step, _ in scalars["val_acc"]] == list(range(1, len(rows) + 1))
    assert [v for _, v in scalars["val_acc"]] == pytest.approx([r["val_acc"] for r in rows])
    assert [v for _, v in scalars["train_loss"]] == pytest.approx([r["train_loss"] for r in rows])
    assert scalars["final/val/accuracy"][0][1] == pytest.approx(model.metrics["val"]["accuracy"])
    texts = _texts(run)
    assert "| strategy | full |" in texts["settings"]
    codes = [f["code"] for f in model.metrics["findings"]]
    assert codes and all(code in texts["findings"] for code in codes)
    assert texts["run_folder"] == str((tmp_path / "run").absolute())


def test_a_second_run_of_the_same_name_gets_its_own_tensorboard_folder(folder, tmp_path):
    cfg = FitConfig(log_to="tensorboard", log_dir=str(tmp_path / "tb"))
    first, second = open_trackers(cfg, "run"), open_trackers(cfg, "run")
    for t in first + second:
        t.close()
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["run", "run-2"]


def test_mlflow_local_store_has_params_epoch_metrics_findings_and_the_run_folder(folder, tmp_path):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "store"
    model = graftwork.fit(folder, out=tmp_path / "run", **TINY, log_to="mlflow", log_dir=str(store))
    assert list(store.glob("*/meta.yaml"))  # a local file store: plain files in the folder given
    monkey = pytest.MonkeyPatch()
    monkey.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = MlflowClient(tracking_uri=store.absolute().as_uri())
        [run] = client.search_runs([client.get_experiment_by_name("graftwork").experiment_id])
        rid = run.info.run_id
        assert run.info.status == "FINISHED" and run.info.run_name == "run"
        assert run.data.params["strategy"] == "full" and run.data.params["seed"] == "0"
        assert run.data.params["resolved/backbone"] == "timm:test_efficientnet"
        rows = _epoch_rows(model.metrics)
        history = client.get_metric_history(rid, "val_acc")
        assert [m.step for m in history] == list(range(1, len(rows) + 1))
        assert [m.value for m in history] == pytest.approx([r["val_acc"] for r in rows])
        assert run.data.metrics["final/val/accuracy"] == pytest.approx(model.metrics["val"]["accuracy"])
        artifacts = {a.path for a in client.list_artifacts(rid)}
        assert {"findings.json", "run"} <= artifacts
        assert {"run/config.json", "run/metrics.json", "run/head.safetensors"} <= {
            a.path for a in client.list_artifacts(rid, "run")}
        local = Path(client.download_artifacts(rid, "findings.json", str(tmp_path)))
        findings = json.loads(local.read_text())
        assert findings == model.metrics["findings"]
        for f in findings:
            assert run.data.tags[f"finding.{f['code']}"] == f["severity"]
    finally:
        monkey.undo()


def test_a_trainer_callback_logs_live_with_steps_over_the_whole_fit(tmp_path):
    logged: list[tuple[str, dict, int]] = []

    class Memory(Tracker):
        def log_epoch(self, stage, row, step):
            logged.append((stage, row, step))

    session = FitSession([Memory()])
    [callback] = session.callbacks
    assert isinstance(callback, TrackingCallback)
    first, second = {"epoch": 1, "val_acc": 0.5}, {"epoch": 1, "val_acc": 0.7}
    state = SimpleNamespace(stages=[{"stage": "linear probe"}, {"stage": "top 1", "history": [{"epoch": 1}, first]},
                                    {"stage": "top 2", "history": [second]}])
    callback.on_epoch_end(None, state, first)
    callback.on_epoch_end(None, state, second)
    assert [(s, n) for s, _, n in logged] == [("top 1", 2), ("top 2", 3)]
    session.finish({"stages": state.stages})  # epochs were logged live: not replayed
    assert len(logged) == 2


def test_a_failing_tracker_is_dropped_with_a_warning_and_the_fit_goes_on(tmp_path):
    warnings: list[str] = []

    class Broken(Tracker):
        name = "broken"

        def log_epoch(self, stage, row, step):
            raise ConnectionError("tracking server went away")

    console = SimpleNamespace(warn=warnings.append, info=lambda _: None)
    session = FitSession([Broken()], console)  # type: ignore[arg-type]
    session.log_epoch("top 1", {"val_acc": 0.5}, 1)
    session.log_epoch("top 1", {"val_acc": 0.6}, 2)
    assert session.trackers == [] and len(warnings) == 1 and "tracking server went away" in warnings[0]


def test_missing_packages_say_which_pip_line_installs_them(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match="needs the tensorboard package") as e:
        open_trackers(FitConfig(log_to="tensorboard", log_dir=str(tmp_path)), "run")
    assert "pip install 'graftwork[tensorboard]'" in str(e.value)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    monkeypatch.setitem(sys.modules, "mlflow.entities", None)
    with pytest.raises(ConfigError, match="needs the mlflow-skinny package") as e:
        open_trackers(FitConfig(log_to="mlflow", log_dir=str(tmp_path)), "run")
    assert "pip install 'graftwork[mlflow]'" in str(e.value)


def test_a_tracking_uri_is_only_for_mlflow_and_settings_are_checked():
    with pytest.raises(ConfigError, match="only MLflow reads"):
        open_trackers(FitConfig(log_to="tensorboard", log_dir="http://localhost:5000"), "run")
    with pytest.raises(ConfigError, match="log_to"):
        FitConfig(log_to="wandb")
    assert open_trackers(FitConfig(), "run") == []


def test_both_trackers_share_a_log_folder_side_by_side(tmp_path):
    trackers = open_trackers(FitConfig(log_to="tensorboard,mlflow", log_dir=str(tmp_path / "logs")), "r")
    for t in trackers:
        t.close()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["mlruns", "tensorboard"]
    assert (tmp_path / "logs" / "tensorboard" / "r").is_dir()


def test_ner_and_generation_fits_are_tracked_as_well(tmp_path, tiny_bert):
    from graftwork.tasks import fit

    from ..generate.conftest import colour_pairs, make_model, make_tokenizer, write_jsonl
    from ..ner.conftest import make_sentences, write_conll

    ner = fit(write_conll(tmp_path / "ner.conll", make_sentences(30)),
              FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", batch_size=16,
                        log_to="tensorboard", log_dir=str(tmp_path / "tb")), out=tmp_path / "ner-run")
    scalars = _scalars(tmp_path / "tb" / "ner-run")
    assert [v for _, v in scalars["val_f1"]] == pytest.approx([r["val_f1"] for r in _epoch_rows(ner.metrics)])

    lm = tmp_path / "lm"
    tok = make_tokenizer()
    make_model(len(tok)).save_pretrained(lm)
    tok.save_pretrained(lm)
    (tmp_path / "gen").mkdir()
    write_jsonl(tmp_path / "gen" / "train.jsonl", colour_pairs(16, 0))
    write_jsonl(tmp_path / "gen" / "val.jsonl", colour_pairs(4, 1))
    gen = fit(tmp_path / "gen", FitConfig(task="generate", backbone=str(lm), stage_epochs=1, batch_size=8,
                                          max_new_tokens=2, few_shot=0, log_to="tensorboard",
                                          log_dir=str(tmp_path / "tb")), out=tmp_path / "gen-run")
    scalars = _scalars(tmp_path / "tb" / "gen-run")
    history = gen.metrics["history"]
    assert [v for _, v in scalars["val/loss"]] == pytest.approx([h["val"]["loss"] for h in history])
    assert [s for s, _ in scalars["general_text/loss"]] == list(range(1, len(history) + 1))
