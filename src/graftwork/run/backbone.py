"""The backbone half of a run folder, shared by every task's model: what to save, and how to rebuild it.

A run stores the least that reproduces its backbone exactly: nothing when the pretrained weights are used as they
are (they are found again by name and checked by fingerprint), the LoRA adapters when only those were trained, and
the whole network otherwise (fine-tuned or randomly initialised weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..backbones import Backbone, build_backbone
from ..backbones.audio import options_from_preprocessing
from ..backbones.vision import ImageBackbone
from ..errors import RunFolderError
from ..strategies.lora import adapter_state, apply_lora, has_lora, load_adapter_state
from .folder import BACKBONE, read_adapter

Tensors = dict[str, torch.Tensor]


def backbone_tensors(backbone: Backbone) -> tuple[Tensors | None, Tensors | None]:
    """(whole backbone state or None, LoRA adapter state or None) to write with a run."""
    lora = has_lora(backbone)
    if not backbone.info.pretrained or (backbone.info.extra.get("fine_tuned") and not lora):
        return {k: v.detach().cpu() for k, v in backbone.state_dict().items()}, None
    if lora:  # the pretrained weights + the adapters: a few MB instead of the whole network
        return None, adapter_state(backbone)
    return None, None


def restore_backbone(path: str | Path, config: dict[str, Any], backbone_sd: Tensors | None) -> Backbone:
    """Rebuild the backbone a run was trained with, from its config and saved tensors; refuses other weights."""
    try:
        info = config["backbone"]
    except KeyError as e:
        raise RunFolderError(f"{path}: config.json lacks {e}.", hint="re-run `graftwork fit`.") from None
    extra = dict(info.get("extra", {}))
    lora = extra.get("lora")
    pre = config.get("preprocessing", {})
    audio = options_from_preprocessing(pre)  # the same window as in training
    if backbone_sd is not None:
        backbone = build_backbone(info["load_name"], pretrained=False, **audio)
        if lora:  # a random-init backbone trained with adapters: its state holds them
            _add_lora(backbone, lora)
        backbone.load_state_dict(backbone_sd)
        backbone.info.pretrained = bool(info.get("pretrained", False))
        backbone.info.weights = str(Path(path) / BACKBONE)
    else:
        weights = config.get("fit", {}).get("weights")
        backbone = build_backbone(info["load_name"], pretrained=True,
                                  weights=weights if weights and Path(weights).exists() else None, **audio)
        expected = extra.get("pretrained_fingerprint") if lora else info.get("fingerprint")
        if expected and backbone.info.fingerprint != expected:
            raise RunFolderError(
                f"{path}: the backbone weights found on this machine ({backbone.info.weights}) are not the ones "
                "this model was trained with (fingerprints differ).",
                hint=f"make the original weights available ({info.get('weights')}).")
        if lora:
            adapter = read_adapter(path)
            if adapter is None:
                raise RunFolderError(f"{path}: a LoRA run without adapter.safetensors.", hint="re-run `graftwork fit`.")
            _add_lora(backbone, lora)
            load_adapter_state(backbone, adapter)
    if isinstance(backbone, ImageBackbone) and pre.get("crop") and pre["crop"] != backbone.pre.crop:
        backbone.set_image_size(int(pre["crop"]), int(pre["resize"]))
    backbone.info.extra = extra
    if backbone_sd is not None or lora:
        backbone.refresh_fingerprint()  # it keys the feature cache: it must describe the weights just loaded
    return backbone


def _add_lora(backbone: Backbone, spec: dict[str, Any]) -> None:
    apply_lora(backbone, r=spec["r"], alpha=spec["alpha"], dropout=spec["dropout"], targets=spec["targets"])
