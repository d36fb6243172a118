"""graftwork ``fit --task generate`` vs TRL's SFTTrainer + PEFT LoRA vs the base model prompted, on the three
tasks of :mod:`generate_tasks`, same base model (SmolLM2-135M-Instruct, the offline default), same data, same
epochs, same learning rate, same LoRA rank and targets, same machine, one run.

Each (method, task, size) runs in its own process, so its wall time and peak memory are its own. Exact match
is measured the same way for both fine-tuned models: greedy decoding through the chat template on the same 64
test prompts. The prompted base model (zero-shot and 3-shot) comes from graftwork's control.

    .venv/bin/python bench/generate_compare.py --sizes 64 --tasks extract,dates,past --out bench/results/generate.json
    .venv/bin/python bench/generate_compare.py --sizes 64 --tasks dates --seeds 1,2 --out ...   # other draws
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate_tasks import write_task  # noqa: E402

EPOCHS, LR, BATCH, RANK, ALPHA = 3, 1e-3, 8, 8, 16  # LoRA alpha = 2 x rank throughout
MAX_NEW = 40


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_graftwork(data: Path, out: Path, *, lr: float = LR, epochs: int = EPOCHS, rank: int = RANK,
                  few_shot: int = 3, seed: int = 0) -> dict:
    import graftwork

    t0 = time.perf_counter()
    model = graftwork.fit(data, out, verbose=True, task="generate", strategy="lora", stage_epochs=epochs, lr=lr,
                          batch_size=BATCH, lora_r=rank, lora_alpha=2 * rank, weight_decay=0.0,
                          max_new_tokens=MAX_NEW, device="cpu", few_shot=few_shot, seed=seed)
    m = model.metrics
    total_s = round(time.perf_counter() - t0, 2)
    return {"exact_match": m["test"]["exact_match"], "chrf": m["test"]["chrf"], "train_s": m["timing"]["train_s"],
            "train_loop_s": round(sum(h.get("seconds", 0) for h in m["history"]), 2),
            "train_steps_s": round(sum(h.get("train_seconds", 0) for h in m["history"]), 2),
            "total_s": total_s, "best_epoch": m["best_epoch"],
            "zero_shot": m["control"]["zero_shot"]["exact_match"],
            "few_shot": m["control"].get("few_shot", {}).get("exact_match"), "peak_rss_mib": _peak_mib(),
            "val_exact_match": [h.get("val", {}).get("exact_match") for h in m["history"]],
            "general_text_rise": _general_text_rise(model)}


def _general_text_rise(model) -> dict:
    """The relative change of the general-text loss from the base model to the kept one, on the sentences the
    forgetting check measures and on all of them (after the timings: it costs two passes over the whole set)."""
    from graftwork.generate.forgetting import reference_examples

    rise = {}
    for name, every in (("measured", None), ("all", 1)):
        examples = reference_examples() if every is None else reference_examples(every)
        with model.model.disable_adapter():
            before = model.completion_loss(examples)["loss"]
        rise[name] = round(model.completion_loss(examples)["loss"] / before - 1, 4)
    return rise


def run_trl(data: Path, out: Path, *, seed: int = 0) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from graftwork.generate.backbone import resolve_folder
    from graftwork.generate.data import load_examples
    from graftwork.generate.decode import generate_texts
    from graftwork.generate.encode import Formatter
    from graftwork.generate.metrics import chrf, exact_match

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    _, folder = resolve_folder(None)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    train = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                                "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows])
    args = SFTConfig(output_dir=str(out), num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH,
                     learning_rate=LR, lr_scheduler_type="linear", weight_decay=0.0,
                     warmup_steps=max(1, int(0.05 * EPOCHS * -(-len(rows) // BATCH))),  # graftwork's warm-up
                     logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
                     seed=seed, max_length=1024, dataloader_num_workers=0)
    peft = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tok, peft_config=peft)
    t1 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t1
    tuned = trainer.model.eval()
    tok.padding_side = "left"
    test = load_examples(data)
    contexts, refs = zip(*(e.context_and_reference() for e in test), strict=True)
    preds = generate_texts(tuned, Formatter(tok), list(contexts), max_new_tokens=MAX_NEW)
    return {"exact_match": exact_match(preds, list(refs)), "chrf": round(chrf(preds, list(refs)), 2),
            "train_s": round(train_s, 2), "total_s": round(time.perf_counter() - t0, 2), "peak_rss_mib": _peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="extract,dates,past")
    parser.add_argument("--sizes", default="64")
    parser.add_argument("--methods", default="graftwork,trl")
    parser.add_argument("--seeds", default="0", help="training sets drawn (and training seeds); the test set is fixed")
    parser.add_argument("--out", default="bench/results/generate.json")
    parser.add_argument("--one", nargs="+", metavar="METHOD TASK SIZE [SEED]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        method, task, size, seed = (*args.one, "0")[:4]
        with tempfile.TemporaryDirectory() as tmp:
            data = write_task(task, Path(tmp) / "data", int(size), seed=int(seed))
            result = (run_graftwork if method == "graftwork" else run_trl)(data, Path(tmp) / "run", seed=int(seed))
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else []
    for size, seed, task, method in itertools.product(args.sizes.split(","), args.seeds.split(","),
                                                      args.tasks.split(","), args.methods.split(",")):
        row = {"method": method, "task": task, "train_size": int(size), "seed": int(seed)} | \
            run_isolated(__file__, ["--one", method, task, size, seed])
        print(json.dumps(row), flush=True)
        results.append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


def run_isolated(script: str, argv: list[str]) -> dict:
    """Run ``script argv`` in its own process (its own wall time and peak memory); the dict it printed."""
    proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(argv)} failed")
    return json.loads(lines[0][7:])


if __name__ == "__main__":
    main()
