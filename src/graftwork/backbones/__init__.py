"""Pretrained backbones from torchvision, timm and Hugging Face behind one contract (see :mod:`.base`)."""

from .base import Backbone, BackboneInfo, LayerGroup
from .registry import CATALOGUE, build_backbone, default_backbone, parse_name, resolve_offline

__all__ = ["Backbone", "BackboneInfo", "LayerGroup", "CATALOGUE", "build_backbone", "default_backbone",
           "parse_name", "resolve_offline"]
