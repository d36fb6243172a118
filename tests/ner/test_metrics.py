"""Entity F1 on a hand-checked example, constrained decoding, spans."""

from __future__ import annotations

import numpy as np
import pytest

from graftwork.ner.decode import constraints, spans, viterbi
from graftwork.ner.metrics import entity_metrics, span_f1

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"], ["B-PER", "I-PER"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O", "B-LOC"], ["B-PER", "O"]]


def test_entity_f1_hand_checked():
    # gold: PER(0:2) LOC(3) | ORG(0) PER(2) | PER(0:2) = 5 entities; predicted: PER(0:2) | ORG LOC(2) | PER(0) = 4
    # correct: PER(0:2) of sentence 1 and ORG; PER(0) of sentence 3 has the wrong right boundary
    m = entity_metrics(GOLD, PRED, ["LOC", "ORG", "PER"])
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 5)
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert m["per_type"]["PER"] == pytest.approx({"precision": 1 / 2, "recall": 1 / 3, "f1": 0.4, "support": 3})
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["ORG"]["f1"] == 1.0
    assert m["macro_f1"] == pytest.approx((0.4 + 0 + 1) / 3)
    assert (m["entities"], m["predicted_entities"]) == (5, 4)
    assert m["token_accuracy"] == pytest.approx(6 / 9)  # 3 + 2 + 1 words tagged right


def test_strict_mode_does_not_count_an_entity_started_by_i():
    # seqeval's default (conlleval) mode would count I-PER after O as a correct PER; strict IOB2 does not
    m = entity_metrics([["O", "B-PER"]], [["O", "I-PER"]], ["PER"])
    assert m["f1"] == 0.0 and m["recall"] == 0.0


def test_viterbi_never_starts_an_entity_with_i():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, trans = constraints(tags)
    # the best tag of each word on its own would be O, I-PER, I-LOC: invalid twice
    logp = np.log(np.array([[0.6, 0.1, 0.1, 0.1, 0.1],
                            [0.1, 0.3, 0.4, 0.1, 0.1],
                            [0.1, 0.1, 0.35, 0.1, 0.35]]))
    path = [tags[i] for i in viterbi(logp, start, trans)]
    assert path == ["O", "B-PER", "I-PER"]
    assert viterbi(np.zeros((0, 5)), start, trans) == []


def test_spans():
    assert spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 6)]


def test_span_f1_equals_seqeval_strict_on_valid_sequences():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, trans = constraints(tags)
    rng = np.random.default_rng(0)

    def sample(lengths: list[int]) -> list[list[str]]:  # valid IOB2 sequences, by decoding random scores
        return [[tags[i] for i in viterbi(rng.normal(size=(n, 5)), start, trans)] for n in lengths]

    for _ in range(5):
        lengths = [int(n) for n in rng.integers(1, 12, size=30)]
        gold, pred = sample(lengths), sample(lengths)
        assert span_f1(gold, pred) == pytest.approx(entity_metrics(gold, pred, ["LOC", "PER"])["f1"])
    assert span_f1(GOLD, PRED) == pytest.approx(entity_metrics(GOLD, PRED, ["LOC", "ORG", "PER"])["f1"])
