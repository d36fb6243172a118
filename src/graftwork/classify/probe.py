"""Step 3 of a classification fit: frozen features (computed once, cached on disk) and the linear probe on them.

The probe is the model of the ``frozen`` strategy, and stage 0 of the others: every fine-tuning stage must beat
it on validation to be kept.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..backbones.base import Backbone
from ..config import FitConfig
from ..console import Console
from ..data import Examples
from ..distributed import processes
from ..errors import DataError
from ..features import FeatureCache, default_cache_dir, extract_features, resolve_device
from ..metrics import classification_metrics, majority_baseline
from ..strategies import LinearHead, fit_probe
from ..strategies.head import evaluate_head, preferred_features, select_probe
from ..strategies.plan import class_weight_vector
from .state import FitState


def probe(state: FitState) -> FitState:
    """Features of every part, the probe chosen on them (by validation or cross-validation), its learning curve,
    and for the plain ``frozen`` strategy the refit on training + validation data."""
    cfg, console, backbone, parts = state.cfg, state.console, state.backbone, state.parts
    assert backbone is not None and state.plan is not None
    state.feats = features(backbone, parts, cfg, console, state.skipped)
    state.y = {name: label_index(parts[name], state.feats[name][1], state.classes) for name in parts}
    feats, y, val = state.feats, state.y, "val" in parts
    torch.manual_seed(cfg.seed)
    head = LinearHead(backbone.feature_dim, len(state.classes))
    weights = class_weight_vector(state.classes, parts["train"].class_counts()) if state.plan.class_weighted else None
    t0 = time.perf_counter()
    found, state.small_val = select_probe(head, feats["train"][0], y["train"], feats["val"][0] if val else None,
                                          y.get("val"), c=cfg.probe_c, prefer=preferred_features(backbone.modality),
                                          class_weights=weights, seed=cfg.seed)
    record: dict[str, Any] = {"stage": "linear probe", "unfrozen_groups": 0, "probe": found.to_dict(),
                              "seconds": round(time.perf_counter() - t0, 3)}
    if val:
        loss, acc = evaluate_head(head, torch.from_numpy(feats["val"][0]), torch.from_numpy(y["val"]))
        record |= {"val_acc": acc, "val_loss": loss}
        console.info(f"linear probe: val accuracy {acc:.4f} ({found.describe()})")
    state.head, state.class_weights, state.probe, state.stages = head, weights, found, [record | {"kept": True}]
    state.curve = learning_curve(state)
    # with nothing to train, the probe is the model and is refit here, unless few-shot text still trains SetFit's
    # recipe: that refits the probe itself when the recipe is dropped
    from .tune import cross_validates  # tune imports this module

    if state.strategy is None and cfg.refit and val and not cross_validates(state):
        state.head, state.selection_val = refit_head(state)
    return state


def features(backbone: Backbone, parts: dict[str, Examples], cfg: FitConfig, console: Console,
             skipped: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Features and the mask of readable examples for each split; unreadable inputs stop the run unless
    --skip-bad-files (then they are added to ``skipped``)."""
    device = resolve_device(cfg.device)
    procs = processes()  # launched on several: each computes a share; rank 0 alone reads and writes the cache
    cache = (FeatureCache(cfg.cache_dir or default_cache_dir(), backbone.cache_key())
             if cfg.cache and procs.is_main else None)
    out, problems = {}, []
    for name, ex in parts.items():
        t0 = time.perf_counter()
        ext = extract_features(backbone, ex.modality, ex.items, ex.origins, cache=cache, batch_size=cfg.batch_size,
                               device=device, workers=cfg.workers, console=console, description=name,
                               processes=procs)
        if ext.computed or ext.from_cache:
            console.info(f"{name}: features of {len(ex)} examples ({ext.computed} computed, {ext.from_cache} "
                         f"from cache) in {time.perf_counter() - t0:.1f}s")
        problems += ext.problems
        out[name] = (ext.features, ext.ok)
    if problems:
        if not cfg.skip_bad_files:
            raise DataError(f"{len(problems)} file(s) could not be read; nothing was trained:", problems=problems,
                            hint="fix or remove them (features of the good ones are cached, so a re-run is "
                                 "quick), or pass --skip-bad-files to train without them.")
        skipped += [str(p) for p in problems]
        console.warn(f"skipped {len(problems)} unreadable file(s) (--skip-bad-files); listed in metrics.json")
    return out


def label_index(examples: Examples, ok: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class indices of the readable examples."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[y] for y, good in zip(examples.labels, ok, strict=True) if good], dtype=np.int64)


def learning_curve(state: FitState) -> Any:
    """The probe's learning curve on training + validation features, projected to 2x and 4x the data."""
    from ..diagnostics.learning_curve import curve_for_fit

    backbone, cfg = state.backbone, state.cfg
    assert backbone is not None and state.probe is not None
    names = [n for n in ("train", "val") if n in state.y]
    curve = curve_for_fit([state.feats[n][0] for n in names], [state.y[n] for n in names],
                          state.parts["train"].class_counts(), c=state.probe.c,
                          features=state.probe.features, modality=backbone.modality,
                          backbone_params=sum(p.numel() for p in backbone.parameters()), seed=cfg.seed,
                          class_weights=state.class_weights)
    if curve is not None:
        state.console.info("\n".join(curve.describe()))
    return curve


def split_metrics(head: LinearHead, x: np.ndarray, y: np.ndarray, y_train: np.ndarray,
                  classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per class, confusion of ``head`` on features ``x``, and the majority baseline."""
    with torch.no_grad():
        pred = head.eval()(torch.from_numpy(x).float()).argmax(1).numpy()
    truth = [classes[i] for i in y]
    out = classification_metrics(truth, [classes[i] for i in pred], classes)
    out["majority_baseline"] = majority_baseline([classes[i] for i in y_train], truth)
    return out


def refit_head(state: FitState) -> tuple[LinearHead, dict[str, Any]]:
    """Retrain the probe on train + val with the regularisation validation chose (like LogisticRegressionCV's
    refit): with little data, the held-out fifth is worth more as training data than as a second opinion.

    Returns the refit head and the validation metrics of the head validation chose (before the refit); the
    refit is noted in the probe's stage record."""
    head, feats, y = state.head, state.feats, state.y
    assert head is not None
    return refit_probe(state), split_metrics(head, feats["val"][0], y["val"], y["train"], state.classes)


def refit_probe(state: FitState) -> LinearHead:
    """The probe retrained on training + validation features with the chosen C (noted in its stage record)."""
    head, feats, y = state.head, state.feats, state.y
    assert head is not None and state.probe is not None
    c = state.probe.c
    x_all = np.concatenate([feats["train"][0], feats["val"][0]])
    y_all = np.concatenate([y["train"], y["val"]])
    refit = LinearHead(head.fc.in_features, head.fc.out_features)
    fit_probe(refit, x_all, y_all, c=c, features=state.probe.features, class_weights=state.class_weights,
              seed=state.cfg.seed)
    state.lp_record["refit"] = {"C": c, "examples": int(len(y_all))}
    state.console.info(f"refit: the probe retrained on training + validation data ({len(y_all)} examples, C={c:g})")
    return refit
