"""Word pieces: labels on each word's first piece, -100 elsewhere; long sentences chunked without losing words."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftwork.backbones import build_backbone
from graftwork.ner.align import IGNORE, chunk_sentences, encode, joined_offsets, split_words, word_tokenizer
from graftwork.ner.model import TokenClassifier


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return word_tokenizer(AutoTokenizer.from_pretrained(str(tiny_bert)))


def test_labels_on_first_sub_token_only(tokenizer):
    enc = encode(tokenizer, [["my", "apples", "hello"], ["cars"]], max_length=32, tag_ids=[[0, 1, 0], [3]])
    pieces = tokenizer.convert_ids_to_tokens(enc.inputs["input_ids"][0])
    assert pieces == ["[CLS]", "my", "apple", "##s", "hello", "[SEP]"]
    assert enc.labels[0].tolist() == [IGNORE, 0, 1, IGNORE, 0, IGNORE]
    assert enc.first == [[1, 2, 4], [1]]
    assert enc.labels[1].tolist() == [IGNORE, 3, IGNORE, IGNORE, IGNORE, IGNORE]  # car ##s [SEP] [PAD] [PAD]


def test_long_sentences_are_chunked_on_word_boundaries(tokenizer):
    words = ["apples", "my", "cars", "the"] * 5  # 30 pieces
    chunks = chunk_sentences(tokenizer, [words, ["a"]], max_length=8)  # 6 pieces + [CLS] [SEP] per chunk
    mine = [c for c in chunks if c.sentence == 0]
    assert mine[0].start == 0 and mine[-1].end == len(words)
    assert all(a.end == b.start for a, b in zip(mine, mine[1:], strict=False))
    assert all(c.pieces <= 6 for c in mine)
    assert [(c.start, c.end) for c in chunks if c.sentence == 1] == [(0, 1)]


def test_per_word_joins_chunks_back(tiny_bert):
    backbone = build_backbone(str(tiny_bert), pretrained=True)
    net = TokenClassifier(backbone, 3).eval()  # type: ignore[arg-type]
    words = ["apples", "my", "cars", "the"] * 5
    full = net.per_word([words], net.states, batch_size=4, device=torch.device("cpu"))[0]
    assert full.shape == (20, 32)
    backbone.max_length = 8
    chunked = net.per_word([words, ["my"]], net.states, batch_size=4, device=torch.device("cpu"))
    assert chunked[0].shape == (20, 32) and chunked[1].shape == (1, 32)
    assert not np.allclose(chunked[0], full)  # each chunk is encoded on its own, so states differ...
    assert np.abs(chunked[0]).sum(1).min() > 0  # ...but every word has one


def test_split_words_and_offsets():
    text = "Ann Lee's cat, in New-York."
    assert [(w, text[a:b]) for w, a, b in split_words(text)] == [(w, w) for w in
                                                                 ["Ann", "Lee", "'", "s", "cat", ",", "in", "New",
                                                                  "-", "York", "."]]
    assert joined_offsets(["Ann", "Lee", "."]) == [(0, 3), (4, 7), (8, 9)]
