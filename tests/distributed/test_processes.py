"""The process context in one process, and the rules a launched run's environment switches on (no process group
needed: the launcher's variables are set by hand)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from graftwork.__main__ import run
from graftwork.console import Console
from graftwork.distributed import Processes, device_for, processes, require_one_process
from graftwork.errors import ConfigError


def test_one_process_is_rank_0_of_1_without_a_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    procs = processes()
    assert (procs.rank, procs.world, procs.is_main, procs.is_distributed) == (0, 1, True, False)
    assert procs.shard([5, 6, 7]) == [5, 6, 7]
    assert procs.broadcast("x") == "x" and procs.all_gather("x") == ["x"]
    procs.barrier()
    assert device_for("auto") == "auto"


def test_shares_are_strided_disjoint_and_complete():
    todo = list(range(11))
    shares = [Processes(rank=r, world=3).shard(todo) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(i for s in shares for i in s) == todo


def test_gather_rows_puts_rows_back_in_example_order():
    rows = np.array([[3.0, 3.0], [1.0, 1.0]], dtype=np.float32)
    out, seen = Processes().gather_rows([3, 1], rows, 4)
    assert seen.tolist() == [False, True, False, True]
    np.testing.assert_array_equal(out[[1, 3]], [[1.0, 1.0], [3.0, 3.0]])


def test_other_tasks_and_commands_are_refused_in_a_launched_run(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="--task ner does not run on several processes yet"):
        require_one_process("--task ner")
    assert run(["evaluate", "run1", "data"]) == 2
    err = capsys.readouterr().err
    assert "`graftwork evaluate` does not run on several processes" in err and "Traceback" not in err
    monkeypatch.setenv("RANK", "1")  # every rank refuses; only rank 0 says so
    assert run(["predict", "run1", "a.png"]) == 2
    assert capsys.readouterr().err == ""


def test_only_rank_0_talks(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, expected in (("0", True), ("1", False)):
        monkeypatch.setenv("RANK", rank)
        stream = io.StringIO()
        console = Console(stream=stream)
        console.info("hello")
        console.warn("careful")
        assert bool(stream.getvalue()) is expected
