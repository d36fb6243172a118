"""Which fit settings ``--task ner`` reads, and why it refuses the others.

A setting that a task does not read is an error that names it, never silently ignored: ``--task ner`` with,
say, ``--image-size`` or ``--probe-c`` is refused. A setting counts as given when it differs from its default.

NER reads: backbone, strategy (auto, frozen, gradual, full, lora), batch_size, lr, lr_ratio, lr_decay, unfreeze,
lora_r/alpha/dropout/targets, stage_epochs, stage_patience, unfreeze_patience, weight_decay, l2sp, wise,
label_smoothing, grad_clip, class_weights (``on``: inverse-frequency tag weights in the token loss; ``auto`` is off
for NER, see :data:`CLASS_WEIGHTS_AUTO`), precision, seed, val_fraction, device, pretrained, weights,
skip_bad_files, workers, gradient_accumulation, log_to, log_dir; ``cache=False`` holds as asked (NER keeps no
feature cache on disk: it computes its token states once per fit, in memory). Drift monitoring is always on when
fine-tuning, and back-off with ``strategy auto``, as for classification.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_GENERATE = "only applies to --task generate"

NER_UNSUPPORTED: dict[str, str] = {
    "probe_c": "NER's tag layer is trained by gradient descent on cached token states (with early stopping on "
               "validation entity F1), not by the classification probe's regularised logistic regression",
    "refit": "NER's tag layer is never retrained on training + validation data: validation picks its epoch",
    "control": "the random-initialisation control run is not implemented for --task ner",
    "augment": "augmentation applies to images only",
    "bn_stats": "text encoders have no BatchNorm layers",
    "image_size": "applies to images only",
    "text_column": "NER reads CoNLL columns or JSONL 'tokens'/'tags' fields, not a text column",
    "label_column": "NER reads CoNLL columns or JSONL 'tokens'/'tags' fields, not a label column",
    "groups": "per-group metrics and bias checks are not implemented for --task ner",
    "audio_window": "applies to audio only",
    "audio_long": "applies to audio only",
    "max_audio_seconds": "applies to audio only",
    "cache_dir": "NER computes its token states once per fit in memory; it keeps no feature cache on disk",
    "max_length": _GENERATE + " (NER cuts long sentences into chunks of the encoder's own maximum length)",
    "max_new_tokens": _GENERATE,
    "few_shot": _GENERATE,
    "gradient_checkpointing": _GENERATE,
    "trust_remote_code": _GENERATE,
}

CLASS_WEIGHTS_AUTO = ("off (auto: O outnumbers the entity tags in any tagged text, so classification's 3:1 rule "
                      "would always weight; --class-weights on: inverse tag frequency)")


def unsupported_settings(cfg: Any) -> list[tuple[str, str]]:
    """(setting, why) for each setting given to ``cfg`` (a :class:`~graftwork.config.FitConfig`) that NER does
    not read."""
    given = {f.name for f in fields(cfg) if getattr(cfg, f.name) != f.default}
    return [(name, why) for name, why in NER_UNSUPPORTED.items() if name in given]
