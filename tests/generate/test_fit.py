"""fit --task generate end to end on a tiny random Llama: run folder, load, predict, evaluate, CLI, export,
resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from graftwork.cli.main import main
from graftwork.config import FitConfig
from graftwork.console import Console
from graftwork.errors import RunFolderError
from graftwork.generate import GenerationModel
from graftwork.generate.data import GenExample
from graftwork.tasks import fit as run_fit
from graftwork.tasks import resume as resume_fit
from graftwork.train import Callback

from .conftest import colour_pairs, write_jsonl

PROMPTS = ["what colour is the cat ? it is red .", "what colour is the dog ? it is blue ."]


def _data(root):
    root.mkdir()
    write_jsonl(root / "train.jsonl", colour_pairs(24, 0))
    write_jsonl(root / "val.jsonl", colour_pairs(6, 1))
    write_jsonl(root / "test.jsonl", colour_pairs(6, 2) + [{"prompt": "say <script>alert(1)</script>",
                                                             "completion": "<b>hello</b>"}])
    return root


def _cfg(lm_dir, **kw) -> FitConfig:
    return FitConfig(task="generate", backbone=str(lm_dir), lr=2e-2, stage_epochs=2, batch_size=8,
                     max_new_tokens=4, **kw)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_lm_dir):
    root = tmp_path_factory.mktemp("gen")
    data = _data(root / "data")
    model = run_fit(data, _cfg(tiny_lm_dir), out=root / "run")
    return root, data, model


def test_run_folder_holds_adapter_config_metrics_and_a_safe_report(fitted):
    root, _, model = fitted
    run = root / "run"
    assert {p.name for p in run.iterdir()} == {"adapter.safetensors", "config.json", "metrics.json", "report.html",
                                               "tokenizer"}
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == "graftwork-run/1" and config["task"] == "generate" and config["strategy"] == "lora"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
    assert all("general_text" in h and "exact_match" in h["val"] for h in metrics["history"])
    for key in ("exact_match", "rougeL", "chrf", "loss", "perplexity", "n"):
        assert key in metrics["test"]
    assert {"zero_shot", "few_shot"} <= set(metrics["control"]) and metrics["control"]["k"] == 3
    assert metrics["findings"][0]["code"] == "forgetting"
    html = (run / "report.html").read_text()
    assert "Content-Security-Policy" in html and "default-src &#x27;none&#x27;" in html  # the shared report page
    assert "script-src &#x27;none&#x27;" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_loaded_run_generates_what_the_trained_model_generates(fitted):
    root, _, model = fitted
    loaded = GenerationModel.load(root / "run", device="cpu")
    assert loaded.generate(PROMPTS) == model.generate(PROMPTS)
    preds = loaded.predict(PROMPTS, max_new_tokens=2)
    assert [p["prompt"] for p in preds] == PROMPTS and all(isinstance(p["generation"], str) for p in preds)
    torch.manual_seed(0)
    sampled = loaded.generate(PROMPTS, temperature=1.0, top_p=0.9)
    assert len(sampled) == 2


def test_evaluate_cli_json_and_outputs_file(fitted, tmp_path, capsys):
    root, data, _ = fitted
    outputs = tmp_path / "out.jsonl"
    assert main(["evaluate", str(root / "run"), str(data), "--json", "--outputs", str(outputs)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 7 and {"exact_match", "rougeL", "chrf", "loss", "perplexity"} <= set(result)
    rows = [json.loads(line) for line in outputs.read_text().splitlines()]
    assert len(rows) == 7 and {"prompt", "reference", "generation", "origin"} <= set(rows[0])
    # the user's files are theirs: an existing --outputs file is never overwritten
    assert main(["evaluate", str(root / "run"), str(data), "--outputs", str(outputs)]) == 2
    assert len(outputs.read_text().splitlines()) == 7


def test_predict_cli_json_one_object_per_prompt(fitted, capsys):
    root, _, _ = fitted
    assert main(["predict", str(root / "run"), *PROMPTS, "--json", "--max-new-tokens", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == PROMPTS


def test_merge_export_loads_in_a_plain_pipeline_with_identical_greedy_outputs(fitted, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    root, _, _ = fitted
    out = tmp_path / "merged"
    assert main(["export", str(root / "run"), "--merge", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    ours = GenerationModel.load(root / "run", device="cpu")
    tok = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out)
    pipe = pipeline("text-generation", model=merged, tokenizer=tok)
    for prompt in PROMPTS:
        ids = torch.tensor([ours.formatter.prompt_ids([{"role": "user", "content": prompt}])])
        a = ours.model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
        b = merged.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
        assert torch.equal(a, b)
        text = pipe([{"role": "user", "content": prompt}], max_new_tokens=4, do_sample=False)
        assert text[0]["generated_text"][-1]["content"].strip() == ours.generate([prompt], max_new_tokens=4)[0]


def test_adapter_export_is_a_peft_folder(fitted, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root, _, model = fitted
    out = tmp_path / "adapter"
    assert main(["export", str(root / "run"), "--adapter", "--out", str(out)]) == 0
    assert (out / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(json.loads((root / "run" / "config.json").read_text())["backbone"]
                                                ["name"])
    peft = PeftModel.from_pretrained(base, out).eval()
    ids = torch.tensor([model.formatter.prompt_ids([{"role": "user", "content": PROMPTS[0]}])])
    with torch.no_grad():
        assert torch.allclose(peft(input_ids=ids).logits, model.model(input_ids=ids).logits, atol=1e-5)


class _Interrupt(Console):
    def info(self, message: str) -> None:
        if message.startswith("epoch 1:"):
            raise KeyboardInterrupt


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, tiny_lm_dir):
    data = _data(tmp_path / "data")
    run_fit(data, _cfg(tiny_lm_dir), out=tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run_fit(data, _cfg(tiny_lm_dir), out=tmp_path / "cut", console=_Interrupt(verbose=True))
    assert not (tmp_path / "cut").exists() and (tmp_path / ".cut.partial" / "checkpoint").is_dir()
    with pytest.raises(RunFolderError, match="resume"):  # a plain re-run keeps the checkpoint
        run_fit(data, _cfg(tiny_lm_dir), out=tmp_path / "cut")
    resume_fit(tmp_path / "cut")
    a = load_file(str(tmp_path / "whole" / "adapter.safetensors"))
    b = load_file(str(tmp_path / "cut" / "adapter.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha = json.loads((tmp_path / "whole" / "metrics.json").read_text())["history"]
    hb = json.loads((tmp_path / "cut" / "metrics.json").read_text())["history"]
    assert [h["train_loss"] for h in ha[1:]] == [h["train_loss"] for h in hb[1:]]
    assert not (tmp_path / ".cut.partial").exists()


def test_full_strategy_saves_every_weight_and_reloads(tmp_path, tiny_lm_dir):
    data = _data(tmp_path / "data")
    model = run_fit(data, _cfg(tiny_lm_dir, strategy="full", few_shot=0), out=tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert GenerationModel.load(tmp_path / "run", device="cpu").generate(PROMPTS) == model.generate(PROMPTS)


def test_a_second_fit_into_an_out_being_written_is_refused(tmp_path, tiny_lm_dir):
    import subprocess
    import sys

    data = _data(tmp_path / "data")
    out = tmp_path / "run"
    holder = subprocess.Popen(  # another process writing --out: it holds the output's lock
        [sys.executable, "-c", "import sys, time\nfrom graftwork.run import out_lock\nwith out_lock(sys.argv[1]):\n"
         "    print('held', flush=True)\n    time.sleep(120)\n", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError):
            run_fit(data, _cfg(tiny_lm_dir), out=out, force=True)
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_fit(data, _cfg(tiny_lm_dir), out=out).metrics  # free again: the fit goes ahead
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")]


class _Rows(Callback):
    """Records what the staged trainer tells a callback during a generation fit."""

    def __init__(self):
        self.events: list[str] = []
        self.rows: list[dict] = []

    def on_fit_start(self, trainer, state):
        self.events.append("fit_start")

    def on_stage_start(self, trainer, state):
        self.events.append(f"stage_start {state.stages[-1]['stage']}")

    def on_epoch_end(self, trainer, state, row):
        self.events.append(f"epoch {row['epoch']}")
        self.rows.append(dict(row))

    def on_fit_end(self, trainer, state):
        self.events.append("fit_end")


def test_callbacks_see_every_epoch_live_and_the_kept_epoch_is_the_best_on_validation(tmp_path, tiny_lm_dir):
    data = _data(tmp_path / "data")
    rows = _Rows()
    model = run_fit(data, _cfg(tiny_lm_dir, few_shot=0), callbacks=[rows])
    assert rows.events == ["fit_start", "epoch 0", "stage_start lora", "epoch 1", "epoch 2", "fit_end"]
    history = model.metrics["history"]
    assert [r["epoch"] for r in rows.rows] == [h["epoch"] for h in history] == [0, 1, 2]
    for seen, kept in zip(rows.rows, history, strict=True):  # each row complete when the callback saw it
        assert seen["val"] == kept["val"]
        assert seen["val_loss"] == kept["val"]["loss"] and seen["val_exact_match"] == kept["val"]["exact_match"]
    best = max(history, key=lambda h: (h["val"]["exact_match"], -h["val"]["loss"]))
    assert model.metrics["best_epoch"] == best["epoch"]
    # the model holds the kept epoch's weights: its validation loss is that epoch's
    val = [GenExample(f"v{i}", "pair", **r) for i, r in enumerate(colour_pairs(6, 1))]
    assert model.completion_loss(val)["loss"] == pytest.approx(best["val"]["loss"], abs=1e-4)
