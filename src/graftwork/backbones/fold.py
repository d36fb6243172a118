"""BatchNorm folded into the convolution before it, in the forward pass, while it uses its running statistics.

A BatchNorm layer in eval mode is a fixed per-channel affine map, ``y = (x - mean) / sqrt(var + eps) * gamma +
beta``, so ``conv -> bn`` equals one convolution with the weights scaled per output channel and a bias. That is
the classic inference optimisation (``torch.nn.utils.fuse_conv_bn_eval``), and graftwork's fine-tuning keeps the
pretrained running statistics, so it holds while training too: the folded weights are computed from the
convolution's weights and the BatchNorm's scale and shift at every forward pass, which keeps them differentiable,
so the gradients reaching ``conv.weight``, ``bn.weight`` and ``bn.bias`` are the unfolded network's (to float
rounding). It saves a pass over every activation forward and backward: MobileNetV2 at 96 px ran its training
steps 1.3-1.5x and its evaluation forward 1.3x faster on CPU (``bench/batchnorm_fold.py``, BENCHMARKS.md).

Only what is provably the same is folded: a plain ``nn.Conv2d`` directly followed by a plain ``nn.BatchNorm2d``
inside an ``nn.Sequential`` (so nothing else reads the convolution's raw output; torchvision's
``Conv2dNormActivation`` blocks), at a call where the BatchNorm is in eval mode with running statistics and
neither layer has a hook (a hook would see the folded values: graftwork's BatchNorm-statistics check hooks
BatchNorm inputs). Subclasses (timm's ``BatchNormAct2d``, which adds its activation) are left alone. Nothing is
replaced: the layers' ``forward`` is swapped only inside the context, so state dicts, checkpoints and saved
models are the plain network's.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from itertools import pairwise

import torch
from torch import nn
from torch.nn.modules import module as _module


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """``(conv, bn)`` pairs that can be folded: adjacent in an ``nn.Sequential``, of exactly these types."""
    pairs = []
    for m in model.modules():
        if isinstance(m, nn.Sequential):
            for conv, bn in pairwise(m):
                if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.num_features == conv.out_channels:
                    pairs.append((conv, bn))
    return pairs


def _uses_running_stats(bn: nn.BatchNorm2d) -> bool:
    return not bn.training and bn.running_mean is not None and bn.running_var is not None


def _hooked(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks)


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    if not _uses_running_stats(bn):
        return nn.Conv2d.forward(conv, x)
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = bn.weight * scale
    shift = -bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return conv._conv_forward(x, conv.weight * scale.reshape(-1, 1, 1, 1), shift)


def _folded_bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    return x if _uses_running_stats(bn) else nn.BatchNorm2d.forward(bn, x)


_lock = threading.Lock()
_active: weakref.WeakKeyDictionary[nn.Module, list] = weakref.WeakKeyDictionary()  # model -> [users, pairs]


@contextmanager
def folded_batchnorm(model: nn.Module) -> Iterator[int]:
    """Inside the context, ``model``'s foldable conv/BatchNorm pairs run as one convolution; yields how many.

    Pairs are found at entry (the network may have changed since the last call: adapters wrap convolutions);
    whether a pair runs folded is decided at each call from the BatchNorm's mode, so the same network can train
    with some BatchNorm layers updating their statistics and others fixed. Forward passes of one network in
    several threads (a server) share the patch, which is removed when the last of them leaves."""
    if _module._global_forward_hooks or _module._global_forward_pre_hooks:
        yield 0
        return
    with _lock:
        entry = _active.get(model)
        if entry is None:
            pairs = [(c, b) for c, b in conv_bn_pairs(model)
                     if not (_hooked(c) or _hooked(b) or "forward" in c.__dict__ or "forward" in b.__dict__)]
            for conv, bn in pairs:
                conv.forward = partial(_folded_conv, conv, bn)
                bn.forward = partial(_folded_bn, bn)
            entry = _active[model] = [0, pairs]
        entry[0] += 1
    try:
        yield len(entry[1])
    finally:
        with _lock:
            entry[0] -= 1
            if entry[0] == 0:
                for conv, bn in entry[1]:
                    del conv.forward
                    del bn.forward
                del _active[model]
