"""``graftwork advise DATA --task generate``: the plan fit would follow, and what the data costs, without training.

The plan depends on the base model's size and on the data's target tokens, so the model is loaded (its
tokenizer formats the examples exactly as fit would). The data is checked as fit checks it: every bad line and
over-long or empty example stops here too, all reported at once. No learning curve: for classification it is
the frozen probe's, and a language model has no probe; fit's control (the base model prompted zero- and
few-shot) is what measures, on the user's test set, what training buys.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config import FitConfig
from ..console import SILENT, Console
from ..tasks.base import Advice
from .collate import collate, fixed_batches
from .fit import prepare, row_tokens
from .plan import generate_plan

KINDS = {"pair": "prompt/completion pairs", "chat": "conversations", "text": "plain documents"}


def advise_generate(data: str | Path, cfg: FitConfig, console: Console = SILENT) -> Advice:
    p = prepare(data, cfg, console)
    plan = generate_plan(cfg, p.lm, p.train)
    batches = fixed_batches(p.train, plan["batch_size"])
    tokens = sum(len(e) for e in p.train)
    computed = sum(int(collate(b, p.formatter.tokenizer.pad_token_id or 0, row_tokens(cfg))["input_ids"].numel())
                   for b in batches)
    steps = math.ceil(len(p.train) / plan["batch_size"]) * plan["epochs"]
    kinds: dict[str, int] = {}
    for e in p.train_ex:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    held = p.splits.val is None and bool(p.val_ex)
    examples = {"train": len(p.train), "val": len(p.val), "test": len(p.test_ex)}
    result: dict[str, Any] = {k: v for k, v in plan.items() if k != "description"} | {
        "task": "generate", "base_model": p.lm.name, "base_params": p.lm.params, "examples": examples,
        "kinds": kinds, "optimizer_steps": steps, "tokens_per_epoch": tokens, "computed_per_epoch": computed,
        "learning_curve": None,
        "note": "learning curve: not measured for generation (fit's control, the base model prompted zero- and "
                "few-shot on the test set, measures what training buys)"}
    lines = [*plan["description"].splitlines(),
             f"base model: {p.lm.name} ({p.lm.params / 1e6:.1f}M parameters)",
             f"examples: train {examples['train']}, val {examples['val']}{' (held out of train)' if held else ''}, "
             f"test {examples['test']}; in train: " + ", ".join(f"{n} {KINDS.get(k, k)}" for k, n in sorted(kinds.items())),
             f"per epoch: {plan['target_tokens']:,} target tokens in {tokens:,}; {computed:,} positions computed "
             f"(packed rows, the batch's shared prompt prefix once); {steps} optimizer steps in all",
             result["note"]]
    if not p.test_ex:
        lines.append("note: no test split: fit evaluates and runs the control on the validation examples")
    return Advice(result, lines)
