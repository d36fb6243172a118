"""Generation metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from graftwork.generate.metrics import chrf, exact_match, loss_metrics, rouge_l, text_metrics


def test_exact_match_strips_surrounding_whitespace_only():
    assert exact_match([" red ", "blue", "Green"], ["red", "blue.", "green"]) == pytest.approx(1 / 3)


def test_rouge_l_is_the_lcs_f_measure():
    # reference "the cat sat on the mat" (6 words), prediction "the cat on a mat" (5): LCS "the cat on mat" = 4
    p, r = 4 / 5, 4 / 6
    assert rouge_l(["the cat on a mat"], ["the cat sat on the mat"]) == pytest.approx(2 * p * r / (p + r))


def test_chrf_is_100_for_identical_and_0_for_disjoint_text():
    assert chrf(["abc def"], ["abc def"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"]) == pytest.approx(0.0)


def test_loss_and_perplexity():
    m = loss_metrics(6.0, 3)
    assert m["loss"] == pytest.approx(2.0) and m["perplexity"] == pytest.approx(math.exp(2.0), rel=1e-4)


def test_text_metrics_counts():
    m = text_metrics(["a", "b"], ["a", "c"])
    assert m["n"] == 2 and m["exact_match"] == 0.5
