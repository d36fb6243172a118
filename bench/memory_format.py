"""Benchmark: one training step (forward, backward, AdamW) of convolutional backbones in the standard (NCHW)
layout against channels-last, the layout graftwork uses for them (``ImageBackbone.channels_last``).

Randomly initialised networks (speed does not depend on the weights), batch 64, the layer groups of gradual
unfreezing's first stage (a quarter) and of its last (all) trainable, BatchNorm in eval mode as graftwork
fine-tunes by default. The two layouts take steps in turn in the same process (median of ``--steps`` each), so
the ratio holds on a shared machine.

Usage: python bench/memory_format.py [--backbones torchvision:mobilenet_v2,timm:efficientnet_lite0]
       [--image-size 96] [--steps 10] [--out bench/results/memory_format.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

from graftwork.backbones import build_backbone
from graftwork.strategies.finetune import stage_schedule
from graftwork.strategies.freezing import unfreeze_top


def trainer(backbone, head, channels_last: bool, trainable: int):
    """A training step of a private copy of (backbone, head) in one layout; returns step(x, y) -> seconds."""
    backbone, head = copy.deepcopy(backbone), copy.deepcopy(head)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    backbone.model.to(memory_format=fmt)
    unfreeze_top(backbone, trainable)
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        x = x.contiguous(memory_format=fmt)
        t0 = time.perf_counter()
        loss = F.cross_entropy(head(backbone(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="torchvision:mobilenet_v2,timm:efficientnet_lite0,timm:resnet18")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="bench/results/memory_format.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 10, (args.batch_size,))
    rows = []
    for name in args.backbones.split(","):
        backbone = build_backbone(name, pretrained=False).eval()
        head = torch.nn.Linear(backbone.feature_dim, 10)
        n_groups = len(backbone.layer_groups())
        for trainable in sorted({stage_schedule(n_groups, "gradual")[0], n_groups}):  # first and last stage
            steps = {layout: trainer(backbone, head, layout, trainable) for layout in (False, True)}
            times: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.steps + 2):  # alternating; the first two of each are warm-up (oneDNN primitives)
                for layout, step in steps.items():
                    seconds = step(x, y)
                    if i >= 2:
                        times[layout].append(seconds)
            standard, last = statistics.median(times[False]), statistics.median(times[True])
            rows.append({"backbone": name, "trainable_groups": f"{trainable}/{n_groups}",
                         "ms_standard": round(standard * 1000), "ms_channels_last": round(last * 1000),
                         "speedup": round(standard / last, 2)})
            print(json.dumps(rows[-1]), flush=True)
    result = {"rows": rows, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
              "date": date.today().isoformat(), "image_size": args.image_size, "batch_size": args.batch_size,
              "command": f"python bench/memory_format.py --backbones {args.backbones} --image-size {args.image_size}"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
