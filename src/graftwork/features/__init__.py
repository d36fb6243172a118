"""Frozen-backbone features: batched extraction and the on-disk cache."""

from .cache import FeatureCache, content_key, default_cache_dir
from .extract import Extracted, extract_features, resolve_device

__all__ = ["FeatureCache", "content_key", "default_cache_dir", "Extracted", "extract_features", "resolve_device"]
