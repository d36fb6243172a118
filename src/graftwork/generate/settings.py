"""Which fit settings the generation task reads: the rules :class:`graftwork.tasks.generate.GenerateTask` checks.

A setting that a task does not support is an error that names it, never silently ignored: ``--task generate``
with, say, ``--image-size`` or ``--unfreeze`` is refused. A setting counts as given when it differs from its
default. (The settings only generation reads are refused for the other tasks by theirs.)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

# settings of image/text classification and NER that mean nothing for a language model
NOT_FOR_GENERATE = ("probe_c", "lr_ratio", "lr_decay", "unfreeze", "unfreeze_patience", "refit", "l2sp", "wise",
                    "label_smoothing", "augment", "bn_stats", "class_weights", "weights", "image_size",
                    "skip_bad_files", "label_column", "groups", "audio_window", "audio_long", "workers")
GENERATE_STRATEGIES = ("auto", "lora", "full")


def unsupported_settings(cfg: Any) -> list[tuple[str, str]]:
    """(setting, why) for each setting given to ``cfg`` (a ``--task generate`` :class:`~graftwork.config.FitConfig`)
    that generation does not read."""
    given = {f.name for f in fields(cfg) if getattr(cfg, f.name) != f.default}
    out = [(n, "is not used by --task generate") for n in NOT_FOR_GENERATE if n in given]
    if "pretrained" in given:
        out.append(("pretrained", "--task generate always starts from the pretrained language model"))
    if cfg.strategy not in GENERATE_STRATEGIES:
        out.append(("strategy", f"must be one of {', '.join(GENERATE_STRATEGIES)} for --task generate"))
    return out
