"""Words to sub-tokens and back: the alignment between a sentence's words and the encoder's word pieces.

The encoder sees word pieces; tags belong to words. A fast tokenizer's ``word_ids()`` says which word each
piece came from, so each word is represented by its first piece: that piece carries the word's label in
training and gives the word's prediction; the word's other pieces (and special tokens, padding) get the label
-100, which the loss ignores (the convention of BERT's NER experiments, Devlin et al. 2019, section 5.3).

A sentence longer than the encoder's window is cut into chunks of whole words that fit, so no word is ever
dropped by truncation; the chunks' predictions are joined again before decoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError

IGNORE = -100  # the label of pieces that are not a word's first one (torch's cross-entropy ignore_index)
WORD_PATTERN = r"\w+|[^\w\s]"  # a run of letters/digits/underscore, or one punctuation mark
_WORD = re.compile(WORD_PATTERN)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of raw text with their character offsets ``(word, start, end)``: split on whitespace and around
    every punctuation mark, the way CoNLL-style data is tokenised ("Smith's" gives Smith, ', s)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def joined_offsets(tokens: list[str]) -> list[tuple[int, int]]:
    """Character offsets of pre-split tokens in ``" ".join(tokens)``."""
    out, pos = [], 0
    for t in tokens:
        out.append((pos, pos + len(t)))
        pos += len(t) + 1
    return out


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


@dataclass
class Chunk:
    """Words ``start:end`` of sentence ``sentence``, encoded as one row."""

    sentence: int
    start: int
    end: int
    pieces: int  # word pieces, without special tokens (to batch rows of similar length together)


def chunk_sentences(tokenizer: Any, sentences: list[list[str]], max_length: int) -> list[Chunk]:
    """Cut each sentence into runs of whole words whose pieces (plus special tokens) fit ``max_length``."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    enc = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False) if sentences else None
    chunks = []
    for i, words in enumerate(sentences):
        counts = [0] * len(words)
        for w in enc.word_ids(i) if enc is not None else []:
            if w is not None:
                counts[w] += 1
        start, used = 0, 0
        for j, c in enumerate(counts):
            if used + c > budget and j > start:
                chunks.append(Chunk(i, start, j, used))
                start, used = j, 0
            used += c
        chunks.append(Chunk(i, start, len(words), used))
    return chunks


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
