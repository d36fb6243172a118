"""``fit``: from a data path to a trained, saved model.

The steps, in order, each failing early and loudly: check the output folder; read and validate the data;
choose the backbone and the plan (printed); build the backbone with its pretrained weights; compute frozen
features once (cached on disk); train the head with early stopping; evaluate; save the run folder.
"""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backbones import Backbone, build_backbone, default_backbone
from .config import FitConfig
from .console import SILENT, Console
from .data import Examples, Splits, load_data, stratified_split
from .errors import DataError
from .features import FeatureCache, default_cache_dir, extract_features, resolve_device
from .metrics import classification_metrics, majority_baseline
from .model import TransferModel
from .run import check_out_dir
from .strategies import LinearHead, make_plan, train_head


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("graftwork", "torch", "torchvision", "timm", "transformers", "safetensors", "scikit-learn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _with_val(splits: Splits, cfg: FitConfig, console: Console) -> tuple[Examples, Examples | None]:
    if splits.val is not None:
        return splits.train, splits.val
    if cfg.val_fraction <= 0:
        console.info("no validation data (val_fraction=0): the head trains for all epochs, no early stopping")
        return splits.train, None
    tr, va = stratified_split(splits.train.labels, cfg.val_fraction, cfg.seed)
    if not va:
        return splits.train, None
    console.info(f"validation: {len(va)} examples held out of {len(splits.train)} "
                 f"(stratified, val_fraction={cfg.val_fraction}, seed={cfg.seed})")
    return splits.train.subset(tr), splits.train.subset(va)


def _features(backbone: Backbone, parts: dict[str, Examples], cfg: FitConfig, console: Console,
              skipped: list[str]) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Features and labels of each split; unreadable inputs stop the run unless --skip-bad-files."""
    device = resolve_device(cfg.device)
    cache = FeatureCache(cfg.cache_dir or default_cache_dir(), backbone.cache_key()) if cfg.cache else None
    out, problems = {}, []
    for name, ex in parts.items():
        t0 = time.perf_counter()
        ext = extract_features(backbone, ex.modality, ex.items, ex.origins, cache=cache, batch_size=cfg.batch_size,
                               device=device, workers=cfg.workers, console=console, description=name)
        if ext.computed or ext.from_cache:
            console.info(f"{name}: features of {len(ex)} examples ({ext.computed} computed, {ext.from_cache} "
                         f"from cache) in {time.perf_counter() - t0:.1f}s")
        problems += ext.problems
        out[name] = (ext.features, [y for y, ok in zip(ex.labels, ext.ok, strict=True) if ok])
    if problems:
        if not cfg.skip_bad_files:
            raise DataError(f"{len(problems)} file(s) could not be read; nothing was trained:", problems=problems,
                            hint="fix or remove them (features of the good ones are cached, so a re-run is "
                                 "quick), or pass --skip-bad-files to train without them.")
        skipped += [str(p) for p in problems]
        console.warn(f"skipped {len(problems)} unreadable file(s) (--skip-bad-files); listed in metrics.json")
    return out


def run_fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT) -> TransferModel:
    """Train a model on ``data`` with settings ``cfg``; save it to ``out`` when given."""
    started = time.perf_counter()
    if out is not None:
        check_out_dir(out, force)
    splits = load_data(data, skip_bad_files=cfg.skip_bad_files, text_column=cfg.text_column,
                       label_column=cfg.label_column)
    for note in splits.notes:
        console.info(note)
    if splits.skipped:
        console.warn(f"skipped {len(splits.skipped)} bad input(s) (--skip-bad-files); listed in metrics.json")
    classes = splits.classes

    backbone_name = cfg.backbone
    if backbone_name is None:
        backbone_name, why = default_backbone(splits.modality)
        console.info(f"backbone: {backbone_name} ({why})")
    torch.manual_seed(cfg.seed)
    backbone = build_backbone(backbone_name, pretrained=cfg.pretrained, weights=cfg.weights)
    if backbone.modality != splits.modality:
        raise DataError(f"{splits.source} holds {splits.modality} data but {backbone.info.name} is a "
                        f"{backbone.modality} backbone.", hint=f"pick a {splits.modality} backbone "
                        "(`graftwork backbones` lists them), or leave --backbone out for the default.")
    console.info(f"weights: {backbone.info.weights}")

    train, val = _with_val(splits, cfg, console)
    plan = make_plan(cfg.strategy, train.class_counts())
    console.info(plan.describe())

    parts = {"train": train} | ({"val": val} if val is not None else {}) | (
        {"test": splits.test} if splits.test is not None else {})
    skipped = list(splits.skipped)
    feats = _features(backbone, parts, cfg, console, skipped)

    index = {c: i for i, c in enumerate(classes)}
    x_tr, y_tr = feats["train"]
    x_va, y_va = feats.get("val", (None, None))
    torch.manual_seed(cfg.seed)
    head = LinearHead(backbone.feature_dim, len(classes))
    t0 = time.perf_counter()
    training = train_head(head, x_tr, np.array([index[y] for y in y_tr]), x_va,
                          None if y_va is None else np.array([index[y] for y in y_va]), epochs=cfg.epochs,
                          batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                          patience=cfg.patience, seed=cfg.seed, console=console)
    head_seconds = time.perf_counter() - t0

    model_config = _run_config(backbone, classes, cfg, plan.to_dict(), data)
    model = TransferModel(backbone, head, classes, model_config, device=cfg.device, console=console)
    metrics: dict[str, Any] = {"history": training.history, "best_epoch": training.best_epoch,
                               "stopped_early": training.stopped_early, "monitor": training.monitor,
                               "data": splits.summary() | {"skipped": skipped}}
    for name in ("train", "val", "test"):
        if name in feats:
            x, y = feats[name]
            pred = [classes[i] for i in model.probabilities(x).argmax(1)]
            metrics[name] = classification_metrics(y, pred, classes)
            metrics[name]["majority_baseline"] = majority_baseline(y_tr, y)
    metrics["timing"] = {"head_training_s": round(head_seconds, 3),
                         "total_s": round(time.perf_counter() - started, 3)}
    model.metrics = metrics
    if out is not None:
        model.save(out, force=force)
    _summary(console, model, out)
    return model


def _run_config(backbone: Backbone, classes: list[str], cfg: FitConfig, plan: dict[str, Any],
                data: str | Path) -> dict[str, Any]:
    info = backbone.info.to_dict()
    tag = info.get("weights_tag")
    info["load_name"] = f"{info['name']}.{tag}" if tag and info["source"] == "torchvision" else info["name"]
    return {
        "format": "graftwork-run/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "classification",
        "modality": backbone.modality,
        "classes": classes,
        "backbone": info,
        "preprocessing": backbone.preprocessing,
        "head": {"type": "linear", "in_features": backbone.feature_dim, "standardize": True},
        "plan": plan,
        "fit": cfg.to_dict(),
        "data": str(data),
        "versions": library_versions(),
    }


def _summary(console: Console, model: TransferModel, out: str | Path | None) -> None:
    m = model.metrics
    parts = [f"best epoch {m['best_epoch']}/{len(m['history'])}"]
    for name in ("val", "test"):
        if name in m:
            parts.append(f"{name} accuracy {m[name]['accuracy']:.3f} (macro F1 {m[name]['macro_f1']:.3f}; "
                         f"majority class {m[name]['majority_baseline']['accuracy']:.3f})")
    console.info("done: " + "; ".join(parts) + f" in {m['timing']['total_s']:.1f}s")
    if out is not None:
        console.info(f"saved to {Path(out)}  (graftwork predict {out} INPUT..., graftwork evaluate {out} DATA)")
