"""Words to sub-tokens and back: the alignment between a sentence's words and the encoder's word pieces.

The encoder sees word pieces; tags belong to words. A fast tokenizer's ``word_ids()`` says which word each
piece came from, so each word is represented by its first piece: that piece carries the word's label in
training and gives the word's prediction; the word's other pieces (and special tokens, padding) get the label
-100, which the loss ignores (the convention of BERT's NER experiments, Devlin et al. 2019, section 5.3).

A sentence longer than the encoder's window is cut into chunks of whole words that fit, so no word is ever
dropped by truncation; the chunks' predictions are joined again before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from .words import WORD_PATTERN, Chunk, chunk_words, joined_offsets, split_words

__all__ = ["IGNORE", "WORD_PATTERN", "Chunk", "Encoded", "chunk_sentences", "encode", "joined_offsets",
           "split_words", "word_tokenizer"]

IGNORE = -100  # the label of pieces that are not a word's first one (torch's cross-entropy ignore_index)


def word_tokenizer(tokenizer: Any) -> Any:
    """The tokenizer, usable on pre-split words: a fast one (``word_ids()`` exists only there); byte-level BPE
    tokenizers (RoBERTa, GPT-2) need ``add_prefix_space`` to encode words as they appear inside a sentence."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"NER needs a fast (Rust) tokenizer to align words and word pieces; this backbone has "
                          f"{type(tokenizer).__name__}.", hint="pick a backbone with a tokenizer.json, "
                          "e.g. hf:sentence-transformers/all-MiniLM-L6-v2 or hf:bert-base-cased.")
    try:
        tokenizer([["a"]], is_split_into_words=True)
    except (ValueError, AssertionError):  # "add_prefix_space=True is needed to use it with pretokenized inputs"
        tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path, add_prefix_space=True)
    return tokenizer


def chunk_sentences(tokenizer: Any, sentences: list[list[str]], max_length: int) -> list[Chunk]:
    """Cut each sentence into runs of whole words whose pieces (plus special tokens) fit ``max_length``."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    enc = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False) if sentences else None
    return chunk_words(sentences, [enc.word_ids(i) for i in range(len(sentences))] if enc is not None else [], budget)


@dataclass
class Encoded:
    """A batch of rows: model inputs, piece labels (-100 except on first pieces), and for each row and word the
    position of the word's first piece (-1: the word produced no piece, or fell outside the window)."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    first: list[list[int]]


def encode(tokenizer: Any, rows: list[list[str]], max_length: int,
           tag_ids: list[list[int]] | None = None) -> Encoded:
    enc = tokenizer(rows, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")
    labels = torch.full(enc["input_ids"].shape, IGNORE, dtype=torch.long)
    first: list[list[int]] = []
    for r, words in enumerate(rows):
        pos = [-1] * len(words)
        prev = None
        for p, w in enumerate(enc.word_ids(r)):
            if w is not None and w != prev:
                pos[w] = p
                if tag_ids is not None:
                    labels[r, p] = tag_ids[r][w]
            prev = w
        first.append(pos)
    return Encoded(dict(enc), labels, first)
