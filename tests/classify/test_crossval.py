"""With a tiny validation split, "fine-tune or keep the probe" is decided by k-fold fine-tuning over all the data
(:mod:`graftwork.classify.crossval`), and the winner is retrained on all of it."""

from __future__ import annotations

import time

import numpy as np
import torch

import graftwork
from graftwork.classify.crossval import Pooled, _choose, _retrain_stages, all_data
from graftwork.classify.planning import plan
from graftwork.classify.prepare import prepare_data
from graftwork.classify.probe import probe
from graftwork.classify.state import FitState
from graftwork.classify.tune import k_fold_allowed
from graftwork.config import FitConfig
from graftwork.strategies.plan import selection_for
from graftwork.strategies.selection import CV_FINE_TUNE_MAX, MIN_LOSS_EVIDENCE, cross_validates_fine_tuning

from ..conftest import make_text_rows, write_csv

RECORDS = [{"stage": "unfreeze 1", "unfrozen_groups": 1}, {"stage": "unfreeze 2", "unfrozen_groups": 2},
           {"stage": "unfreeze 3", "unfrozen_groups": 3}]


def test_the_rule_applies_below_20_validation_examples_on_small_data_only():
    assert cross_validates_fine_tuning(6, 32, fine_tunes=True)
    assert not cross_validates_fine_tuning(MIN_LOSS_EVIDENCE, 100, fine_tunes=True)  # the margin rule decides
    assert not cross_validates_fine_tuning(6, CV_FINE_TUNE_MAX + 1, fine_tunes=True)  # too costly: margin rule
    assert not cross_validates_fine_tuning(6, 32, fine_tunes=False)
    assert not cross_validates_fine_tuning(6, 32, fine_tunes=True, distributed=True)
    how = selection_for({"a": 3, "b": 3}, 26, fine_tunes=True)
    assert how["fine_tuning"] == "cross-validation" and "retrained on all the data" in how["how"]
    assert "fine_tuning" not in selection_for({"a": 3, "b": 3}, 26, fine_tunes=False)
    assert "fine_tuning" not in selection_for({"a": 3, "b": 3}, 26, fine_tunes=True, k_fold=False)
    assert k_fold_allowed(FitConfig()) and not k_fold_allowed(FitConfig(refit=False))
    assert not k_fold_allowed(FitConfig(l2sp=1.0)) and not k_fold_allowed(FitConfig(wise=True))
    assert not k_fold_allowed(FitConfig(strategy="full"))  # asked for by name: trained and validated as asked


def _pooled(right: int, n: int, loss: float, truth: np.ndarray, rng: np.random.Generator) -> Pooled:
    pred = truth.copy()
    pred[right:] = 1 - truth[right:]
    return Pooled(pred, loss + rng.uniform(-0.05, 0.05, size=n))


def test_the_pooled_held_out_predictions_choose_and_a_collapsed_stage_is_never_kept():
    rng = np.random.default_rng(0)
    n = 40
    truth = np.tile([0, 1], n // 2)
    probe = _pooled(30, n, 0.6, truth, rng)
    collapsed = Pooled(np.zeros(n, dtype=np.int64), np.full(n, 0.2))  # half right, all one class, a low loss
    better = _pooled(38, n, 0.3, truth, rng)
    worse_loss = _pooled(39, n, 0.9, truth, rng)
    chosen, summaries = _choose(probe, [collapsed, better, worse_loss], RECORDS, truth, 2, 5)
    assert chosen == 1 and "rejected" not in summaries[1]
    assert "predicts one class for 100%" in summaries[0]["rejected"]
    assert "worse than the linear probe's" in summaries[2]["rejected"]
    assert summaries[1]["margin"]["examples"] == n and summaries[1]["margin"]["accuracy_gain"] == 0.2
    assert summaries[1]["cross_validation"] == {"folds": 5, "examples": n} and summaries[1]["val_acc"] == 0.95


def test_a_near_tie_on_the_pooled_predictions_goes_to_the_probe():
    rng = np.random.default_rng(1)
    truth = np.tile([0, 1], 16)
    probe = _pooled(28, 32, 0.5, truth, rng)
    same = Pooled(probe.pred.copy(), probe.losses + rng.normal(0, 0.1, size=32))  # noisier, not better
    chosen, summaries = _choose(probe, [same], RECORDS[:1], truth, 2, 5)
    assert chosen is None and "within the noise of 32 cross-validated examples" in summaries[0]["rejected"]


def test_few_shot_fit_decides_fine_tuning_by_k_fold_and_retrains_on_everything(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "few.csv", make_text_rows(per_class=10, seed=3))
    # text without SetFit's recipe (--no-contrastive) is decided by k-fold, as images and audio are
    model = graftwork.fit(data, tmp_path / "run", backbone=str(tiny_bert), stage_epochs=2, batch_size=4,
                          contrastive=False)
    m = model.metrics
    assert model.config["plan"]["strategy"] == "full"
    assert m["selection"]["fine_tuning"] == "cross-validation"
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "5-fold" in report and "retrained on all the data" in report
    probe_record, stage = m["stages"]
    assert stage["stage"] == "unfreeze 3"
    # every example (16 training + 4 validation) was held out once: the figures are over 20, not 4
    assert probe_record["cross_validation"] == stage["cross_validation"] == {"folds": 5, "examples": 20}
    assert m["val"]["n"] == 20 and "cross-validation" in m["val"]["note"]
    kept = [s for s in m["stages"] if s["kept"]]
    assert len(kept) == 1 and "rejected" not in kept[0]
    assert probe_record["refit"] == {"C": m["probe"]["C"], "examples": 20}
    assert m["probe"]["selection"] == "cross-validation" and m["probe"]["examples"] == 20
    curve = m["learning_curve"]
    assert curve["current"] == 20 and [p["factor"] for p in curve["projections"]] == [2.0, 4.0]
    assert any(f["code"] == "learning-curve" for f in m["findings"])


def test_the_chosen_stage_is_retrained_on_all_the_examples(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "few.csv", make_text_rows(per_class=10, seed=3))
    cfg = FitConfig(backbone=str(tiny_bert), stage_epochs=2, batch_size=4, contrastive=False)  # auto: full, k-fold
    state = probe(plan(prepare_data(FitState(data=data, cfg=cfg, out=None, force=False, resume=False,
                                             console=graftwork.console.SILENT, callbacks=[],
                                             started=time.perf_counter()))))
    examples, x, y = all_data(state)
    assert len(examples) == len(y) == len(x) == 20
    before = {k: v.clone() for k, v in state.backbone.state_dict().items()}
    summaries = [{"stage": "unfreeze 3", "val_acc": 0.9, "val_loss": 0.3, "cross_validation": {"folds": 5}}]
    out = _retrain_stages(state, 0, summaries, examples, y)
    assert out[0]["val_acc"] == 0.9 and out[0]["cross_validation"] == {"folds": 5}  # the held-out figures stay
    assert [row["epoch"] for row in out[0]["history"]] == [1, 2]
    assert all("val_acc" not in row and "val_loss" not in row for row in out[0]["history"])  # nothing held out
    after = state.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
