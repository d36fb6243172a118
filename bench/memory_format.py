"""Benchmark: one training step (forward, backward, AdamW) of convolutional backbones in the standard (NCHW)
layout against channels-last, the layout graftwork uses for them (``ImageBackbone.channels_last``).

Randomly initialised networks (speed does not depend on the weights), batch 64, the top ``--trainable`` layer
groups trainable as in a gradual-unfreezing stage, BatchNorm in eval mode as graftwork fine-tunes by default.
Both layouts are timed alternately in the same process, so the ratio holds on a shared machine.

Usage: python bench/memory_format.py [--backbones torchvision:mobilenet_v2,timm:efficientnet_lite0]
       [--image-size 96] [--steps 6] [--out bench/results/memory_format.json]
"""

from __future__ import annotations

import argparse
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
from graftwork.strategies.freezing import unfreeze_top


def step_seconds(backbone, head, x, y, channels_last: bool, steps: int) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    backbone.model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for _ in range(steps + 2):  # the first two are warm-up (oneDNN primitive creation)
        t0 = time.perf_counter()
        loss = F.cross_entropy(head(backbone.model(x).flatten(1)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="torchvision:mobilenet_v2,timm:efficientnet_lite0,timm:resnet18")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
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
        for trainable in sorted({max(1, n_groups // 4), n_groups}):
            unfreeze_top(backbone, trainable)
            standard = step_seconds(backbone, head, x, y, False, args.steps)
            last = step_seconds(backbone, head, x, y, True, args.steps)
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
