"""Words of a sentence, and chunks of whole words that fit the encoder: the torch-free half of the alignment.

Shared by the PyTorch model (:mod:`graftwork.ner.align`, :mod:`graftwork.ner.model`) and the ONNX runtime
(:mod:`graftwork.runtime.ner`), so both split text and cut long sentences identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


def split_inputs(items: Sequence[Any]) -> tuple[list[list[str]], list[list[tuple[int, int]]], list[str]]:
    """(words, character offsets, source text) of each input: a raw string is split with :func:`split_words`;
    a list of tokens is taken as pre-split, its offsets in the tokens joined by single spaces."""
    words, offsets, sources = [], [], []
    for item in items:
        if isinstance(item, str):
            split = split_words(item)
            words.append([w for w, _, _ in split])
            offsets.append([(a, b) for _, a, b in split])
            sources.append(item)
        else:
            words.append([str(t) for t in item])
            offsets.append(joined_offsets(words[-1]))
            sources.append(" ".join(words[-1]))
    return words, offsets, sources


@dataclass
class Chunk:
    """Words ``start:end`` of sentence ``sentence``, encoded as one row."""

    sentence: int
    start: int
    end: int
    pieces: int  # word pieces, without special tokens (to batch rows of similar length together)


def chunk_words(sentences: list[list[str]], word_ids: Iterable[Iterable[int | None]], budget: int) -> list[Chunk]:
    """Cut each sentence into runs of whole words whose pieces fit ``budget``; ``word_ids`` gives, per sentence,
    the word of each of its pieces (None for special tokens). A word longer than the budget is a chunk alone."""
    chunks = []
    for i, (words, ids) in enumerate(zip(sentences, word_ids, strict=True)):
        counts = [0] * len(words)
        for w in ids:
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
