"""``fit --task ner``: from tagged sentences to a saved token classifier.

Steps, each failing early: check the output folder (and an interrupted fit's state beside it, :mod:`.resume`);
read and check the data (every bad line reported with file:line); choose the backbone and the plan (printed);
train the linear probe on cached token states, then the strategy's fine-tuning stages on the staged trainer
(:mod:`.train`), checkpointed every epoch so that ``--resume`` continues a killed fit exactly; score validation
and test with entity-level metrics; save the run folder (with its report) atomically.

``auto`` keys on the median number of entity mentions per type in the training sentences, the NER analogue of
examples per class, with the thresholds classification uses: fewer than 25 mentions per type, ``frozen`` (too
few to tell fine-tuning stages apart on validation); up to 10,000, ``gradual``; from 10,000, ``full``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones import build_backbone, default_backbone
from ..backbones.hf import TextBackbone
from ..config import FitConfig
from ..console import SILENT, Console
from ..errors import ConfigError, DataError, Problem, RunFolderError
from ..features import resolve_device
from ..resources import cost_line, parameter_counts, peak_memory
from ..run import check_out_dir, out_lock, recover_folder
from ..run.provenance import data_path, library_versions, partial_dir
from ..strategies.base import Rates, Strategy
from ..strategies.lora import has_lora, remove_lora
from ..strategies.plan import FROZEN_BELOW, FULL_FROM, LORA_FROM_PARAMS
from ..strategies.registry import get_strategy
from ..train import Callback, StagedTrainer
from ..train.checkpoint import check_partial, start_partial
from ..train.standard import train_settings
from .align import WORD_PATTERN
from .data import NerSplits, Sentence, hold_out, load_ner_data, mention_counts, tag_list
from .metrics import MODE
from .model import NerModel, TokenClassifier
from .resume import data_signature, load_head_stage, save_head_stage
from .settings import CLASS_WEIGHTS_AUTO, unsupported_settings
from .task import NerTask, tag_weights
from .train import HEAD_EPOCHS, fine_tune, head_stage, rescore_probe

_WHAT = {
    "frozen": "encoder frozen; token states computed once; a linear tag layer trained on them",
    "gradual": "tag layer on frozen token states, then unfreeze the top quarter, half, all of the layer groups "
               "with discriminative learning rates while validation entity F1 improves; keep the best stage",
    "full": "tag layer on frozen token states, then every layer trainable with discriminative learning rates",
    "lora": "tag layer on frozen token states, then LoRA adapters (PEFT) beside the frozen encoder weights, "
            "trained with the tag layer",
}


def ner_plan(cfg: FitConfig, mentions: dict[str, int], backbone_params: int = 0) -> dict[str, Any]:
    """The strategy for ``cfg.strategy`` (``auto`` decides from mentions per entity type), and why."""
    median = int(np.median(list(mentions.values()))) if mentions else 0
    strategy, why = cfg.strategy, "asked for with --strategy"
    if cfg.strategy == "auto":
        if cfg.unfreeze is not None:
            strategy, why = "gradual", f"--unfreeze {cfg.unfreeze} asks for the top group(s) to be fine-tuned"
        elif median < FROZEN_BELOW:
            strategy, why = "frozen", (f"{median} entity mentions per type (median, fewer than {FROZEN_BELOW}): "
                                       "too few to compare fine-tuning stages on validation")
        elif median < FULL_FROM:
            strategy, why = "gradual", (f"{median} entity mentions per type (median): enough to adapt the top "
                                        "layers; unfreezing stops when validation entity F1 stops improving")
        else:
            strategy, why = "full", f"{median} entity mentions per type (median, {FULL_FROM}+): adapt every layer"
        if strategy in ("gradual", "full") and cfg.unfreeze is None and backbone_params >= LORA_FROM_PARAMS:
            strategy, why = "lora", why + (f"; the encoder has {backbone_params / 1e6:.0f}M parameters "
                                           f"({LORA_FROM_PARAMS // 1_000_000}M+): LoRA adapters instead of unfreezing")
    return {"requested": cfg.strategy, "strategy": strategy, "reasons": [why], "mentions_per_type": mentions,
            "unfreeze": cfg.unfreeze, "details": {}}


def _describe(plan: dict[str, Any]) -> str:
    lines = [f"plan: {plan['strategy']}" + (" (chosen by auto)" if plan["requested"] == "auto" else ""),
             f"  what: {_WHAT[plan['strategy']]}" if plan["unfreeze"] is None else
             f"  what: tag layer on frozen token states, then the top {plan['unfreeze']} layer group(s) fine-tuned"]
    lines += [f"  why: {r}" for r in plan["reasons"]]
    lines += [f"  {k}: {v}" for k, v in plan["details"].items()]
    return "\n".join(lines)


def _check_settings(cfg: FitConfig) -> None:
    """Every given setting NER does not read is an error that names it (:mod:`.settings`)."""
    problems = [Problem(f"'{name}'", f"{why} (--{name.replace('_', '-')}, task='ner').")
                for name, why in unsupported_settings(cfg)]
    if problems:
        raise ConfigError("Invalid settings:", problems=problems,
                          hint="leave these settings out for --task ner; `graftwork fit --help` lists them all")


def _backbone(cfg: FitConfig, console: Console) -> TextBackbone:
    if cfg.backbone is None:
        cfg.backbone, why = default_backbone("text")
        console.info(f"backbone: {cfg.backbone} ({why})")
    torch.manual_seed(cfg.seed)
    backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, weights=cfg.weights)
    if not isinstance(backbone, TextBackbone):
        raise DataError(f"NER needs a text backbone; {backbone.info.name} is a {backbone.modality} backbone.",
                        hint="pick a text backbone (`graftwork backbones --modality text`), or leave --backbone out.")
    console.info(f"weights: {backbone.info.weights}")
    return backbone


def run_fit_ner(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
                console: Console = SILENT, resume: bool = False,
                callbacks: list[Callback] | None = None) -> NerModel:
    """Train a token classifier on tagged sentences at ``data``; save it to ``out`` when given.

    ``out`` follows the output rules (:func:`graftwork.run.check_out_dir`: never the data, inside it or around
    it; ``force`` replaces only a run folder), checked before any work and again under its lock, held for the
    whole fit so that a second fit into the same ``out`` is refused. While fine-tuning, the resumable state
    lives beside ``out`` (:mod:`.resume`); ``resume`` continues it. ``callbacks``: more trainer callbacks (after
    the standard ones), e.g. experiment tracking."""
    data = data_path(data)  # resumable whatever the working folder and spelling
    _check_settings(cfg)
    if out is None:
        if resume:
            raise ConfigError("resuming needs the output folder of the interrupted fit.",
                              hint="graftwork fit --resume DIR")
        return _fit_ner(data, cfg, out=None, force=force, console=console, resume=False, callbacks=callbacks)
    check_out_dir(out, force, data=data)  # before the lock: a refused --out (inside the data) gets no lock file
    with out_lock(out):
        recover_folder(out, locked=True)
        check_out_dir(out, force, data=data)
        check_partial(out, force, resume)
        return _fit_ner(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)


@dataclass
class _Setup:
    """What the steps of one NER fit share."""

    cfg: FitConfig
    splits: NerSplits
    train: list[Sentence]
    val: list[Sentence]
    tags: list[str]
    plan: dict[str, Any]
    net: TokenClassifier
    task: NerTask


def _prepare(data: str | Path, cfg: FitConfig, console: Console) -> _Setup:
    """Read and check the data, build the backbone, hold out validation sentences, decide the plan."""
    if cfg.weights:
        cfg.weights = str(Path(cfg.weights).expanduser().absolute())
    splits = load_ner_data(data, skip_bad=cfg.skip_bad_files)
    for note in splits.notes:
        console.info(note)
    if splits.skipped:
        console.warn(f"skipped {len(splits.skipped)} bad line(s) and their sentences (--skip-bad-files); "
                     "listed in metrics.json")
    backbone = _backbone(cfg, console)
    train, val = splits.train, splits.val or []
    if splits.val is None and cfg.val_fraction > 0:
        train, val = hold_out(train, cfg.val_fraction, cfg.seed)
        console.info(f"validation: {len(val)} of {len(splits.train)} sentences held out "
                     f"(val_fraction={cfg.val_fraction}, seed={cfg.seed})")
    tags = tag_list(splits.entity_types)
    plan = ner_plan(cfg, mention_counts(train), sum(p.numel() for p in backbone.parameters()))
    if plan["strategy"] != "frozen" and not val:
        raise DataError("fine-tuning needs validation data to choose how far to unfreeze.",
                        hint="give a val/dev file, or set --val-fraction above 0, or use --strategy frozen.")
    net = TokenClassifier(backbone, len(tags))
    weighted = cfg.class_weights == "on"
    plan["details"]["class weights"] = ("on: inverse tag frequency in the loss" if weighted else
                                        CLASS_WEIGHTS_AUTO if cfg.class_weights == "auto" else "off")
    task = NerTask(net, tags, train, val, label_smoothing=cfg.label_smoothing, batch_size=cfg.batch_size,
                   weights=tag_weights(tags, train) if weighted else None)
    return _Setup(cfg, splits, train, val, tags, plan, net, task)


def _strategy(setup: _Setup) -> tuple[Strategy | None, list[int]]:
    """The fine-tuning strategy and its schedule (None, []: frozen), with what it adds to the backbone (LoRA
    adapters) injected and the stages written into the plan."""
    cfg, plan, backbone = setup.cfg, setup.plan, setup.net.backbone
    if plan["strategy"] == "frozen":
        plan["details"]["stages"] = f"tag layer (up to {HEAD_EPOCHS} epochs on cached states)"
        return None, []
    rates = Rates(lr=cfg.lr, lr_ratio=cfg.lr_ratio, lr_decay=cfg.lr_decay, weight_decay=cfg.weight_decay)
    lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "targets": cfg.lora_targets}
    strategy = get_strategy(plan["strategy"], rates, unfreeze=cfg.unfreeze, lora=lora)
    plan["details"] |= strategy.inject(backbone)  # before the probe: a resumed fit draws the same adapters
    schedule = strategy.schedule(len(backbone.layer_groups()))
    plan["details"] |= strategy.describe(backbone, schedule)
    epochs, patience = cfg.stage_length("text")
    plan["details"]["epochs per stage"] = f"up to {epochs}, stopping after {patience} without validation gain"
    plan["details"]["tags"] = " ".join(setup.tags)
    plan["details"]["drift"] = ("CKA of each layer group with the pretrained encoder, every epoch" +
                                ("; on forgetting, the stage's rates x0.1 (strategy auto)" if cfg.strategy == "auto"
                                 else ""))
    if cfg.l2sp > 0:
        plan["details"]["L2-SP"] = (f"strength {cfg.l2sp:g}: the trained encoder weights are pulled toward the "
                                    "pretrained ones (Li et al. 2018)")
    if cfg.wise:
        plan["details"]["WiSE-FT"] = ("the interpolation of the probe's and the fine-tuned weights best on "
                                      "validation is kept (Wortsman et al. 2022)")
    return strategy, schedule


def _fit_ner(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool, console: Console,
             resume: bool, callbacks: list[Callback] | None) -> NerModel:
    """:func:`_fit_ner_steps` with ``--log-to``'s trackers open around it (settings, epochs, findings, run folder)."""
    from ..tracking import fit_session

    with fit_session(cfg, out, console) as tracking:
        model = _fit_ner_steps(data, cfg, out=out, force=force, console=console, resume=resume,
                               callbacks=[*(callbacks or []), *tracking.callbacks])
        tracking.finish(model.metrics, model.config, out)
    return model


def _fit_ner_steps(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool, console: Console,
                   resume: bool, callbacks: list[Callback] | None) -> NerModel:
    """:func:`run_fit_ner`'s steps, once ``out`` has been checked and locked: prepare, plan, probe, fine-tune,
    evaluate, save."""
    started = time.perf_counter()
    setup = _prepare(data, cfg, console)
    strategy, schedule = _strategy(setup)
    console.info(_describe(setup.plan))
    partial, checkpoint = None, None
    if out is not None and strategy is not None:
        signature = data_signature({"train": setup.train, "val": setup.val, "test": setup.splits.test or []})
        partial = partial_dir(out)
        checkpoint = start_partial(partial, data, cfg.to_dict(), force=force, signature=signature, resume=resume,
                                   console=console, changed="sentences or tags")
    elif resume:
        raise RunFolderError(f"--resume {out}: this fit has no fine-tuning stage to resume.",
                             hint="start it again with `graftwork fit DATA --out DIR --force`.")
    trainer = StagedTrainer(setup.net, setup.task, strategy, train_settings(cfg, "text"), console=console) \
        if strategy is not None else None
    device = trainer.device if trainer is not None else resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    probe = _probe(setup, device, trainer, partial, console)
    stages = [probe | {"kept": True}]
    if trainer is not None:
        stages = fine_tune(trainer, schedule, probe, cfg, partial=partial, resume=checkpoint, console=console,
                           callbacks=callbacks).stages
    else:
        setup.net.eval()
    model = _finish(data, setup, stages, device, started, console)
    setup.net.cpu()
    if out is not None:
        model.save(out, force=force)
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
    _summary(console, model, out)
    return model


def _probe(setup: _Setup, device: torch.device, trainer: StagedTrainer | None, partial: Path | None,
           console: Console) -> dict[str, Any]:
    """The linear probe's stage record (the tag layer trained on cached token states), or, when resuming, the one
    the interrupted fit saved (its weights loaded)."""
    cfg = setup.cfg
    record = load_head_stage(partial, setup.net.head) if partial is not None else None
    if record is not None:
        setup.net.to(device)
        console.info(f"  linear probe: restored from {partial} (val entity F1 {record['val_f1']:.4f})")
        return record
    bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16")
    record = head_stage(setup.task, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed, device=device,
                        batch_size=cfg.batch_size,
                        autocast=torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else None)
    if trainer is not None:
        rescore_probe(trainer, record)
    if "val_f1" in record:
        console.info(f"  linear probe: val entity F1 {record['val_f1']:.4f} after {len(record['history'])} "
                     f"epoch(s), {record['seconds']:.1f}s")
    if partial is not None:
        save_head_stage(partial, setup.net.head, record)
    return record


def _finish(data: str | Path, setup: _Setup, stages: list[dict[str, Any]], device: torch.device,
            started: float, console: Console) -> NerModel:
    """The trained model with its run config and metrics (entity-level scores of validation and test)."""
    cfg, net, backbone = setup.cfg, setup.net, setup.net.backbone
    kept = next(s for s in stages if s.get("kept"))
    if has_lora(backbone) and kept["stage"] != "lora":
        remove_lora(backbone, merge=False)  # the probe won: the adapters are still zero
    if kept["unfrozen_groups"] or kept["stage"] == "lora":
        backbone.info.extra |= {"pretrained_fingerprint": backbone.info.fingerprint, "fine_tuned": kept["stage"]}
        backbone.refresh_fingerprint()
    config = _run_config(backbone, setup.tags, cfg, setup.plan, data)
    model = NerModel(net, setup.tags, config, device=cfg.device, console=console)
    splits = setup.splits
    metrics: dict[str, Any] = {"task": "ner", "stages": stages, "kept_stage": kept["stage"],
                               "data": splits.summary() | {"fit_split": {"train": len(setup.train),
                                                                         "val": len(setup.val)}}}
    for name, part in (("val", setup.val), ("test", splits.test or [])):
        if part:
            metrics[name] = model.evaluate_sentences(part, batch_size=cfg.batch_size * 2)
    metrics["findings"] = [f for s in stages for f in s.get("findings", [])]
    metrics["drift"] = [row for s in stages for row in s.get("drift", [])]
    metrics["parameters"] = parameter_counts(backbone, net.head, stages) | {
        "trainable_in_kept_stage": kept["trainable_params"]}
    metrics["memory"] = peak_memory(device)
    metrics["timing"] = {"linear_probe_s": stages[0]["seconds"], "total_s": round(time.perf_counter() - started, 3)}
    model.metrics = metrics
    return model


def _run_config(backbone: TextBackbone, tags: list[str], cfg: FitConfig, plan: dict[str, Any],
                data: str | Path) -> dict[str, Any]:
    info = backbone.info.to_dict()
    info["load_name"] = info["name"]
    return {
        "format": "graftwork-run/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "ner",
        "modality": "text",
        "tags": tags,
        "entity_types": sorted({t[2:] for t in tags if t != "O"}),
        "backbone": info,
        "preprocessing": backbone.preprocessing | {"words": WORD_PATTERN, "label_on": "first word piece",
                                                   "long_sentences": "cut into chunks of whole words"},
        "head": {"type": "token-linear", "in_features": backbone.feature_dim, "tags": len(tags)},
        "decoding": "Viterbi under IOB2 constraints",
        "scoring": MODE,
        "plan": plan,
        "fit": asdict(cfg),
        "data": str(data),
        "versions": library_versions(),
    }


def _summary(console: Console, model: NerModel, out: str | Path | None) -> None:
    m = model.metrics
    parts = [f"kept {m['kept_stage']}"]
    for name in ("val", "test"):
        if name in m:
            parts.append(f"{name} entity F1 {m[name]['f1']:.3f} (P {m[name]['precision']:.3f}, "
                         f"R {m[name]['recall']:.3f})")
    console.info("done: " + "; ".join(parts) + f" in {m['timing']['total_s']:.1f}s")
    if cost := cost_line(m):
        console.info(cost)
    if out is not None:
        console.info(f"saved to {Path(out)}  (graftwork predict {out} TEXT..., graftwork evaluate {out} DATA)")

