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
# Below MIN_LOSS_EVIDENCE validation examples the paired margin rests on accuracy alone, on a handful of examples.
# Then, when training + validation hold at most this many examples, "fine-tune or keep the probe" is decided by
# k-fold fine-tuning over all of them instead (k fine-tunings of the plan's recipe; at this size each costs
# little), and the chosen recipe is retrained on all of them.
CV_FINE_TUNE_MAX = 120


def small_validation(val_counts: Sequence[int]) -> bool:
    """True when the validation split is too small to choose between models (see ``SMALL_VAL_PER_CLASS``)."""
    present = [c for c in val_counts if c > 0]
    return bool(present) and min(present) < SMALL_VAL_PER_CLASS


def rule_text() -> str:
    return f"fewer than {SMALL_VAL_PER_CLASS} validation examples in the smallest class"


def cross_validates_fine_tuning(val_examples: int, all_examples: int, *, fine_tunes: bool,
                                 distributed: bool = False) -> bool:
    """True when fine-tuning is judged by k-fold fine-tuning (see ``CV_FINE_TUNE_MAX``) rather than on the
    validation split; several processes keep the validation rule (the folds run in one process)."""
    return (fine_tunes and not distributed and 0 < val_examples < MIN_LOSS_EVIDENCE
            and all_examples <= CV_FINE_TUNE_MAX)


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


def margin(pred: np.ndarray, probe_pred: np.ndarray, truth: np.ndarray, losses: np.ndarray | None = None,
           probe_losses: np.ndarray | None = None) -> tuple[dict[str, float], bool]:
    """Does a fine-tuned model beat the probe by more than the noise of these examples? Compared paired, on the
    same examples: a gain counts when the mean per-example gain in accuracy, or in log-loss (continuous, so it
    can show on a few dozen examples what 0/1 accuracy cannot; counted from ``MIN_LOSS_EVIDENCE`` examples on,
    and only when accuracy is not lower), is larger than its standard error. Neither: a near-tie, which goes to
    the simpler probe.

    Returns the figures (``examples``, ``accuracy_gain``, ``accuracy_se``, maybe ``loss_gain``, ``loss_se``)
    and whether the gain counts."""
    truth = np.asarray(truth)
    gap, se = paired_gap(np.asarray(pred) == truth, np.asarray(probe_pred) == truth)
    figures: dict[str, float] = {"examples": len(truth), "accuracy_gain": gap, "accuracy_se": se}
    if losses is not None and probe_losses is not None and len(truth) >= MIN_LOSS_EVIDENCE:
        # the probe's loss minus the model's, per example: positive where the model is better
        figures["loss_gain"], figures["loss_se"] = paired_gap(-np.asarray(losses), -np.asarray(probe_losses))
    # a lower loss alone does not make up for fewer examples right: a model that sharpened its probabilities
    # while getting 3 of 32 held-out texts fewer right (binary fortunes, 16 per class) tested below the probe
    loss_counts = gap >= 0 and figures.get("loss_gain", 0.0) > figures.get("loss_se", math.inf)
    return figures, bool(gap > se or loss_counts)


def margin_text(figures: dict[str, float], where: str) -> str:
    """Why a gain over the probe is a near-tie, in words (``where``: "validation examples", ...)."""
    loss_part = (f" and in log-loss ({figures['loss_gain']:+.4f}, standard error {figures['loss_se']:.4f})"
                 if "loss_gain" in figures else "")
    return (f"its gain over the linear probe in accuracy ({figures['accuracy_gain']:+.4f}, standard error "
            f"{figures['accuracy_se']:.4f}){loss_part} is within the noise of {figures['examples']} {where}: the "
            "simpler probe is kept")


def json_figures(figures: dict[str, float]) -> dict[str, float | None]:
    """``figures`` rounded for JSON; an undefined standard error is null."""
    return {k: (v if not isinstance(v, float) else round(v, 6) if math.isfinite(v) else None)
            for k, v in figures.items()}


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
