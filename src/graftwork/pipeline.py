"""``fit``: from a data path to a trained, saved model.

The steps, in order, each failing early and loudly: check the output folder; read and validate the data;
choose the backbone and the plan (printed); build the backbone with its pretrained weights; compute frozen
features once (cached on disk); train the head on them (the linear probe); for ``gradual``/``full``, fine-tune
in stages (see :mod:`.strategies.finetune`); evaluate; save the run folder.

While a run is in progress its resumable state lives beside the output folder, in ``.<name>.partial/``, so an
existing run is only replaced (with ``--force``) once the new one is complete, and ``--resume`` continues an
interrupted one. A plain re-run of an interrupted fit is refused rather than discarding its checkpoint. The whole
fit holds the output's lock (:func:`graftwork.run.out_lock`): a second fit into the same ``--out`` is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backbones import Backbone, build_backbone, default_backbone
from .backbones.vision import ImageBackbone
from .config import FitConfig
from .console import SILENT, Console
from .data import Examples, Splits, load_data, stratified_split
from .data.audio_window import data_window
from .diagnostics import Finding
from .diagnostics.run_checks import baseline_finding, control_finding
from .distributed import processes
from .errors import ConfigError, DataError, RunFolderError
from .features import FeatureCache, default_cache_dir, extract_features, resolve_device
from .metrics import classification_metrics, majority_baseline
from .model import TransferModel
from .resources import cost_line, parameter_counts, peak_memory
from .run import check_out_dir, out_lock, recover_folder, write_json
from .run.provenance import library_versions, partial_dir
from .strategies import LinearHead, Plan, fit_probe, make_plan
from .strategies.finetune import (
    CHECKPOINT,
    FineTuner,
    FineTuneSettings,
    Progress,
    TransferNet,
    load_checkpoint,
    stage_schedule,
)
from .strategies.freezing import batchnorms
from .strategies.head import evaluate_head, select_probe
from .strategies.inputs import DecodedImages, TrainingInputs
from .strategies.lora import apply_lora, has_lora, remove_lora
from .strategies.plan import class_weight_vector, selection_for

RESUME_FILE = "fit.json"


def _with_val(splits: Splits, cfg: FitConfig, console: Console) -> tuple[Examples, Examples | None]:
    if splits.val is not None:
        return splits.train, splits.val
    if cfg.val_fraction <= 0:
        console.info("no validation data (val_fraction=0): the probe's regularisation is chosen by cross-validation")
        return splits.train, None
    tr, va = stratified_split(splits.train.labels, cfg.val_fraction, cfg.seed)
    if not va:
        return splits.train, None
    console.info(f"validation: {len(va)} examples held out of {len(splits.train)} "
                 f"(stratified, val_fraction={cfg.val_fraction}, seed={cfg.seed})")
    return splits.train.subset(tr), splits.train.subset(va)


def _features(backbone: Backbone, parts: dict[str, Examples], cfg: FitConfig, console: Console,
              skipped: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Features and the mask of readable examples for each split; unreadable inputs stop the run unless
    --skip-bad-files."""
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


def _label_index(examples: Examples, ok: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[y] for y, good in zip(examples.labels, ok, strict=True) if good], dtype=np.int64)


def _fine_tune(backbone: Backbone, head: LinearHead, parts: dict[str, Examples], feats: dict[str, Any],
               classes: list[str], cfg: FitConfig, plan: Plan, lp_record: dict[str, Any], *, partial: Path | None,
               resume: dict[str, Any] | None, console: Console,
               on_epoch_end: list[Callable[[Progress], None]] | None, probe_margin: bool = False) -> Progress:
    n_groups = len(backbone.layer_groups())
    augment = cfg.augment if cfg.augment is not None else backbone.modality == "image"
    bn_stats = cfg.bn_stats if cfg.pretrained else "update"  # random init has no statistics worth keeping
    if plan.strategy == "lora":
        spec = apply_lora(backbone, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                          targets=cfg.lora_targets)
        schedule = [n_groups]
        plan.details["adapters"] = spec.describe()
        plan.details["stages"] = "probe, then the LoRA adapters and the head trained together"
        plan.details["learning rates"] = f"head and adapters {cfg.lr:g}"
    elif plan.fine_tunes:
        schedule = stage_schedule(n_groups, plan.strategy, cfg.unfreeze)
        plan.details["layer groups"] = f"{n_groups} ({backbone.layer_groups()[0].name} ... " \
                                       f"{backbone.layer_groups()[-1].name})"
        plan.details["stages"] = "probe, then top " + ", ".join(str(n) for n in schedule) + " group(s) trainable"
        top = cfg.lr / cfg.lr_ratio
        plan.details["learning rates"] = (f"head {cfg.lr:g}; top group {top:g}, x{cfg.lr_decay:g} per group "
                                          f"below (bottom group {top * cfg.lr_decay ** (n_groups - 1):.2g})")
        if batchnorms(backbone):
            plan.details["batchnorm"] = ("pretrained running statistics kept, scale and shift trained"
                                         if bn_stats == "pretrained" else
                                         "running statistics recomputed in unfrozen groups")
    else:  # frozen with --augment: the head trains on augmented images through the frozen backbone
        schedule = [0]
        plan.details["stages"] = "probe on cached features, then the head on augmented images (no cache)"
    plan.details["augmentation"] = ("random resized crop + horizontal flip" if augment and
                                    backbone.modality == "image" else "none")
    epochs, patience = cfg.stage_length(backbone.modality)
    plan.details["epochs per stage"] = f"up to {epochs}, stopping after {patience} without validation gain"
    console.info("\n".join(f"  {k}: {v}" for k, v in plan.details.items()))

    pre = backbone.preprocessing
    decoded = DecodedImages(pre["resize"], pre["interpolation"]) if backbone.modality == "image" else None
    datasets = {}
    for name in ("train", "val"):
        ok = feats[name][1]
        ex = parts[name].subset(np.flatnonzero(ok))
        datasets[name] = TrainingInputs(backbone, ex, _label_index(parts[name], ok, classes).tolist(),
                                        augment=augment and name == "train", decoded=decoded)
    if decoded is not None and cfg.workers > 0:  # decode once here: worker processes inherit the cache
        for name in ("train", "val"):
            for item in datasets[name].items:
                decoded.get(item)
    device = resolve_device(cfg.device)
    net = TransferNet(backbone, head).to(device)
    counts = parts["train"].class_counts()
    settings = FineTuneSettings(
        stage_epochs=epochs, stage_patience=patience,
        unfreeze_patience=plan.details.get("unfreeze patience", cfg.unfreeze_patience),
        lr=cfg.lr, lr_ratio=cfg.lr_ratio,
        lr_decay=cfg.lr_decay, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, seed=cfg.seed,
        grad_clip=cfg.grad_clip, label_smoothing=cfg.label_smoothing,
        class_weights=class_weight_vector(classes, counts) if plan.class_weighted else None,
        bf16=cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"),
        l2sp=cfg.l2sp, wise=cfg.wise, backoff=cfg.strategy == "auto", lora=plan.strategy == "lora",
        workers=cfg.workers, bn_stats=bn_stats, probe_margin=probe_margin)
    tuner = FineTuner(net, datasets["train"], datasets["val"], settings, device=device, checkpoint_dir=partial,
                      console=console, on_epoch_end=on_epoch_end)
    if resume is not None:
        progress = Progress(**resume["progress"])
        console.info(f"resuming at stage {progress.stage + 1}/{len(progress.schedule)}, "
                     f"after epoch {progress.epoch}")
    else:
        # score the probe through the same input pipeline as the stages, so that "a stage beats the probe"
        # compares like with like
        score = tuner.probe_score()
        lp_record |= {"val_acc": score.val_acc, "val_loss": score.val_loss}
        progress = Progress(schedule=schedule, best={"stage": "linear probe", "val_acc": lp_record["val_acc"],
                                                     "val_loss": lp_record["val_loss"]}, stages=[lp_record])
    progress = tuner.run(progress, resume)
    backbone.cpu()
    head.cpu()
    console.info(f"kept: {progress.best['stage']} (val accuracy {progress.best['val_acc']:.4f})")
    return progress


def run_fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False,
            on_epoch_end: list[Callable[[Progress], None]] | None = None) -> TransferModel:
    """Train a model on ``data`` with settings ``cfg``; save it to ``out`` when given.

    ``out`` is checked before any work, and again (:func:`_check_out`) once its lock is held, for the whole fit.
    """
    if cfg.task != "classify":  # every task's fit is found by graftwork.tasks (graftwork.fit, the CLI)
        raise ConfigError(f"run_fit trains classifiers; task={cfg.task!r} is trained by its own task.",
                          hint="use graftwork.fit(...) or graftwork.tasks.get_task(cfg.task).fit(...).")
    if out is None:
        return _fit(data, cfg, out=None, force=force, console=console, resume=resume, on_epoch_end=on_epoch_end)
    procs = processes()
    if not procs.is_main:  # launched on several: rank 0 alone checks, locks and writes --out; the others wait
        procs.barrier()    # for its checks, then train beside it without writing anything
        return _fit(data, cfg, out=None, force=force, console=console, resume=resume, on_epoch_end=on_epoch_end)
    check_out_dir(out, force, data=data)  # before the lock: a refused --out (inside the data) gets no lock file
    with out_lock(out):  # a fit already writing --out: refused here, before its state is looked at
        recover_folder(out, locked=True)
        _check_out(out, data, force, resume)
        procs.barrier()
        return _fit(data, cfg, out=out, force=force, console=console, resume=resume, on_epoch_end=on_epoch_end)


def _fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool, console: Console, resume: bool,
         on_epoch_end: list[Callable[[Progress], None]] | None) -> TransferModel:
    """:func:`run_fit`'s steps, once ``out`` has been checked and locked."""
    started = time.perf_counter()
    partial = partial_dir(out) if out is not None else None
    for name in ("weights", "cache_dir"):  # saved with the run: make them independent of the working directory
        if getattr(cfg, name):
            setattr(cfg, name, str(Path(getattr(cfg, name)).expanduser().absolute()))
    splits = load_data(data, skip_bad_files=cfg.skip_bad_files, text_column=cfg.text_column,
                       label_column=cfg.label_column)
    groups = _read_groups(splits, cfg) if cfg.groups else None  # bad group data fails before any training
    for note in splits.notes:
        console.info(note)
    if splits.skipped:
        console.warn(f"skipped {len(splits.skipped)} bad input(s) (--skip-bad-files); listed in metrics.json")
    classes = splits.classes

    backbone_name = cfg.backbone
    if backbone_name is None:
        backbone_name, why = default_backbone(splits.modality)
        console.info(f"backbone: {backbone_name} ({why})")
        cfg.backbone = backbone_name
    torch.manual_seed(cfg.seed)
    # no --audio-window: the window from the clip lengths (not written into cfg: a resumed run recomputes it)
    window = data_window(splits.train.items) if splits.modality == "audio" and cfg.audio_window is None else None
    backbone = build_backbone(backbone_name, pretrained=cfg.pretrained, weights=cfg.weights,
                              audio_window=window.seconds if window else cfg.audio_window, audio_long=cfg.audio_long,
                              audio_max_seconds=cfg.max_audio_seconds)
    if cfg.image_size is not None and isinstance(backbone, ImageBackbone):
        backbone.set_image_size(cfg.image_size)
    if backbone.modality != splits.modality:
        raise DataError(f"{splits.source} holds {splits.modality} data but {backbone.info.name} is a "
                        f"{backbone.modality} backbone.", hint=f"pick a {splits.modality} backbone "
                        "(`graftwork backbones` lists them), or leave --backbone out for the default.")
    console.info(f"weights: {backbone.info.weights}")

    train, val = _with_val(splits, cfg, console)
    plan = make_plan(cfg.strategy, train.class_counts(), unfreeze=cfg.unfreeze, class_weights=cfg.class_weights,
                     backbone_params=sum(p.numel() for p in backbone.parameters()), modality=splits.modality)
    if plan.fine_tunes and val is None:
        raise DataError("fine-tuning needs validation data to choose how far to unfreeze.",
                        hint="give a val split, or set --val-fraction above 0, or use --strategy frozen.")
    if window is not None:
        plan.details["audio window"] = window.describe()
    plan.selection = selection_for(val.class_counts() if val is not None else {}, len(train), probe_c=cfg.probe_c)
    console.info(plan.describe())

    parts = {"train": train} | ({"val": val} if val is not None else {}) | (
        {"test": splits.test} if splits.test is not None else {})
    skipped = list(splits.skipped)
    feats = _features(backbone, parts, cfg, console, skipped)

    y = {name: _label_index(parts[name], feats[name][1], classes) for name in parts}
    mismatch = _bn_mismatch(backbone, train, cfg, console)
    if mismatch is not None and mismatch.severity != "info" and cfg.strategy == "auto":
        _adapt_plan_to_mismatch(plan, cfg, mismatch, console)
    torch.manual_seed(cfg.seed)
    head = LinearHead(backbone.feature_dim, len(classes))
    weights = class_weight_vector(classes, train.class_counts()) if plan.class_weighted else None
    t0 = time.perf_counter()
    probe, small_val = select_probe(head, feats["train"][0], y["train"], feats["val"][0] if val else None,
                                    y.get("val"), c=cfg.probe_c, class_weights=weights, seed=cfg.seed)
    lp_record: dict[str, Any] = {"stage": "linear probe", "unfrozen_groups": 0, "probe": probe.to_dict(),
                                 "seconds": round(time.perf_counter() - t0, 3)}
    if val is not None:
        loss, acc = evaluate_head(head, torch.from_numpy(feats["val"][0]), torch.from_numpy(y["val"]))
        lp_record |= {"val_acc": acc, "val_loss": loss}
        console.info(f"linear probe: val accuracy {lp_record['val_acc']:.4f} ({probe.describe()})")
    curve = _learning_curve(feats, y, train, probe.c, plan, backbone, cfg, weights, console)

    augmented_frozen = plan.strategy == "frozen" and bool(cfg.augment) and val is not None
    selection_val = None  # val metrics of the model that validation chose, when the head is refit afterwards
    if plan.strategy == "frozen" and not augmented_frozen and cfg.refit and val is not None:
        head, selection_val = _refit_head(head, feats, y, probe.c, cfg, weights, classes, lp_record, console,
                                          raw=probe.raw)
    stages = [lp_record | {"kept": True}]
    if plan.fine_tunes or augmented_frozen:
        resume_state = None
        if partial is not None:
            signature = _data_signature(parts)
            resume_state = _start_partial(partial, data, cfg, force, signature, resume, console)
        resume_state = processes().broadcast(resume_state)  # launched on several: rank 0 read the checkpoint
        progress = _fine_tune(backbone, head, parts, feats, classes, cfg, plan, lp_record, partial=partial,
                              resume=resume_state, console=console, on_epoch_end=on_epoch_end,
                              probe_margin=small_val)
        stages = progress.stages
        if progress.best["stage"] == "linear probe" and has_lora(backbone):
            remove_lora(backbone, merge=False)  # the probe won: its adapters are still zero, the backbone is plain
        if progress.best["stage"] == "linear probe" and plan.fine_tunes and cfg.refit:
            # no stage beat the probe: it is the model, so it gets the frozen strategy's refit too
            head, selection_val = _refit_head(head, feats, y, probe.c, cfg, weights, classes, stages[0], console,
                                              raw=probe.raw)
        if progress.best["stage"] != "linear probe" and plan.fine_tunes:
            backbone.info.extra["pretrained_fingerprint"] = backbone.info.fingerprint
            backbone.info.extra["fine_tuned"] = progress.best["stage"]
            backbone.refresh_fingerprint()
            feats = _features(backbone, parts, cfg, console, [])  # final metrics with the fine-tuned backbone

    model_config = _run_config(backbone, classes, cfg, plan.to_dict(), data)
    model = TransferModel(backbone, head, classes, model_config, device=cfg.device, console=console,
                          cache_dir=cfg.cache_dir)
    metrics: dict[str, Any] = {"stages": stages, "kept_stage": next(s["stage"] for s in stages if s.get("kept")),
                               "probe": probe.to_dict(),
                               "data": splits.summary() | {"skipped": skipped, "fit_split": {
                                   "train": len(y["train"]), "val": len(y.get("val", []))}}}
    for name in parts:
        metrics[name] = _split_metrics(model.head, feats[name][0], y[name], y["train"], classes)
    if selection_val is not None:
        metrics["val"] = selection_val | {"note": "before the refit on training + validation data"}
    findings = [Finding.from_dict(f) for s in stages for f in s.get("findings", [])]
    if mismatch is not None:
        findings.append(mismatch)
        metrics["mismatch"] = {"score": mismatch.value, "per_layer": mismatch.details.get("layers")}
    metrics["drift"] = [row for s in stages for row in s.get("drift", [])]
    split = "test" if "test" in parts else ("val" if "val" in parts else None)
    if split is not None and (base := baseline_finding(split, metrics[split])):
        findings.append(base)
    if groups is not None and split is not None:
        metrics["groups"], found_groups = _group_metrics(model, parts[split], feats[split], y[split], groups)
        findings += found_groups
    if cfg.control and split is not None:
        found, metrics["control"] = _control(data, cfg, model, parts[split], feats[split], y[split], split, console)
        findings.append(found)
    metrics["selection"] = plan.selection | {"probe": probe.describe()}
    if curve is not None:
        metrics["learning_curve"] = curve.to_dict()
        findings.append(curve.finding())
    metrics["findings"] = [f.to_dict() for f in findings]
    metrics["timing"] = {"linear_probe_s": lp_record["seconds"], "total_s": round(time.perf_counter() - started, 3)}
    metrics["parameters"] = parameter_counts(backbone, head, stages)
    metrics["memory"] = peak_memory(resolve_device(cfg.device))
    model.metrics = metrics
    if out is not None:
        model.save(out, force=force)
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)  # _check_out let an older fit's state through: --force
    _summary(console, model, out)
    return model


def _learning_curve(feats: dict[str, Any], y: dict[str, np.ndarray], train: Examples, c: float, plan: Plan,
                    backbone: Backbone, cfg: FitConfig, weights: list[float] | None, console: Console) -> Any:
    """The probe's learning curve on training + validation features, projected to 2x and 4x the data."""
    from .diagnostics.learning_curve import curve_for_fit

    names = [n for n in ("train", "val") if n in y]
    curve = curve_for_fit([feats[n][0] for n in names], [y[n] for n in names], train.class_counts(), c=c,
                          modality=backbone.modality, backbone_params=sum(p.numel() for p in backbone.parameters()),
                          seed=cfg.seed, class_weights=weights)
    if curve is not None:
        console.info("\n".join(curve.describe()))
    return curve


def _read_groups(splits: Splits, cfg: FitConfig) -> dict[str, str]:
    """Each example's group, by origin (so the validation part carved from the training data finds its own)."""
    from .diagnostics.groups import read_groups

    assert cfg.groups is not None
    per_split = read_groups(splits, cfg.groups, text_column=cfg.text_column, label_column=cfg.label_column)
    return {origin: group for name, found in per_split.items()
            for origin, group in zip(getattr(splits, name).origins, found, strict=True)}


def _group_metrics(model: TransferModel, examples: Examples, feats: tuple[np.ndarray, np.ndarray],
                   y: np.ndarray, groups: dict[str, str]) -> tuple[dict[str, Any], list[Finding]]:
    from .diagnostics.groups import group_metrics

    kept = [groups[origin] for origin, ok in zip(examples.origins, feats[1], strict=True) if ok]
    proba = model.probabilities(feats[0])
    classes = model.classes
    return group_metrics([classes[i] for i in y], [classes[i] for i in proba.argmax(1)], proba, classes, kept)


def _bn_mismatch(backbone: Backbone, train: Examples, cfg: FitConfig, console: Console) -> Finding | None:
    """How far the data's activation statistics are from the pretrained BatchNorm statistics (64 images)."""
    from .diagnostics.mismatch import bn_layers, check_bn_mismatch

    if backbone.modality != "image" or not backbone.info.pretrained or not bn_layers(backbone):
        return None
    # remembered beside the feature cache: a second fit on the same data needs no backbone pass
    memo = (cfg.cache_dir or default_cache_dir()) if cfg.cache else None
    procs = processes()  # launched on several: rank 0 measures (and remembers), the others take its finding
    found = procs.broadcast(check_bn_mismatch(backbone, train, device=resolve_device(cfg.device), seed=cfg.seed,
                                              memo_dir=memo) if procs.is_main else None)
    console.info(f"domain check: BatchNorm statistics shift {found.value:.2f} ({found.severity})")
    return found


def _adapt_plan_to_mismatch(plan: Plan, cfg: FitConfig, mismatch: Finding, console: Console) -> None:
    """Data far from the pretraining data: lower layers need to adapt too, so unfreezing goes on one stage
    longer before it gives up; with too little data to fine-tune, the plan stays frozen and says what to expect."""
    if plan.fine_tunes:  # not written into cfg: a resumed run recomputes the check and must not add it twice
        plan.details["unfreeze patience"] = cfg.unfreeze_patience + 1
        why = (f"domain mismatch ({mismatch.metric} {mismatch.value:.2f}, {mismatch.severity}): unfreezing goes "
               f"on through {cfg.unfreeze_patience + 1} stages without improvement before it stops")
    else:
        why = (f"domain mismatch ({mismatch.metric} {mismatch.value:.2f}, {mismatch.severity}): too few examples "
               "to fine-tune safely; expect lower accuracy than on data like the pretraining data")
    plan.reasons.append(why)
    console.info(f"plan: {why}")


def _control(data: str | Path, cfg: FitConfig, model: TransferModel, examples: Examples,
             feats: tuple[np.ndarray, np.ndarray], y: np.ndarray, split: str,
             console: Console) -> tuple[Finding, dict[str, Any]]:
    """--control: the same network and settings from random initialisation, compared on ``split``."""
    console.info("control: training the same network from random initialisation with the same settings")
    control_cfg = FitConfig.from_dict(cfg.to_dict() | {"pretrained": False, "weights": None, "control": False})
    control = run_fit(data, control_cfg, console=SILENT)
    items = [item for item, ok in zip(examples.items, feats[1], strict=True) if ok]
    x_random, _ = control.features(items, use_cache=cfg.cache, skip_bad=True)
    pred, pred_random = model.probabilities(feats[0]).argmax(1), control.probabilities(x_random).argmax(1)
    found = control_finding(pred, pred_random, y, split)
    console.info(f"control: {found.message}")
    return found, {k: found.details[k] for k in ("split", "pretrained", "random_init", "gap", "gap_stderr")} | {
        "kept_stage": control.metrics["kept_stage"]}


def _split_metrics(head: LinearHead, x: np.ndarray, y: np.ndarray, y_train: np.ndarray,
                   classes: list[str]) -> dict[str, Any]:
    with torch.no_grad():
        pred = head.eval()(torch.from_numpy(x).float()).argmax(1).numpy()
    truth = [classes[i] for i in y]
    out = classification_metrics(truth, [classes[i] for i in pred], classes)
    out["majority_baseline"] = majority_baseline([classes[i] for i in y_train], truth)
    return out


def _refit_head(head: LinearHead, feats: dict[str, Any], y: dict[str, np.ndarray], c: float, cfg: FitConfig,
                weights: list[float] | None, classes: list[str], record: dict[str, Any],
                console: Console, raw: bool = False) -> tuple[LinearHead, dict[str, Any]]:
    """Retrain the probe on train + val with the regularisation validation chose (like LogisticRegressionCV's
    refit): with little data, the held-out fifth is worth more as training data than as a second opinion.

    Returns the refit head and the validation metrics of the head validation chose (before the refit); the
    refit is noted in the probe's stage ``record``."""
    selection_val = _split_metrics(head, feats["val"][0], y["val"], y["train"], classes)
    x_all = np.concatenate([feats["train"][0], feats["val"][0]])
    y_all = np.concatenate([y["train"], y["val"]])
    refit = LinearHead(head.fc.in_features, head.fc.out_features)
    fit_probe(refit, x_all, y_all, c=c, raw=raw, class_weights=weights, seed=cfg.seed)
    record["refit"] = {"C": c, "examples": int(len(y_all))}
    console.info(f"refit: the probe retrained on training + validation data ({len(y_all)} examples, C={c:g})")
    return refit, selection_val


def _check_out(out: str | Path, data: str | Path, force: bool, resume: bool) -> None:
    """The output rules (:func:`graftwork.run.check_out_dir`: never the data, inside it or around it; ``force``
    replaces only a run folder), and an interrupted fit's checkpoint is never discarded without ``force``."""
    check_out_dir(out, force, data=data)
    partial = partial_dir(out)
    if resume or not partial.exists():
        return
    if not (partial / RESUME_FILE).is_file() and (partial.is_symlink() or any(partial.iterdir())):
        raise RunFolderError(f"--out {out}: {partial} exists and is not the state of an interrupted graftwork "
                             "fit; nothing was changed.", hint="move it away, or choose another --out.")
    if (partial / CHECKPOINT).is_file() and not force:
        raise RunFolderError(f"--out {out}: an interrupted fit into this folder left a checkpoint ({partial}); "
                             "nothing was discarded.", hint=f"continue it with `graftwork fit --resume {out}`, or "
                             "pass --force to start over (its checkpoint is then discarded).")


def _data_signature(parts: dict[str, Examples]) -> str:
    """Identifies the examples and labels of each split, so that a resumed run trains on the same data."""
    import hashlib

    h = hashlib.sha256()
    for name, ex in sorted(parts.items()):
        for origin, label in zip(ex.origins, ex.labels, strict=True):
            h.update(f"{name}\0{origin}\0{label}\n".encode())
    return h.hexdigest()


def _start_partial(partial: Path, data: str | Path, cfg: FitConfig, force: bool, signature: str, resume: bool,
                   console: Console) -> dict[str, Any] | None:
    """Record what is needed to resume; return the checkpoint to resume from, if any."""
    if resume:
        saved = json.loads((partial / RESUME_FILE).read_text(encoding="utf-8"))
        if saved.get("data_signature") != signature:
            raise RunFolderError(f"{saved['data']}: the data changed since the interrupted run (files or labels "
                                 "differ), so its checkpoint cannot be resumed.",
                                 hint="start again with `graftwork fit DATA --out DIR --force`.")
        if (partial / "checkpoint.pt").is_file():
            return load_checkpoint(partial)
        return None
    if partial.exists():  # _check_out let it through: --force, or no checkpoint in it yet
        console.warn(f"discarding the state of an interrupted run in {partial}")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / RESUME_FILE, {"data": str(Path(data).expanduser().absolute()), "fit": cfg.to_dict(),
                                       "force": force, "data_signature": signature})
    return None


def resume_fit(out: str | Path, *, console: Console = SILENT,
               on_epoch_end: list[Callable[[Progress], None]] | None = None) -> TransferModel:
    """Continue an interrupted ``fit --out OUT`` from its last checkpoint, with its original settings."""
    partial = partial_dir(out)
    if not (partial / RESUME_FILE).is_file():
        raise RunFolderError(f"--resume {out}: no interrupted run to resume (looked for {partial}).",
                             hint="start it again with `graftwork fit DATA --out DIR`.")
    try:
        saved = json.loads((partial / RESUME_FILE).read_text(encoding="utf-8"))
        cfg = FitConfig.from_dict(saved["fit"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFolderError(f"{partial / RESUME_FILE}: damaged ({e}); the run cannot be resumed.",
                             hint="start it again with `graftwork fit DATA --out DIR`.") from None
    if not saved.get("force"):
        check_out_dir(out, force=False)  # the folder may have been filled since: never overwrite without --force
    console.info(f"resuming the fit of {saved['data']} into {out}")
    return run_fit(saved["data"], cfg, out=out, force=bool(saved.get("force")), console=console, resume=True,
                   on_epoch_end=on_epoch_end)


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
        "fit": asdict(cfg),
        "data": str(data),
        "versions": library_versions(),
    }


def _summary(console: Console, model: TransferModel, out: str | Path | None) -> None:
    m = model.metrics
    parts = [f"kept {m['kept_stage']}"]
    for name in ("val", "test"):
        if name in m:
            parts.append(f"{name} accuracy {m[name]['accuracy']:.3f} (macro F1 {m[name]['macro_f1']:.3f}; "
                         f"majority class {m[name]['majority_baseline']['accuracy']:.3f})")
    console.info("done: " + "; ".join(parts) + f" in {m['timing']['total_s']:.1f}s")
    if cost := cost_line(m):
        console.info(cost)
    for f in sorted((Finding.from_dict(d) for d in m.get("findings", [])), key=lambda f: f.severity != "high"):
        if f.severity == "info":
            console.info(f"finding: {f.message}")
        else:
            console.warn(f"{f.code} ({f.severity}): {f.message}" + (f"\n  what to do: {f.advice}" if f.advice else ""))
    if out is not None:
        console.info(f"saved to {Path(out)}  (graftwork predict {out} INPUT..., graftwork evaluate {out} DATA)")
