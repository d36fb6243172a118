"""Throughput of one ``fit`` on 1 process against N processes (``torchrun``, data parallel).

The same command the README gives, timed: ``python -m torch.distributed.run --standalone --nproc_per_node N -m
graftwork fit DATA --out RUN --strategy full ...`` on Fashion-MNIST written out as PNG files (``--per-class``
training images per class, 10 classes; a fifth held out for validation), once per process count, each with an
empty feature cache so extraction is measured too. Reported per process count:

- ``features_per_s``: training + validation images through the frozen backbone, from the fit's own
  timing lines (sharded across the processes, then gathered);
- ``train_per_s``: training images per second of the fine-tuning epochs (each epoch's seconds include its
  validation pass, which every process runs on the full validation set, so this understates the training
  speed-up a little);
- ``wall_s``: the whole command, start-up of the processes included;
- ``speedup`` and ``efficiency`` (speed-up / N) of each against the first process count.

The process counts are run in turn, ``--repeats`` times (1, N, 1, N, ...: a cold first run, or a neighbour's
load on a shared machine, falls on both), and each figure is the median over the repeats.

GPU machine (the figure BENCHMARKS.md asks for): ``python bench/scaling.py --processes 1,8 --per-class 1000``.
A CPU-only machine runs the same on gloo (``--processes 1,2``), where every process takes an equal share of the
cores (OMP_NUM_THREADS = cores / N), so the speed-up measured there is the parallel efficiency of the recipe,
not extra hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch

from graftwork.demo.datasets import FASHION_CLASSES, load_fashion_mnist, sample_per_class, write_image_folder

FEATURES_LINE = re.compile(r"^(train|val|test): features of (\d+) examples .* in ([\d.]+)s$", re.M)


def make_folder(root: Path, per_class: int, seed: int) -> Path:
    """Fashion-MNIST: ``per_class`` training images of each class (validation is carved from them by fit)."""
    x, y = load_fashion_mnist("train")
    idx = sample_per_class(y, per_class, seed=1000 + seed)
    write_image_folder(x[idx], y[idx], FASHION_CLASSES, root)
    return root


def fit_command(n: int, data: Path, out: Path, args: argparse.Namespace) -> list[str]:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)]
              if n > 1 else [sys.executable])
    return [*launch, "-m", "graftwork", "fit", str(data), "--out", str(out), "--backbone", args.backbone,
            "--strategy", "full", "--stage-epochs", str(args.epochs), "--stage-patience", str(args.epochs),
            "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
            "--workers", str(args.workers), "--json"]


def measure(n: int, data: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One fit on ``n`` processes into a fresh folder of ``work`` (empty cache); its throughputs from its JSON
    result and its timing lines."""
    work = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=work))
    threads = max(1, (os.cpu_count() or 1) // n)
    env = os.environ | {"GRAFTWORK_CACHE": str(work / "cache"), "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(fit_command(n, data, work / "run", args), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"fit on {n} process(es) failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout)
    lines = FEATURES_LINE.findall(done.stderr)
    first = lines[:2]  # the pretrained backbone's train + val (a fine-tuned one extracts again for the metrics)
    feat_n, feat_s = sum(int(c) for _, c, _ in first), sum(float(s) for _, _, s in first)
    epochs = [row for stage in result["stages"][1:] for row in stage.get("history", [])]
    train_n = result["data"]["fit_split"]["train"]
    return {"processes": n, "threads_per_process": threads, "wall_s": round(wall, 1),
            "features": feat_n, "features_s": round(feat_s, 2),
            "features_per_s": round(feat_n / feat_s, 1) if feat_s else None,
            "epochs": len(epochs), "epoch_s": [round(r["seconds"], 2) for r in epochs],
            "train_per_s": round(train_n * len(epochs) / sum(r["seconds"] for r in epochs), 1) if epochs else None,
            "kept_stage": result["kept_stage"], "val_accuracy": result.get("val", {}).get("accuracy")}


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each timing over the repeats of one process count (the runs themselves kept beside it)."""
    row = dict(runs[0])
    for key in ("wall_s", "features_s", "features_per_s", "train_per_s"):
        values = [r[key] for r in runs if r[key] is not None]
        row[key] = round(statistics.median(values), 2) if values else None
    return row | {"runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", default="1,8", help="process counts to compare, the first is the reference")
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--backbone", default="torchvision:mobilenet_v2")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32, help="per process (N processes: N x this per step)")
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (one stage, all groups trainable)")
    ap.add_argument("--workers", type=int, default=0, help="image-loading processes per fit process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each process count, interleaved")
    ap.add_argument("--out", default="bench/results/scaling.json")
    args = ap.parse_args()
    counts = [int(c) for c in args.processes.split(",")]
    with tempfile.TemporaryDirectory(prefix="graftwork-scaling-") as tmp:
        work = Path(tmp)
        data = make_folder(work / "data", args.per_class, args.seed)
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        for _ in range(args.repeats):
            for n in counts:
                runs[n].append(measure(n, data, work, args))
                print(json.dumps(runs[n][-1]), flush=True)
        rows = [median_row(runs[n]) for n in counts]
    ref = rows[0]
    for row in rows:
        for key in ("features_per_s", "train_per_s"):
            if row[key] and ref[key]:
                speedup = row[key] / ref[key]
                row[key.replace("per_s", "speedup")] = round(speedup, 2)
                row[key.replace("per_s", "efficiency")] = round(speedup * ref["processes"] / row["processes"], 2)
    report = {"date": str(date.today()), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
              "torch": torch.__version__, "settings": vars(args) | {"strategy": "full"}, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
