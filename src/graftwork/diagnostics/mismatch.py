"""Domain mismatch: do the data look like what the backbone was pretrained on, and does pretraining help?

Two checks, each returning a :class:`Finding`:

* ``domain-mismatch-bn`` (CNNs with BatchNorm): every BatchNorm layer stores the mean and variance of its
  input over the pretraining data (``running_mean``, ``running_var``). Target images are run through the
  backbone in eval mode and each BatchNorm layer's input statistics are compared with the stored ones. A layer
  far off normalises its input to the wrong scale and offset, so everything above it sees activations it was
  never trained on; this is the signal used by AdaBN (Li et al., "Revisiting Batch Normalization For Practical
  Domain Adaptation", 2016). See :func:`bn_statistics_shift` for the score and :data:`BN_THRESHOLDS` for the
  levels.
* ``pretrained-not-helping`` (any backbone): cross-validated linear-probe accuracy of the pretrained features
  against the features of the same architecture with random weights. When the pretrained features separate
  the classes no better than random ones, nothing learned in pretraining is being transferred.

:func:`diagnose_mismatch` runs both and turns them into one interpretation with advice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.base import Backbone
from ..console import SILENT, Console
from ..data.dataset import Examples
from .findings import Finding, worst
from .transferability import linear_probe_predictions, logme, paired_gap

# Levels of the BatchNorm shift score (see bn_statistics_shift): warning from the first, high from the second.
# Calibrated on ImageNet weights, torchvision MobileNetV2 (IMAGENET1K_V1; 16, 48 and 96 images per set) / timm
# EfficientNet-Lite0 (96 images): crops of natural photos 0.37-0.43 / 0.38; the same greyscale or darkened
# (x0.3) 0.49-0.77 / 0.57-0.70; photos at 32x32 upscaled (CIFAR-like) 1.06-1.09; Fashion-MNIST 1.13-1.23 /
# 1.15; simulated fabric close-ups 1.68-1.70 / 1.95; Gaussian or uniform noise 1.66-1.90 / 2.02-2.07; flat
# colours 2.16 / 2.88. Colour-inverted photos score like photos (0.35 / 0.41): inversion barely moves
# BatchNorm statistics; the pretrained-vs-random check covers what this one cannot see.
BN_THRESHOLDS: tuple[float, float] = (0.9, 1.5)

# pretrained-not-helping compares linear-probe accuracy with pretrained and with random weights, example by
# example (paired_gap). Info when pretrained beats random by more than PRETRAINED_MARGIN (absolute accuracy) and
# by more than PAIRED_Z standard errors of the paired difference; high when the gain is no more than the margin
# or one standard error (no evidence that pretraining helps); warning in between (a gain noise could explain).
# Measured with ImageNet MobileNetV2: Fashion-MNIST (200 images) gains 0.11 = 3.1 standard errors (info);
# simulated fabric defects (120) 0.075 = 1.4 (warning); with labels shuffled, Fashion-MNIST 0.005 = 0.2 (high)
# and fabric 0.068 = 1.1 (warning: on random labels the gain exceeds one standard error about one time in six).
PRETRAINED_MARGIN = 0.02
PAIRED_Z = 2.0
HIGH_Z = 1.0
# When random features already reach this accuracy the comparison cannot show a benefit (ceiling).
CEILING_ACCURACY = 0.98
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
    """Per-channel sums of a BatchNorm layer's input, pooled over every batch (float64)."""

    def __init__(self, channels: int):
        self.count = 0
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sum_sq = torch.zeros(channels, dtype=torch.float64)

    def hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = inputs[0].detach().to(torch.float64)
        x = x.transpose(0, 1).reshape(x.shape[1], -1)  # [channels, batch * positions]
        self.count += x.shape[1]
        self.sum += x.sum(1).cpu()
        self.sum_sq += (x * x).sum(1).cpu()


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
            else:
                batch = batch.to(device)
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
        mu = acc.sum / acc.count
        var = (acc.sum_sq / acc.count - mu * mu).clamp_min(0.0)
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


def pretrained_vs_random_finding(pretrained: np.ndarray, random: np.ndarray, labels: np.ndarray | list, *,
                                 seed: int = 0, margin: float = PRETRAINED_MARGIN) -> Finding:
    """``pretrained-not-helping`` from the features of the same examples through pretrained and random
    weights.

    Compares the cross-validated linear-probe accuracy of the two (same folds, so the comparison is example
    by example, see :func:`paired_gap`): high when pretrained features gain no more than ``margin`` or
    :data:`HIGH_Z` standard errors over random ones, warning when they gain less than :data:`PAIRED_Z`
    standard errors, info when they gain more, or when random features already separate the classes
    (accuracy >= :data:`CEILING_ACCURACY`: the data are too easy for the comparison to show anything). LogME
    of both is reported too.
    """
    pred_p = linear_probe_predictions(pretrained, labels, seed=seed)
    pred_r = linear_probe_predictions(random, labels, seed=seed)
    return compare_to_random(pred_p, pred_r, labels, logme_pretrained=logme(pretrained, labels),
                             logme_random=logme(random, labels), margin=margin)


def compare_to_random(pred_pretrained: np.ndarray | None, pred_random: np.ndarray | None,
                      labels: np.ndarray | list, *, logme_pretrained: float | None = None,
                      logme_random: float | None = None,
                      margin: float = PRETRAINED_MARGIN, what: str = "the pretrained weights",
                      control: str = "random weights") -> Finding:
    """``pretrained-not-helping`` from out-of-fold linear-probe predictions (same folds) of pretrained and
    random features; see :func:`pretrained_vs_random_finding`. ``what`` and ``control`` name the two in the
    message."""
    if pred_pretrained is None or pred_random is None:
        return Finding("pretrained-not-helping", "info", "too few examples per class (fewer than 2) to "
                       "compare pretrained and random features.")
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    acc_p, acc_r = float(np.mean(pred_pretrained == codes)), float(np.mean(pred_random == codes))
    gap = paired_gap(pred_pretrained, pred_random, codes)
    chance = float(np.bincount(codes).max() / len(codes))
    details = {"pretrained_accuracy": acc_p, "random_accuracy": acc_r, "majority_accuracy": chance,
               "gap": gap.gap, "gap_stderr": gap.stderr, "margin": margin, "z": [HIGH_Z, PAIRED_Z],
               "pretrained_logme": logme_pretrained, "random_logme": logme_random, "examples": len(codes)}
    numbers = (f"linear-probe accuracy {acc_p:.3f} with {what} vs {acc_r:.3f} with {control} (majority class "
               f"{chance:.3f}; {len(codes)} examples, cross-validated)")
    common = {"value": gap.gap, "metric": "accuracy gain over random"}
    if gap.exceeds(margin, PAIRED_Z):
        return Finding("pretrained-not-helping", "info", f"pretraining helps: {numbers}.", details=details,
                       **common)
    if acc_r >= CEILING_ACCURACY:
        return Finding("pretrained-not-helping", "info", f"the classes are separable even with {control}, so "
                       f"pretraining cannot show a benefit here: {numbers}.",
                       details=details | {"ceiling": True}, **common)
    if gap.exceeds(margin, HIGH_Z):
        return Finding(
            "pretrained-not-helping", "warning",
            f"pretraining may help, but by no more than noise could explain: {numbers}; the gain is below "
            f"{PAIRED_Z:g} standard errors ({PAIRED_Z * gap.stderr:.3f}).",
            advice="rank or diagnose with more labelled examples to tell; meanwhile compare fine-tuning "
                   "(--strategy gradual) with the frozen backbone, or try a backbone pretrained on data closer "
                   "to yours.", details=details, **common)
    return Finding(
        "pretrained-not-helping", "high",
        f"pretraining is not helping: the classes are separated no better with {what} than with {control}: "
        f"{numbers}; the gain is not above the noise margin {max(margin, HIGH_Z * gap.stderr):.3f}.",
        advice="nothing learned in pretraining is transferring: check the labels (are they consistent?), "
               "try a backbone pretrained on data closer to yours, or fine-tune the whole network "
               "(--strategy full) with as much data as you can; a frozen backbone will not do better than "
               "this.",
        details=details, **common)


def random_control(backbone: Backbone, *, seed: int = 0) -> Backbone:
    """The same architecture as ``backbone``, randomly initialised (seeded), with the same preprocessing."""
    from ..backbones import build_backbone
    from ..backbones.audio import options_from_preprocessing

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        control = build_backbone(backbone.info.name, pretrained=False,
                                 **options_from_preprocessing(backbone.preprocessing))
    finally:
        torch.random.set_rng_state(state)
    match_preprocessing(control, backbone)
    return control


def match_preprocessing(control: Backbone, reference: Backbone) -> None:
    """Give a random control the input size of its pretrained reference.

    Built without weights, a torchvision model takes the preprocessing of its newest weights (resize 232 for
    MobileNetV2's V2 weights, 256 for the V1 weights installed here); the comparison must differ in the
    weights only: on 120 fabric images, random-weight probe accuracy moved from 0.53 to 0.63 with that resize.
    """
    from ..backbones.vision import ImageBackbone

    if isinstance(reference, ImageBackbone) and isinstance(control, ImageBackbone):
        if (control.pre.crop, control.pre.resize) != (reference.pre.crop, reference.pre.resize):
            control.set_image_size(reference.pre.crop, reference.pre.resize)


def _features(backbone: Backbone, examples: Examples, *, cache_dir: str | None, use_cache: bool,
              device: torch.device | str, batch_size: int, console: Console) -> tuple[np.ndarray, np.ndarray]:
    from ..features import FeatureCache, default_cache_dir, extract_features

    cache = FeatureCache(cache_dir or default_cache_dir(), backbone.cache_key()) if use_cache else None
    try:
        ext = extract_features(backbone, examples.modality, examples.items, examples.origins, cache=cache,
                               batch_size=batch_size, device=torch.device(device), console=console,
                               description="features")
    finally:
        if cache is not None:
            cache.close()
    return ext.features, ext.ok


def check_pretrained_vs_random(backbone: Backbone, examples: Examples, *,
                               random_backbone: Backbone | None = None, features: np.ndarray | None = None,
                               cache_dir: str | None = None, use_cache: bool = True,
                               device: torch.device | str = "cpu", batch_size: int = 32, seed: int = 0,
                               console: Console = SILENT) -> Finding:
    """``pretrained-not-helping`` on ``examples``: extracts (cached) features with ``backbone`` (unless
    ``features`` of all of ``examples`` are given) and with its random control (:func:`random_control` unless
    ``random_backbone`` is given)."""
    control = random_backbone or random_control(backbone, seed=seed)
    kw = {"cache_dir": cache_dir, "use_cache": use_cache, "device": device, "batch_size": batch_size,
          "console": console}
    if features is None:
        features, ok = _features(backbone, examples, **kw)
    else:
        ok = np.ones(len(examples), dtype=bool)
    rand, ok_r = _features(control, examples, **kw)
    both = ok & ok_r
    labels = np.asarray(examples.labels)
    return pretrained_vs_random_finding(features[both[ok]], rand[both[ok_r]], labels[both], seed=seed)


@dataclass
class MismatchReport:
    """The domain-mismatch findings and what they mean together."""

    findings: list[Finding]
    interpretation: str
    advice: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return worst(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "interpretation": self.interpretation, "advice": self.advice,
                "findings": [f.to_dict() for f in self.findings]}


def interpret(bn: Finding | None, transfer: Finding | None) -> tuple[str, list[str]]:
    """One reading of the two findings together, and the advice that follows from it."""
    shifted = bn is not None and bn.severity != "info"
    far = bn is not None and bn.severity == "high"
    useless = transfer is not None and transfer.severity == "high"
    unsure = transfer is not None and transfer.severity == "warning"
    if shifted and useless:
        return ("the data look unlike the pretraining data and the pretrained features do not help: transfer "
                "learning is failing here.",
                ["fine-tune the whole network (--strategy full) or pick a backbone pretrained on similar "
                 "data",
                 "expect much lower accuracy than on natural images; more labelled data will matter most"])
    if shifted:
        distance = "are far from" if far else "differ from"
        helps = ("the pretrained features help little if at all" if unsure else
                 "the pretrained features still help: the higher layers transfer, the lower ones are seeing "
                 "unfamiliar inputs")
        return (f"the data {distance} the pretraining data, but {helps}.",
                [ADAPT_ADVICE, "expect lower accuracy than on natural images"])
    if useless:
        return ("the inputs look like the pretraining data, yet the pretrained features separate the classes "
                "no better than random ones: the classes differ in something pretraining did not learn to "
                "see, or the labels are inconsistent.",
                ["check a sample of the labels",
                 "try fine-tuning (--strategy gradual or full) or another backbone"])
    if unsure:
        return ("the inputs look like the pretraining data, but the pretrained features help little if at "
                "all on these classes.",
                ["compare fine-tuning (--strategy gradual) with the frozen backbone",
                 "more labelled examples would make the comparison clearer"])
    return ("the pretrained features suit these data: a frozen backbone (the default plan) is a sound start.",
            [])


def diagnose_mismatch(backbone: Backbone, examples: Examples, *, random_backbone: Backbone | None = None,
                      features: np.ndarray | None = None, max_bn_items: int = 64,
                      cache_dir: str | None = None, use_cache: bool = True,
                      device: torch.device | str = "cpu", batch_size: int = 32, seed: int = 0,
                      console: Console = SILENT) -> MismatchReport:
    """Both domain-mismatch checks on ``examples`` (usually the training split) and their interpretation."""
    bn = check_bn_mismatch(backbone, examples, max_items=max_bn_items, batch_size=batch_size, device=device,
                           seed=seed) if bn_layers(backbone) else None
    transfer = check_pretrained_vs_random(backbone, examples, random_backbone=random_backbone,
                                          features=features, cache_dir=cache_dir, use_cache=use_cache,
                                          device=device, batch_size=batch_size, seed=seed, console=console)
    text, advice = interpret(bn, transfer)
    return MismatchReport([f for f in (bn, transfer) if f is not None], text, advice)

