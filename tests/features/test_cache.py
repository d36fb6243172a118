"""Frozen features are computed once per example and then come from the on-disk cache."""

from __future__ import annotations

import shutil

import numpy as np
import torch

import graftwork
from graftwork.backbones import build_backbone
from graftwork.features import FeatureCache, extract_features

SETTINGS = {"backbone": "timm:test_efficientnet", "pretrained": False}


def test_second_fit_does_no_backbone_forward_passes(image_folder, count_forwards):
    graftwork.fit(image_folder, **SETTINGS)
    assert count_forwards["examples"] == 16
    graftwork.fit(image_folder, **SETTINGS | {"probe_c": 0.5, "val_fraction": 0.3})
    assert count_forwards["examples"] == 16, "the second fit must reuse cached features"


def test_cache_is_keyed_by_content_not_path(image_folder, tmp_path, count_forwards):
    graftwork.fit(image_folder, **SETTINGS)
    moved = tmp_path / "moved"
    shutil.copytree(image_folder, moved)
    (moved / "red" / "red_0.png").rename(moved / "red" / "renamed.png")
    graftwork.fit(moved, **SETTINGS)
    assert count_forwards["examples"] == 16


def test_changed_file_is_recomputed(image_folder, count_forwards):
    graftwork.fit(image_folder, **SETTINGS)
    from PIL import Image

    Image.new("RGB", (40, 40), (1, 2, 3)).save(image_folder / "red" / "red_0.png")
    graftwork.fit(image_folder, **SETTINGS)
    assert count_forwards["examples"] == 17


def test_no_cache_option_always_computes(image_folder, count_forwards):
    graftwork.fit(image_folder, **SETTINGS, cache=False)
    graftwork.fit(image_folder, **SETTINGS, cache=False)
    assert count_forwards["examples"] == 32


def test_cached_features_equal_computed_ones(image_folder, tmp_path):
    torch.manual_seed(0)
    b = build_backbone("timm:test_efficientnet", pretrained=False)
    items = sorted(str(p) for p in image_folder.rglob("*.png"))
    cache = FeatureCache(tmp_path / "c", b.cache_key())
    first = extract_features(b, "image", items, items, cache=cache, batch_size=5)
    second = extract_features(b, "image", items, items, cache=cache, batch_size=3)
    assert first.computed == len(items) and first.from_cache == 0
    assert second.computed == 0 and second.from_cache == len(items)
    np.testing.assert_array_equal(first.features, second.features)
    fresh = extract_features(b, "image", items, items, cache=None, batch_size=len(items))
    np.testing.assert_allclose(first.features, fresh.features, atol=1e-5)


def test_different_weights_or_preprocessing_use_another_cache(tiny_bert):
    a = build_backbone(f"hf:{tiny_bert}")
    b = build_backbone(f"hf:{tiny_bert}")
    b.max_length = 8
    assert a.cache_key() != b.cache_key()
    torch.manual_seed(1)
    c = build_backbone("timm:test_efficientnet", pretrained=False)
    torch.manual_seed(2)
    d = build_backbone("timm:test_efficientnet", pretrained=False)
    assert c.cache_key() != d.cache_key()


def test_domain_check_is_remembered_so_a_warm_fit_needs_no_backbone_pass(image_folder, tmp_path, count_forwards):
    import torchvision

    weights = tmp_path / "w.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), weights)
    settings = {"backbone": "torchvision:mobilenet_v3_small", "weights": str(weights), "image_size": 32}
    first = graftwork.fit(image_folder, **settings)  # "pretrained" (weights given): the BatchNorm check runs
    assert "domain-mismatch-bn" in {f["code"] for f in first.metrics["findings"]}
    before = count_forwards["examples"]
    second = graftwork.fit(image_folder, **settings)
    assert count_forwards["examples"] == before, "features and the domain check come from the cache"
    assert second.metrics["mismatch"] == first.metrics["mismatch"]
