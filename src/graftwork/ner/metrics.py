"""Entity-level precision, recall and F1, computed by seqeval in strict IOB2 mode.

Strict mode (``mode="strict", scheme=IOB2``): a predicted entity counts as correct only when its type, its
first word and its last word all match a gold entity. Gold tags are valid IOB2 (checked or converted when the
data is read) and predictions are decoded under the IOB2 constraints, so strict and seqeval's default
(conlleval-compatible) mode agree here; strict is named because it is the one whose meaning does not depend
on how ill-formed sequences are repaired. Micro averages over entities are the headline numbers, as in the
CoNLL shared tasks.
"""

from __future__ import annotations

from typing import Any

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from .decode import spans

MODE = "seqeval strict IOB2 (type and both boundaries must match)"


def _prf(row: dict[str, Any]) -> dict[str, Any]:
    return {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]),
            "support": int(row["support"])}


def entity_metrics(gold: list[list[str]], pred: list[list[str]], types: list[str]) -> dict[str, Any]:
    """Overall (micro) and per-type P/R/F1, macro F1 over the types present in ``gold``, token accuracy."""
    n_tokens = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True))
    report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    zero = {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    per_type = {t: _prf(report.get(t, zero)) for t in types}
    micro = _prf(report.get("micro avg", zero))
    present = [v for v in per_type.values() if v["support"] > 0]  # macro F1 over the types the data holds
    predicted = sum(1 for p in pred for t in p if t.startswith("B-"))
    return {
        **{k: micro[k] for k in ("precision", "recall", "f1")},
        "macro_f1": float(sum(v["f1"] for v in present) / max(len(present), 1)),
        "entities": micro["support"], "predicted_entities": predicted,
        "token_accuracy": correct / max(n_tokens, 1), "sentences": len(gold), "tokens": n_tokens,
        "per_type": per_type, "scoring": MODE,
    }


def span_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Micro entity F1 by exact span matching: the same number as seqeval's strict IOB2 mode for valid IOB2
    sequences (checked in the tests), at a small fraction of the cost. Used to pick epochs and stages, where it
    runs every epoch; reported metrics come from :func:`entity_metrics`."""
    true = {(i, *e) for i, g in enumerate(gold) for e in spans(g)}
    found = {(i, *e) for i, p in enumerate(pred) for e in spans(p)}
    hit = len(true & found)
    return 2 * hit / (len(true) + len(found)) if hit else 0.0
