"""Examples to token ids and loss labels: the prompt is context (label -100), the completion is the target.

The tokenizer's chat template formats conversations. The target of an assistant turn is exactly the text the
template adds for it: rendering the conversation up to a turn with the generation prompt, and then with that
turn, differ by the turn's content and its end-of-turn marker, so the model learns to answer *and to stop*.
Every assistant turn of a multi-turn conversation is a target; everything else (system, user, the template's
markup) is context. A tokenizer without a chat template (a base model such as GPT-2) gets the plain format:
each context message followed by a newline, each answer followed by the end-of-sequence token.

Segments are tokenised one by one and concatenated, so the prompt tokens at inference (the context alone) are
the very tokens the model saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from .data import GenExample

IGNORE = -100


@dataclass
class Encoded:
    """One example as token ids and labels (``IGNORE`` where the token is context, not a target)."""

    input_ids: list[int]
    labels: list[int]
    origin: str
    prompted: bool = True  # an answer to a prompt (False: a plain document, every token a target)

    def __len__(self) -> int:
        return len(self.input_ids)


class Formatter:
    """Turns examples into (text, is_target) segments and prompts into model inputs, for one tokenizer."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def prompt_text(self, context: list[dict[str, str]]) -> str:
        """The text the model is prompted with to produce the next assistant turn."""
        if self.chat:
            return self.tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
        return "".join(m["content"] + ("\n" if m["role"] != "assistant" else self.tokenizer.eos_token)
                       for m in context)

    def prompt_ids(self, context: list[dict[str, str]]) -> list[int]:
        return self._ids(self.prompt_text(context), first=True)

    def segments(self, example: GenExample) -> list[tuple[str, bool]]:
        if example.kind == "text":
            return [(example.text + (self.tokenizer.eos_token or ""), True)]
        messages = example.chat()
        if not self.chat:
            return [(m["content"] + (self.tokenizer.eos_token if m["role"] == "assistant" else "\n"),
                     m["role"] == "assistant") for m in messages]
        return self._chat_segments(messages)

    def _chat_segments(self, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
        render = self.tokenizer.apply_chat_template
        out: list[tuple[str, bool]] = []
        done = ""
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prefix = render(messages[:i], tokenize=False, add_generation_prompt=True)
            full = render(messages[: i + 1], tokenize=False)
            if not (prefix.startswith(done) and full.startswith(prefix)):
                # a template that rewrites earlier turns (e.g. drops reasoning): train on the last turn only
                prefix = render(messages[:-1], tokenize=False, add_generation_prompt=True)
                full = render(messages, tokenize=False)
                return [(prefix, False), (full[len(prefix):], True)]
            out += [(prefix[len(done):], False), (full[len(prefix):], True)]
            done = full
        return [(text, target) for text, target in out if text]

    def _ids(self, text: str, *, first: bool) -> list[int]:
        # chat templates write their own BOS; the plain format lets the tokenizer add it to the first segment
        special = first and not self.chat
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def encode(self, example: GenExample) -> Encoded:
        ids: list[int] = []
        labels: list[int] = []
        for k, (text, target) in enumerate(self.segments(example)):
            piece = self._ids(text, first=k == 0)
            ids += piece
            labels += piece if target else [IGNORE] * len(piece)
        if labels:
            labels[0] = IGNORE  # nothing predicts an example's first token (and in a packed row, the previous
            # example's last token must not)
        return Encoded(ids, labels, example.origin, prompted=example.kind != "text")


def encode_all(formatter: Formatter, examples: list[GenExample], max_length: int,
               problems: list[Problem]) -> list[Encoded]:
    """Encode ``examples``; over-long ones and ones with no target token are added to ``problems``."""
    out = []
    for ex in examples:
        enc = formatter.encode(ex)
        if len(enc) > max_length:
            problems.append(Problem(ex.origin, f"over-long example: {len(enc)} tokens, more than max_length="
                                               f"{max_length} (shorten it, or raise --max-length)"))
        elif all(label == IGNORE for label in enc.labels):
            problems.append(Problem(ex.origin, "no target tokens after formatting (empty completion)"))
        else:
            out.append(enc)
    return out
