"""Benchmark: fine-tuning recipe variants on the strategy-curve data, one settings dict per variant.

Builds the same Fashion-MNIST folder as ``bench/strategy_curve.py`` for a size and a seed (the same training
sample, the same fixed test set of 200 per class) and runs ``graftwork.fit`` once per variant with the real
MobileNetV2 weights, printing test accuracy, wall time, the kept stage and every stage's validation accuracy per
epoch, so that a recipe change can be judged on its learning curves and not only on its end point.

Usage:
    python bench/recipe_variants.py --per-class 200 --seed 0 \\
        --variant 'default={}' --variant 'bn-update={"bn_stats": "update"}' \\
        --variant 'full-ratio1={"strategy": "full", "lr_ratio": 1, "stage_epochs": 6}'

A variant is NAME=JSON, the JSON holding ``graftwork.fit`` settings; the strategy defaults to ``gradual``.
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

import torch

import graftwork
from graftwork.demo.datasets import load_fashion_mnist, sample_per_class
from strategy_curve import BACKBONE, make_folder


def parse_variant(text: str) -> tuple[str, dict]:
    name, sep, settings = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant {text!r}: expected NAME=JSON, e.g. 'bn-update={{\"bn_stats\": \"update\"}}'")
    try:
        parsed = json.loads(settings or "{}")
    except json.JSONDecodeError as err:
        raise SystemExit(f"--variant {name}: the settings are not JSON ({err})") from None
    return name, {"strategy": "gradual"} | parsed


def run(data: Path, seed: int, image_size: int, settings: dict) -> dict:
    t0 = time.perf_counter()
    model = graftwork.fit(data, backbone=BACKBONE, image_size=image_size, seed=seed, **settings)
    return {
        "settings": settings, "test_accuracy": model.metrics["test"]["accuracy"],
        "seconds": round(time.perf_counter() - t0, 1), "kept_stage": model.metrics["kept_stage"],
        "stages": [{"stage": s["stage"], "val_acc": s.get("val_acc"), "best_epoch": s.get("best_epoch"),
                    "val_acc_per_epoch": [h["val_acc"] for h in s.get("history", [])]}
                   for s in model.metrics["stages"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--variant", action="append", required=True, help="NAME=JSON settings (repeat)")
    ap.add_argument("--out", default="bench/results/recipe_variants.json")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    work = Path(tempfile.mkdtemp(prefix="graftwork-variants-"))
    os.environ.setdefault("GRAFTWORK_CACHE", str(work / "cache"))
    _, y_te = load_fashion_mnist("test")
    data = make_folder(work / "data", args.per_class, args.seed, sample_per_class(y_te, 200, seed=0))
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {"runs": []}
    for name, settings in variants:
        row = {"variant": name, "per_class": args.per_class, "seed": args.seed,
               **run(data, args.seed, args.image_size, dict(settings)),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
               "date": date.today().isoformat()}
        results["runs"].append(row)
        curves = "; ".join(f"{s['stage']}: " + " ".join(f"{a:.3f}" for a in s["val_acc_per_epoch"])
                           for s in row["stages"] if s["val_acc_per_epoch"])
        print(f"{name} (n={args.per_class}, seed {args.seed}): test {row['test_accuracy']:.4f} in "
              f"{row['seconds']:.0f} s, kept {row['kept_stage']} | val per epoch: {curves}", flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
