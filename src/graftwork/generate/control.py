"""The control: the same base model prompted without any training, on the same test set.

Two prompts, as a user without graftwork would try first: zero-shot (the test prompt alone, through the chat
template) and few-shot (``k`` training examples as earlier user/assistant turns of the same conversation, the
same ``k`` examples for every test prompt). Their scores next to the fine-tuned model's are "what fine-tuning
bought". For a LoRA run the base model is the fine-tuned one with its adapters switched off (no second copy).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .data import GenExample
from .decode import generate_texts
from .encode import Formatter
from .metrics import text_metrics


def few_shot_context(shots: list[GenExample], context: list[dict[str, str]]) -> list[dict[str, str]]:
    """``context`` with the ``shots`` (their prompts and answers) as earlier turns, after any system message."""
    system = [m for m in context[:1] if m["role"] == "system"]
    turns = []
    for ex in shots:
        ctx, answer = ex.context_and_reference()
        turns += [m for m in ctx if m["role"] != "system"] + [{"role": "assistant", "content": answer}]
    return system + turns + context[len(system):]


def pick_shots(train: list[GenExample], k: int, seed: int) -> list[GenExample]:
    pairs = [e for e in train if e.kind != "text"]
    return random.Random(seed).sample(pairs, min(k, len(pairs)))


def run_control(model: Any, formatter: Formatter, test: list[GenExample], train: list[GenExample], *, k: int,
                seed: int, max_new_tokens: int, batch_size: int,
                base: Callable[[], AbstractContextManager[Any]] | None = None) -> dict[str, Any]:
    """Scores of the base model prompted zero-shot and ``k``-shot on ``test`` (``base()``: a context in which
    ``model`` is the base model, e.g. PEFT's ``disable_adapter``)."""
    contexts, refs = zip(*(e.context_and_reference() for e in test), strict=True)
    shots = pick_shots(train, k, seed)
    out: dict[str, Any] = {"k": len(shots), "shots": [e.origin for e in shots]}
    with (base or nullcontext)():
        for name, ctxs in (("zero_shot", list(contexts)),
                           ("few_shot", [few_shot_context(shots, c) for c in contexts])):
            if name == "few_shot" and not shots:
                continue
            preds = generate_texts(model, formatter, ctxs, max_new_tokens=max_new_tokens, batch_size=batch_size)
            out[name] = text_metrics(preds, list(refs)) | {"samples": preds[:5]}
    return out
