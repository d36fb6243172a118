"""A fine-tuning run killed with SIGKILL resumes from its last checkpoint and ends like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import make_image_folder

pytestmark = pytest.mark.slow

ARGS = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--strategy", "full", "--stage-epochs", "8",
        "--stage-patience", "8", "--batch-size", "4", "--seed", "3", "--quiet"]


def _fit(*argv: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graftwork", "fit", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_kill_minus_nine_then_resume(tmp_path):
    data = make_image_folder(tmp_path / "img", per_class=24, classes=("red", "green", "blue"))
    env = dict(os.environ)
    assert _fit(str(data), "--out", str(tmp_path / "whole"), *ARGS, env=env).wait(timeout=600) == 0

    proc = _fit(str(data), "--out", str(tmp_path / "cut"), *ARGS, env=env)
    checkpoint = tmp_path / ".cut.partial" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # let it get into a later epoch
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut").exists()

    resumed = subprocess.run([sys.executable, "-m", "graftwork", "fit", "--resume", str(tmp_path / "cut"), "--quiet"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert cut["kept_stage"] == whole["kept_stage"]
    for split in ("train", "val"):
        assert cut[split]["accuracy"] == whole[split]["accuracy"]
        assert cut[split]["confusion"] == whole[split]["confusion"]
