"""An NER fit interrupted mid-fine-tuning resumes from its checkpoint and ends exactly like an uninterrupted one
(on CPU): the same weights, stages and histories. The default suite interrupts it in-process (an exception right
after the checkpoint of an epoch is written); the slow suite kills a child process with SIGKILL at the same point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from graftwork import FitConfig
from graftwork.cli.main import main
from graftwork.errors import RunFolderError
from graftwork.ner import run_fit_ner
from graftwork.run.provenance import partial_dir
from graftwork.train import Callback

from .conftest import make_sentences, write_conll

# L2-SP and WiSE-FT take their reference (the pretrained encoder, the probe's head) at the start of fine-tuning:
# a resumed fit must take the same one
SETTINGS = {"task": "ner", "strategy": "gradual", "lr": 1e-2, "stage_epochs": 2, "stage_patience": 2,
            "batch_size": 16, "seed": 5, "l2sp": 0.01, "wise": True, "device": "cpu"}

# the child fits with the settings above and, once the checkpoint after epoch 1 (of 2) of the second fine-tuning stage
# is written, says so and waits to be killed
CHILD = """
import json, sys, time
from pathlib import Path
import graftwork.ner.train
from graftwork import FitConfig
from graftwork.ner import run_fit_ner
from graftwork.train import Callback

graftwork.ner.train.HEAD_EPOCHS = 12
data, out, marker, settings = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])


class WaitToBeKilled(Callback):
    def on_epoch_end(self, trainer, state, row):
        if state.stage == 1 and state.epoch == 1:
            marker.write_text("checkpointed")
            time.sleep(600)


run_fit_ner(data, FitConfig(**settings), out=out, callbacks=[WaitToBeKilled()])
"""


def _data(root):
    data = root / "data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(60, seed=0))
    write_conll(data / "dev.conll", make_sentences(15, seed=1))
    return data


def _kill_mid_fit(data, out, settings, tmp_path) -> None:
    marker = tmp_path / "checkpointed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(out), str(marker), json.dumps(settings)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the child never reached the kill point: {child.stderr.read() if child.poll() else ''}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _stages_without_time(metrics):
    return [{k: ([{f: v for f, v in row.items() if not f.endswith("seconds")} for row in s["history"]] if k == "history" else v)
             for k, v in s.items() if k not in ("seconds", "feature_seconds")} for s in metrics["stages"]]


class Interrupt(Callback):
    """Stops the fit as a crash would, once the checkpoint of the kill point's epoch is written (the trainer's
    checkpointing callback runs before the caller's)."""

    def on_epoch_end(self, trainer, state, row):
        if state.stage == 1 and state.epoch == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["exception", pytest.param("kill -9", marks=pytest.mark.slow)])
def test_an_interrupted_fit_resumes_and_ends_like_an_uninterrupted_one(how, tiny_bert, tmp_path, capsys):
    data = _data(tmp_path)
    settings = SETTINGS | {"backbone": str(tiny_bert)}
    whole = run_fit_ner(data, FitConfig(**settings), out=tmp_path / "whole")  # type: ignore[arg-type]
    assert len(whole.metrics["stages"]) >= 3  # the kill point (the second fine-tuning stage) is reached

    cut = tmp_path / "cut"
    if how == "kill -9":
        _kill_mid_fit(data, cut, settings, tmp_path)
    else:
        with pytest.raises(KeyboardInterrupt):
            run_fit_ner(data, FitConfig(**settings), out=cut, callbacks=[Interrupt()])  # type: ignore[arg-type]
    partial = partial_dir(cut)
    assert not cut.exists() and (partial / "checkpoint.pt").is_file() and (partial / "head.safetensors").is_file()

    # a plain re-run never discards the checkpoint
    with pytest.raises(RunFolderError, match="left a checkpoint"):
        run_fit_ner(data, FitConfig(**settings), out=cut)  # type: ignore[arg-type]
    # nor does resuming on data that changed since
    train = (data / "train.conll").read_text()
    (data / "train.conll").write_text(train.replace("apple", "melon", 1))
    assert main(["fit", "--resume", str(cut), "--quiet"]) == 2
    assert "the data changed" in capsys.readouterr().err
    (data / "train.conll").write_text(train)

    assert main(["fit", "--resume", str(cut), "--quiet"]) == 0
    assert not partial.exists()
    for name in ("head.safetensors", "backbone.safetensors"):
        a, b = load_file(whole_file := tmp_path / "whole" / name), load_file(cut / name)
        assert a.keys() == b.keys(), whole_file
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key}"
    m_whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    m_cut = json.loads((cut / "metrics.json").read_text())
    assert m_cut["kept_stage"] == m_whole["kept_stage"]
    assert _stages_without_time(m_cut) == _stages_without_time(m_whole)
    assert m_cut["val"] == m_whole["val"]


def test_resume_of_a_run_without_a_partial_is_a_clear_error(tmp_path, capsys):
    assert main(["fit", "--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no interrupted run" in err and "Traceback" not in err
