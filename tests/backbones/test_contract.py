"""Every backbone source honours the same contract (see graftwork.backbones.base)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from graftwork.backbones import build_backbone


def _tiny(name: str, request: pytest.FixtureRequest):
    if name == "hf-bert":
        return build_backbone(f"hf:{request.getfixturevalue('tiny_bert')}")
    if name == "hf-vit":
        return build_backbone(f"hf:{request.getfixturevalue('tiny_vit')}")
    torch.manual_seed(0)
    return build_backbone(name, pretrained=False)


BACKBONES = ["timm:test_efficientnet", "timm:test_vit", "torchvision:mobilenet_v3_small", "hf-vit", "hf-bert"]


def _raw(modality: str, n: int = 3):
    if modality == "text":
        return ["apple banana", "car truck bus", "hello world"][:n]
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.mark.parametrize("name", BACKBONES)
def test_pooled_features_have_feature_dim(name, request):
    b = _tiny(name, request)
    batch = b.collate([b.prepare(x) for x in _raw(b.modality)])
    with torch.no_grad():
        feats = b.eval()(batch)
    assert feats.shape == (3, b.feature_dim)
    assert torch.isfinite(feats).all()


@pytest.mark.parametrize("name", BACKBONES)
def test_layer_groups_partition_parameters_in_input_to_output_order(name, request):
    b = _tiny(name, request)
    groups = b.layer_groups()
    assert len(groups) >= 3, [g.name for g in groups]
    seen: dict[int, str] = {}
    for g in groups:
        assert g.params, f"group {g.name} is empty"
        for p in g.params:
            assert id(p) not in seen, f"parameter in both {seen[id(p)]} and {g.name}"
            seen[id(p)] = g.name
    all_params = list(b.parameters())
    assert set(seen) == {id(p) for p in all_params}, "every parameter belongs to exactly one group"
    # input side first: the very first parameter (stem / embeddings) is in the first group
    assert id(all_params[0]) in {id(p) for p in groups[0].params}
    # every group's modules own parameters of that group (so freezing a group can set its mode)
    for g in groups:
        assert g.modules


@pytest.mark.parametrize("name", BACKBONES)
def test_preprocessing_and_identity_are_serialisable(name, request):
    b = _tiny(name, request)
    json.dumps(b.preprocessing)
    json.dumps(b.info.to_dict())
    assert b.preprocessing["kind"] == b.modality
    assert len(b.info.fingerprint) == 64
    assert b.info.pretrained == name.startswith("hf")


def test_fingerprint_identifies_weights(tiny_bert):
    a = build_backbone(f"hf:{tiny_bert}")
    b = build_backbone(f"hf:{tiny_bert}")
    assert a.info.fingerprint == b.info.fingerprint
    assert a.cache_key() == b.cache_key()
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    from graftwork.backbones.base import fingerprint_module

    assert fingerprint_module(b) != a.info.fingerprint


def test_text_mean_pooling_ignores_padding(tiny_bert):
    b = build_backbone(f"hf:{tiny_bert}").eval()
    with torch.no_grad():
        alone = b(b.collate(["apple"]))
        padded = b(b.collate(["apple", "car truck bus train boat"]))
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_image_preprocessing_resizes_any_size_to_the_crop():
    torch.manual_seed(0)
    b = build_backbone("timm:test_efficientnet", pretrained=False)
    crop = b.preprocessing["crop"]
    for size in [(10, 10), (300, 120), (64, 500)]:
        x = b.prepare(Image.new("RGB", size, (10, 20, 30)))
        assert tuple(x.shape) == (3, crop, crop)


def test_torchvision_classifier_is_removed():
    b = build_backbone("torchvision:mobilenet_v3_small", pretrained=False)
    assert b.feature_dim == 1024  # the hidden layer before the ImageNet classifier, not 1000 logits
    assert not any(isinstance(m, torch.nn.Linear) and m.out_features == 1000 for m in b.modules())


@pytest.mark.parametrize("name, convolutional", [("timm:test_efficientnet", True),
                                                 ("torchvision:mobilenet_v3_small", True),
                                                 ("timm:test_vit", False), ("hf-vit", False)])
def test_convolutional_backbones_run_channels_last_with_the_same_features(name, convolutional, request):
    b = _tiny(name, request).eval()
    assert b.channels_last is convolutional
    batch = b.batch_to(b.collate([b.prepare(x) for x in _raw("image")]), "cpu")
    assert batch.is_contiguous(memory_format=torch.channels_last) is convolutional
    standard = copy.deepcopy(b.model).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        expected = standard(batch.contiguous()).flatten(1)
        assert torch.allclose(b(batch), expected, atol=1e-5)
