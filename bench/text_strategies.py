"""Benchmark: text transfer with real all-MiniLM-L6-v2 weights on the support-intent set (8 classes).

For 16 and 64 training examples per class (sampled from the 70/class training file), the fixed 240-example
test file, each strategy in one process: ``frozen``, ``gradual``, ``full`` and ``auto``, plus SetFit with its
default recipe when ``.venv-peers`` exists and ``--setfit`` is given (see bench/setup_peers.sh; its default
pair sampling grows with the square of the training set, so it is slow on CPU; ``--setfit-iterations 20`` runs
the SetFit paper's recipe instead, 20 pairs of each kind per training text).

Usage: python bench/text_strategies.py --sizes 16,64 --seeds 0 [--setfit [--setfit-iterations 20]]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import graftwork
from graftwork.demo.datasets import support_intents_folder

PEERS = Path(__file__).resolve().parent.parent / ".venv-peers" / "bin" / "python"


def subsample(src: Path, dst: Path, per_class: int, seed: int) -> None:
    with src.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(seed)
    keep = []
    for label in sorted({r["label"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["label"] == label]
        keep += sorted(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows({"text": rows[i]["text"], "label": rows[i]["label"]} for i in keep)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="16,64")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--methods", default="frozen,gradual,full,auto")
    ap.add_argument("--setfit", action="store_true")
    ap.add_argument("--setfit-iterations", type=int, default=None,
                    help="SetFit num_iterations (the paper's 20); default: SetFit's own pair sampling")
    ap.add_argument("--out", default="bench/results/text_strategies.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="graftwork-text-"))
    os.environ.setdefault("GRAFTWORK_CACHE", str(work / "cache"))
    full = support_intents_folder(work / "full")
    results: dict = {"backbone": "hf:sentence-transformers/all-MiniLM-L6-v2", "runs": [],
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
                     "date": date.today().isoformat(),
                     "command": "python bench/text_strategies.py " + " ".join(
                         f"--{k} {v}" for k, v in vars(args).items() if k in ("sizes", "seeds", "methods"))
                     + (" --setfit" if args.setfit else "")
                     + (f" --setfit-iterations {args.setfit_iterations}" if args.setfit_iterations else "")}
    for size in [int(s) for s in args.sizes.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            data = work / f"n{size}-s{seed}"
            subsample(full / "train.csv", data / "train.csv", size, seed)
            (data / "test.csv").write_bytes((full / "test.csv").read_bytes())
            row: dict = {"per_class": size, "seed": seed}
            for method in args.methods.split(","):
                t0 = time.perf_counter()
                model = graftwork.fit(data, strategy=method, seed=seed)
                row[method] = {"test_accuracy": model.metrics["test"]["accuracy"],
                               "seconds": time.perf_counter() - t0, "kept_stage": model.metrics["kept_stage"],
                               "strategy": model.config["plan"]["strategy"],
                               "margins": {s["stage"]: s["margin"] for s in model.metrics["stages"]
                                           if s.get("margin")}}
                print(f"n={size} {method}: {row[method]}", flush=True)
            if args.setfit and PEERS.exists():
                out = work / f"setfit-{size}-{seed}.json"
                proc = subprocess.run([str(PEERS), str(Path(__file__).parent / "peers" / "setfit_fewshot.py"),
                                       "--train", str(data / "train.csv"), "--test", str(data / "test.csv"),
                                       "--seed", str(seed), "--out", str(out)]
                                      + (["--num-iterations", str(args.setfit_iterations)]
                                         if args.setfit_iterations else []), capture_output=True, text=True)
                row["setfit"] = json.loads(out.read_text()) if proc.returncode == 0 else {"error": proc.stderr[-2000:]}
            results["runs"].append(row)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
