"""Plot "how much data do you need": test accuracy against training images per class, one line per method.

Reads one or more JSON files written by ``bench/strategy_curve.py`` (runs of the same sizes with other seeds
or methods are merged), averages over seeds, draws the mean with the min-max range, and prints the table it
plotted (mean, and the number of seeds behind each cell). ``FILE:m1,m2`` takes only those methods from a file
(e.g. the peers from a run made before graftwork's recipe changed).

Usage: python bench/plot_curve.py bench/results/a.json bench/results/old.json:fastai,scratch --out plot.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

ORDER = ["auto", "gradual", "frozen", "full", "probe", "fastai", "scratch"]
LABELS = {"probe": "scikit-learn probe (C=1)", "fastai": "fastai fine_tune(5)", "scratch": "from scratch"}


def collect(paths: list[str]) -> dict[str, dict[int, dict[int, float]]]:
    """method -> per_class -> seed -> test accuracy (a later file overrides an earlier one)."""
    acc: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for spec in paths:
        path, _, only = spec.partition(":")
        keep = set(only.split(",")) if only else None
        for run in json.loads(Path(path).read_text())["runs"]:
            for method, result in run.items():
                if keep is not None and method not in keep:
                    continue
                if isinstance(result, dict) and "test_accuracy" in result:
                    acc[method][run["per_class"]][run["seed"]] = result["test_accuracy"]
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="FILE or FILE:method,method")
    ap.add_argument("--out", type=Path, default=Path("bench/strategy_curve.png"))
    ap.add_argument("--title", default="Fashion-MNIST, MobileNetV2 (ImageNet), 96 px")
    args = ap.parse_args()
    acc = collect(args.results)
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    sizes = sorted({n for per in acc.values() for n in per})
    print("| per class | " + " | ".join(LABELS.get(m, m) for m in ORDER if m in acc) + " |")
    print("|---" * (1 + sum(m in acc for m in ORDER)) + "|")
    for n in sizes:
        cells = []
        for m in ORDER:
            if m in acc:
                seeds = acc[m].get(n, {})
                cells.append(f"{np.mean(list(seeds.values())):.3f} ({len(seeds)})" if seeds else "-")
        print(f"| {n} | " + " | ".join(cells) + " |")
    for m in ORDER:
        if m not in acc:
            continue
        xs = [n for n in sizes if acc[m].get(n)]
        vals = [list(acc[m][n].values()) for n in xs]
        mean = [float(np.mean(v)) for v in vals]
        ax.plot(xs, mean, marker="o", label=LABELS.get(m, m), linestyle="--" if m in ("fastai", "probe") else "-")
        ax.fill_between(xs, [min(v) for v in vals], [max(v) for v in vals], alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("training images per class")
    ax.set_ylabel("test accuracy (2,000 images)")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
