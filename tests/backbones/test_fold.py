"""BatchNorm folding gives the unfolded network's outputs and gradients, and only where that is provable."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from graftwork.backbones import build_backbone
from graftwork.backbones.fold import conv_bn_pairs, folded_batchnorm
from graftwork.backbones.vision import ImagePreprocess


def _model_with_statistics() -> nn.Module:
    """A tiny torchvision CNN whose BatchNorm layers hold non-trivial statistics and affine parameters."""
    torch.manual_seed(0)
    b = build_backbone("torchvision:mobilenet_v3_small", pretrained=False)
    with torch.no_grad():
        for m in b.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return b.model


def _plain(model: nn.Module) -> nn.Module:
    """The same network with no folding possible (a copy whose forward never enters the context)."""
    return copy.deepcopy(model)


def test_torchvision_conv_norm_blocks_are_found():
    model = _model_with_statistics()
    pairs = conv_bn_pairs(model)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert len(pairs) == n_bn  # every BatchNorm of MobileNetV3 follows its convolution in a Sequential


def test_folded_eval_forward_equals_the_plain_one():
    model = _model_with_statistics().eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        with folded_batchnorm(model) as n:
            got = model(x)
    assert n > 0
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_folded_training_gives_the_same_gradients_with_fixed_statistics():
    model = _model_with_statistics()
    model.train()
    for m in model.modules():  # graftwork's default policy: pretrained statistics, affine parameters trained
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    reference = _plain(model)
    x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 5, (4,))

    def grads(net: nn.Module, fold: bool) -> list[torch.Tensor]:
        torch.manual_seed(1)  # the same dropout mask
        if fold:
            with folded_batchnorm(net):
                out = net(x)
        else:
            out = net(x)
        F.cross_entropy(out[:, :5], y).backward()
        return [p.grad for p in net.parameters()]

    for g_fold, g_plain in zip(grads(model, True), grads(reference, False), strict=True):
        assert g_fold is not None and g_plain is not None
        assert torch.allclose(g_fold, g_plain, atol=1e-5, rtol=1e-3)


def test_batchnorm_that_updates_its_statistics_is_not_folded():
    model = _model_with_statistics().train()
    reference = _plain(model)
    x = torch.randn(4, 3, 64, 64)
    torch.manual_seed(1)
    with folded_batchnorm(model):
        got = model(x)
    torch.manual_seed(1)
    expected = reference(x)
    assert torch.allclose(got, expected, atol=1e-5)
    bn, bn_ref = (next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d)) for net in (model, reference))
    assert torch.allclose(bn.running_mean, bn_ref.running_mean)  # the statistics moved, identically


def test_hooked_layers_see_the_unfolded_values():
    model = _model_with_statistics().eval()
    conv, bn = conv_bn_pairs(model)[0]
    seen: dict[str, torch.Tensor] = {}
    bn.register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), folded_batchnorm(model):
        model(x)
        raw = conv(x)  # the first convolution reads the input directly
    assert torch.allclose(seen["inp"], raw)  # the BatchNorm's input is the raw convolution, not folded values
    assert not torch.allclose(seen["out"], seen["inp"])


def test_the_network_is_plain_again_after_the_context():
    model = _model_with_statistics().eval()
    keys = list(model.state_dict())
    with folded_batchnorm(model):
        pass
    assert list(model.state_dict()) == keys
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_image_backbones_forward_folded():
    torch.manual_seed(0)
    b = build_backbone("torchvision:mobilenet_v3_small", pretrained=False).eval()
    calls = []
    conv, _ = conv_bn_pairs(b.model)[-1]
    original = torch.nn.Conv2d._conv_forward

    def spy(self, x, weight, bias):
        if self is conv:
            calls.append(bias is not None)
        return original(self, x, weight, bias)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Conv2d, "_conv_forward", spy)
        with torch.no_grad():
            b(torch.randn(2, 3, 64, 64))
    assert calls == [True]  # the bias-free convolution ran with the BatchNorm's shift as its bias


@pytest.mark.parametrize("size", [(28, 28), (50, 60), (300, 120), (64, 500), (99, 99), (7, 200)])
def test_fast_eval_preprocessing_equals_torchvision(size):
    """The crop's source box resampled in one step gives torchvision's Resize + CenterCrop to within two steps of
    255 per pixel (PIL rounds to 8 bits between its two passes, at other intermediate sizes), a quarter of a step
    on average, padding included; the torch-free runtime computes the same pixels."""
    from graftwork.runtime.preprocess import ImagePre

    pre = ImagePreprocess(110, 96, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    fast, reference = pre.transform()(image), pre.compose()(image)
    assert fast.shape == reference.shape == (3, 96, 96)
    step = 1 / 255 / min(pre.std)
    assert float((fast - reference).abs().max()) <= 2 * step + 1e-6
    assert float((fast - reference).abs().mean()) < 0.3 * step
    runtime = ImagePre(pre.to_dict())(image)
    np.testing.assert_allclose(runtime, fast.numpy(), atol=1e-6)


def test_training_augmentation_is_a_normalised_crop_reproducible_from_the_seed():
    pre = ImagePreprocess(110, 96, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8))
    aug = pre.train_transform()
    torch.manual_seed(3)
    a = [aug(image) for _ in range(4)]
    torch.manual_seed(3)
    b = [aug(image) for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], a[1])  # a new crop each time
    assert all(x.shape == (3, 96, 96) and x.dtype == torch.float32 for x in a)
    assert min(float(x.min()) for x in a) >= -1.0 and max(float(x.max()) for x in a) <= 1.0
    # a crop of the whole image, unflipped, is the resized image
    whole = T.Compose([T.Resize((96, 96), antialias=True), T.ToImage(), T.ToDtype(torch.float32, scale=True),
                       T.Normalize([0.5] * 3, [0.5] * 3)])(image)
    full = pre.train_transform(scale=(1.0, 1.0), flip=False)
    full.ratio = [120 / 80, 120 / 80]
    assert torch.allclose(full(image), whole, atol=1e-6)


def test_overlapping_uses_keep_the_patch_until_the_last_one_leaves():
    """Nested calls, or forward passes of one network in several threads, share one patch."""
    model = _model_with_statistics().eval()
    conv, _ = conv_bn_pairs(model)[0]
    with folded_batchnorm(model) as outer:
        with folded_batchnorm(model) as inner:
            assert inner == outer
        assert "forward" in conv.__dict__  # still folded for the outer user
    assert "forward" not in conv.__dict__
