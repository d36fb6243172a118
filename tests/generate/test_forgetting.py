"""Forgetting: the finding read from the general-text loss per epoch, and the LoRA-scaling remedy."""

from __future__ import annotations

import pytest
import torch

from graftwork.generate import forgetting
from graftwork.generate.forgetting import SCALES, choose_scale, forgetting_finding, lora_layers

from .conftest import make_model


def _history(general: list[float], val: list[float]) -> list[dict]:
    return [{"epoch": i, "general_text": {"loss": g}, "val": {"loss": v}}
            for i, (g, v) in enumerate(zip(general, val, strict=True))]


def test_a_sharp_general_text_rise_with_little_task_gain_is_forgetting():
    warned = forgetting_finding(_history([3.0, 3.3, 3.6], [2.0, 1.95, 1.9]), best_epoch=2)
    assert warned is not None and warned.severity == "warning" and warned.value == pytest.approx(0.2)
    assert warned.details["per_epoch"] == [3.0, 3.3, 3.6]
    learnt = forgetting_finding(_history([3.0, 3.3, 3.6], [2.0, 1.0, 0.5]), best_epoch=2)
    assert learnt is not None and learnt.severity == "info"  # the task gained much: a price worth paying
    steady = forgetting_finding(_history([3.0, 3.05, 3.1], [2.0, 1.99, 1.98]), best_epoch=1)
    assert steady is not None and steady.severity == "info"
    assert forgetting_finding([{"epoch": 0, "val": {"loss": 2.0}}], best_epoch=0) is None  # not measured


def _lora_model():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_model(40), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for layer in lora_layers(model):
            for b in layer.lora_B.values():
                b.weight.normal_()  # a trained adapter (B starts at zero)
    return model


def _b(model) -> list[torch.Tensor]:
    return [b.weight.detach().clone() for layer in lora_layers(model) for b in layer.lora_B.values()]


def test_the_remedy_keeps_the_best_scale_and_on_ties_the_one_nearest_the_base_model():
    model = _lora_model()
    trained = _b(model)
    scale, tried = choose_scale(model, lambda m: 1.0)  # every scale as good: the smallest
    assert scale == SCALES[0] and [t["scale"] for t in tried] == list(SCALES)
    assert all(torch.allclose(a, SCALES[0] * b) for a, b in zip(_b(model), trained, strict=True))
    model = _lora_model()
    trained = _b(model)
    scale, _ = choose_scale(model, lambda m: float(_b(m)[0].abs().sum()))  # larger updates score higher
    assert scale == 1.0 and all(torch.allclose(a, b) for a, b in zip(_b(model), trained, strict=True))


def test_the_reference_set_measured_is_every_third_sentence():
    every = forgetting.reference_examples(1)
    assert len(every) == 206 and forgetting.reference_examples() == every[::3]
