"""``fit --task ner``: from tagged sentences to a saved token classifier.

Steps, each failing early: check the output folder; read and check the data (every bad line reported with
file:line); choose the backbone and the plan (printed); train in stages (:mod:`.train`); score validation and
test with entity-level metrics; save the run folder atomically.

``auto`` keys on the median number of entity mentions per type in the training sentences, the NER analogue of
examples per class, with the thresholds classification uses: fewer than 25 mentions per type, ``frozen`` (too
few to tell fine-tuning stages apart on validation); up to 10,000, ``gradual``; from 10,000, ``full``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones import build_backbone, default_backbone
from ..backbones.hf import TextBackbone
from ..config import FitConfig
from ..console import SILENT, Console
from ..errors import ConfigError, DataError
from ..features import resolve_device
from ..resources import cost_line, parameter_counts, peak_memory
from ..run import check_out_dir, out_lock, recover_folder
from ..run.provenance import library_versions
from ..strategies.finetune import stage_schedule
from ..strategies.lora import apply_lora, has_lora, remove_lora
from ..strategies.plan import FROZEN_BELOW, FULL_FROM, LORA_FROM_PARAMS
from .align import WORD_PATTERN
from .data import hold_out, load_ner_data, mention_counts, tag_list
from .metrics import MODE
from .model import NerModel, TokenClassifier
from .train import HEAD_EPOCHS, NerTrainer

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


def _check_settings(cfg: FitConfig, resume: bool) -> None:
    if resume:
        raise ConfigError("--resume is not available for NER runs yet.", hint="start the fit again.")


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
                console: Console = SILENT, resume: bool = False) -> NerModel:
    """Train a token classifier on tagged sentences at ``data``; save it to ``out`` when given.

    ``out`` follows the output rules (:func:`graftwork.run.check_out_dir`: never the data, inside it or around
    it; ``force`` replaces only a run folder), checked before any work and again under its lock, held for the
    whole fit so that a second fit into the same ``out`` is refused."""
    _check_settings(cfg, resume)
    if out is None:
        return _fit_ner(data, cfg, out=None, force=force, console=console)
    check_out_dir(out, force, data=data)  # before the lock: a refused --out (inside the data) gets no lock file
    with out_lock(out):
        recover_folder(out, locked=True)
        check_out_dir(out, force, data=data)
        return _fit_ner(data, cfg, out=out, force=force, console=console)


def _fit_ner(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool,
             console: Console) -> NerModel:
    """:func:`run_fit_ner`'s steps, once ``out`` has been checked and locked."""
    started = time.perf_counter()
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
    groups = backbone.layer_groups()
    lora = plan["strategy"] == "lora"
    if lora:
        spec = apply_lora(backbone, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                          targets=cfg.lora_targets)
        plan["details"]["adapters"] = spec.describe()
        schedule = [len(groups)]
    else:
        schedule = [] if plan["strategy"] == "frozen" else stage_schedule(len(groups), plan["strategy"],
                                                                          cfg.unfreeze)
    plan["details"] |= {"tags": " ".join(tags), "layer groups": f"{len(groups)} ({groups[0].name} ... "
                        f"{groups[-1].name})", "stages": "tag layer (up to "
                        f"{HEAD_EPOCHS} epochs on cached states)" + (", LoRA adapters" if lora else
                                                                  "".join(f", top {n}" for n in schedule))}
    console.info(_describe(plan))

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = NerTrainer(net, tags, train, val, cfg, device=device, console=console, lora=lora)
    stages, kept = trainer.run(schedule)
    if has_lora(backbone) and kept["stage"] != "lora":
        remove_lora(backbone, merge=False)  # the tag layer alone won: the adapters are still zero
    if kept["unfrozen_groups"] or kept["stage"] == "lora":
        backbone.info.extra |= {"pretrained_fingerprint": backbone.info.fingerprint, "fine_tuned": kept["stage"]}
        backbone.refresh_fingerprint()
    config = _run_config(backbone, tags, cfg, plan, data)
    model = NerModel(net, tags, config, device=cfg.device, console=console)
    metrics: dict[str, Any] = {"task": "ner", "stages": stages, "kept_stage": kept["stage"],
                               "data": splits.summary() | {"fit_split": {"train": len(train), "val": len(val)}}}
    for name, part in (("val", val), ("test", splits.test or [])):
        if part:
            metrics[name] = model.evaluate_sentences(part, batch_size=cfg.batch_size * 2)
    metrics["parameters"] = parameter_counts(backbone, net.head, stages) | {
        "trainable_in_kept_stage": kept["trainable_params"]}
    metrics["memory"] = peak_memory(device)
    metrics["timing"] = {"total_s": round(time.perf_counter() - started, 3)}
    model.metrics = metrics
    net.cpu()
    if out is not None:
        model.save(out, force=force)
    _summary(console, model, out)
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

