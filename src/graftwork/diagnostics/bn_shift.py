"""``domain-mismatch-bn``: do the target images look like the pretraining data, to the backbone's BatchNorm
layers?

Every BatchNorm layer stores the mean and variance of its input over the pretraining data (``running_mean``,
``running_var``). Target images are run through the backbone in eval mode and each BatchNorm layer's input
statistics are compared with the stored ones. A layer far off normalises its input to the wrong scale and
offset, so everything above it sees activations it was never trained on; this is the signal used by AdaBN
(Li et al., "Revisiting Batch Normalization For Practical Domain Adaptation", 2016). See
:func:`bn_statistics_shift` for the score and :data:`BN_THRESHOLDS` for the levels. :mod:`.mismatch` reads
this finding together with the pretrained-versus-random one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.base import Backbone
from ..data.dataset import Examples
from .findings import Finding

# Levels of the BatchNorm shift score (see bn_statistics_shift): warning from the first, high from the second.
# Calibrated on ImageNet weights, torchvision MobileNetV2 (IMAGENET1K_V1; 16, 48 and 96 images per set) / timm
# EfficientNet-Lite0 (96 images): crops of natural photos 0.37-0.43 / 0.38; the same greyscale or darkened
# (x0.3) 0.49-0.77 / 0.57-0.70; photos at 32x32 upscaled (CIFAR-like) 1.06-1.09; Fashion-MNIST 1.13-1.23 /
# 1.15; simulated fabric close-ups 1.68-1.70 / 1.95; Gaussian or uniform noise 1.66-1.90 / 2.02-2.07; flat
# colours 2.16 / 2.88. Colour-inverted photos score like photos (0.35 / 0.41): inversion barely moves
# BatchNorm statistics; the pretrained-vs-random check covers what this one cannot see.
BN_THRESHOLDS: tuple[float, float] = (0.9, 1.5)

# what to do about a domain shift, in the finding's advice and in the joint reading of `interpret`
ADAPT_ADVICE = ("fine-tune (--strategy full or gradual) so the lower layers adapt; try --bn-stats update "
                "(BatchNorm statistics recomputed from your data)")


@dataclass
class BNLayerShift:
    """How far one BatchNorm layer's input on the target data is from its stored (pretraining) statistics."""

    name: str
    channels: int
    mean_shift: float  # mean over channels of |mu_target - running_mean| / sqrt(running_var + eps)
    var_shift: float  # mean over channels of |log((var_target + eps) / (running_var + eps))|

    @property
    def score(self) -> float:
        return self.mean_shift + self.var_shift


@dataclass
class BNShift:
    """BatchNorm statistics shift over all layers; ``score`` is the mean of the layers' scores."""

    layers: list[BNLayerShift]
    examples: int

    @property
    def score(self) -> float:
        return float(np.mean([layer.score for layer in self.layers]))

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "examples": self.examples, "layers": [
            {"name": x.name, "channels": x.channels, "mean_shift": round(x.mean_shift, 4),
             "var_shift": round(x.var_shift, 4), "score": round(x.score, 4)} for x in self.layers]}


_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def bn_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """BatchNorm layers that hold running statistics, in definition order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, _BN_TYPES) and m.track_running_stats and m.running_mean is not None]


class _Moments:
    """Per-channel mean and variance of a BatchNorm layer's input, pooled over every batch: each batch's own
    (``torch.var_mean``, numerically stable, no float64 copy of the activations) combined in float64 with Chan et
    al.'s pairwise rule."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)  # sum of squared deviations from the mean

    def hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = inputs[0].detach()
        dims = [0, *range(2, x.dim())]  # every axis but the channels
        n = x.numel() // x.shape[1]
        var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
        mean, m2 = mean.cpu().double(), var.cpu().double() * n
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total

    @property
    def var(self) -> torch.Tensor:
        return self.m2 / max(self.count, 1)


@torch.inference_mode()
def bn_statistics_shift(model: nn.Module, batches: Iterable[Any], *, device: torch.device | str = "cpu"
                        ) -> BNShift | None:
    """Compare each BatchNorm layer's input statistics on ``batches`` with its stored running statistics.

    ``model`` is called on each batch in eval mode (so that every layer sees what it sees at inference);
    forward hooks pool, per channel, the mean ``mu`` and variance ``var`` of each BatchNorm layer's input over
    all batches and positions. Per layer, with the stored ``running_mean``/``running_var`` and the layer's
    ``eps``::

        mean_shift = mean_c |mu_c - running_mean_c| / sqrt(running_var_c + eps)
        var_shift  = mean_c |log((var_c + eps) / (running_var_c + eps))|

    Both are 0 for data distributed as the pretraining data; a mean shift of 1 is one pretraining standard
    deviation, a variance term of 0.69 a factor of two in variance. ``None`` when the model has no BatchNorm
    layers with running statistics (ViTs, transformers).
    """
    layers = bn_layers(model)
    if not layers:
        return None
    moments = [_Moments(m.num_features) for _, m in layers]
    handles = [m.register_forward_hook(acc.hook) for (_, m), acc in zip(layers, moments, strict=True)]
    was_training = model.training
    model.eval().to(device)
    examples = 0
    try:
        for batch in batches:
            if not isinstance(batch, torch.Tensor):  # a tokenizer's dict of tensors
                batch = {k: v.to(device) for k, v in batch.items()}
                examples += int(next(iter(batch.values())).shape[0])
            else:  # in the layout the backbone runs in (channels-last for convolutional networks)
                batch = model.batch_to(batch, device) if hasattr(model, "batch_to") else batch.to(device)
                examples += int(batch.shape[0])
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if examples == 0:
        return None
    out = []
    for (name, m), acc in zip(layers, moments, strict=True):
        mu, var = acc.mean, acc.var
        rm, rv = m.running_mean.detach().cpu().double(), m.running_var.detach().cpu().double()
        mean_shift = ((mu - rm).abs() / torch.sqrt(rv + m.eps)).mean().item()
        var_shift = torch.log((var + m.eps) / (rv + m.eps)).abs().mean().item()
        out.append(BNLayerShift(name, m.num_features, mean_shift, var_shift))
    return BNShift(out, examples)


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def prepared_batches(backbone: Backbone, modality: str, items: list[str], *, batch_size: int = 32
                     ) -> Iterator[Any]:
    """Batches of ``items`` prepared as the backbone prepares them (unreadable images are skipped)."""
    from ..data.dataset import DecodeError

    chunk: list[Any] = []
    for item in items:
        try:
            chunk.append(backbone.prepare(backbone.load(item)))
        except (DecodeError, OSError):
            continue
        if len(chunk) == batch_size:
            yield backbone.collate(chunk)
            chunk = []
    if chunk:
        yield backbone.collate(chunk)


def bn_mismatch_finding(shift: BNShift | None, thresholds: tuple[float, float] = BN_THRESHOLDS) -> Finding:
    """``domain-mismatch-bn``: info below ``thresholds[0]``, warning below ``thresholds[1]``, high above."""
    if shift is None:
        return Finding("domain-mismatch-bn", "info", "no BatchNorm statistics to compare (the backbone has "
                       "no BatchNorm layers); domain mismatch is judged by the pretrained-vs-random check "
                       "only.")
    score = shift.score
    worst_layers = sorted(shift.layers, key=lambda x: x.score, reverse=True)[:3]
    details = shift.to_dict() | {"thresholds": list(thresholds),
                                 "worst_layers": [x.name for x in worst_layers]}
    if score < thresholds[0]:
        return Finding("domain-mismatch-bn", "info",
                       "the data's activation statistics match those the backbone was pretrained on.",
                       value=score, metric="BN shift", details=details)
    level = "warning" if score < thresholds[1] else "high"
    how = "differ from" if level == "warning" else "are far from"
    return Finding(
        "domain-mismatch-bn", level,
        f"the data's activation statistics {how} those the backbone was pretrained on: BatchNorm inputs are "
        f"{score:.2f} off (mean shift in pretraining standard deviations plus |log variance ratio|, averaged "
        f"over layers; worst: {', '.join(x.name for x in worst_layers)}); the data look unlike the "
        "pretraining images.",
        advice=f"{ADAPT_ADVICE} and a larger --lr-ratio range (e.g. 1); expect lower accuracy than on natural "
               "images; a backbone pretrained on similar data would transfer better.",
        value=score, metric="BN shift", details=details)


def check_bn_mismatch(backbone: Backbone, examples: Examples, *, max_items: int = 64, batch_size: int = 32,
                      device: torch.device | str = "cpu", seed: int = 0,
                      memo_dir: str | Path | None = None) -> Finding:
    """``domain-mismatch-bn`` on (a sample of at most ``max_items`` of) ``examples``.

    64 images are enough: on MobileNetV2 the score moved by 0.01-0.11 between 16 and 96 images. With
    ``memo_dir``, the finding is remembered there, keyed by the backbone's features and the content of the
    sampled images, so a second run on the same data needs no backbone pass.
    """
    items = [examples.items[i] for i in _sample(len(examples), max_items, seed)]
    memo = _memo_file(Path(memo_dir), backbone, examples.modality, items) if memo_dir is not None else None
    if memo is not None and memo.is_file():
        return Finding.from_dict(json.loads(memo.read_text(encoding="utf-8")))
    batches = prepared_batches(backbone, examples.modality, items, batch_size=batch_size)
    found = bn_mismatch_finding(bn_statistics_shift(backbone, batches, device=device))
    if memo is not None:
        from ..run import write_json

        memo.parent.mkdir(parents=True, exist_ok=True)
        write_json(memo, found.to_dict())
    return found


def _memo_file(root: Path, backbone: Backbone, modality: str, items: list[str]) -> Path:
    from ..features.cache import content_key

    h = hashlib.sha256(f"bn-check/1\0{backbone.cache_key()}".encode())
    for item in items:
        try:
            h.update(content_key(modality, item).encode())
        except OSError:  # unreadable: skipped by the check, keyed by its name
            h.update(item.encode())
    return root / "checks" / f"{h.hexdigest()[:32]}.json"
