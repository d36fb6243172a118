"""What a run cost: parameters trained and peak memory, recorded in metrics.json and printed by ``fit``."""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch
from torch import nn


def parameter_counts(backbone: nn.Module, head: nn.Module, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Total parameters of the model as trained (adapters included) and the most trained at once.

    The linear probe trains the head only; a fine-tuning stage records what its optimizer held
    (``trainable_params``): the head and the unfrozen groups, or the head and the LoRA adapters.
    """
    head_n = sum(p.numel() for p in head.parameters())
    total = sum(p.numel() for p in backbone.parameters()) + head_n
    trained = max([head_n] + [int(s.get("trainable_params", 0)) for s in stages])
    return {"total": total, "trainable": trained, "trainable_percent": round(100.0 * trained / max(total, 1), 4)}


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (MiB; the whole process so far, data loading included) and, on
    CUDA, the peak memory allocated by tensors."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mib": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)}  # bytes on macOS
    if device.type == "cuda" and torch.cuda.is_available():
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def cost_line(metrics: dict[str, Any]) -> str | None:
    """``parameters: X trained of Y (Z%); peak rss ...`` for a run's summary, from its metrics."""
    pc = metrics.get("parameters")
    if not pc:
        return None
    mem = metrics.get("memory", {})
    return (f"parameters: {pc['trainable']:,} trained of {pc['total']:,} ({pc['trainable_percent']:.2f}%)"
            + "".join(f"; {k.replace('_', ' ')} {v:,.0f}" for k, v in mem.items()))
