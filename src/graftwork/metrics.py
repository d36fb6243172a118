"""Classification metrics (computed by scikit-learn), as plain JSON-able dicts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict[str, Any]:
    """accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix (rows: true)."""
    labels = [c for c in classes if c in set(y_true) | set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=[c for c in labels if c in set(y_true)],
                                   average="macro", zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(labels)},
        "confusion": {"labels": labels, "matrix": cm.astype(int).tolist()},
    }


def majority_baseline(train_labels: list[str], y_true: list[str]) -> dict[str, Any]:
    """Accuracy and macro F1 of always predicting the most frequent training class."""
    top = sorted(Counter(train_labels).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    pred = [top] * len(y_true)
    return {"predicts": top, "accuracy": float(np.mean([t == top for t in y_true])) if y_true else 0.0,
            "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)) if y_true else 0.0}
