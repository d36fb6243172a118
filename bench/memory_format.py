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

import torch

from graftwork.strategies.freezing import unfreeze_top
from steps import adamw_step, alternate, backbones_to_time, random_batch, step_arguments, write_rows


def trainer(backbone, head, channels_last: bool, trainable: int):
    """A training step of a private copy of (backbone, head) in one layout; returns step(x, y) -> seconds."""
    backbone, head = copy.deepcopy(backbone), copy.deepcopy(head)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    backbone.model.to(memory_format=fmt)
    unfreeze_top(backbone, trainable)
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    return adamw_step(backbone, head, params, prepare=lambda x: x.contiguous(memory_format=fmt))


def main() -> None:
    args = step_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                          "torchvision:mobilenet_v2,timm:efficientnet_lite0,timm:resnet18",
                          "bench/results/memory_format.json")
    x, y = random_batch(args)
    rows = []
    for name, backbone, head, stages in backbones_to_time(args):
        n_groups = stages[-1]
        for trainable in stages:  # gradual's first and last stage
            steps = {layout: trainer(backbone, head, layout, trainable) for layout in (False, True)}
            t = alternate(steps, x, y, args.steps)
            standard, last = t[False], t[True]
            rows.append({"backbone": name, "trainable_groups": f"{trainable}/{n_groups}",
                         "ms_standard": round(standard * 1000), "ms_channels_last": round(last * 1000),
                         "speedup": round(standard / last, 2)})
            print(json.dumps(rows[-1]), flush=True)
    write_rows(rows, args, "memory_format.py")


if __name__ == "__main__":
    main()
