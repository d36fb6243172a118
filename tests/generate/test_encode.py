"""Formatting and loss masks: the loss covers exactly the completion (assistant) tokens."""

from __future__ import annotations

from graftwork.generate.data import GenExample
from graftwork.generate.encode import IGNORE, Formatter

from .conftest import make_tokenizer


def _targets(tok, enc) -> list[str]:
    return [t for t, label in zip(tok.convert_ids_to_tokens(enc.input_ids), enc.labels, strict=True)
            if label != IGNORE]


def test_pair_mask_is_exactly_the_completion_and_its_end_token():
    tok = make_tokenizer()
    enc = Formatter(tok).encode(GenExample("f:1", "pair", prompt="what colour is the cat ?", completion="red ."))
    assert _targets(tok, enc) == ["red", ".", "<|im_end|>"]
    assert len(enc.input_ids) == len(enc.labels)
    # the context is the prompt as the model sees it at inference: same tokens, same order
    prompt = Formatter(tok).prompt_ids([{"role": "user", "content": "what colour is the cat ?"}])
    assert enc.input_ids[:len(prompt)] == prompt
    assert all(label == IGNORE for label in enc.labels[:len(prompt)])


def test_multi_turn_chat_trains_every_assistant_turn_and_nothing_else():
    tok = make_tokenizer()
    messages = [{"role": "system", "content": "say hello"}, {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hello world"}, {"role": "user", "content": "colour ?"},
                {"role": "assistant", "content": "red ."}]
    enc = Formatter(tok).encode(GenExample("f:2", "chat", messages=messages))
    assert _targets(tok, enc) == ["hello", "world", "<|im_end|>", "red", ".", "<|im_end|>"]
    tokens = tok.convert_ids_to_tokens(enc.input_ids)
    assert tokens.count("system") == 1 and tokens.count("user") == 2 and tokens.count("assistant") == 2


def test_plain_format_without_chat_template_masks_the_prompt():
    tok = make_tokenizer(chat=False)
    enc = Formatter(tok).encode(GenExample("f:3", "pair", prompt="what colour is it ?", completion="blue"))
    assert _targets(tok, enc) == ["blue", "<eos>"]


def test_text_rows_train_on_every_token_but_the_first():
    tok = make_tokenizer()
    enc = Formatter(tok).encode(GenExample("f:4", "text", text="the cat is red ."))
    assert _targets(tok, enc) == ["cat", "is", "red", ".", "<|im_end|>"]
