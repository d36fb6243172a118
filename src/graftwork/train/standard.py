"""The settings and callbacks that classification and NER train with, put together in one place.

A task that selects among stages (the probe, then more and more unfrozen layers) trains with the same
callbacks: best-stage selection, early stopping, unfreeze patience, the drift watch and back-off (when there
is a validation batch to watch), L2-SP, WiSE-FT, checkpointing, then the caller's own (tracking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import FitConfig
from ..console import SILENT, Console
from ..strategies.drift import DriftMonitor
from .callbacks import Callback
from .checkpoint import Checkpointing
from .guards import L2SP, DriftWatch, WiseFT
from .selection import BestStageSelection, EarlyStopping, UnfreezePatience
from .state import Progress
from .trainer import StagedTrainer, TrainSettings


def train_settings(cfg: FitConfig, modality: str) -> TrainSettings:
    """How the staged trainer steps, from the fit's settings (stage length: ``FitConfig.stage_length``)."""
    epochs, _ = cfg.stage_length(modality)
    return TrainSettings(stage_epochs=epochs, batch_size=cfg.batch_size, seed=cfg.seed, grad_clip=cfg.grad_clip,
                         bf16=cfg.precision in ("bf16", "auto"), workers=cfg.workers,
                         gradient_accumulation=cfg.gradient_accumulation, cpu=cfg.device == "cpu")


def standard_callbacks(trainer: StagedTrainer, cfg: FitConfig, *, modality: str, probe_batch: Any,
                       unfreeze_patience: int, partial: Path | None, console: Console = SILENT,
                       probe_margin: bool = False, extra: Sequence[Callback] = ()) -> list[Callback]:
    """The callbacks of a staged fit, in the order they must run. ``probe_batch`` (a validation batch, or None)
    is what the drift monitor watches; it is taken while the network holds the pretrained backbone, also when
    resuming (the checkpoint is restored after), so that drift, L2-SP and WiSE-FT measure from the start."""
    _, patience = cfg.stage_length(modality)
    guards: list[Callback] = []
    if probe_batch is not None:
        # LoRA leaves the base weights untouched: no copy of them is kept (it would cost what LoRA saves)
        monitor = DriftMonitor(trainer.net.backbone, probe_batch, trainer.device,
                               track_weights=trainer.strategy.name != "lora")
        guards.append(DriftWatch(monitor, backoff=cfg.strategy == "auto", console=console))
        if cfg.l2sp > 0:
            guards.append(L2SP(monitor, cfg.l2sp))
    return [BestStageSelection(probe_margin=probe_margin, console=console), EarlyStopping(patience),
            UnfreezePatience(unfreeze_patience), *guards, *([WiseFT(console)] if cfg.wise else []),
            *([Checkpointing(partial)] if partial is not None else []), *extra]


def starting_progress(resume: dict[str, Any] | None, fresh: Callable[[], Progress],
                      console: Console = SILENT) -> Progress:
    """The training state to start from: the checkpoint's (``resume``), said so, or ``fresh()``."""
    if resume is None:
        return fresh()
    progress = Progress(**resume["progress"])
    console.info(f"resuming at stage {progress.stage + 1}/{len(progress.schedule)}, after epoch {progress.epoch}")
    return progress


__all__ = ["train_settings", "standard_callbacks", "starting_progress"]
