"""``fit --task generate``: from prompt/completion data to a fine-tuned language model, checked.

Steps, each failing early: check the output folder; read the data and tokenise it (every bad line, over-long
examples included, reported at once); load the base model; plan (printed, with why); train on completion tokens
on the staged trainer (:mod:`.training`); the forgetting check and its remedy (:mod:`.forgetting`); evaluate on test; the control
(:mod:`.control`); save the run folder and its report. While it runs, ``.<out>.partial/`` beside the output
holds the settings and the last epoch's checkpoint, so ``graftwork fit --resume OUT`` continues it.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import FitConfig
from ..console import SILENT, Console
from ..errors import DataError, RunFolderError
from ..resources import peak_memory
from ..run.provenance import data_path, partial_dir
from ..train import Callback, StagedTrainer, TrainSettings
from ..train.checkpoint import RESUME_FILE
from .backbone import LoadedLM, load_causal_lm
from .control import run_control
from .data import GenExample, GenSplits, load_generation_data, raise_problems
from .decode import stop_ids
from .encode import Encoded, Formatter, encode_all
from .forgetting import choose_scale, forgetting_finding, reference_examples
from .model import GenerationModel
from .plan import generate_plan
from .runconfig import run_config
from .training import GenerationTask, Trained, train_model

WARMUP_FRACTION = 0.05  # of the optimizer steps: the adapters start at zero, a long warm-up only wastes steps


@dataclass
class Prepared:
    """The data read, checked and tokenised for the base model, split as fit trains on it."""

    splits: GenSplits
    lm: LoadedLM
    formatter: Formatter
    train_ex: list[GenExample]
    val_ex: list[GenExample]
    test_ex: list[GenExample]
    train: list[Encoded]
    val: list[Encoded]


def prepare(data: str | Path, cfg: FitConfig, console: Console) -> Prepared:
    """Read ``data``, load the base model and tokenise every split with its chat template; every problem (bad
    lines, over-long or empty examples) is raised at once, with file and line."""
    splits = load_generation_data(data, text_column=cfg.text_column)
    lm = load_causal_lm(cfg.backbone, trust_remote_code=cfg.trust_remote_code, console=console)
    console.info(f"base model: {lm.name} ({lm.params / 1e6:.1f}M parameters)")
    formatter = Formatter(lm.tokenizer)
    problems = list(splits.problems)
    train_ex, val_ex = _hold_out(splits, cfg, console)
    train = encode_all(formatter, train_ex, cfg.max_length, problems)
    val = encode_all(formatter, val_ex, cfg.max_length, problems)
    test_ex = splits.test or []
    encode_all(formatter, test_ex, cfg.max_length, problems)
    raise_problems(problems)
    if not train:
        raise DataError(f"{data}: no training examples.", hint="add prompt/completion rows to the training file.")
    return Prepared(splits, lm, formatter, train_ex, val_ex, test_ex, train, val)


def row_tokens(cfg: FitConfig) -> int:
    """The length of a packed row: the longest example allowed, at least 256 tokens."""
    return max(cfg.max_length, 256)


def _hold_out(splits: GenSplits, cfg: FitConfig, console: Console) -> tuple[list[GenExample], list[GenExample]]:
    if splits.val is not None:
        return splits.train, splits.val
    if cfg.val_fraction <= 0 or len(splits.train) < 5:
        return splits.train, []
    order = list(range(len(splits.train)))
    random.Random(cfg.seed).shuffle(order)
    n = max(1, round(cfg.val_fraction * len(order)))
    console.info(f"validation: {n} of {len(order)} examples held out (val_fraction={cfg.val_fraction}, seed={cfg.seed})")
    return [splits.train[i] for i in sorted(order[n:])], [splits.train[i] for i in sorted(order[:n])]


def _build(lm: LoadedLM, plan: dict[str, Any], cfg: FitConfig) -> Any:
    model = lm.model
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if plan["strategy"] != "lora":
        model.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    targets: Any = plan["lora"]["target_modules"]
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def _settings(cfg: FitConfig, plan: dict[str, Any], device: torch.device) -> TrainSettings:
    """How the staged trainer steps: one stage of the plan's epochs, a short warm-up, bf16 on CUDA."""
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    return TrainSettings(stage_epochs=plan["epochs"], batch_size=plan["batch_size"], seed=cfg.seed,
                         grad_clip=cfg.grad_clip, warmup_fraction=WARMUP_FRACTION, bf16=bf16,
                         gradient_accumulation=cfg.gradient_accumulation, cpu=device.type != "cuda")


def _answer_tokens(formatter: Formatter, examples: list[GenExample], max_new_tokens: int) -> int:
    """New tokens to generate when evaluating: the longest held-out answer and a margin, at most
    ``max_new_tokens`` (a model that does not stop is cut there instead of at the configured maximum)."""
    refs = [e.context_and_reference()[1] for e in examples if e.kind != "text"]
    longest = max((len(formatter.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in refs), default=0)
    return min(max_new_tokens, longest + 8)


def _device(cfg: FitConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _start(out: str | Path | None, data: str | Path, cfg: FitConfig, force: bool, resume: bool) -> Path | None:
    if out is None:
        return None
    from ..run.guard import check_out_dir

    if not resume:
        check_out_dir(out, force, data)
    partial = partial_dir(out)
    if not resume and (partial / RESUME_FILE).is_file() and not force:
        raise RunFolderError(f"--out {out}: an interrupted fit into this folder can be resumed; nothing was "
                             "started, and its checkpoint was kept.",
                             hint=f"continue it with `graftwork fit --resume {out}`, or pass --force to start over.")
    if not resume and partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    (partial / RESUME_FILE).write_text(json.dumps({"fit": cfg.to_dict(), "data": str(Path(data).absolute()),
                                                   "force": force}), encoding="utf-8")
    return partial


def run_fit_generate(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
                     console: Console = SILENT, resume: bool = False,
                     callbacks: list[Callback] | None = None) -> GenerationModel:
    """Fine-tune a causal LM on ``data``; save the run to ``out`` when given.

    ``out`` follows the output rules of every fit (:func:`graftwork.run.check_out_dir`), and its lock is held for
    the whole fit, so that a second fit into the same ``out`` is refused. ``callbacks``: more trainer callbacks
    (after the task's own), e.g. experiment tracking; they see every epoch row, epoch 0 (the base model) first."""
    data = data_path(data)  # resumable whatever the working folder and spelling
    if out is None:
        return _fit_generate(data, cfg, out=None, force=force, console=console, resume=resume, callbacks=callbacks)
    from ..run import check_out_dir, out_lock, recover_folder

    if not resume:
        check_out_dir(out, force, data=data)  # before the lock: a refused --out (inside the data) gets no lock file
    with out_lock(out):
        recover_folder(out, locked=True)
        return _fit_generate(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)


def _fit_generate(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool, console: Console,
                  resume: bool, callbacks: list[Callback] | None) -> GenerationModel:
    """:func:`_fit_generate_steps` with ``--log-to``'s trackers open around it (settings, epochs as they end,
    findings, run folder)."""
    from ..tracking import fit_session

    with fit_session(cfg, out, console) as tracking:
        model = _fit_generate_steps(data, cfg, out=out, force=force, console=console, resume=resume,
                                    callbacks=[*(callbacks or []), *tracking.callbacks])
        tracking.finish(model.metrics, model.config, out)
    return model


def _fit_generate_steps(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool,
                        console: Console, resume: bool, callbacks: list[Callback]) -> GenerationModel:
    """:func:`run_fit_generate`'s steps, once ``out`` has been checked and locked."""
    started = time.perf_counter()
    if resume and out is not None and not (partial_dir(out) / RESUME_FILE).is_file():
        raise RunFolderError(f"--resume {out}: no interrupted run to resume.", hint="start the fit again.")
    partial = _start(out, data, cfg, force, resume)
    torch.manual_seed(cfg.seed)
    p = prepare(data, cfg, console)
    splits, lm, formatter, train_ex, val_ex, test_ex, train, val = (p.splits, p.lm, p.formatter, p.train_ex,
                                                                    p.val_ex, p.test_ex, p.train, p.val)
    plan = generate_plan(cfg, lm, train)
    console.info(plan["description"])
    model = _build(lm, plan, cfg)
    device = _device(cfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sample_tokens = _answer_tokens(formatter, val_ex, cfg.max_new_tokens)
    plan["sample_new_tokens"] = sample_tokens
    settings = _settings(cfg, plan, device)
    task = GenerationTask(formatter, train, val, encode_all(formatter, reference_examples(), cfg.max_length, []),
                          batch_size=settings.batch_size, row_tokens=row_tokens(cfg),
                          stops=set(stop_ids(model, formatter.tokenizer)))
    result, trainer = train_model(model, task, strategy=plan["strategy"], lr=plan["lr"],
                                  weight_decay=cfg.weight_decay, settings=settings, partial=partial, resume=resume,
                                  console=console, callbacks=callbacks)
    findings, lora_scale = _forgetting(trainer, result, plan)
    gm = GenerationModel(model, formatter.tokenizer, {}, {})
    gm.config = run_config(cfg, lm, plan, data, lora_scale)
    metrics = _metrics(gm, cfg, splits, train_ex, val_ex, test_ex, result, plan, findings, sample_tokens)
    metrics["memory"] = peak_memory(trainer.device)
    metrics["timing"] = {"total_s": round(time.perf_counter() - started, 3), "train_s": result.seconds}
    gm.metrics = metrics
    model.cpu()
    if out is not None:
        _save(gm, out, plan)
        shutil.rmtree(partial_dir(out), ignore_errors=True)
    _summary(console, gm, out)
    return gm


def _forgetting(trainer: StagedTrainer, result: Trained, plan: dict[str, Any]) -> tuple[list[Any], float]:
    """The forgetting finding; with LoRA and a warning, the adapters scaled to the best validation score."""
    finding = forgetting_finding(result.history, result.best_epoch)
    findings = [finding] if finding else []
    scale = 1.0
    if finding is not None and finding.severity != "info" and plan["strategy"] == "lora":
        task: GenerationTask = trainer.task  # type: ignore[assignment]
        with trainer.accelerator.autocast():
            scale, tried = choose_scale(trainer.net, lambda m: task.selection_score(m, trainer.device))
        finding.details["lora_scales_tried"] = tried
        finding.details["lora_scale"] = scale
    return findings, scale


def _metrics(gm: GenerationModel, cfg: FitConfig, splits: GenSplits, train_ex: list[GenExample],
             val_ex: list[GenExample], test_ex: list[GenExample], result: Trained, plan: dict[str, Any],
             findings: list[Any], sample_tokens: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {"task": "generate", "history": result.history, "best_epoch": result.best_epoch,
                               "data": splits.summary() | {"fit_split": {"train": len(train_ex), "val": len(val_ex)}},
                               "plan": {k: v for k, v in plan.items() if k != "description"}}
    scored = [e for e in test_ex if e.kind != "text"] or [e for e in val_ex if e.kind != "text"]
    name = "test" if test_ex else "val"
    new_tokens = max(sample_tokens, min(cfg.max_new_tokens, 2 * sample_tokens))
    if scored:
        metrics[name] = gm.evaluate_examples(scored, max_new_tokens=new_tokens, batch_size=16)
        base = getattr(gm.model, "disable_adapter", None)
        if plan["strategy"] == "full":
            base_lm = load_causal_lm(cfg.backbone, trust_remote_code=cfg.trust_remote_code)
            metrics["control"] = run_control(base_lm.model, Formatter(base_lm.tokenizer), scored, train_ex,
                                             k=cfg.few_shot, seed=cfg.seed, max_new_tokens=new_tokens, batch_size=16)
        else:
            metrics["control"] = run_control(gm.model, gm.formatter, scored, train_ex, k=cfg.few_shot,
                                             seed=cfg.seed, max_new_tokens=new_tokens, batch_size=16, base=base)
        metrics["control"]["split"] = name
    total = sum(p.numel() for p in gm.model.parameters())
    metrics["parameters"] = {"total": total, "trainable": plan["trainable_params"],
                             "trainable_percent": round(100 * plan["trainable_params"] / max(total, 1), 4)}
    metrics["findings"] = [f.to_dict() for f in findings]
    return metrics


def _save(gm: GenerationModel, out: str | Path, plan: dict[str, Any]) -> None:
    from ..report import render_report
    from .runfolder import save_generation_run

    save_generation_run(out, config=gm.config, metrics=gm.metrics, model=gm.model, tokenizer=gm.tokenizer,
                        lora=plan["strategy"] == "lora", extra={"report.html": render_report(gm.metrics, gm.config)})


def _summary(console: Console, gm: GenerationModel, out: str | Path | None) -> None:
    m = gm.metrics
    parts = [f"kept epoch {m['best_epoch']}"]
    for name in ("val", "test"):
        if name in m:
            parts.append(f"{name} exact match {m[name]['exact_match']:.3f} (rougeL {m[name]['rougeL']:.3f}, chrF "
                         f"{m[name]['chrf']:.1f}, n={m[name]['n']})")
    if "control" in m:
        c = m["control"]
        bought = " vs ".join(f"{k.replace('_', '-')} base {c[k]['exact_match']:.3f}" for k in ("zero_shot", "few_shot")
                             if k in c)
        parts.append(f"control: {bought}")
    console.info("done: " + "; ".join(parts) + f" in {m['timing']['total_s']:.1f}s")
    for f in m.get("findings", []):
        (console.warn if f["severity"] != "info" else console.info)(f"{f['code']}: {f['message']}")
    if out is not None:
        console.info(f"saved to {Path(out)}  (graftwork predict {out} PROMPT..., graftwork evaluate {out} DATA)")

