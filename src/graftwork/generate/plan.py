"""The training plan of a generation run: strategy, learning rate, epochs and batch size, and why.

``auto`` chooses by model size and data size: full fine-tuning only when the model is small (under 30M
parameters) *and* the training completions hold at least 50,000 target tokens, enough for every weight to move
without memorising a few hundred answers; otherwise LoRA adapters (Hu et al. 2021) on every linear projection
of attention and MLP blocks (PEFT's ``all-linear``: the output layer excluded), which trains under 2 % of the
weights and leaves the base model intact for the control and the forgetting remedy.

Defaults: 3 epochs, 8 examples per step (a 64-example set then still gives 24 optimizer steps), learning rate
1e-3 for LoRA (``--lr``) and 1/20 of it for full fine-tuning. Measured (``bench/generate_sweep.py``,
BENCHMARKS.md; SmolLM2-135M, LoRA r 8, 64 examples, two tasks): 1e-3 and 3e-3 with 3 epochs and 1e-3 with 5
are within two test prompts of 64 of each other, 3e-4 is 5-11 points lower; 3 epochs cost 0.6x of 5. The
choice was checked on two tasks the sweep did not see.
"""

from __future__ import annotations

from typing import Any

from ..config import FitConfig
from .backbone import LoadedLM
from .encode import IGNORE, Encoded

DEFAULT_BATCH = 32  # FitConfig's default batch size; generation uses GENERATE_BATCH unless another is given
GENERATE_BATCH = 8
EPOCHS = 3
FULL_BELOW_PARAMS = 30_000_000
FULL_FROM_TOKENS = 50_000
FULL_LR_FACTOR = 1 / 20


def target_tokens(encoded: list[Encoded]) -> int:
    return sum(sum(label != IGNORE for label in e.labels) for e in encoded)


def generate_plan(cfg: FitConfig, lm: LoadedLM, train: list[Encoded]) -> dict[str, Any]:
    tokens = target_tokens(train)
    strategy, why = cfg.strategy, "asked for with --strategy"
    if strategy == "auto":
        if lm.params < FULL_BELOW_PARAMS and tokens >= FULL_FROM_TOKENS:
            strategy, why = "full", (f"a small model ({lm.params / 1e6:.1f}M parameters, under "
                                     f"{FULL_BELOW_PARAMS // 1_000_000}M) and {tokens:,} target tokens (at least "
                                     f"{FULL_FROM_TOKENS:,}): every weight can adapt")
        else:
            size = "large" if lm.params >= FULL_BELOW_PARAMS else "small"
            strategy, why = "lora", (f"{lm.params / 1e6:.1f}M parameters ({size} for full fine-tuning) and "
                                     f"{tokens:,} target tokens in {len(train)} examples: low-rank adapters keep "
                                     "the base model intact and train a small fraction of the weights")
    lr = cfg.lr if strategy == "lora" else cfg.lr * FULL_LR_FACTOR
    batch = GENERATE_BATCH if cfg.batch_size == DEFAULT_BATCH else cfg.batch_size
    epochs = cfg.stage_epochs or EPOCHS
    targets = cfg.lora_targets.split(",") if cfg.lora_targets and "," in cfg.lora_targets else \
        (cfg.lora_targets or "all-linear")
    plan: dict[str, Any] = {"requested": cfg.strategy, "strategy": strategy, "reasons": [why], "lr": lr,
                            "epochs": epochs, "batch_size": batch, "train_examples": len(train),
                            "target_tokens": tokens}
    if strategy == "lora":
        plan["lora"] = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                        "target_modules": targets}
    plan["trainable_params"] = _trainable(lm, plan)
    what = (f"LoRA adapters (r={cfg.lora_r}, alpha={cfg.lora_alpha:g}) on {targets}" if strategy == "lora"
            else "every weight trainable")
    plan["description"] = "\n".join([
        f"plan: {strategy}" + (" (chosen by auto)" if cfg.strategy == "auto" else ""),
        f"  what: {what}; loss on completion tokens only; packed batches",
        f"  why: {why}",
        f"  training: {epochs} epochs, {batch} examples per step, learning rate {lr:g}; the best epoch on "
        "validation is kept"])
    return plan


def _trainable(lm: LoadedLM, plan: dict[str, Any]) -> int:
    if plan["strategy"] != "lora":
        return lm.params
    import torch

    r = plan["lora"]["r"]
    total = 0
    for name, module in lm.model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            total += r * (module.in_features + module.out_features)
    return total
