"""Benchmark: does ``graftwork rank`` predict which backbone fine-tunes best, and how much cheaper is it?

For each real dataset (Fashion-MNIST from the Debian package; the textile defect images from the
``conformal-clip-data`` package), on the same training folder:

1. ``graftwork.rank`` scores every candidate on frozen features (LogME, cross-validated probe and kNN), with an
   empty feature cache so its time includes the backbone passes;
2. every candidate is fine-tuned (``--strategy gradual``, the recipe that adapts the backbone) and scored on a
   held-out test set;
3. the rank correlation (Spearman) between each score and the fine-tuned test accuracy, per dataset.

Candidates: real ImageNet MobileNetV2 and EfficientNet-Lite0 weights (offline packages) and a randomly
initialised MobileNetV2 as the control (``random:torchvision:mobilenet_v2``).

Usage: python bench/rank_correlation.py --fashion-per-class 50 --textile-per-class 60 --image-size 96
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import graftwork
from graftwork.demo.datasets import fashion_mnist_folder, textile_dir

CANDIDATES = ["torchvision:mobilenet_v2", "timm:tf_efficientnet_lite0", "random:torchvision:mobilenet_v2"]


def textile_split(root: Path, train_per_class: int, test_per_class: int, seed: int) -> Path:
    """train/ and test/ folders with disjoint per-class samples of the textile images."""
    import shutil

    src = textile_dir()
    if src is None:
        raise SystemExit("pip install conformal-clip-data==0.1.4 first")
    rng = np.random.default_rng(seed)
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        imgs = sorted(class_dir.glob("*.jpg"))
        pick = rng.permutation(len(imgs))[: train_per_class + test_per_class]
        for split, idx in (("train", pick[:train_per_class]), ("test", pick[train_per_class:])):
            (root / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            for i in idx:
                shutil.copy2(imgs[i], root / split / class_dir.name / imgs[i].name)
    return root


def fine_tune(data: Path, name: str, image_size: int, seed: int) -> dict:
    pretrained = not name.startswith("random:")
    t0 = time.perf_counter()
    model = graftwork.fit(data, backbone=name.removeprefix("random:"), pretrained=pretrained, strategy="gradual",
                          image_size=image_size, seed=seed)
    return {"test_accuracy": model.metrics["test"]["accuracy"], "seconds": time.perf_counter() - t0,
            "kept_stage": model.metrics["kept_stage"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion-per-class", type=int, default=50)
    ap.add_argument("--textile-per-class", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/rank_correlation.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="graftwork-rank-"))
    datasets = {
        "fashion-mnist": fashion_mnist_folder(work / "fashion", args.fashion_per_class, 100, seed=args.seed),
        "textile": textile_split(work / "textile", args.textile_per_class, 100, seed=args.seed),
    }
    results: dict = {"candidates": CANDIDATES, "image_size": args.image_size, "date": date.today().isoformat(),
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
                     "command": "python bench/rank_correlation.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
                     "datasets": {}}
    for dname, data in datasets.items():
        os.environ["GRAFTWORK_CACHE"] = str(work / f"cache-{dname}")  # empty: rank pays for its backbone passes
        t0 = time.perf_counter()
        ranking = graftwork.rank(data, CANDIDATES, image_size=args.image_size, seed=args.seed)
        rank_s = time.perf_counter() - t0
        scores = {r.name: {"logme": r.logme, "probe_acc": r.probe_accuracy, "knn_acc": r.knn_accuracy} for r in ranking.rows}
        tuned = {}
        for name in CANDIDATES:
            tuned[name] = fine_tune(data, name, args.image_size, args.seed)
            print(f"{dname} {name}: rank scores {scores[name]}, fine-tuned {tuned[name]}", flush=True)
        acc = [tuned[n]["test_accuracy"] for n in CANDIDATES]
        corr = {s: float(spearmanr([scores[n][s] for n in CANDIDATES], acc).statistic)
                for s in ("logme", "probe_acc", "knn_acc")}
        best_tuned = max(CANDIDATES, key=lambda n: tuned[n]["test_accuracy"])
        results["datasets"][dname] = {
            "examples": ranking.examples, "rank_seconds": rank_s, "scores": scores, "fine_tuned": tuned,
            "spearman": corr, "rank_top": ranking.rows[0].name, "fine_tuned_top": best_tuned,
            "fine_tune_seconds_total": sum(t["seconds"] for t in tuned.values()),
            "findings": [f.to_dict() for f in ranking.findings]}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
