"""Benchmark: BatchNorm folded into the convolution before it (``graftwork.backbones.fold``) against the plain
network, for a training step (forward, backward, AdamW) and for an evaluation forward pass.

Randomly initialised networks (speed does not depend on the weights), channels-last as graftwork runs them,
BatchNorm with fixed (pretrained) statistics as graftwork fine-tunes by default, the layer groups of gradual
unfreezing's first stage (a quarter) and of its last (all) trainable. Plain and folded take steps in turn in the
same process (median of ``--steps`` each), so the ratio holds on a shared machine. ``pairs`` is how many
conv/BatchNorm pairs the backbone folds (0: its BatchNorm layers are not ``nn.Sequential`` neighbours of a
plain convolution, e.g. timm's ``BatchNormAct2d``, or ResNet blocks' named ``conv1``/``bn1``).

Usage: python bench/batchnorm_fold.py [--backbones torchvision:mobilenet_v2,...] [--image-size 96]
       [--steps 10] [--out bench/results/batchnorm_fold.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from graftwork.backbones.fold import conv_bn_pairs
from graftwork.strategies.freezing import unfreeze_top
from steps import adamw_step, alternate, backbones_to_time, random_batch, step_arguments, write_rows


def _forward(backbone, folded: bool):
    """The backbone's forward (which folds) or its network called directly (plain)."""
    return backbone if folded else (lambda x: backbone.model(x).flatten(1))


def trainer(backbone, head, folded: bool, trainable: int):
    backbone, head = copy.deepcopy(backbone), copy.deepcopy(head)
    unfreeze_top(backbone, trainable)
    backbone.eval()  # BatchNorm statistics fixed (graftwork's default); nothing else in these nets differs
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    return adamw_step(_forward(backbone, folded), head, params)


def evaluator(backbone, folded: bool):
    forward = _forward(backbone.eval(), folded)

    @torch.no_grad()
    def step(x: torch.Tensor, _y: torch.Tensor) -> float:
        t0 = time.perf_counter()
        forward(x)
        return time.perf_counter() - t0

    return step


def main() -> None:
    args = step_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                          "torchvision:mobilenet_v2,torchvision:efficientnet_b0,torchvision:resnet18,timm:efficientnet_lite0",
                          "bench/results/batchnorm_fold.json")
    x, y = random_batch(args)
    x = x.contiguous(memory_format=torch.channels_last)
    rows = []
    for name, backbone, head, stages in backbones_to_time(args):
        n_groups = stages[-1]
        pairs = len(conv_bn_pairs(backbone.model))
        cases = [(f"train {t}/{n_groups} groups", {f: trainer(backbone, head, f, t) for f in (False, True)})
                 for t in stages]
        cases.append(("eval forward", {f: evaluator(copy.deepcopy(backbone), f) for f in (False, True)}))
        for what, steps in cases:
            t = alternate(steps, x, y, args.steps)
            rows.append({"backbone": name, "pairs": pairs, "step": what, "ms_plain": round(t[False] * 1000),
                         "ms_folded": round(t[True] * 1000), "speedup": round(t[False] / t[True], 2)})
            print(json.dumps(rows[-1]), flush=True)
    write_rows(rows, args, "batchnorm_fold.py")


if __name__ == "__main__":
    main()
