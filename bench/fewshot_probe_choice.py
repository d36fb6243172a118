"""Benchmark: the probe's cross-validated choice among its candidates, at the few-shot end (frozen features).

On the splits of ``bench/fewshot_suite.py`` (same sets, test texts and training draws), graftwork's probe
(``fit_probe`` without validation: repeated stratified k-fold over the training texts, then the refit) with
three candidate lists, against the two fixed heads it chooses among: scikit-learn's ``LogisticRegression()`` on
the raw features (the suite's reference) and on L2-normalised features (SetFit's head).

- ``old``: the reference, then the standardised grid (the probe before the normalised candidate);
- ``raw-first``: the reference, the normalised-features probe, then the grid (near-ties go to the reference);
- ``normalised-first``: the normalised-features probe first.

Usage: python bench/fewshot_probe_choice.py --sets binary,many-class [--sizes 8,16] [--seeds 0,1,2] [--test 80]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_suite import frozen_args, frozen_draws  # noqa: E402
from graftwork.strategies import head as probe  # noqa: E402

ORDERS = {"old": "raw", "raw-first": "raw", "normalised-first": "normalised"}  # the reference preferred
ALL_REFERENCES = probe.REFERENCES


def choose(order: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> tuple[float, str]:
    """Test accuracy of the probe chosen with candidate list ``order``, and what was chosen."""
    probe.REFERENCES = ALL_REFERENCES[:1] if order == "old" else ALL_REFERENCES  # "old": no normalised candidate
    head = probe.LinearHead(x.shape[1], int(y.max()) + 1)
    fit = probe.fit_probe(head, x, y, prefer=ORDERS[order])
    with torch.no_grad():
        pred = head.eval()(torch.from_numpy(x_test).float()).argmax(1).numpy()
    return float(np.mean(pred == y_test)), f"{fit.features} C={fit.c:g}"


def main() -> None:
    args = frozen_args("bench/results/fewshot_probe_choice.json")
    rows = []
    for name, size, seed, train, test, feats in frozen_draws(args):
        classes = sorted({c for _, c in test})
        x_test = np.stack([feats[t] for t, _ in test])
        y_test = np.array([classes.index(c) for _, c in test])
        x = np.stack([feats[t] for t, _ in train])
        y = np.array([classes.index(c) for _, c in train])
        row = {"set": name, "per_class": size, "seed": seed,
               "sklearn": float(np.mean(LogisticRegression().fit(x, y).predict(x_test) == y_test)),
               "sklearn_normalised": float(np.mean(
                   LogisticRegression().fit(normalize(x), y).predict(normalize(x_test)) == y_test))}
        for order in ORDERS:
            row[order], row[f"{order}_chose"] = choose(order, x, y, x_test, y_test)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for key in ("sklearn_normalised", *ORDERS):
        gaps = np.array([r[key] - r["sklearn"] for r in rows])
        summary[key] = {"mean": round(float(np.mean([r[key] for r in rows])), 4),
                        "minus_sklearn_mean": round(float(gaps.mean()), 4), "worst": round(float(gaps.min()), 4)}
    print(json.dumps(summary, indent=1))
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
