"""Choosing a strategy from the data: the plan is printed before training and saved with the run.

``auto`` starts from the guidance practitioners use, keyed on the median number of training examples per
class, and follows what graftwork's benchmarks measured where the two differ:

* fewer than ``FROZEN_BELOW`` (25): ``frozen``. A validation split this small cannot tell fine-tuning stages
  apart reliably, and a linear probe on pretrained features is hard to beat;
* images from ``FROZEN_BELOW`` up to ``IMAGE_GRADUAL_FROM`` (500): ``full`` after the probe, which is LP-FT
  (Kumar et al. 2022): the converged probe's head, then every layer at discriminative rates (the top group at a
  tenth of the head's rate, x0.8 per group below), with BatchNorm's pretrained statistics kept; the probe is
  kept when fine-tuning does not beat it on validation. The usual advice keeps this much data frozen or
  unfreezes gradually; measured on MobileNetV2 / Fashion-MNIST (BENCHMARKS.md), LP-FT was as accurate as
  gradual unfreezing at 50 and 200 per class (3 seeds) in half its time;
* from ``IMAGE_GRADUAL_FROM`` up to ``FULL_FROM`` (10,000) images per class, and for audio (and any other
  modality) from ``FROZEN_BELOW``: ``gradual``. Linear probe first, then unfreeze layer groups from the top while
  validation improves. At 1,000 images per class its three stages (12 epochs) reached 1 point more than LP-FT's
  one stage of 4 epochs (0.889 vs 0.8785, mean of two seeds), in 1.9x its time; on spoken keywords it was above the
  probe. From ``FULL_FROM`` on: ``full``.

Text is like images, from fewer examples: a pretrained sentence encoder fine-tunes well from a handful per
class, so from ``TEXT_FINETUNE_FROM`` (8) examples per class ``auto`` picks ``full`` for text. Measured on the
support-intent set with all-MiniLM-L6-v2 (BENCHMARKS.md): full fine-tuning above the probe by 4-5 points at 16
and 64 per class, and above gradual unfreezing at 16 in half its time.

A large backbone (``LORA_FROM_PARAMS``, 80 million parameters, or more: roberta-base, ViT-B and up) gets ``lora``
instead of ``gradual`` or ``full``: fine-tuning every weight of such a network costs gradients and AdamW moments
for all of them (about 3x the weights' memory) and overfits a small dataset easily, while low-rank adapters train
~1% of the weights and keep most of the gain (Hu et al. 2021). Smaller backbones fine-tune directly, which is
cheap for them and adapts them fully.

**How the choices are made.** When the validation split is small (:data:`.selection.SMALL_VAL_PER_CLASS`: fewer
than 20 validation examples in the smallest class), the probe's regularisation is chosen by repeated stratified
k-fold cross-validation over training + validation data, near-ties going to the stronger regularisation; a
fine-tuning stage must then beat the probe by more than the standard error of the paired difference on validation,
else the probe (refit on all the data) is kept. Below 20 validation examples, on at most 120 examples in all,
the decision is made by k-fold fine-tuning instead (:mod:`graftwork.classify.crossval`), and text trains SetFit's
recipe there whatever the plan (:mod:`graftwork.classify.fewshot_text`, plan ``setfit``). Whatever the size, a
stage whose validation predictions collapse onto one class, or whose validation loss is worse than the probe's,
is never kept. :func:`selection_for` says
which applies, and the plan prints and records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .selection import (
    CV_FINE_TUNE_MAX,
    CV_FOLDS,
    CV_REPEATS,
    MIN_LOSS_EVIDENCE,
    cross_validates_fine_tuning,
    rule_text,
    small_validation,
)

FROZEN_BELOW = 25
FULL_FROM = 10_000
IMAGE_GRADUAL_FROM = 500
LORA_FROM_PARAMS = 80_000_000
TEXT_FINETUNE_FROM = 8
IMBALANCE_RATIO = 3.0

_WHAT = {
    "frozen": "backbone frozen; features computed once and cached; a new linear head trained on them",
    "gradual": "linear probe on cached features, then unfreeze the top quarter, half, all of the layer groups, "
               "each stage with discriminative learning rates, while validation improves; keep the best stage",
    "full": "linear probe on cached features, then every layer trainable with discriminative learning rates",
    "lora": "linear probe on cached features, then low-rank adapters (LoRA, via PEFT) beside the frozen weights, "
            "trained with the head",
    "setfit": "SetFit's recipe: the encoder tuned contrastively on pairs of the texts (same class together, "
              "different classes apart), then logistic regressions on its raw and its unit-length embeddings, logits "
              "averaged",
}
SETFIT_REASON = ("few-shot text with a validation split too small to compare candidates on: SetFit's recipe, "
                 "above the linear probe on average on text sets set aside for measuring it, though not on every "
                 "draw (BENCHMARKS.md); the probe is kept if the tuning breaks")


@dataclass
class Plan:
    requested: str
    strategy: str
    reasons: list[str] = field(default_factory=list)
    examples_per_class: dict[str, int] = field(default_factory=dict)
    class_weighted: bool = False
    unfreeze: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # filled once the backbone is known
    selection: dict[str, Any] = field(default_factory=dict)  # how the probe and the stage are chosen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fine_tunes(self) -> bool:
        return self.strategy in ("gradual", "full", "lora")

    def describe(self) -> str:
        counts = list(self.examples_per_class.values())
        lines = [f"plan: {self.strategy}" + (" (chosen by auto)" if self.requested == "auto" else "")]
        lines.append(f"  what: {_WHAT[self.strategy]}" if self.unfreeze is None else
                     f"  what: linear probe, then the top {self.unfreeze} layer group(s) fine-tuned")
        if counts:
            lines.append(f"  data: {len(counts)} classes, {min(counts)}-{max(counts)} training examples per class "
                         f"(median {int(np.median(counts))})")
        lines += [f"  why: {r}" for r in self.reasons]
        if self.selection:
            lines.append(f"  selection: {self.selection['how']}")
        for key, value in self.details.items():
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


def make_plan(requested: str, class_counts: dict[str, int], *, unfreeze: int | None = None,
              class_weights: str = "auto", backbone_params: int | None = None, modality: str | None = None) -> Plan:
    """The plan for ``requested`` (``auto`` decides from examples per class and the modality)."""
    counts = list(class_counts.values())
    median = int(np.median(counts)) if counts else 0
    plan = Plan(requested=requested, strategy=requested, examples_per_class=dict(class_counts), unfreeze=unfreeze)
    if requested == "auto":
        if unfreeze is not None:
            plan.strategy = "gradual"
            plan.reasons.append(f"--unfreeze {unfreeze} asks for the top {unfreeze} layer group(s) to be fine-tuned")
        elif modality == "text" and median >= TEXT_FINETUNE_FROM:
            plan.strategy = "full"
            plan.reasons.append(
                f"text, {median} examples per class (median, {TEXT_FINETUNE_FROM}+): pretrained sentence encoders "
                "fine-tune well from a few examples per class (all layers, discriminative rates, after the probe); "
                "the probe is kept if fine-tuning does not beat it on validation")
        elif median < FROZEN_BELOW:
            plan.strategy = "frozen"
            plan.reasons.append(
                f"{median} examples per class (median, fewer than {FROZEN_BELOW}): too few to fine-tune or to "
                "compare fine-tuning stages on validation; a linear probe on pretrained features is the most "
                "reliable choice")
        elif modality == "image" and median < IMAGE_GRADUAL_FROM:
            plan.strategy = "full"
            plan.reasons.append(
                f"images, {median} examples per class (median, {FROZEN_BELOW}-{IMAGE_GRADUAL_FROM - 1}): LP-FT, "
                "every layer fine-tuned at discriminative rates from the probe's head, which was as accurate as "
                "gradual unfreezing in half the time in graftwork's benchmarks; the probe is kept if fine-tuning "
                "does not beat it on validation")
        elif median < FULL_FROM:
            plan.strategy = "gradual"
            plan.reasons.append(
                f"{median} examples per class (median): enough to adapt the top of the network; unfreezing "
                "stops as soon as validation stops improving, and the probe is kept if fine-tuning does not help")
        else:
            plan.strategy = "full"
            plan.reasons.append(f"{median} examples per class (median, {FULL_FROM}+): enough data to adapt every "
                                "layer; discriminative rates protect the lower layers")
        if plan.strategy in ("gradual", "full") and unfreeze is None and (backbone_params or 0) >= LORA_FROM_PARAMS:
            plan.strategy = "lora"
            plan.reasons.append(
                f"the backbone has {backbone_params / 1e6:.0f}M parameters ({LORA_FROM_PARAMS // 1_000_000}M+): "
                "LoRA adapters instead of unfreezing, ~1% of the weights trained, a fraction of the memory")
    else:
        plan.reasons.append("asked for with --strategy")
    if counts and max(counts) > IMBALANCE_RATIO * max(min(counts), 1):
        ratio = max(counts) / max(min(counts), 1)
        plan.class_weighted = class_weights != "off"
        plan.reasons.append(
            f"classes are imbalanced (largest {max(counts)} vs smallest {min(counts)}, {ratio:.1f}x): "
            + ("the loss is weighted by inverse class frequency; " if plan.class_weighted else "")
            + "judge by macro F1 and per-class recall, not only accuracy")
    elif class_weights == "on":
        plan.class_weighted = True
        plan.reasons.append("class-weighted loss (--class-weights on)")
    return plan


def class_weight_vector(classes: list[str], counts: dict[str, int]) -> list[float]:
    """Inverse-frequency weights, normalised so that a balanced dataset gets all ones."""
    total = sum(counts.values())
    return [total / (len(classes) * max(counts.get(c, 0), 1)) for c in classes]


def selection_for(val_counts: dict[str, int], train_examples: int, *, probe_c: float | None = None,
                  fine_tunes: bool = False, k_fold: bool = True, distributed: bool = False,
                  contrastive: bool = False) -> dict[str, Any]:
    """How the probe's C and the kept stage are chosen, given the validation split's class counts (empty: no
    validation split), the number of training examples and whether the plan fine-tunes (``k_fold``: the
    settings allow deciding it by k-fold fine-tuning, :func:`graftwork.classify.tune.k_fold_allowed`;
    ``contrastive``: text trains SetFit's recipe there instead, :func:`graftwork.classify.tune.
    contrastive_candidate`); JSON-able, with ``how`` in words."""
    n_val = sum(val_counts.values())
    counts = [c for c in val_counts.values() if c > 0]
    small = small_validation(counts)
    out: dict[str, Any] = {"small_validation": small, "validation_examples": n_val,
                           "smallest_validation_class": min(counts) if counts else 0, "rule": rule_text()}
    if not counts:
        out["how"] = ("no validation split: the probe's C by repeated stratified cross-validation on the "
                      f"{train_examples} training examples")
    elif small:
        total = n_val + train_examples
        out |= {"method": "cross-validation", "examples": total}
        probe = (f"the probe's C by {CV_FOLDS}-fold cross-validation repeated {CV_REPEATS}x over training + "
                 "validation")
        if k_fold and probe_c is None and cross_validates_fine_tuning(
                n_val, total, fine_tunes=fine_tunes or contrastive, distributed=distributed):
            out["contrastive"] = contrastive
            tiny = (f"validation is tiny ({n_val} examples: fewer than {MIN_LOSS_EVIDENCE}) and the data small "
                    f"({total} examples, at most {CV_FINE_TUNE_MAX})")
            if contrastive:
                out["fine_tuning"] = "setfit"
                out["how"] = (f"{tiny}: few-shot text trains SetFit's recipe on all {total} texts instead of the "
                              "plan's stages: the encoder tuned contrastively on pairs of texts, then logistic "
                              "regressions (C=1) on the raw and the unit-length embeddings; kept unless that head, "
                              "cross-validated on the tuned embeddings, collapses or falls below the same head on "
                              f"the pretrained ones ({probe})")
            else:
                out["fine_tuning"] = "cross-validation"
                out["how"] = (f"{tiny}: {probe}, near-ties to stronger regularisation; then the plan's "
                              f"fine-tuning run on up to {CV_FOLDS} folds of the same {total} examples, kept only "
                              "if its held-out predictions beat the probe's by more than their standard error "
                              "(paired, in accuracy or log-loss); the winner is retrained on all the data")
        else:
            out["how"] = (f"validation is small ({n_val} examples, {min(counts)} in the smallest class: "
                          f"{rule_text()}): {probe} ({total} examples), near-ties to stronger regularisation; a "
                          "fine-tuning stage is kept only if its paired gain over the probe in accuracy or (from "
                          f"{MIN_LOSS_EVIDENCE} validation examples) in log-loss is larger than its standard "
                          "error, and the kept probe is refit on all the data")
    else:
        out |= {"method": "validation", "examples": n_val}
        out["how"] = f"on the validation split ({n_val} examples, {min(counts)}+ per class)"
    if probe_c is not None:
        out["how"] += f"; the probe's C is given ({probe_c:g})"
    return out
