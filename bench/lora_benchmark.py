"""Benchmark: LoRA against full fine-tuning, gradual unfreezing and the frozen probe, with real weights.

Text: all-MiniLM-L6-v2 on the support-intent set (8 classes; 16 and 64 training texts per class, the fixed
240-text test file). Images: MobileNetV2 (ImageNet weights) on Fashion-MNIST, 200 training images per class,
2000 test images, 96 px. Every (data, method) runs in its own process, so that the peak resident memory is that
method's alone; the numbers compared are measured in the same run of this script.

Usage: python bench/lora_benchmark.py [--text-sizes 16,64] [--image-size-per-class 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

CHILD = r"""
import json, sys, time
import graftwork
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
model = graftwork.fit(args.pop("data"), **args)
m = model.metrics
tuned = [s for s in m["stages"][1:] if s.get("history")]
epochs = [row["seconds"] for s in tuned for row in s["history"]]
print(json.dumps({"test_accuracy": m["test"]["accuracy"], "kept_stage": m["kept_stage"],
                  "trainable": m["parameters"]["trainable"], "total": m["parameters"]["total"],
                  "trainable_percent": m["parameters"]["trainable_percent"],
                  "peak_rss_mib": m["memory"]["peak_rss_mib"], "cuda_peak_mib": m["memory"].get("cuda_peak_mib"),
                  "epochs": len(epochs),
                  "seconds_per_epoch": sum(epochs) / len(epochs) if epochs else None,
                  "seconds": time.perf_counter() - t0}))
"""


def run(data: Path, **settings) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps({"data": str(data), **settings})],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def text_data(work: Path, per_class: int, seed: int) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from graftwork.demo.datasets import support_intents_folder
    from text_strategies import subsample

    full = support_intents_folder(work / "intents")
    data = work / f"text-{per_class}"
    subsample(full / "train.csv", data / "train.csv", per_class, seed)
    (data / "test.csv").write_bytes((full / "test.csv").read_bytes())
    return data


def image_data(work: Path, per_class: int, seed: int) -> Path:
    from graftwork.demo.datasets import (
        FASHION_CLASSES,
        load_fashion_mnist,
        sample_per_class,
        write_image_folder,
    )

    x_tr, y_tr = load_fashion_mnist("train")
    x_te, y_te = load_fashion_mnist("test")
    tr = sample_per_class(y_tr, per_class, seed=1000 + seed)
    te = sample_per_class(y_te, 200, seed=7)
    root = work / f"fashion-{per_class}"
    write_image_folder(x_tr[tr], y_tr[tr], FASHION_CLASSES, root / "train")
    write_image_folder(x_te[te], y_te[te], FASHION_CLASSES, root / "test")
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-sizes", default="16,64")
    ap.add_argument("--text-methods", default="frozen,full,lora")
    ap.add_argument("--image-per-class", type=int, default=200, help="0: skip the image part")
    ap.add_argument("--image-methods", default="frozen,gradual,lora")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="image-loading processes (GPU machines)")
    ap.add_argument("--out", default="bench/results/lora.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="graftwork-lora-"))
    os.environ.setdefault("GRAFTWORK_CACHE", str(work / "cache"))
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}" + (
                         f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
                     "date": date.today().isoformat(), "command": "python bench/lora_benchmark.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"), "runs": []}
    jobs = []
    for size in [int(s) for s in args.text_sizes.split(",") if s]:
        data = text_data(work, size, args.seed)
        jobs += [("text", size, m, data, {"backbone": "hf:sentence-transformers/all-MiniLM-L6-v2"})
                 for m in args.text_methods.split(",")]
    if args.image_per_class:
        data = image_data(work, args.image_per_class, args.seed)
        jobs += [("fashion-mnist", args.image_per_class, m, data,
                  {"backbone": "torchvision:mobilenet_v2", "image_size": 96, "workers": args.workers})
                 for m in args.image_methods.split(",")]
    for kind, size, method, data, settings in jobs:
        row = {"data": kind, "per_class": size, "method": method,
               **run(data, strategy=method, seed=args.seed, **settings)}
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results["runs"]))


def table(rows: list[dict]) -> str:
    lines = ["| data | per class | method | test acc | trained params | % of total | peak RSS MiB | s/epoch | total s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['per_class']} | {r['method']} | error | | | | | |")
            continue
        spe = f"{r['seconds_per_epoch']:.1f}" if r["seconds_per_epoch"] else "-"
        lines.append(f"| {r['data']} | {r['per_class']} | {r['method']} ({r['kept_stage']}) | "
                     f"{r['test_accuracy']:.3f} | {r['trainable']:,} | {r['trainable_percent']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} | {spe} | {r['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
