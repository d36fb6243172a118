"""Scores of generated text against references, and of a model's loss on reference completions.

* ``exact_match``: the fraction of generations equal to their reference after stripping surrounding whitespace;
* ``rougeL``: mean ROUGE-L F-measure (longest common subsequence of words; Lin 2004), via ``rouge-score``;
* ``chrf``: corpus chrF (character n-gram F-score; Popović 2015), via ``sacrebleu``, on a 0-100 scale;
* ``loss`` and ``perplexity``: mean next-token cross-entropy over the reference completion tokens and its
  exponential (computed by the trainer and the model, see :func:`loss_metrics`).
"""

from __future__ import annotations

import math
from typing import Any


def exact_match(predictions: list[str], references: list[str]) -> float:
    if not references:
        return 0.0
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)) / len(references)


def rouge_l(predictions: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    if not references:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]
    return sum(scores) / len(scores)


def chrf(predictions: list[str], references: list[str]) -> float:
    from sacrebleu.metrics import CHRF

    if not references:
        return 0.0
    return float(CHRF().corpus_score(predictions, [references]).score)


def loss_metrics(loss_sum: float, tokens: int) -> dict[str, float]:
    loss = loss_sum / max(tokens, 1)
    return {"loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 50.0)), 4), "tokens": tokens}


def text_metrics(predictions: list[str], references: list[str]) -> dict[str, Any]:
    return {"exact_match": round(exact_match(predictions, references), 6),
            "rougeL": round(rouge_l(predictions, references), 6),
            "chrf": round(chrf(predictions, references), 4), "n": len(references)}
