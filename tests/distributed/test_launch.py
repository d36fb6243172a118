"""A real data-parallel ``fit`` on 2 CPU processes (``torchrun``, gloo), against the same fit in one process.

Checked: one complete run folder, written by rank 0 alone (every write of each process under the test folder is
recorded through Python's audit hooks, see ``audit_writes.py``), rank 1 quiet, one JSON result on stdout, and
the accuracy of the 2-process run equal to the 1-process run's within noise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graftwork.cli.main import main

from ..conftest import make_image_folder

ROOT = Path(__file__).resolve().parents[2]
FIT = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--strategy", "gradual", "--stage-epochs", "2",
       "--json"]
RUN_FILES = ["backbone.safetensors", "config.json", "head.safetensors", "metrics.json", "report.html"]
TEST_PER_CLASS = 8
# 3 classes x 8 test images: one image is 4.2 points. The two runs share the probe (same features, same seed)
# but not the fine-tuning trajectory (2 processes: each step averages 2 batches, half as many steps), so a
# stage may win or lose by an image or two either way; 3 images (12.5 points, about two binomial standard
# errors at 90 % accuracy on 24 images) is the noise allowed, nothing more.
TOLERANCE = 3 / (3 * TEST_PER_CLASS)


def _data(root: Path) -> Path:
    classes = ("red", "green", "blue")
    make_image_folder(root / "train", per_class=16, classes=classes, seed=0)
    make_image_folder(root / "val", per_class=6, classes=classes, seed=1)
    make_image_folder(root / "test", per_class=TEST_PER_CLASS, classes=classes, seed=2)
    return root


def _env(tmp_path: Path, cache: Path, audit: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env |= {"GRAFTWORK_CACHE": str(cache), "GRAFTWORK_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1"}
    if audit is not None:  # audit_writes.py as sitecustomize: each process records what it writes
        hook = tmp_path.parent / f"{tmp_path.name}-hook"
        hook.mkdir(exist_ok=True)
        shutil.copy(Path(__file__).with_name("audit_writes.py"), hook / "sitecustomize.py")
        env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
        env |= {"GRAFTWORK_TEST_WATCH": str(tmp_path), "GRAFTWORK_TEST_AUDIT": str(audit)}
    return env


def _torchrun(*args: str) -> list[str]:
    """torchrun of this interpreter; --standalone picks a free port on localhost."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    return done


def _rank_logs(logs: Path, rank: int, name: str) -> str:
    found = sorted(logs.glob(f"**/attempt_*/{rank}/{name}.log"))
    assert found, f"no {name} log of rank {rank} under {logs}"
    return found[-1].read_text(encoding="utf-8")


def test_two_process_fit_matches_one_process(tmp_path, monkeypatch, capsys):
    data = _data(tmp_path / "data")
    audit = tmp_path.parent / f"{tmp_path.name}-audit"
    audit.mkdir()
    logs = tmp_path.parent / f"{tmp_path.name}-logs"
    _run(_torchrun("--log-dir", str(logs), "--redirects", "3", "-m", "graftwork", "fit", str(data),
                   "--out", str(tmp_path / "run2"), *FIT),
         _env(tmp_path, tmp_path / "cache2", audit), tmp_path)

    # one complete run folder, nothing left beside it (no partial state, no lock file)
    assert sorted(p.name for p in (tmp_path / "run2").iterdir()) == RUN_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache2", "data", "run2"]
    # rank 0 wrote the run folder, the checkpoints and the feature cache; rank 1 wrote nothing at all
    rank0 = (audit / "rank0.log").read_text(encoding="utf-8")
    for written in (".run2.writing-", ".run2.partial/.checkpoint.", ".run2.lock", str(tmp_path / "cache2")):
        assert written in rank0, written  # the run folder (staged, then renamed), checkpoints, lock, cache
    assert not (audit / "rank1.log").exists(), (audit / "rank1.log").read_text(encoding="utf-8")
    # rank 0 talks and prints the one JSON result; rank 1 is quiet
    result = json.loads(_rank_logs(logs, 0, "stdout"))
    assert "kept:" in _rank_logs(logs, 0, "stderr")
    assert _rank_logs(logs, 1, "stdout") == "" and _rank_logs(logs, 1, "stderr") == ""

    metrics = json.loads((tmp_path / "run2" / "metrics.json").read_text(encoding="utf-8"))
    assert result["test"] == metrics["test"]
    assert metrics["data"]["fit_split"] == {"train": 48, "val": 18}
    assert [s["stage"] for s in metrics["stages"]][0] == "linear probe" and len(metrics["stages"]) >= 2
    assert all(s["history"] for s in metrics["stages"][1:])  # the fine-tuning stages trained
    features = next(s for s in metrics["stages"] if s["stage"] == "linear probe")

    # the same fit in this process (one process, its own empty cache)
    single = tmp_path.parent / f"{tmp_path.name}-single"
    monkeypatch.setenv("GRAFTWORK_CACHE", str(single / "cache1"))
    assert main(["fit", str(data), "--out", str(single / "run1"), *FIT]) == 0
    capsys.readouterr()
    one = json.loads((single / "run1" / "metrics.json").read_text(encoding="utf-8"))
    # the same features and the same probe: its validation score is the same number in both runs
    probe_one = next(s for s in one["stages"] if s["stage"] == "linear probe")
    assert features["val_acc"] == pytest.approx(probe_one["val_acc"], abs=1e-9)
    assert abs(metrics["test"]["accuracy"] - one["test"]["accuracy"]) <= TOLERANCE + 1e-9
    assert metrics["test"]["accuracy"] > 0.5  # better than chance (1/3) in both, not two equal failures
    assert one["test"]["accuracy"] > 0.5


@pytest.mark.slow
def test_two_process_fit_with_real_weights(tmp_path):
    """MobileNetV2's ImageNet weights on Fashion-MNIST (30 training images per class, 300 test images), gradual
    fine-tuning on 2 processes and on 1: the same test accuracy within noise. 300 test images: one binomial
    standard error at 75 % accuracy is 2.5 points; the two runs differ only in the fine-tuning trajectory, so 3
    standard errors (7.5 points) is allowed."""
    from graftwork.backbones import resolve_offline
    from graftwork.demo.datasets import (
        FASHION_CLASSES,
        fashion_mnist_dir,
        load_fashion_mnist,
        sample_per_class,
        write_image_folder,
    )

    if fashion_mnist_dir() is None or resolve_offline("torchvision:mobilenet_v2") is None:
        pytest.skip("Fashion-MNIST or the MobileNetV2 weights are not installed")
    x, y = load_fashion_mnist("train")
    x_te, y_te = load_fashion_mnist("test")
    data = tmp_path / "data"
    tr, te = sample_per_class(y, 30, seed=0), sample_per_class(y_te, 30, seed=1)
    write_image_folder(x[tr], y[tr], FASHION_CLASSES, data / "train")
    write_image_folder(x_te[te], y_te[te], FASHION_CLASSES, data / "test")
    fit = ["--backbone", "torchvision:mobilenet_v2", "--image-size", "64", "--strategy", "gradual", "--json"]
    _run(_torchrun("-m", "graftwork", "fit", str(data), "--out", str(tmp_path / "run2"), *fit),
         _env(tmp_path, tmp_path / "cache2"), tmp_path)
    _run([sys.executable, "-m", "graftwork", "fit", str(data), "--out", str(tmp_path / "run1"), *fit],
         _env(tmp_path, tmp_path / "cache1"), tmp_path)
    two, one = (json.loads((tmp_path / run / "metrics.json").read_text(encoding="utf-8")) for run in ("run2", "run1"))
    assert sorted(p.name for p in (tmp_path / "run2").iterdir()) == sorted(p.name for p in (tmp_path / "run1").iterdir())
    assert abs(two["test"]["accuracy"] - one["test"]["accuracy"]) <= 0.075
    assert min(two["test"]["accuracy"], one["test"]["accuracy"]) > 0.5  # well above chance (0.1)


@pytest.mark.slow
def test_fit_interrupted_in_one_process_resumes_on_two(tmp_path):
    """kill -9 once the first checkpoint is written, then ``--resume`` launched on 2 processes: rank 0 reads the
    checkpoint and sends it to rank 1, which writes nothing; the run folder is complete and the stage the kill
    interrupted is finished from its checkpoint, not started again."""
    import time

    data = _data(tmp_path / "data")
    audit = tmp_path.parent / f"{tmp_path.name}-audit"
    audit.mkdir()
    env = _env(tmp_path, tmp_path / "cache")
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "graftwork", "fit", str(data), "--out", str(run), *FIT],
                             env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / ".run.partial" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()
    first.wait()
    assert checkpoint.exists() and not run.exists()
    done = _run(_torchrun("-m", "graftwork", "fit", "--resume", str(run), "--json"),
                _env(tmp_path, tmp_path / "cache", audit), tmp_path)
    assert "resuming at stage 1" in done.stderr
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES and not (tmp_path / ".run.partial").exists()
    assert not (audit / "rank1.log").exists()
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert json.loads(done.stdout)["test"] == metrics["test"]
