"""Timing helpers shared by the step benchmarks (``memory_format.py``, ``batchnorm_fold.py``): two variants of a
network take steps in turn in one process, and each one's median is compared, so the ratio holds on a shared
machine."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from graftwork.backbones import build_backbone
from graftwork.strategies.gradual import stage_schedule

Step = Callable[[torch.Tensor, torch.Tensor], float]


def adamw_step(forward: Callable[[torch.Tensor], torch.Tensor], head: torch.nn.Module,
               params: Iterable[torch.nn.Parameter],
               prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> Step:
    """One training step (forward, backward, AdamW) of ``head(forward(x))``; returns its seconds (``prepare``,
    e.g. a layout change of the input, is not timed)."""
    opt = torch.optim.AdamW(list(params), lr=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        x = prepare(x)
        t0 = time.perf_counter()
        loss = F.cross_entropy(head(forward(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def alternate(steps: dict[bool, Step], x: torch.Tensor, y: torch.Tensor, n: int) -> dict[bool, float]:
    """Median seconds of ``n`` steps of each variant, taken in turn after two warm-up steps each (oneDNN
    creates its kernels on the first calls)."""
    times: dict[bool, list[float]] = {k: [] for k in steps}
    for i in range(n + 2):
        for key, step in steps.items():
            seconds = step(x, y)
            if i >= 2:
                times[key].append(seconds)
    return {k: statistics.median(v) for k, v in times.items()}


def step_arguments(ap: argparse.ArgumentParser, backbones: str, out: str) -> argparse.Namespace:
    """The options every step benchmark takes; parsed."""
    ap.add_argument("--backbones", default=backbones)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=out)
    return ap.parse_args()


def write_rows(rows: list[dict], args: argparse.Namespace, script: str) -> None:
    """The rows, with the machine, the date and the command that measured them, as JSON in ``args.out``."""
    result = {"rows": rows, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
              "date": date.today().isoformat(), "image_size": args.image_size, "batch_size": args.batch_size,
              "command": f"python bench/{script} --backbones {args.backbones} --image-size {args.image_size} "
                         f"--steps {args.steps}"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def random_batch(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random batch of ``--batch-size`` images of ``--image-size`` and 10-class labels."""
    torch.manual_seed(0)
    return (torch.randn(args.batch_size, 3, args.image_size, args.image_size),
            torch.randint(0, 10, (args.batch_size,)))


def backbones_to_time(args: argparse.Namespace) -> Iterator[tuple[str, Any, torch.nn.Linear, list[int]]]:
    """Each of ``--backbones``, randomly initialised (speed does not depend on the weights) and in eval mode, with
    a 10-class head and the trainable-group counts of gradual unfreezing's first and last stage."""
    for name in args.backbones.split(","):
        backbone = build_backbone(name, pretrained=False).eval()
        n_groups = len(backbone.layer_groups())
        stages = sorted({stage_schedule(n_groups, "gradual")[0], n_groups})
        yield name, backbone, torch.nn.Linear(backbone.feature_dim, 10), stages
