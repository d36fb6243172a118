"""Benchmark: which head on frozen sentence-encoder features, at the few-shot end? (no fine-tuning)

On the splits of ``bench/fewshot_suite.py`` (the same sets, test texts and training draws), three heads on the
same frozen all-MiniLM-L6-v2 features of the same training texts: scikit-learn's ``LogisticRegression()`` on the
raw mean-pooled features (the suite's reference), the same on L2-normalised features (the head SetFit fits: a
sentence-transformers model ends in a normalisation layer), and the nearest class centroid by cosine
similarity. Seconds per set (the features are computed once, then cached).

Usage: python bench/fewshot_heads.py --sets binary,many-fresh [--sizes 8,16] [--seeds 0,1,2] [--test 80]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_suite import frozen_args, frozen_draws  # noqa: E402


def heads(x: np.ndarray, y: list[str], x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """Test accuracy of the three heads trained on ``x``, ``y``."""
    raw = LogisticRegression().fit(x, y).predict(x_test)
    unit = LogisticRegression().fit(normalize(x), y).predict(normalize(x_test))
    classes = sorted(set(y))
    centroids = normalize(np.stack([x[np.array(y) == c].mean(0) for c in classes]))
    nearest = np.array(classes)[(normalize(x_test) @ centroids.T).argmax(1)]
    return {name: round(float(np.mean(p == y_test)), 4) for name, p in
            (("raw", raw), ("normalised", unit), ("centroid", nearest))}


def main() -> None:
    args = frozen_args("bench/results/fewshot_heads.json")
    rows = []
    for name, size, seed, train, test, feats in frozen_draws(args):
        x_test, y_test = np.stack([feats[t] for t, _ in test]), np.array([c for _, c in test])
        row = {"set": name, "per_class": size, "seed": seed} | heads(
            np.stack([feats[t] for t, _ in train]), [c for _, c in train], x_test, y_test)
        rows.append(row)
        print(json.dumps(row), flush=True)
    gains = np.array([r["normalised"] - r["raw"] for r in rows])
    summary = {"runs": len(rows), "normalised_minus_raw_mean": round(float(gains.mean()), 4),
               "worst": round(float(gains.min()), 4), "best": round(float(gains.max()), 4)}
    print(json.dumps(summary))
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
