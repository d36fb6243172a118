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

:func:`diagnose_mismatch` runs both and turns them into one interpretation with advice. The BatchNorm check
lives in :mod:`.bn_shift`; its names are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..backbones.base import Backbone
from ..console import SILENT, Console
from ..data.dataset import Examples
from .bn_shift import (
    ADAPT_ADVICE,
    BN_THRESHOLDS,
    BNLayerShift,
    BNShift,
    bn_layers,
    bn_mismatch_finding,
    bn_statistics_shift,
    check_bn_mismatch,
)
from .findings import Finding, worst
from .transferability import linear_probe_predictions, logme, paired_gap

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


__all__ = ["ADAPT_ADVICE", "BN_THRESHOLDS", "BNLayerShift", "BNShift", "MismatchReport", "bn_layers",
           "bn_mismatch_finding", "bn_statistics_shift", "check_bn_mismatch", "check_pretrained_vs_random",
           "compare_to_random", "diagnose_mismatch", "interpret", "match_preprocessing",
           "pretrained_vs_random_finding", "random_control"]
