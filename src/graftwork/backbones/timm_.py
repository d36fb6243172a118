"""``timm:NAME[.TAG]`` backbones: any model of timm, its layer groups from timm's own ``group_matcher``."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import timm
from torch import nn

from ..errors import ConfigError, WeightsError
from .base import BackboneInfo, LayerGroup, groups_from_parameter_names
from .packages import packages_for
from .vision import ImageBackbone, ImagePreprocess, measure_feature_dim
from .weights import ResolvedWeights, downloads_allowed, load_state_dict, missing_weights_error

SOURCE = "timm"
_FILES = ("model.safetensors", "pytorch_model.bin")


def _check_name(arch: str) -> str:
    name = arch.partition(".")[0]
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ConfigError(f"'backbone': timm has no model {name!r}.",
                          hint=f"did you mean {', '.join(close)}?" if close else "`timm.list_models()` lists them.")
    return name


def _hub_id(arch: str) -> str | None:
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except RuntimeError:  # "Invalid pretrained tag"
        name = arch.partition(".")[0]
        tags = timm.list_pretrained(f"{name}.*")
        raise ConfigError(f"'backbone': timm has no weights {arch!r}.",
                          hint=f"available: {', '.join(tags[:10])}" if tags else
                          f"timm has no pretrained weights for {name}; use --no-pretrained.") from None
    return cfg.hf_hub_id if cfg is not None else None


def resolve(arch: str, explicit: str | None = None, *, allow_download: bool = True) -> ResolvedWeights | None:
    name = _check_name(arch)
    if explicit:
        return ResolvedWeights(Path(explicit), "explicit path")
    repo = _hub_id(arch)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for file in _FILES:
            hit = try_to_load_from_cache(repo, file)
            if isinstance(hit, str):
                return ResolvedWeights(Path(hit), "huggingface cache")
    for pkg in packages_for(f"{SOURCE}:{name}"):
        if found := pkg.resolve():
            return found
    if not (allow_download and downloads_allowed()) or not repo:
        return None
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo, _FILES[0])
    except Exception as e:
        raise WeightsError(f"Could not download timm:{arch} weights from {repo} ({type(e).__name__}: {e}).",
                           hint=_how_to_get(name)) from None
    return ResolvedWeights(Path(path), "hub download")


def _how_to_get(name: str) -> str:
    how = ["run once with network access (weights go to the Hugging Face cache)",
           "pass --weights PATH to a .safetensors/.pth file"]
    how += [p.install for p in packages_for(f"{SOURCE}:{name}")]
    return "; or ".join(how)


def _preprocess(model: nn.Module) -> ImagePreprocess:
    cfg = timm.data.resolve_model_data_config(model)
    crop = int(cfg["input_size"][-1])
    resize = int(math.floor(crop / cfg.get("crop_pct", 0.875)))
    interp = cfg.get("interpolation", "bilinear")
    return ImagePreprocess(resize, crop, tuple(cfg["mean"]), tuple(cfg["std"]),
                           interp if interp in ("bilinear", "bicubic", "nearest") else "bilinear")


def timm_layer_groups(model: nn.Module) -> list[LayerGroup]:
    """Groups from timm's ``group_matcher`` (the same grouping timm uses for layer-wise LR decay)."""
    matcher = model.group_matcher(coarse=False)
    by_group = timm.models.group_parameters(model, matcher)  # ordinal -> parameter names, input to output
    params = dict(model.named_parameters())
    named = [[n for n in by_group[o] if n in params] for o in sorted(by_group)]
    named = [names for names in named if names]
    return groups_from_parameter_names(
        model, [(f"{i}:{names[0].rsplit('.', 1)[0] or names[0]}", names) for i, names in enumerate(named)])


def build(arch: str, *, pretrained: bool = True, weights_path: str | None = None) -> ImageBackbone:
    name = _check_name(arch)
    _hub_id(arch)  # validates the tag
    model = timm.create_model(arch, pretrained=False)
    resolved = None
    if pretrained:
        resolved = resolve(arch, weights_path)
        if resolved is None:
            raise missing_weights_error(f"{SOURCE}:{arch}", ["huggingface cache", "installed weight packages"],
                                        [_how_to_get(name)])
        sd = load_state_dict(resolved.path)
        if resolved.convert:
            sd = resolved.convert(sd)
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            raise WeightsError(f"{resolved.path}: these weights do not fit timm:{arch}: "
                               f"{str(e).splitlines()[0]}", hint="check that --weights matches --backbone.") from None
    model.reset_classifier(0)
    model.eval()
    pre = _preprocess(model)
    info = BackboneInfo(
        name=f"{SOURCE}:{arch}", source=SOURCE, arch=arch, modality="image",
        feature_dim=measure_feature_dim(model, pre.crop),  # num_features misses head_hidden_size (MobileNetV3)
        pretrained=pretrained, weights=resolved.describe() if resolved else "random init",
    )
    backbone = ImageBackbone(model, info, pre, timm_layer_groups(model))
    backbone.refresh_fingerprint()
    return backbone
