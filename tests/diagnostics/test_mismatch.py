"""Domain mismatch: BatchNorm statistics shift and pretrained-vs-random separability."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from graftwork.backbones import build_backbone
from graftwork.data import load_data
from graftwork.diagnostics.findings import Finding
from graftwork.diagnostics.mismatch import (
    BN_THRESHOLDS,
    BNLayerShift,
    BNShift,
    bn_mismatch_finding,
    bn_statistics_shift,
    check_bn_mismatch,
    check_pretrained_vs_random,
    compare_to_random,
    diagnose_mismatch,
    interpret,
    pretrained_vs_random_finding,
    random_control,
)


@pytest.fixture(scope="module")
def tiny_cnn() -> nn.Module:
    """A small CNN whose BatchNorm running statistics describe inputs drawn from N(0, 1)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8, momentum=None), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8, momentum=None), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net.train()
    with torch.no_grad():  # momentum=None: the running statistics become the average over these batches
        for _ in range(10):
            net(torch.randn(32, 3, 12, 12))
    return net.eval()


def batches(transform, n: int = 4, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [transform(torch.randn(32, 3, 12, 12, generator=g), g) for _ in range(n)]


def test_bn_shift_is_the_standardised_distance_to_the_running_statistics():
    bn = nn.BatchNorm2d(2).eval()  # running mean 0, running var 1
    x = torch.stack([torch.full((4, 4), 2.0), torch.full((4, 4), 0.0)])[None].repeat(2, 1, 1, 1)
    x[1, 1] = 2.0  # channel 1: half the values 0, half 2 -> mean 1, variance 1
    shift = bn_statistics_shift(bn, [x])
    assert shift is not None and shift.examples == 2
    (layer,) = shift.layers
    # channel 0: mean 2, variance 0; channel 1: mean 1, variance 1
    assert layer.mean_shift == pytest.approx((2 + 1) / 2 / math.sqrt(1 + bn.eps))
    assert layer.var_shift == pytest.approx((abs(math.log(bn.eps / (1 + bn.eps))) + 0) / 2)
    assert not bn.training


def test_matched_inputs_do_not_trigger_mismatch(tiny_cnn):
    shift = bn_statistics_shift(tiny_cnn, batches(lambda x, g: x))
    assert shift is not None and len(shift.layers) == 2
    assert shift.score < 0.1
    assert bn_mismatch_finding(shift).severity == "info"


@pytest.mark.parametrize("transform", [
    lambda x, g: 4 * x + 3,  # scaled, offset noise
    lambda x, g: 255 * torch.rand(x.shape, generator=g),  # pixel values, not normalised
], ids=["scaled-noise", "unnormalised"])
def test_shifted_inputs_trigger_high_mismatch(tiny_cnn, transform):
    finding = bn_mismatch_finding(bn_statistics_shift(tiny_cnn, batches(transform)))
    assert finding.code == "domain-mismatch-bn"
    assert finding.severity == "high"
    assert finding.value > BN_THRESHOLDS[1]
    assert "fine-tune" in finding.advice and "--bn-stats update" in finding.advice
    assert [x["name"] for x in finding.details["layers"]] == ["1", "4"]


def test_finding_levels_follow_the_thresholds():
    def at(score: float) -> str:
        return bn_mismatch_finding(BNShift([BNLayerShift("bn", 4, score / 2, score / 2)], 8)).severity

    low, high = BN_THRESHOLDS
    assert (at(low - 0.01), at(low + 0.01), at(high + 0.01)) == ("info", "warning", "high")
    assert bn_mismatch_finding(None).severity == "info"


def test_backbone_without_batchnorm_has_no_bn_check():
    vit = build_backbone("timm:test_vit", pretrained=False)
    assert bn_statistics_shift(vit, [torch.zeros(2, 3, 160, 160)]) is None


def test_check_bn_mismatch_on_an_image_folder(image_folder):
    torch.manual_seed(0)
    backbone = build_backbone("timm:test_efficientnet", pretrained=False)
    finding = check_bn_mismatch(backbone, load_data(image_folder).train, max_items=10, batch_size=4)
    assert finding.code == "domain-mismatch-bn"
    assert finding.details["examples"] == 10
    assert len(finding.details["layers"]) == 13
    json.dumps(finding.to_dict())


def _features(labels: np.ndarray, informative: bool, seed: int, strength: float = 2.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(labels), 16))
    if informative:
        x[:, :3] += strength * np.eye(3)[labels]
    return x


def test_pretrained_features_that_separate_better_than_random_ones_are_info():
    y = np.repeat([0, 1, 2], 20)
    f = pretrained_vs_random_finding(_features(y, True, 0), _features(y, False, 1), y)
    assert (f.code, f.severity) == ("pretrained-not-helping", "info")
    assert f.details["pretrained_accuracy"] > 0.9 > f.details["random_accuracy"] + 0.3
    assert f.details["pretrained_logme"] > f.details["random_logme"]


def test_random_labels_mean_pretraining_is_not_helping():
    y = np.random.default_rng(5).permutation(np.repeat([0, 1, 2], 20))
    f = pretrained_vs_random_finding(_features(y, False, 0), _features(y, False, 1), y)
    assert (f.code, f.severity) == ("pretrained-not-helping", "high")
    assert f.value is not None and f.value <= max(f.details["margin"], 2 * f.details["gap_stderr"])


def test_data_separable_by_random_features_is_a_ceiling_not_a_failure():
    y = np.repeat([0, 1], 15)
    f = pretrained_vs_random_finding(_features(y, True, 0, 8.0), _features(y, True, 1, 8.0), y)
    assert f.severity == "info" and f.details.get("ceiling")


def test_a_gain_that_noise_could_explain_is_a_warning():
    labels = np.repeat([0, 1], 50)
    pretrained, random = labels.copy(), labels.copy()
    pretrained[:40] = 1 - pretrained[:40]  # right on 60 of 100
    random[4:50] = 1 - random[4:50]  # right on 54: 10 examples only pretrained gets, 4 only random
    f = compare_to_random(pretrained, random, labels)
    assert f.severity == "warning"
    assert 1 < f.details["gap"] / f.details["gap_stderr"] < 2


def test_random_control_has_the_same_preprocessing_and_other_weights():
    torch.manual_seed(3)
    reference = build_backbone("timm:test_efficientnet", pretrained=False)
    reference.set_image_size(96)
    control = random_control(reference, seed=0)
    assert control.preprocessing == reference.preprocessing
    assert control.info.fingerprint != reference.info.fingerprint
    assert control.info.fingerprint == random_control(reference, seed=0).info.fingerprint


def write_random_label_folder(root, per_class: int = 12):
    """Images of random colours filed under two classes at random: nothing in an image predicts its class."""
    rng = np.random.default_rng(0)
    for i in range(2 * per_class):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        colour = rng.integers(0, 256, 3)
        pixels = np.clip(colour + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")
    return root


def _tiny_backbone(seed: int):
    torch.manual_seed(seed)
    backbone = build_backbone("timm:test_efficientnet", pretrained=False)
    backbone.set_image_size(64)  # small inputs keep the tests fast
    return backbone


def test_pretrained_vs_random_on_images_with_random_labels(tmp_path):
    examples = load_data(write_random_label_folder(tmp_path / "data")).train
    f = check_pretrained_vs_random(_tiny_backbone(1), examples, seed=0)
    assert (f.code, f.severity) == ("pretrained-not-helping", "high")


def test_pretrained_vs_random_on_separable_images_is_not_high(image_folder):
    f = check_pretrained_vs_random(_tiny_backbone(1), load_data(image_folder).train, seed=0)
    assert f.severity == "info"
    assert f.details["pretrained_accuracy"] == 1.0


def test_diagnose_mismatch_combines_both_checks(image_folder):
    report = diagnose_mismatch(_tiny_backbone(1), load_data(image_folder).train, max_bn_items=8)
    assert [f.code for f in report.findings] == ["domain-mismatch-bn", "pretrained-not-helping"]
    assert report.interpretation
    json.dumps(report.to_dict())


def test_interpretation_changes_the_advice():
    def bn(severity: str) -> Finding:
        return Finding("domain-mismatch-bn", severity, "")

    def transfer(severity: str) -> Finding:
        return Finding("pretrained-not-helping", severity, "")

    text, advice = interpret(bn("high"), transfer("info"))
    assert "still help" in text and any("--bn-stats update" in a for a in advice)
    assert any("lower accuracy than on natural images" in a for a in advice)
    text, advice = interpret(bn("high"), transfer("high"))
    assert "failing" in text and any("--strategy full" in a for a in advice)
    text, advice = interpret(bn("info"), transfer("high"))
    assert "labels" in text
    text, advice = interpret(bn("warning"), transfer("warning"))
    assert "help little" in text and any("--bn-stats update" in a for a in advice)
    text, advice = interpret(None, transfer("info"))
    assert advice == [] and "sound start" in text
