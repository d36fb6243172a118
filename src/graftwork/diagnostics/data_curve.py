"""The learning curve of a dataset before any training, for ``graftwork advise``: frozen features (from the
feature cache when they are there), the probe's C by cross-validation, then :func:`.learning_curve`."""

from __future__ import annotations

import numpy as np

from ..console import SILENT, Console
from ..data import Examples
from ..errors import DataError
from .learning_curve import LearningCurve, learning_curve


def curve_for_data(examples: Examples, class_counts: dict[str, int], backbone_name: str | None, *,
                   device: str = "auto", batch_size: int = 32, seed: int = 0, use_cache: bool = True,
                   console: Console = SILENT) -> LearningCurve:
    """The probe's learning curve on ``examples`` (all labelled training data), with the plan's
    ``class_counts`` scaled for the strategy at 2x and 4x; the backbone is ``fit``'s default when None."""
    from ..backbones import build_backbone, default_backbone
    from ..features import FeatureCache, default_cache_dir, extract_features, resolve_device
    from ..strategies.head import LinearHead, fit_probe, preferred_features

    name = backbone_name or default_backbone(examples.modality)[0]
    backbone = build_backbone(name)
    cache = FeatureCache(default_cache_dir(), backbone.cache_key()) if use_cache else None
    ext = extract_features(backbone, examples.modality, examples.items, examples.origins, cache=cache,
                           batch_size=batch_size, device=resolve_device(device), console=console,
                           description="learning curve")
    console.info(f"learning curve: features of {len(examples)} examples ({ext.computed} computed, "
                 f"{ext.from_cache} from cache) with {name}")
    classes = sorted(set(examples.labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[lab] for lab, ok in zip(examples.labels, ext.ok, strict=True) if ok], dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise DataError("fewer than two classes could be read: there is no learning curve to measure.",
                        hint="check the data with `graftwork fit` first, or pass --no-curve.")
    chosen = fit_probe(LinearHead(ext.features.shape[1], len(classes)), ext.features, y,
                       prefer=preferred_features(examples.modality), seed=seed)
    return learning_curve(ext.features, y, class_counts, c=chosen.c, features=chosen.features,
                          modality=examples.modality,
                          backbone_params=sum(p.numel() for p in backbone.parameters()), seed=seed)
