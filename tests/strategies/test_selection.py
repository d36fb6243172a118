"""Selection at the few-shot end: the small-validation rule, near-ties, and stages that must never be kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graftwork.backbones import build_backbone
from graftwork.data import Examples
from graftwork.strategies.base import Rates
from graftwork.strategies.full import FullStrategy
from graftwork.strategies.head import PROBE_CS, LinearHead, fit_probe, select_probe
from graftwork.strategies.inputs import TrainingInputs, collate_for
from graftwork.strategies.plan import selection_for
from graftwork.strategies.selection import (
    SMALL_VAL_PER_CLASS,
    collapse_reason,
    paired_gap,
    simplest_near_best,
    small_validation,
)
from graftwork.train import BestStageSelection, Progress, Score

from ..conftest import WORDS, make_text_rows
from ..train.tiny import make_trainer
from .test_head import blobs


def test_small_validation_rule_is_the_smallest_class():
    assert small_validation([3, 3])
    assert small_validation([SMALL_VAL_PER_CLASS + 30, SMALL_VAL_PER_CLASS - 1])
    assert not small_validation([SMALL_VAL_PER_CLASS, SMALL_VAL_PER_CLASS + 5])
    assert not small_validation([])
    small = selection_for({"a": 3, "b": 3}, 26)
    assert small["small_validation"] and small["method"] == "cross-validation" and small["examples"] == 32
    assert "6 examples" in small["how"] and "cross-validation" in small["how"]
    large = selection_for({"a": 25, "b": 30}, 220)
    assert not large["small_validation"] and large["method"] == "validation" and large["examples"] == 55


def test_small_validation_switches_the_probe_to_cross_validation_over_train_and_val():
    x, y = blobs(12, classes=2, spread=8.0, seed=4)
    xv, yv = blobs(3, classes=2, spread=8.0, seed=5)
    head = LinearHead(x.shape[1], 2)
    fit, small = select_probe(head, x, y, xv, yv)
    assert small and fit.selection == "cross-validation" and fit.examples == len(y) + len(yv)
    assert fit.folds == "5-fold x 3"
    # the head itself is trained on the training features only, with the cross-validated C
    ref = LinearHead(x.shape[1], 2)
    fit_probe(ref, x, y, c=fit.c, features=fit.features)
    torch.testing.assert_close(head.fc.weight, ref.fc.weight)


def test_a_large_validation_split_still_chooses_on_validation():
    x, y = blobs(40, classes=2, spread=8.0, seed=4)
    xv, yv = blobs(SMALL_VAL_PER_CLASS, classes=2, spread=8.0, seed=5)
    fit, small = select_probe(LinearHead(x.shape[1], 2), x, y, xv, yv)
    assert not small and fit.selection == "validation" and fit.examples == len(yv)


def test_near_ties_go_to_the_stronger_regularisation():
    folds = [np.array([0.6, 0.7, 0.6, 0.7]), np.array([0.8, 0.7, 0.9, 0.8]), np.array([0.9, 0.8, 0.9, 0.85])]
    # the best's mean 0.8625 has a standard error of 0.024: 1 (mean 0.80) is not within it, 0 neither
    assert simplest_near_best(folds, best=2) == 2
    noisy = [np.array([0.6, 0.7, 0.6, 0.7]), np.array([0.8, 0.7, 0.9, 0.8]), np.array([1.0, 0.5, 1.0, 0.8])]
    assert simplest_near_best(noisy, best=2) == 1  # a noisier best (se 0.12): 1 is a near-tie, 0 is not
    gap, se = paired_gap(np.array([1, 1, 0, 1]), np.array([1, 0, 0, 1]))
    assert gap == pytest.approx(0.25) and se == pytest.approx(0.25)
    # through the probe: the chosen C is never weaker than the most accurate one, and within a standard error
    x, y = blobs(8, classes=2, spread=10.0, seed=2)
    fit = fit_probe(LinearHead(x.shape[1], 2), x, y)
    assert fit.selection == "cross-validation" and "1.0" in str(PROBE_CS)
    rows = {(r["features"], r["C"]): r for r in fit.grid}
    order = list(rows)  # references first, then strong to weak regularisation
    most_accurate = fit.best or (fit.features, fit.c)
    assert order.index((fit.features, fit.c)) <= order.index(most_accurate)
    top = rows[most_accurate]
    assert rows[(fit.features, fit.c)]["val_acc"] >= top["val_acc"] - top["val_acc_se"] - 1e-9


def test_collapse_reason_needs_a_split_that_is_not_one_class_itself():
    assert "100%" in collapse_reason(np.zeros(6, dtype=int), np.array([0, 0, 0, 1, 1, 1]), 2)
    assert collapse_reason(np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 0, 1, 1, 1]), 2) is None
    assert collapse_reason(np.zeros(10, dtype=int), np.array([0] * 9 + [1]), 2) is None


def _word_inputs(bb, rows, labels):
    ex = Examples("text", [t for t, _ in rows], [lab for _, lab in rows], [str(i) for i in range(len(rows))])
    return TrainingInputs(bb, ex, labels, augment=False, decoded=None)


def test_a_collapsed_stage_is_not_kept_even_when_more_accurate_on_validation(tiny_bert):
    """A stage trained on one class predicts it for everything: on a balanced validation split of 6 it scores
    0.5, above a poor probe (0.0), and would have won the comparison by accuracy."""
    torch.manual_seed(0)
    bb = build_backbone(str(tiny_bert))
    rows = make_text_rows(per_class=6, seed=1)
    val_rows = rows[:3] + rows[6:9]
    val_labels = [sorted(WORDS).index(lab) for _, lab in val_rows]
    train = _word_inputs(bb, rows, [0] * len(rows))  # every training label the same: the stage collapses
    val = _word_inputs(bb, val_rows, val_labels)
    head = LinearHead(bb.feature_dim, 2)
    with torch.no_grad():  # a probe that gets every validation example wrong: fit on them, then negated
        feats = bb(collate_for(bb)([val[i] for i in range(len(val))])[0])
    fit_probe(head, feats.numpy(), np.array(val_labels), c=100.0)
    with torch.no_grad():
        head.fc.weight.neg_()
        head.fc.bias.neg_()
    probe_weight = head.fc.weight.detach().clone()
    trainer = make_trainer(bb, head, train, val, FullStrategy(Rates(lr=0.5, lr_ratio=10, lr_decay=0.8)), epochs=3,
                           patience=3, batch_size=4)
    probe = trainer.validate()
    assert probe.score == 0.0
    progress = Progress(schedule=[len(bb.layer_groups())],
                        best={"stage": "linear probe", "val_acc": probe.score, "val_loss": probe.loss},
                        stages=[{"stage": "linear probe", "val_acc": probe.score, "val_loss": probe.loss}])
    progress = trainer.fit(progress)
    stage = progress.stages[1]
    assert max(r["val_acc"] for r in stage["history"]) == 0.5, "the collapsed stage is more accurate"
    assert all("one class" in r["rejected"] for r in stage["history"] if r["val_acc"] == 0.5)
    assert "one class" in stage["rejected"] and not stage["kept"]
    assert progress.best["stage"] == "linear probe"
    torch.testing.assert_close(trainer.net.head.fc.weight, probe_weight)  # the probe's weights are back


def test_a_stage_with_a_worse_loss_than_the_probe_is_not_eligible(tiny_bert):
    bb = build_backbone(str(tiny_bert))
    rows = make_text_rows(per_class=4)
    labels = [sorted(WORDS).index(lab) for _, lab in rows]
    data = _word_inputs(bb, rows, labels)
    trainer = make_trainer(bb, LinearHead(bb.feature_dim, 2), data, data, FullStrategy(Rates(lr=1e-3)), epochs=1,
                           patience=1, batch_size=4)
    val = trainer.validate()
    score = Score(val.score, val.loss)
    progress = Progress(schedule=[1], best={"stage": "linear probe", "val_acc": 0.0, "val_loss": 0.0},
                        stages=[{"stage": "linear probe", "val_acc": 0.0, "val_loss": val.loss - 1e-3}])
    val.pred = np.array(labels)  # not collapsed: only the loss counts here
    assert "worse than the linear probe" in BestStageSelection.ineligible(val, score, progress)
    progress.stages[0]["val_loss"] = math.inf
    assert BestStageSelection.ineligible(val, score, progress) is None


def test_scikit_learns_default_is_a_candidate_and_loads_as_the_same_function():
    from sklearn.linear_model import LogisticRegression

    x, y = blobs(10, classes=3, spread=20.0, seed=7)
    head = LinearHead(x.shape[1], 3)
    fit = fit_probe(head, x, y, c=1.0, features="raw")
    assert fit.features == "raw" and fit.to_dict()["features"] == "raw"
    ref = LogisticRegression(max_iter=2000).fit(x, y)
    with torch.no_grad():
        logits = head.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), ref.predict_proba(x), atol=2e-3)
    cv = fit_probe(LinearHead(x.shape[1], 3), x, y)
    assert [(r["features"], r["C"]) for r in cv.grid[:2]] == [("raw", 1.0), ("normalised", 1.0)]
    assert len(cv.grid) == len(PROBE_CS) + 2


def test_the_normalised_features_probe_is_scikit_learns_on_unit_length_features_and_survives_saving(tmp_path):
    from safetensors.torch import load_file, save_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    x, y = blobs(10, classes=3, spread=20.0, seed=7)
    x = x * np.linspace(0.5, 3.0, len(x))[:, None].astype(np.float32)  # lengths that differ: scaling matters
    head = LinearHead(x.shape[1], 3)
    fit = fit_probe(head, x, y, c=1.0, features="normalised")
    assert fit.to_dict()["features"] == "normalised" and "unit length" in fit.describe()
    ref = LogisticRegression(max_iter=2000).fit(normalize(x), y)
    with torch.no_grad():
        proba = torch.softmax(head.eval()(torch.from_numpy(x)), 1).numpy()
        np.testing.assert_allclose(proba, ref.predict_proba(normalize(x)), atol=2e-3)
        # a longer copy of an example is the same example to this head
        torch.testing.assert_close(head(torch.from_numpy(x[:3] * 7)), head(torch.from_numpy(x[:3])))
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    back = LinearHead(x.shape[1], 3)
    back.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    assert back.unit
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(back.eval()(torch.from_numpy(x)), 1).numpy(), proba, atol=1e-6)


def test_the_two_branch_head_averages_scikit_learns_raw_and_unit_length_logits_and_survives_saving(tmp_path):
    from safetensors.torch import load_file, save_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    from graftwork.model import restore_head

    x, y = blobs(10, classes=3, spread=20.0, seed=7)
    x = x * np.linspace(0.5, 3.0, len(x))[:, None].astype(np.float32)  # lengths that differ: the branches differ
    head = LinearHead(x.shape[1], 3)
    fit = fit_probe(head, x, y, c=1.0, features="raw+normalised")
    assert fit.to_dict()["features"] == "raw+normalised" and "logits averaged" in fit.describe()
    assert head.scales_to_unit_length and not head.unit and head.unit_branch is not None
    raw = LogisticRegression(max_iter=2000).fit(x, y).decision_function(x)
    unit = LogisticRegression(max_iter=2000).fit(normalize(x), y).decision_function(normalize(x))
    expected = torch.softmax(torch.from_numpy((raw + unit) / 2), 1).numpy()
    with torch.no_grad():
        proba = torch.softmax(head.eval()(torch.from_numpy(x)), 1).numpy()
    np.testing.assert_allclose(proba, expected, atol=3e-3)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    back = restore_head(tmp_path, load_file(str(tmp_path / "head.safetensors")), in_features=x.shape[1],
                        classes=["a", "b", "c"], recorded_in=x.shape[1])
    assert back.unit_branch is not None and back.unit_branch.unit
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(back.eval()(torch.from_numpy(x)), 1).numpy(), proba, atol=1e-6)
    fit_probe(head, x, y, c=1.0, features="raw")  # refit as a one-branch head: the second branch is gone
    assert head.unit_branch is None and "unit_branch.fc.weight" not in head.state_dict()


def test_a_head_saved_before_unit_length_existed_still_loads_and_scales_nothing():
    x, y = blobs(10, classes=2, spread=20.0, seed=3)
    head = LinearHead(x.shape[1], 2)
    fit_probe(head, x, y, c=0.1)
    old = {k: v for k, v in head.state_dict().items() if k != "unit_length"}
    back = LinearHead(x.shape[1], 2, unit_length=True)
    back.load_state_dict(old)  # strict: the missing key is supplied, as it was before the option
    assert not back.unit
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(torch.from_numpy(x)), head.eval()(torch.from_numpy(x)))


def _margin(stage_pred, stage_losses, probe_pred, probe_losses, truth):
    """The small-validation rule on given validation results: (why not kept or None, the stage's record)."""
    from types import SimpleNamespace

    trainer = SimpleNamespace(last=SimpleNamespace(truth=np.array(truth)))
    state = Progress(schedule=[1], probe_pred=list(probe_pred), probe_losses=list(probe_losses))
    record: dict = {}
    best = {"pred": list(stage_pred), "losses": list(stage_losses)}
    return BestStageSelection(probe_margin=True)._short_of_margin(trainer, best, state, record), record


def test_a_small_validation_gain_counts_in_accuracy_or_in_per_example_loss():
    truth = [0, 1] * 12  # 24 validation examples
    probe_pred = truth[:-1] + [0]  # 23 of 24 right
    stage_pred = truth  # one more right: +0.042, and its paired standard error is 0.042 too
    rng = np.random.default_rng(0)
    probe_losses = rng.uniform(0.4, 0.9, size=24).tolist()
    # (a) lower loss on every example: the gain is consistent, beyond its standard error
    why, record = _margin(stage_pred, [v - 0.2 for v in probe_losses], probe_pred, probe_losses, truth)
    assert why is None
    assert record["margin"]["accuracy_gain"] == pytest.approx(1 / 24, abs=1e-6) and record["margin"]["examples"] == 24
    assert record["margin"]["loss_gain"] == pytest.approx(0.2) and record["margin"]["loss_se"] < 1e-6
    # (b) the same accuracy, a loss much better on two examples and worse on the rest: a near-tie
    mixed = [0.05, 0.05] + [v + 0.1 for v in probe_losses[2:]]
    why, record = _margin(stage_pred, mixed, probe_pred, probe_losses, truth)
    assert why is not None and "within the noise of 24 validation examples" in why and "log-loss" in why
    assert record["margin"]["loss_gain"] < record["margin"]["loss_se"]
    # (c) a better loss does not make up for fewer examples right
    fewer_right = truth[:-2] + [1 - truth[-2], 1 - truth[-1]]  # 22 of 24, the probe 23
    why, record = _margin(fewer_right, [v - 0.2 for v in probe_losses], probe_pred, probe_losses, truth)
    assert why is not None and record["margin"]["loss_gain"] > record["margin"]["loss_se"]
    # (d) a clear accuracy gain counts whatever the loss does
    weak_probe = [1 - t for t in truth[:12]] + truth[12:]  # 12 of 24 right, the stage gets all 24
    assert _margin(stage_pred, mixed, weak_probe, probe_losses, truth)[0] is None


def test_on_fewer_than_20_validation_examples_only_accuracy_counts():
    """Six examples: a loss lower on every one of them (probabilities sharpened) is not evidence enough."""
    truth = [0, 1, 0, 1, 0, 1]
    probe_losses = [0.6, 0.5, 0.7, 0.6, 0.5, 0.6]
    why, record = _margin(truth, [v - 0.2 for v in probe_losses], truth, probe_losses, truth)
    assert why is not None and "log-loss" not in why and "loss_gain" not in record["margin"]
    better = [1, 1, 1, 0, 0, 0]  # 3 of 6 right: the stage's +0.5 is beyond its standard error
    assert _margin(truth, probe_losses, better, probe_losses, truth)[0] is None


def test_text_prefers_the_normalised_features_probe_among_near_ties():
    from graftwork.strategies.head import preferred_features

    assert preferred_features("text") == "normalised" and preferred_features("image") == "raw"
    x, y = blobs(8, classes=2, spread=0.3, seed=2)  # well separated: every candidate is a near-tie of the best
    fit = fit_probe(LinearHead(x.shape[1], 2), x, y, prefer="normalised")
    assert [r["features"] for r in fit.grid[:2]] == ["normalised", "raw"]
    assert (fit.features, fit.c) == ("normalised", 1.0)
    assert fit_probe(LinearHead(x.shape[1], 2), x, y).features == "raw"
