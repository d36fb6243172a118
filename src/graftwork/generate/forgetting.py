"""Forgetting: what fine-tuning cost the model on general text, and the LoRA-scaling remedy.

The model's loss on a fixed general-English reference set (every third of the 206 sentences of
``data/general_text.txt``, written for graftwork, MIT; see ``data/README.md``) is measured before training and
after every epoch. The check reads the relative change on the same sentences; a third of them measures it within
half a percentage point of the whole set (-2.9 / -0.7 / -4.8 % against -2.9 / -0.7 / -4.3 % on the three tasks
of BENCHMARKS.md) at a third of the cost, which is paid every epoch. When it rises
sharply while the task improved little, that is catastrophic forgetting (McCloskey & Cohen 1989), reported as
a ``forgetting`` finding. The remedy offered is a WiSE-FT-style interpolation (Wortsman et al. 2022) of the
LoRA update: the adapters' contribution ``(alpha / r) * B A`` is scaled by ``s`` in [0, 1] (``s = 0`` is the
base model, ``s = 1`` the fine-tuned one), and the smallest ``s`` whose validation score is within reach of
the best is kept. Scaling ``B`` by ``s`` makes that choice part of the saved adapter.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import torch

from ..diagnostics import Finding
from .data import GenExample

RISE = 0.10  # general-text loss up by more than 10 % ...
TASK_GAIN = 0.10  # ... while validation loss fell by less than 10 %: forgetting
SCALES = (0.25, 0.5, 0.75, 1.0)
EVERY = 3  # of the reference sentences, the ones measured


def reference_examples(every: int = EVERY) -> list[GenExample]:
    """The reference sentences measured (``every`` one of them: 1 for the whole set)."""
    text = files("graftwork.generate").joinpath("data/general_text.txt").read_text(encoding="utf-8")
    return [GenExample(f"general_text.txt:{i}", "text", text=line.strip())
            for i, line in enumerate(text.splitlines(), start=1) if line.strip()][::every]


def forgetting_finding(history: list[dict[str, Any]], best_epoch: int) -> Finding | None:
    """The finding for a run's per-epoch history (None when the general-text loss was not measured)."""
    if not history or "general_text" not in history[0] or best_epoch >= len(history):
        return None
    before = history[0]["general_text"]["loss"]
    after = history[best_epoch]["general_text"]["loss"]
    rise = (after - before) / max(before, 1e-9)
    val0 = history[0].get("val", {}).get("loss")
    val1 = history[best_epoch].get("val", {}).get("loss")
    gain = (val0 - val1) / max(val0, 1e-9) if val0 is not None and val1 is not None else None
    details = {"general_text_loss_before": before, "general_text_loss_after": after,
               "validation_loss_gain": gain, "per_epoch": [h["general_text"]["loss"] for h in history]}
    if rise > RISE and (gain is None or gain < TASK_GAIN):
        return Finding("forgetting", "warning", f"general-text loss rose {100 * rise:.0f}% (from {before:.3f} to "
                       f"{after:.3f}) while the task's validation loss improved only "
                       f"{100 * (gain or 0):.0f}%: fine-tuning is overwriting general language ability",
                       advice="lower --lr or --stage-epochs; with LoRA, the adapters were scaled down on validation "
                              "(see 'lora_scale'); more data also helps", value=rise, metric="relative rise",
                       details=details)
    return Finding("forgetting", "info", f"general-text loss changed {100 * rise:+.0f}% ({before:.3f} -> "
                   f"{after:.3f}); no sign of catastrophic forgetting", value=rise, metric="relative rise",
                   details=details)


def lora_layers(model: torch.nn.Module) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def scale_lora(model: torch.nn.Module, factor: float) -> None:
    """Multiply every LoRA update by ``factor`` (through its B matrix, so the saved adapter carries it)."""
    with torch.no_grad():
        for layer in lora_layers(model):
            for b in layer.lora_B.values():
                b.weight.mul_(factor)


def choose_scale(model: torch.nn.Module, score: Any) -> tuple[float, list[dict[str, float]]]:
    """The LoRA scale (of :data:`SCALES`) with the best validation ``score(model)`` (higher is better; ties go to
    the smaller scale, the one closer to the base model); the model is left at that scale."""
    current, tried = 1.0, []
    for s in SCALES:
        scale_lora(model, s / current)
        current = s
        tried.append({"scale": s, "score": float(score(model))})
    best = max(tried, key=lambda t: (round(t["score"], 6), -t["scale"]))
    scale_lora(model, best["scale"] / current)
    return best["scale"], tried
