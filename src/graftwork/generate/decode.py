"""Generating text from chat contexts, in batches: greedy by default, sampling when a temperature is given.

Greedy is the most likely token at every step: a repetition penalty the model's ``generation_config`` may carry
(several instruct models ship one, for sampling) is not applied then, so what ``evaluate`` and ``predict``
generate is what validation's teacher-forced exact match (:mod:`.score`) judged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .encode import Formatter


def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """Tokens that end an answer: the tokenizer's end-of-sequence and the model's configured ones."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


@torch.no_grad()
def generate_texts(model: Any, formatter: Formatter, contexts: list[list[dict[str, str]]], *,
                   max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0, batch_size: int = 16,
                   on_text: Callable[[int, str], None] | None = None) -> list[str]:
    """One answer per context (a list of chat messages ending before the answer). Rows are left-padded so
    every row continues from its last prompt token. ``on_text(i, text)`` is called as each answer is done."""
    tok = formatter.tokenizer
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stops = stop_ids(model, tok)
    out: list[str] = []
    for start in range(0, len(contexts), batch_size):
        rows = [formatter.prompt_ids(c) for c in contexts[start:start + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        sample = temperature > 0
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             do_sample=sample, temperature=temperature if sample else None,
                             top_p=top_p if sample else None, top_k=None, eos_token_id=stops,
                             pad_token_id=tok.pad_token_id, repetition_penalty=None if sample else 1.0)
        for k, row in enumerate(gen[:, width:].tolist()):
            text = tok.decode(row, skip_special_tokens=True).strip()
            out.append(text)
            if on_text is not None:
                on_text(start + k, text)
    model.train(was_training)
    return out


def stream_one(model: Any, formatter: Formatter, context: list[dict[str, str]], *, max_new_tokens: int,
               temperature: float = 0.0, top_p: float = 1.0, write: Callable[[str], None]) -> str:
    """Generate one answer, writing its text as it is produced (for a terminal)."""
    from transformers import TextStreamer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            write(text)

    tok = formatter.tokenizer
    ids = torch.tensor([formatter.prompt_ids(context)], device=next(model.parameters()).device)
    sample = temperature > 0
    with torch.no_grad():
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=sample, temperature=temperature if sample else None,
                             top_p=top_p if sample else None, top_k=None, eos_token_id=stop_ids(model, tok),
                             pad_token_id=tok.pad_token_id, repetition_penalty=None if sample else 1.0,
                             streamer=_Streamer(tok, skip_prompt=True, skip_special_tokens=True))
    return tok.decode(gen[0, ids.shape[1]:].tolist(), skip_special_tokens=True).strip()
