"""``graftwork advise DATA --task generate``: fit's plan and what an epoch computes, without training; bad data is
refused as fit refuses it."""

from __future__ import annotations

import json

from graftwork.cli.main import main

from .conftest import colour_pairs, write_jsonl


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_advise_prints_the_plan_fit_would_follow(tmp_path, capsys, tiny_lm_dir):
    root = tmp_path / "data"
    root.mkdir()
    write_jsonl(root / "train.jsonl", colour_pairs(24, 0))
    write_jsonl(root / "test.jsonl", colour_pairs(6, 2))
    code, out, err = _run(capsys, "advise", root, "--task", "generate", "--backbone", tiny_lm_dir, "--json")
    assert code == 0, err
    advice = json.loads(out)
    assert advice["strategy"] == "lora" and advice["requested"] == "auto" and advice["reasons"]
    assert advice["examples"] == {"train": 19, "val": 5, "test": 6}  # val_fraction 0.2 held out of train
    assert advice["optimizer_steps"] == 3 * advice["epochs"]  # 19 examples, 8 per step
    assert 0 < advice["computed_per_epoch"] < advice["tokens_per_epoch"]  # "what colour is the" is computed once
    code, out, err = _run(capsys, "advise", root, "--task", "generate", "--backbone", tiny_lm_dir)
    assert code == 0 and "plan: lora (chosen by auto)" in out and "optimizer steps" in out


def test_advise_reports_every_bad_line_at_once(tmp_path, capsys, tiny_lm_dir):
    data = tmp_path / "train.jsonl"
    rows = colour_pairs(8, 0)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + "{broken\n"
                    + json.dumps({"prompt": "say red", "completion": ""}) + "\n", encoding="utf-8")
    code, out, err = _run(capsys, "advise", data, "--task", "generate", "--backbone", tiny_lm_dir)
    assert code == 2 and not out
    assert "train.jsonl:4" in err and "train.jsonl:5" in err and "Traceback" not in err
