"""How graftwork's generation defaults (learning rate, epochs, LoRA rank) were chosen: a grid on two tasks, then
a check of the choice on two tasks the grid never saw.

Every configuration is one ``graftwork.fit(..., task="generate", strategy="lora")`` on SmolLM2-135M-Instruct
(the offline default), batch 8, LoRA alpha = 2 x rank on every linear projection, in its own process. Recorded:
test exact match (64 prompts, greedy), the kept epoch, validation exact match per epoch, training seconds.

    .venv/bin/python bench/generate_sweep.py --tasks extract,dates --lrs 3e-4,1e-3,3e-3 --epochs 3,5 --ranks 8
    .venv/bin/python bench/generate_sweep.py --tasks numbers,sort --lrs 1e-3 --epochs 3,5 --ranks 8
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate_compare import run_graftwork, run_isolated  # noqa: E402
from generate_tasks import write_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="extract,dates")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--lrs", default="3e-4,1e-3,3e-3")
    parser.add_argument("--epochs", default="3,5")
    parser.add_argument("--ranks", default="8")
    parser.add_argument("--seed", type=int, default=0, help="the training set drawn (the test set is fixed)")
    parser.add_argument("--out", default="bench/results/generate_sweep.json")
    parser.add_argument("--one", nargs=6, metavar=("TASK", "SIZE", "LR", "EPOCHS", "RANK", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        task, size, lr, epochs, rank, seed = args.one
        with tempfile.TemporaryDirectory() as tmp:
            data = write_task(task, Path(tmp) / "data", int(size), seed=int(seed))
            result = run_graftwork(data, Path(tmp) / "run", lr=float(lr), epochs=int(epochs), rank=int(rank),
                                   few_shot=0, seed=int(seed))
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else []
    grid = itertools.product(args.tasks.split(","), args.lrs.split(","), args.epochs.split(","),
                             args.ranks.split(","))
    for task, lr, epochs, rank in grid:
        row = {"task": task, "train_size": args.size, "lr": float(lr), "epochs": int(epochs), "rank": int(rank),
               "seed": args.seed}
        row |= run_isolated(__file__, ["--one", task, str(args.size), lr, epochs, rank, str(args.seed)])
        print(json.dumps(row), flush=True)
        results.append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
