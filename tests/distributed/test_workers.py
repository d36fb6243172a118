"""The pieces of a launched run, each in 2 real CPU processes (``torchrun``, gloo): sharded feature extraction
and data-parallel training with the staged trainer (``worker.py`` runs in each process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import make_image_folder
from .test_launch import _env

WORKER = Path(__file__).with_name("worker.py")


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Both parts of worker.py in one 2-process launch; (its folder, each rank's results)."""
    tmp = tmp_path_factory.mktemp("workers")
    data = make_image_folder(tmp / "data", per_class=5, classes=("red", "green", "blue"))
    (data / "red" / "broken.png").write_bytes(b"not an image")
    out = tmp / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(data), str(tmp / "cache"), str(out)]
    done = subprocess.run(cmd, env=_env(tmp, tmp / "graftwork-cache"), cwd=tmp, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    return tmp, [json.loads((out / f"rank{r}.json").read_text(encoding="utf-8")) for r in range(2)]


def test_features_are_shared_out_gathered_in_order_and_cached_once(launched):
    tmp, results = launched
    ranks = [r["features"] for r in results]
    n = ranks[0]["n"]
    assert n == 16
    # every process computed a different share, all of them together everything once
    shares = [set(r["share"]) for r in ranks]
    assert not shares[0] & shares[1] and shares[0] | shares[1] == set(range(n))
    for r in ranks:
        # all processes hold every feature, in the original order, equal to one process's extraction of all
        assert r["ok"] == r["ok_alone"] and sum(r["ok"]) == n - 1
        assert r["max_diff"] < 1e-5
        assert r["computed"] == n - 1
        assert len(r["problems"]) == 1 and "broken.png" in r["problems"][0]  # reported in every process
        # the second extraction: every feature from rank 0's cache, sent to the other process too
        assert r["again_computed"] == 0 and r["again_from_cache"] == n - 1 and r["again_max_diff"] < 1e-5
    # one cache, written by rank 0
    assert len(list((tmp / "cache").glob("features/*.sqlite"))) == 1


def test_data_parallel_training_syncs_gradients(launched):
    ranks = [r["ddp"] for r in launched[1]]
    assert all(r["world"] == 2 for r in ranks)
    # each process trained on its own half of every epoch's examples...
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 2
    for mine, theirs in zip(ranks[0]["seen"], ranks[1]["seen"], strict=True):
        assert len(mine) == len(theirs) == 12 and not set(mine) & set(theirs)
    # ...the weights moved, and both processes hold the same weights: the gradients were averaged across them
    assert ranks[0]["after"]["params"] != ranks[0]["before"]["params"]
    assert ranks[0]["before"] == ranks[1]["before"]
    assert ranks[0]["after"]["params"] == ranks[1]["after"]["params"]
    # BatchNorm's running statistics too (each process's last forward updates its own), so that every process
    # validates the same network and takes the same decisions
    assert ranks[0]["after"]["buffers"] == ranks[1]["after"]["buffers"]
