"""How a model is chosen when validation data is scarce: the small-validation rule, near-ties, and collapse.

With a handful of validation examples, "the best on validation" is a coin toss: 6 examples move accuracy in steps
of 17 points. graftwork then makes its choices by repeated stratified k-fold cross-validation over training +
validation data (every example is held out once per repeat, and the repeats average out the luck of the split),
and breaks near-ties toward the simpler model, which generalises more reliably when the evidence is weak
(the one-standard-error rule, Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 7.10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Validation is "small" when its smallest class has fewer than this many examples: below it, one example more or
# less right moves that class's recall by 5 points or more, and accuracy differences between candidates are noise.
SMALL_VAL_PER_CLASS = 20
CV_FOLDS = 5
CV_REPEATS = 3
# A stage whose validation predictions are this concentrated on one class has collapsed (unless the true labels
# are that concentrated too).
COLLAPSE_SHARE = 0.9
# the per-example loss counts as evidence that a fine-tuned stage beats the probe only from this many validation
# examples: on fewer, a standard error estimated from the examples themselves is too rough, and fine-tuning that
# only sharpens the probabilities of examples the probe already got right passed it (binary texts, 6 validation
# examples: the loss gain was 2-4 standard errors on 2 of 3 seeds, the test accuracy 0.6-1.25 points lower)
MIN_LOSS_EVIDENCE = 20


def small_validation(val_counts: Sequence[int]) -> bool:
    """True when the validation split is too small to choose between models (see ``SMALL_VAL_PER_CLASS``)."""
    present = [c for c in val_counts if c > 0]
    return bool(present) and min(present) < SMALL_VAL_PER_CLASS


def rule_text() -> str:
    return f"fewer than {SMALL_VAL_PER_CLASS} validation examples in the smallest class"


def cv_splits(n: int, smallest: int) -> tuple[int, int]:
    """(folds, repeats) of the repeated stratified k-fold: 5 folds (fewer when the smallest class has fewer
    examples), repeated 3 times on up to a few thousand examples, once beyond."""
    return min(CV_FOLDS, smallest), (CV_REPEATS if n <= 5000 else 1)


def paired_gap(better: np.ndarray, worse: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of ``better - worse`` over paired scores (the same folds, or the same examples)."""
    d = np.asarray(better, dtype=float) - np.asarray(worse, dtype=float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else 0.0, math.inf
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def simplest_near_best(scores: list[np.ndarray], best: int) -> int:
    """Index of the simplest candidate whose mean score is within one standard error of the best's.

    ``scores`` are per-fold scores, ordered from the simplest candidate to the most complex; the standard error
    is that of the best candidate's mean over the folds (the one-standard-error rule of Hastie et al., 7.10), so
    the fewer the examples, the more readily the simpler candidate is kept."""
    top = np.asarray(scores[best], dtype=float)
    se = float(top.std(ddof=1) / math.sqrt(len(top))) if len(top) > 1 else math.inf
    for i in range(best):
        if top.mean() - float(np.mean(scores[i])) <= se + 1e-12:
            return i
    return best


def collapse_reason(predicted: np.ndarray, truth: np.ndarray, classes: int) -> str | None:
    """Why predictions ``predicted`` of examples labelled ``truth`` count as collapsed onto one class, or None."""
    if len(predicted) == 0:
        return None
    pred_share = np.bincount(predicted, minlength=classes) / len(predicted)
    true_share = np.bincount(truth, minlength=classes).max() / len(truth)
    top = int(pred_share.argmax())
    if pred_share[top] >= COLLAPSE_SHARE and true_share < COLLAPSE_SHARE:
        return (f"predicts one class for {pred_share[top]:.0%} of the validation examples (class index {top}; "
                f"the largest true class is {true_share:.0%})")
    return None
