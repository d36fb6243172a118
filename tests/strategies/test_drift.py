"""Catastrophic forgetting: CKA drift per layer group, the forgetting finding, back-off, L2-SP and WiSE-FT."""

from __future__ import annotations

import pytest
import torch

import graftwork
from graftwork.strategies.drift import forgetting, linear_cka

from ..conftest import make_image_folder

TINY = {"backbone": "timm:test_efficientnet", "pretrained": False, "stage_epochs": 2, "batch_size": 8}
HUGE = {"lr": 100.0, "lr_ratio": 1.0, "lr_decay": 1.0, "grad_clip": 0.0}


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "img", per_class=10, classes=("red", "green", "blue"))


def test_linear_cka_is_one_for_the_same_representation_up_to_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q + 2.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(50, 8, generator=g)) < 0.5


def test_forgetting_needs_a_jump_without_validation_gain():
    rows = [{"epoch": 1, "cka": {"top": 0.95}}, {"epoch": 2, "cka": {"top": 0.5}}]
    assert forgetting(rows, ["top"], improved=False).code == "forgetting"
    assert forgetting(rows, ["top"], improved=True) is None
    assert forgetting(rows, ["other"], improved=False) is None  # frozen groups do not count
    slow = [{"epoch": 1, "cka": {"top": 0.9}}, {"epoch": 2, "cka": {"top": 0.8}}]
    assert forgetting(slow, ["top"], improved=False) is None


def test_a_stage_s_first_epoch_is_judged_by_the_floor_only():
    start = [{"epoch": 1, "cka": {"top": 0.4}}]  # a big first move while the stage warms up
    assert forgetting(start, ["top"], improved=False) is None
    later = [{"epoch": 4, "cka": {"top": 0.95}}, {"epoch": 1, "cka": {"top": 0.5}}]  # the next stage's start
    assert forgetting(later, ["top"], improved=False) is None
    collapsed = [{"epoch": 1, "cka": {"top": 0.1}}]
    found = forgetting(collapsed, ["top"], improved=False)
    assert found is not None and "below 0.2" in found.message


def test_a_huge_learning_rate_is_reported_as_forgetting_and_a_sane_one_is_not(folder):
    sane = graftwork.fit(folder, strategy="gradual", **TINY)
    assert "forgetting" not in {f["code"] for f in sane.metrics["findings"]}
    # the forgetting rule judges a stage's second and later epochs: five epochs a stage give the wild run's
    # chaotic trajectory room to show a jump without validation gain (it did on each of seeds 0-3; with three
    # epochs, on two of them: a test of the rule must not hang on one trajectory)
    wild = graftwork.fit(folder, strategy="gradual", **(TINY | {"stage_epochs": 5, "stage_patience": 5}), **HUGE,
                         probe_c=1.0)
    found = [f for f in wild.metrics["findings"] if f["code"] == "forgetting"]
    assert found and found[0]["severity"] == "warning" and "learning rate" in found[0]["advice"]
    drift = wild.metrics["drift"]
    assert drift and {"stage", "epoch", "cka", "weight_change"} <= set(drift[0])
    assert min(min(r["cka"].values()) for r in drift) < 0.75
    assert max(max(r["weight_change"].values()) for r in drift) > max(
        max(r["weight_change"].values()) for r in sane.metrics["drift"])


def test_auto_backs_off_when_it_forgets(tmp_path):
    data = make_image_folder(tmp_path / "img", per_class=32, classes=("red", "green", "blue"))
    # six epochs a stage: room to go on after backing off wherever the wild trajectory forgets (seeds 0-2 all
    # backed off by epoch 3; with four epochs a back-off at the last epoch would leave nothing to check)
    model = graftwork.fit(data, strategy="auto", **(TINY | {"stage_epochs": 6, "stage_patience": 6}), **HUGE,
                          probe_c=1.0)
    assert model.config["plan"]["strategy"] == "full"  # images, 25-499 per class: LP-FT
    backed = [s for s in model.metrics["stages"] if "backoff" in s]
    assert backed and backed[0]["backoff"]["factor"] == pytest.approx(0.1)
    # the stage went on after backing off, from its best weights
    assert backed[0]["backoff"]["epoch"] < len(backed[0]["history"])


def test_l2sp_keeps_the_weights_closer_to_the_start(folder):
    free = graftwork.fit(folder, strategy="full", **TINY, lr=0.05)
    pulled = graftwork.fit(folder, strategy="full", **TINY, lr=0.05, l2sp=10.0)

    def change(m):
        return max(max(r["weight_change"].values()) for r in m.metrics["drift"])

    assert change(pulled) < change(free)


def test_wise_ft_in_a_fit_leaves_the_kept_model_as_scored(folder):
    # the interpolation itself is tested on the trainer (tests/train/test_callbacks.py); here: a fit with
    # --wise ends with the model its kept stage (or interpolation) was scored with
    model = graftwork.fit(folder, strategy="full", **TINY, lr=0.05, wise=True, seed=3, probe_c=1.0)
    kept = next(s for s in model.metrics["stages"] if s["kept"])
    wise = kept.get("wise")
    scored = next(t["val_acc"] for t in wise["tried"] if t["alpha"] == wise["alpha"]) if wise else kept["val_acc"]
    assert model.metrics["val"]["accuracy"] == pytest.approx(scored)
