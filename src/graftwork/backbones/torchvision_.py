"""``torchvision:NAME[.WEIGHTS_TAG]`` backbones (e.g. ``torchvision:mobilenet_v2``, ``torchvision:resnet50``)."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..errors import ConfigError, WeightsError
from .base import BackboneInfo, split_by_dominant_child
from .packages import packages_for
from .vision import ImageBackbone, ImagePreprocess, measure_feature_dim
from .weights import ResolvedWeights, downloads_allowed, load_state_dict, missing_weights_error

SOURCE = "torchvision"


def _split_name(arch: str) -> tuple[str, str]:
    name, _, tag = arch.partition(".")
    if name not in torchvision.models.list_models(module=torchvision.models):
        close = difflib.get_close_matches(name, torchvision.models.list_models(module=torchvision.models), n=3)
        raise ConfigError(f"'backbone': torchvision has no classification model {name!r}.",
                          hint=f"did you mean {', '.join(close)}?" if close else
                          "`python -c 'import torchvision; print(torchvision.models.list_models())'` lists them.")
    return name, tag


def _weight_tags(name: str, tag: str) -> list[torchvision.models.WeightsEnum]:
    enum = torchvision.models.get_model_weights(name)
    if tag:
        try:
            return [enum[tag]]
        except KeyError:
            raise ConfigError(f"'backbone': torchvision:{name} has no weights {tag!r}.",
                              hint=f"available: {', '.join(w.name for w in enum)}") from None
    default = enum.DEFAULT
    return [default] + [w for w in enum if w != default]


def _cache_file(weights: torchvision.models.WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def resolve(arch: str, explicit: str | None = None, *, allow_download: bool = True) -> ResolvedWeights | None:
    """Find weights for ``arch``; ``None`` when none are available locally and downloading is not allowed."""
    name, tag = _split_name(arch)
    if explicit:
        return ResolvedWeights(Path(explicit), "explicit path", tag=tag)
    candidates = _weight_tags(name, tag)
    for w in candidates:
        if _cache_file(w).is_file():
            return ResolvedWeights(_cache_file(w), "torch cache", tag=w.name)
    for pkg in packages_for(f"{SOURCE}:{name}"):
        if (not tag or pkg.tag == tag) and (found := pkg.resolve()):
            return found
    if not (allow_download and downloads_allowed()):
        return None
    w = candidates[0]
    try:
        torch.hub.load_state_dict_from_url(w.url, progress=True, weights_only=True)
    except Exception as e:
        raise WeightsError(f"Could not download torchvision:{name} weights ({type(e).__name__}: {e}).",
                           hint=_how_to_get(name)) from None
    return ResolvedWeights(_cache_file(w), "hub download", tag=w.name)


def _how_to_get(name: str) -> str:
    how = [f"run once with network access (weights go to {Path(torch.hub.get_dir()) / 'checkpoints'})",
           "pass --weights PATH to a downloaded .pth/.safetensors file"]
    how += [p.install for p in packages_for(f"{SOURCE}:{name}")]
    return "; or ".join(how)


def _preprocess(weights: torchvision.models.WeightsEnum | None) -> ImagePreprocess:
    if weights is None:
        return ImagePreprocess(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    t = weights.transforms()
    return ImagePreprocess(int(t.resize_size[0]), int(t.crop_size[0]), tuple(t.mean), tuple(t.std),
                           t.interpolation.value)


def _remove_classifier(model: nn.Module) -> None:
    """Replace the last ``nn.Linear`` (the ImageNet classifier) with an identity, keeping any norm before it."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ConfigError("'backbone': cannot find the classifier layer of this torchvision model.")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Identity())


def build(arch: str, *, pretrained: bool = True, weights_path: str | None = None) -> ImageBackbone:
    name, tag = _split_name(arch)
    model = torchvision.models.get_model(name, weights=None)
    resolved = None
    enum_weights = None
    if pretrained:
        resolved = resolve(arch, weights_path)
        if resolved is None:  # only when downloads are off
            raise missing_weights_error(f"{SOURCE}:{name}",
                                        ["torch cache", "installed weight packages"], [_how_to_get(name)])
        sd = load_state_dict(resolved.path)
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            raise WeightsError(f"{resolved.path}: these weights do not fit torchvision:{name}: "
                               f"{str(e).splitlines()[0]}", hint="check that --weights matches --backbone.") from None
        enum = torchvision.models.get_model_weights(name)
        enum_weights = enum[resolved.tag] if resolved.tag in enum.__members__ else enum.DEFAULT
    pre = _preprocess(enum_weights if pretrained else _weight_tags(name, tag)[0])
    _remove_classifier(model)
    model.eval()
    info = BackboneInfo(
        name=f"{SOURCE}:{name}", source=SOURCE, arch=name, modality="image",
        feature_dim=measure_feature_dim(model, pre.crop), pretrained=pretrained,
        weights=resolved.describe() if resolved else "random init",
        weights_tag=(resolved.tag or (enum_weights.name if enum_weights else "")) if resolved else "",
    )
    backbone = ImageBackbone(model, info, pre, split_by_dominant_child(model))
    backbone.refresh_fingerprint()
    return backbone
