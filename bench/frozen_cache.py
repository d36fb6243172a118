"""Benchmark: frozen-backbone transfer with the feature cache vs the limits and vs a tutorial-style loop.

On real data (Fashion-MNIST written out as PNG files) with real
MobileNetV2 ImageNet weights, measured in one process so that the ratios compare like with like:

  (a) raw backbone forward throughput over the data (inference mode, preprocessed tensors already in memory);
  (b) ``graftwork.fit(strategy="frozen")``: first run (empty cache) and second run (warm cache);
  (c) a naive loop that recomputes the frozen backbone every epoch, as most tutorials do (10 epochs);
  (d) accuracy of graftwork's head vs scikit-learn's LogisticRegression on the same cached features.

Usage: python bench/frozen_cache.py [--per-class 150] [--out bench/results/frozen_cache.json]
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
from torch import nn

import graftwork
from graftwork.backbones import build_backbone
from graftwork.data import load_data, load_image
from graftwork.demo.datasets import fashion_mnist_dir, fashion_mnist_folder

BACKBONE = "torchvision:mobilenet_v2"
BATCH = 32
EPOCHS = 10


def raw_forward(backbone, images: list[str]) -> float:
    """Seconds for one inference pass over all images, preprocessing excluded."""
    tensors = [backbone.prepare(load_image(p)) for p in images]
    backbone.eval()
    with torch.inference_mode():
        backbone(torch.stack(tensors[:BATCH]))  # warm-up
        t0 = time.perf_counter()
        for i in range(0, len(tensors), BATCH):
            backbone(torch.stack(tensors[i:i + BATCH]))
    return time.perf_counter() - t0


def naive_loop(backbone, images: list[str], labels: list[int], n_classes: int) -> float:
    """The tutorial recipe: frozen backbone inside the training loop, recomputed every epoch."""
    head = nn.Linear(backbone.feature_dim, n_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
    order = np.arange(len(images))
    rng = np.random.default_rng(0)
    backbone.eval()
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            x = torch.stack([backbone.prepare(load_image(images[j])) for j in idx])
            with torch.no_grad():
                feats = backbone(x)
            loss = nn.functional.cross_entropy(head(feats), torch.tensor([labels[j] for j in idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--out", default="bench/results/frozen_cache.json")
    ap.add_argument("--workers", type=int, default=0, help="data-loading worker processes for fit")
    args = ap.parse_args()
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="graftwork-bench-"))
    os.environ["GRAFTWORK_CACHE"] = str(work / "cache")
    if not fashion_mnist_dir():
        raise SystemExit("needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
    data = fashion_mnist_folder(work / "data", args.per_class, 100)
    name = f"Fashion-MNIST, {args.per_class}/class train, 100/class test"
    train_dir = data / "train"  # (a)-(c) use the training images only: fit sees each once, the loop 10 times
    splits = load_data(data)
    images = splits.train.items
    backbone = build_backbone(BACKBONE)

    results: dict[str, object] = {"data": name, "n_images": len(images), "backbone": BACKBONE,
                                  "batch_size": BATCH, "naive_loop_epochs": EPOCHS, "torch_threads": torch.get_num_threads()}
    results["a_raw_forward_s"] = raw_forward(backbone, images)
    settings = {"backbone": BACKBONE, "strategy": "frozen", "batch_size": BATCH, "workers": args.workers}
    t0 = time.perf_counter()
    model = graftwork.fit(train_dir, **settings)
    results["b_fit_first_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    graftwork.fit(train_dir, **settings)
    results["b_fit_warm_s"] = time.perf_counter() - t0
    classes = splits.classes
    train_labels = [classes.index(y) for y in splits.train.labels]
    results["c_naive_loop_s"] = naive_loop(backbone, images, train_labels, len(classes))
    results["a_raw_forward_again_s"] = raw_forward(backbone, images)  # drift check: the machine is shared

    # (d) the same cached features, graftwork's head vs scikit-learn's logistic regression
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    full = graftwork.fit(data, backbone=BACKBONE, strategy="frozen", workers=args.workers)
    feats = {s: full.features(getattr(splits, s).items, use_cache=True)[0] for s in ("train", "test")}
    y_tr = np.array(train_labels)
    y_te = np.array([classes.index(y) for y in splits.test.labels])
    scaler = StandardScaler().fit(feats["train"])
    lr = LogisticRegression(max_iter=5000).fit(scaler.transform(feats["train"]), y_tr)
    results["d_sklearn_logreg_test_acc"] = float(lr.score(scaler.transform(feats["test"]), y_te))
    results["d_graftwork_head_test_acc"] = full.metrics["test"]["accuracy"]
    results["b_fit_val_acc"] = model.metrics["val"]["accuracy"]

    a, first, warm, naive = (results[k] for k in ("a_raw_forward_s", "b_fit_first_s", "b_fit_warm_s",
                                                   "c_naive_loop_s"))
    results["ratio_first_over_raw"] = first / a
    results["ratio_warm_over_first"] = warm / first
    results["speedup_vs_naive"] = naive / first
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    results["date"] = date.today().isoformat()
    results["command"] = f"python bench/frozen_cache.py --per-class {args.per_class} --workers {args.workers}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
