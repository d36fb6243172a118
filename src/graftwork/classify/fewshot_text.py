"""Step 4 for few-shot text: SetFit's recipe on all the training + validation texts.

Where the validation split is too small to judge fine-tuning and the data small (the conditions under which
other modalities decide by k-fold fine-tuning, :mod:`.crossval`), ``auto`` on text trains SetFit's recipe
(Tunstall et al. 2022) on all the texts: the encoder tuned contrastively on pairs of them
(:mod:`graftwork.strategies.contrastive`), then a linear head on its embeddings. The plan's own stages are not
trained.

The head is two logistic regressions with C=1, their logits averaged (``head.BOTH``): SetFit's own, on the
embeddings scaled to unit length, and scikit-learn's default, on the raw embeddings. SetFit's head alone discards
the embedding's length, which on some data differs by class (3.0 vs 4.8 on average on one pair of fortunes
categories): there it fell 8.8 points below scikit-learn's default on the pretrained features of the same 16
texts, while the two-branch head on the same tuned embeddings was 2.5 points above it. Over 27 development
draws the two-branch head was never more than 0.6 points below that reference (SetFit's head alone: twice, by up
to 8.8) and 0.6 points below SetFit's head on average (``bench/fewshot_tuned_heads.py``, BENCHMARKS.md): the
price of the guarantee.

Why a fixed recipe and not a choice made on the data: with 8-16 texts per class no split of them tells the
candidates apart reliably (judged by k-fold, contrastive tuning tied the probe fold for fold on 16 binary texts,
then lost to SetFit's own recipe by 2-10 points on texts nobody had tuned on), and judging it costs k+1 tunings
(1.4-3.5x SetFit's time).

A tuning that broke is still caught: the tuned encoder is dropped (the pretrained weights restored, the probe
kept and refit on all the data) when the head, cross-validated on the tuned embeddings of the same texts,
predicts one class for nearly everything or is less accurate than the same head cross-validated on the
pretrained embeddings, on the same folds. The encoder saw every one of those texts, so a sound tuning can only
gain there: it is a check for a broken tuning, not an estimate of accuracy, and the run's validation figures
(``metrics.json``: ``val``) say so. (Comparing with the probe's best candidate instead would set the bar at the
maximum of nine noisy estimates: on 16 texts that rejected a sound tuning on two draws of three.) For the same
reason it cannot see a tuning that learned wrong labels: with 20 % of the labels flipped, single draws ended 4.4
and 2.9 points below the probe (SetFit's own recipe 11.9 and 2.9; BENCHMARKS.md); seeing that takes tunings
that leave texts out, a tuning a fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.model_selection import RepeatedStratifiedKFold

from ..features import extract_features, resolve_device
from ..metrics import classification_metrics, majority_baseline
from ..strategies import LinearHead, fit_probe
from ..strategies.contrastive import CONTRASTIVE, contrastive_tune
from ..strategies.head import BOTH
from ..strategies.selection import collapse_reason, cv_splits
from .crossval import all_data
from .probe import refit_probe
from .state import FitState

HEAD_FEATURES, HEAD_C = BOTH, 1.0  # SetFit's head and scikit-learn's default, logits averaged


def setfit_recipe(state: FitState) -> FitState:
    """Contrastive tuning of the run's encoder on all the texts, then the recipe's head; the tuned encoder is dropped
    when the check fails (see the module docstring)."""
    backbone, console = state.backbone, state.console
    assert backbone is not None and state.probe is not None
    examples, x, y = all_data(state)
    console.info(f"few-shot text: SetFit's recipe on all {len(y)} texts (contrastive tuning on pairs of them, then "
                 "logistic regressions on the raw and on the unit-length embeddings)")
    pretrained = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    head, record, tuned = tune_and_fit_head(state, backbone, examples.items, y)
    pooled, tuned_acc = head_cross_validated(state, tuned, y)
    before = pretrained_cv_accuracy(state, x, y)
    rejected = collapse_reason(pooled, y, len(state.classes))
    if rejected is None and tuned_acc < before:
        rejected = (f"its head's cross-validated accuracy on the tuned embeddings ({tuned_acc:.4f}) is below the "
                    f"same head's on the pretrained ones ({before:.4f})")
    record |= {"check": {"cv_accuracy_tuned": tuned_acc, "cv_accuracy_pretrained": before, "examples": len(y),
                         "note": "the encoder was tuned on these texts: optimistic"}}
    lp = state.lp_record
    lp["kept"] = rejected is not None
    if rejected is None:
        state.head = head
        truth = [state.classes[i] for i in y]
        state.selection_val = classification_metrics(truth, [state.classes[i] for i in pooled], state.classes) | {
            "majority_baseline": majority_baseline(truth, truth), "optimistic": True,
            "note": (f"cross-validated predictions of the head alone over training + validation ({len(y)} texts); "
                     "the encoder was tuned on all of them, so these figures are optimistic")}
        console.info(f"kept: contrastive tuning ({record['pairs']} pairs, {record['steps']} steps)")
    else:
        record["rejected"] = rejected
        backbone.load_state_dict(pretrained)
        state.head = refit_probe(state)
        console.warn(f"contrastive tuning not kept: {rejected}; the linear probe is the model")
    state.stages = [lp, record | {"kept": rejected is None, "history": []}]
    return state


def tune_and_fit_head(state: FitState, body: Any, items: list[str],
                      y: np.ndarray) -> tuple[LinearHead, dict[str, Any], np.ndarray]:
    """Tune ``body`` contrastively on ``items`` (in place), then fit the recipe's head on its embeddings of them;
    the head, the stage record and the embeddings."""
    cfg = state.cfg
    fit = contrastive_tune(body, items, y, seed=cfg.seed, device=resolve_device(cfg.device))
    body.cpu()
    torch.manual_seed(cfg.seed)
    head = LinearHead(body.feature_dim, len(state.classes))
    tuned = _encode(state, body, items)
    probe = fit_probe(head, tuned, y, c=HEAD_C, features=HEAD_FEATURES,
                      class_weights=state.class_weights, seed=cfg.seed)
    record = {"stage": CONTRASTIVE, "pairs": fit["pairs"], "steps": fit["steps"], "probe": probe.to_dict(),
              "trainable_params": sum(p.numel() for p in body.parameters()) + sum(p.numel() for p in head.parameters()),
              "loss_first": round(fit["loss_first"], 6), "loss_last": round(fit["loss_last"], 6)}
    return head, record, tuned


def head_cross_validated(state: FitState, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The recipe's head cross-validated on features ``x`` with the folds of the probe's cross-validation
    (repeated stratified k-fold, the run's seed): the held-out predictions of the first repeat (every example
    once) and the mean accuracy over all the folds."""
    k, repeats = cv_splits(len(y), int(np.bincount(y)[np.unique(y)].min()))
    folds = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=state.cfg.seed).split(x, y)
    pred, scores = np.zeros(len(y), dtype=np.int64), []
    for i, (tr, te) in enumerate(folds):
        head = LinearHead(x.shape[1], len(state.classes))
        fit_probe(head, x[tr], y[tr], c=HEAD_C, features=HEAD_FEATURES, class_weights=state.class_weights)
        with torch.no_grad():
            held = head.eval()(torch.from_numpy(x[te]).float()).argmax(1).numpy()
        scores.append(float(np.mean(held == y[te])))
        if i < k:
            pred[te] = held
    return pred, float(np.mean(scores))


def pretrained_cv_accuracy(state: FitState, x: np.ndarray, y: np.ndarray) -> float:
    """The recipe's head cross-validated on the pretrained features ``x`` of the same texts, on the same folds:
    the bar the tuned embeddings must reach."""
    return head_cross_validated(state, x, y)[1]


def _encode(state: FitState, body: Any, items: list[str]) -> np.ndarray:
    """Features of ``items`` by ``body`` (not cached: its weights are being tuned)."""
    ext = extract_features(body, "text", items, items, cache=None, batch_size=state.cfg.batch_size,
                           device=resolve_device(state.cfg.device))
    return ext.features

