"""Benchmark: does the learning curve that ``fit`` records predict what more data gives?

For each dataset, frozen features of its training split (real pretrained weights), a stratified share of it
(25 % and 50 %) plays the user's data: graftwork's learning curve is measured on that share and projected to
2x and 4x its size. The projection is then compared with what actually happens: the same probe (same C)
trained on 2x / 4x as many training examples, scored on the dataset's own test split. Reported: the projected
accuracy, its 80 % interval, the measured accuracy, and whether the interval held it; and the gain more data
brings, projected (the curve at 2x minus the curve at today's size) and measured (test accuracy at 2x minus
today's), which does not depend on how the test split differs from the user's data. Repeated for 3 seeds.

Usage: python bench/curve_extrapolation.py [--seeds 0,1,2] [--out bench/results/curve_extrapolation.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

from graftwork.backbones import build_backbone
from graftwork.data import load_data
from graftwork.demo.datasets import fashion_mnist_dir, fashion_mnist_folder, support_intents_folder
from graftwork.diagnostics.learning_curve import learning_curve, predict
from graftwork.features import FeatureCache, default_cache_dir, extract_features
from graftwork.strategies.head import LinearHead, fit_probe

C = 1.0  # the probe's regularisation, the same for the curve and for the check


def features(backbone_name: str, items: list[str], modality: str) -> np.ndarray:
    bb = build_backbone(backbone_name)
    ext = extract_features(bb, modality, items, items, cache=FeatureCache(default_cache_dir(), bb.cache_key()))
    assert ext.ok.all()
    return ext.features


def labels_of(values: list[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(values))
    return np.array([classes.index(v) for v in values]), classes


def probe_accuracy(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: int) -> float:
    head = LinearHead(x.shape[1], classes)
    fit_probe(head, x, y, c=C)
    logits = head.standardize(x_test) @ head.fc.weight.detach().numpy().T + head.fc.bias.detach().numpy()
    return float(np.mean(logits.argmax(1) == y_test))


def _take(order: dict, share: float) -> np.ndarray:
    """The first ``share`` of each class in its drawn order: shares of one order are nested."""
    return np.sort(np.concatenate([o[:max(2, int(round(share * len(o))))] for o in order.values()]))


def check(name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: list[str],
          seeds: list[int]) -> list[dict]:
    rows = []
    for seed in seeds:
        for share in (0.25, 0.5):
            rng = np.random.default_rng(seed)
            order = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}

            mine = _take(order, share)
            counts = {classes[c]: int(np.sum(y[mine] == c)) for c in np.unique(y)}
            curve = learning_curve(x[mine], y[mine], counts, c=C, seed=seed)
            now_test = probe_accuracy(x[mine], y[mine], x_test, y_test, len(classes))
            now_curve = predict(curve.params, len(mine)) if curve.params else float("nan")
            for p in curve.projections:
                target = share * p.factor
                if target > 1.0 + 1e-9:
                    continue
                more = _take(order, target)
                actual = probe_accuracy(x[more], y[more], x_test, y_test, len(classes))
                rows.append({"data": name, "seed": seed, "share": share, "examples": int(len(mine)),
                             "factor": p.factor, "projected": round(p.accuracy, 4), "low": round(p.low, 4),
                             "high": round(p.high, 4), "measured_on_test": round(actual, 4),
                             "error": round(p.accuracy - actual, 4), "inside": p.low <= actual <= p.high,
                             "current_on_test": round(now_test, 4), "current_on_curve": round(now_curve, 4),
                             # what more data adds, projected (from the curve at today's size) and measured
                             "gain_projected": round(p.accuracy - now_curve, 4),
                             "gain_measured": round(actual - now_test, 4)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def intents() -> tuple:
    root = support_intents_folder(Path(tempfile.mkdtemp()) / "intents")

    def read(path: Path) -> tuple[list[str], list[str]]:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return [r["text"] for r in rows], [r["label"] for r in rows]

    texts, labels = read(root / "train.csv")
    test_texts, test_labels = read(root / "test.csv")
    y, classes = labels_of(labels)
    y_test = np.array([classes.index(v) for v in test_labels])
    name = "hf:sentence-transformers/all-MiniLM-L6-v2"
    return features(name, texts, "text"), y, features(name, test_texts, "text"), y_test, classes


def fashion(per_class: int) -> tuple:
    root = fashion_mnist_folder(Path(tempfile.mkdtemp()) / "fashion", per_class, 100)
    splits = load_data(root)
    y, classes = labels_of(list(splits.train.labels))
    assert splits.test is not None
    y_test = np.array([classes.index(v) for v in splits.test.labels])
    name = "torchvision:mobilenet_v2"
    return (features(name, list(splits.train.items), "image"), y, features(name, list(splits.test.items), "image"),
            y_test, classes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--fashion-per-class", type=int, default=200)
    ap.add_argument("--out", default="bench/results/curve_extrapolation.json")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    os.environ.setdefault("GRAFTWORK_CACHE", str(Path(tempfile.mkdtemp()) / "cache"))
    rows = check("support intents (MiniLM)", *intents(), seeds)
    if fashion_mnist_dir():
        rows += check(f"Fashion-MNIST {args.fashion_per_class}/class (MobileNetV2)", *fashion(args.fashion_per_class),
                      seeds)
    errors = np.array([r["error"] for r in rows])
    gain_errors = np.array([r["gain_projected"] - r["gain_measured"] for r in rows])
    summary = {"runs": len(rows), "inside_interval": int(sum(r["inside"] for r in rows)),
               "mean_abs_error": round(float(np.abs(errors).mean()), 4),
               "worst_error": round(float(errors[np.abs(errors).argmax()]), 4),
               "gain_mean_abs_error": round(float(np.abs(gain_errors).mean()), 4),
               "gain_worst_error": round(float(gain_errors[np.abs(gain_errors).argmax()]), 4)}
    result = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
              f"torch {torch.__version__}", "command": "python " + " ".join(sys.argv), "C": C,
              "summary": summary, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
