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
from ..backbones.run_source import run_folder_of
from ..backbones.vision import ImageBackbone
from ..errors import ConfigError, RunFolderError, WeightsError
from ..strategies.lora import adaptable_modules, adapter_state, apply_lora, has_lora, load_adapter_state
from .folder import ADAPTER, BACKBONE, CONFIG, read_adapter

Tensors = dict[str, torch.Tensor]


def backbone_tensors(backbone: Backbone) -> tuple[Tensors | None, Tensors | None]:
    """(whole backbone state or None, LoRA adapter state or None) to write with a run."""
    lora = has_lora(backbone)
    from_run = (backbone.info.extra.get("source_run") or {}).get("fine_tuned")  # started from a trained run
    if not backbone.info.pretrained or from_run or (backbone.info.extra.get("fine_tuned") and not lora):
        return {k: v.detach().cpu() for k, v in backbone.state_dict().items()}, None
    if lora:  # the pretrained weights + the adapters: a few MB instead of the whole network
        return None, adapter_state(backbone)
    return None, None


def restore_backbone(path: str | Path, config: dict[str, Any], backbone_sd: Tensors | None, *,
                     weights: str | None = None) -> Backbone:
    """Rebuild the backbone a run was trained with, from its (validated) config and checked tensors.

    Where the pretrained weights are looked for comes from this machine, never from the run folder: the default
    resolution for the backbone's name (caches, weight packages, a local model folder), or ``weights`` (an explicit
    file or folder). Whatever is found must have the fingerprint the run recorded, or it is refused.
    """
    info = config["backbone"]
    extra = dict(info.get("extra", {}))
    lora = extra.get("lora")
    pre = config.get("preprocessing", {})
    audio = options_from_preprocessing(pre)  # the same window as in training
    if backbone_sd is not None:
        backbone = _build(path, info, pretrained=False, weights=weights, audio=audio)
        if lora:  # a random-init backbone trained with adapters: its state holds them
            _add_lora(path, backbone, lora)
        _load_state(path, backbone, backbone_sd)
        backbone.info.pretrained = bool(info.get("pretrained", False))
        backbone.info.weights = str(Path(path) / BACKBONE)
    else:
        expected = extra.get("pretrained_fingerprint") if lora else info.get("fingerprint")
        key = "backbone.extra.pretrained_fingerprint" if lora else "backbone.fingerprint"
        if not expected:
            raise RunFolderError(f"{Path(path) / CONFIG}: '{key}' is missing or empty, so the pretrained weights "
                                 "this run needs cannot be checked; nothing was loaded.",
                                 hint="config.json was edited or damaged: restore the run folder from a copy you "
                                      "trust, or re-run `graftwork fit`.")
        backbone = _build(path, info, pretrained=True, weights=weights, audio=audio)
        if backbone.info.fingerprint != expected:
            raise RunFolderError(
                f"{path}: the backbone weights found on this machine ({backbone.info.weights}) are not the ones "
                f"this model was trained with ('{key}' records {expected[:16]}..., these are "
                f"{backbone.info.fingerprint[:16]}...).",
                hint=f"make the original weights available (the run was trained with {info.get('weights')}; pass "
                     "their location with weights=... or --weights).")
        if lora:
            adapter = read_adapter(path, config)
            if adapter is None:
                raise RunFolderError(f"{path}: a LoRA run without {ADAPTER}.", hint="re-run `graftwork fit`.")
            _add_lora(path, backbone, lora)
            load_adapter_state(backbone, adapter, source=str(Path(path) / ADAPTER))
    _match_preprocessing(path, backbone, pre)
    backbone.info.extra = extra
    if backbone_sd is not None or lora:
        backbone.refresh_fingerprint()  # it keys the feature cache: it must describe the weights just loaded
    return backbone


def _build(path: str | Path, info: dict[str, Any], *, pretrained: bool, weights: str | None,
           audio: dict[str, Any]) -> Backbone:
    """The backbone by name, with weights found on this machine; a missing one says how to point at it."""
    if run_folder_of(str(info["load_name"]).strip()) is not None:  # never written by graftwork: not followed
        raise RunFolderError(f"{Path(path) / CONFIG}: 'backbone.load_name' names another run "
                             f"({info['load_name']!r}); it was not followed.", hint="re-run `graftwork fit`.")
    try:
        return build_backbone(info["load_name"], pretrained=pretrained, weights=weights, **audio)
    except WeightsError as e:
        raise WeightsError(f"{path}: this run needs the backbone {info['load_name']}. {e.message}",
                           hint=(f"{e.hint} " if e.hint else "") + "Or pass the weights' location when loading "
                                "the run (weights=... in Python, --weights on the command line).") from None


def _load_state(path: str | Path, backbone: Backbone, state: Tensors) -> None:
    try:
        backbone.load_state_dict(state)
    except RuntimeError as e:  # missing, unexpected or mis-shaped tensors
        raise RunFolderError(f"{Path(path) / BACKBONE}: does not fit {backbone.info.name} "
                             f"({str(e).splitlines()[0]}).", hint="re-run `graftwork fit`.") from None


def _match_preprocessing(path: str | Path, backbone: Backbone, pre: dict[str, Any]) -> None:
    """Apply the run's image size, and check that an audio backbone rebuilt here windows audio as in training."""
    where = Path(path) / CONFIG
    if isinstance(backbone, ImageBackbone) and (pre["crop"], pre["resize"]) != (backbone.pre.crop,
                                                                                backbone.pre.resize):
        try:
            backbone.set_image_size(int(pre["crop"]), int(pre["resize"]))
        except ConfigError:
            raise RunFolderError(f"{where}: 'preprocessing.crop' is {pre['crop']}, an input size "
                                 f"{backbone.info.name} does not accept.", hint="re-run `graftwork fit`.") from None
    if pre.get("kind") == "audio":
        built = backbone.preprocessing
        for key in ("sample_rate", "window_s"):
            if built.get(key) != pre.get(key):
                raise RunFolderError(f"{where}: 'preprocessing.{key}' is {pre.get(key)!r} but {backbone.info.name} "
                                     f"as found on this machine uses {built.get(key)!r}.",
                                     hint="the features would not be the ones the model was trained on: make the "
                                          "original backbone available, or re-run `graftwork fit`.")


def _add_lora(path: str | Path, backbone: Backbone, spec: dict[str, Any]) -> None:
    available = set(adaptable_modules(backbone))
    unknown = [t for t in spec["targets"] if t not in available]
    if unknown:
        raise RunFolderError(f"{Path(path) / CONFIG}: 'backbone.extra.lora.targets' names {unknown[:3]!r}, not "
                             f"layers of {backbone.info.name} that LoRA can adapt.", hint="re-run `graftwork fit`.")
    apply_lora(backbone, r=spec["r"], alpha=spec["alpha"], dropout=spec["dropout"], targets=spec["targets"])
