"""auto chooses from the data, says why, and detects imbalance."""

from __future__ import annotations

import json

from graftwork.cli.main import main
from graftwork.strategies import make_plan


def test_auto_is_frozen_for_few_examples_and_deeper_for_many():
    few = make_plan("auto", {"a": 20, "b": 20})
    assert few.strategy == "frozen" and "20 examples per class" in few.reasons[0]
    many = make_plan("auto", {"a": 2000, "b": 2000})
    assert many.strategy == "gradual"
    huge = make_plan("auto", {"a": 20000, "b": 20000})
    assert huge.strategy == "full"
    assert make_plan("auto", {"a": 20, "b": 20}, unfreeze=2).strategy == "gradual"


def test_auto_fine_tunes_images_lp_ft_and_audio_gradually():
    images = make_plan("auto", {"a": 200, "b": 200}, modality="image")
    assert images.strategy == "full" and "LP-FT" in images.reasons[0]
    assert make_plan("auto", {"a": 20, "b": 20}, modality="image").strategy == "frozen"
    assert make_plan("auto", {"a": 800, "b": 800}, modality="image").strategy == "gradual"
    assert make_plan("auto", {"a": 200, "b": 200}, modality="audio").strategy == "gradual"
    assert make_plan("auto", {"a": 200, "b": 200}, modality="image", unfreeze=3).strategy == "gradual"
    assert make_plan("auto", {"a": 200, "b": 200}, modality="image",
                     backbone_params=86_000_000).strategy == "lora"


def test_auto_fine_tunes_text_from_a_few_examples_per_class():
    plan = make_plan("auto", {"a": 16, "b": 16}, modality="text")
    assert plan.strategy == "full" and "text" in plan.reasons[0]
    assert make_plan("auto", {"a": 5, "b": 5}, modality="text").strategy == "frozen"
    assert make_plan("auto", {"a": 16, "b": 16}, modality="image").strategy == "frozen"
    assert make_plan("auto", {"a": 16, "b": 16}, modality="text", backbone_params=125_000_000).strategy == "lora"


def test_explicit_strategy_is_kept():
    assert make_plan("full", {"a": 10, "b": 10}).strategy == "full"
    assert make_plan("frozen", {"a": 5000, "b": 5000}).strategy == "frozen"


def test_imbalance_is_detected_and_weighted():
    plan = make_plan("auto", {"a": 400, "b": 100})
    assert plan.class_weighted
    assert any("imbalanced" in r and "4.0x" in r for r in plan.reasons)
    assert not make_plan("auto", {"a": 300, "b": 100}).class_weighted
    assert not make_plan("auto", {"a": 400, "b": 100}, class_weights="off").class_weighted


def test_advise_cli_prints_the_plan_without_training(tmp_path, capsys):
    rows = "text,label\n" + "".join(f"sample {i},{'pos' if i % 2 else 'neg'}\n" for i in range(12))
    (tmp_path / "small.csv").write_text(rows)
    assert main(["advise", str(tmp_path / "small.csv"), "--json", "--no-curve"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["strategy"] == "frozen" and plan["modality"] == "text"
    big = "text,label\n" + "".join(f"sample {i},{'pos' if i % 2 else 'neg'}\n" for i in range(4000))
    (tmp_path / "big.csv").write_text(big)
    assert main(["advise", str(tmp_path / "big.csv"), "--no-curve"]) == 0
    out = capsys.readouterr().out
    assert "plan: full (chosen by auto)" in out and "why: text" in out
