"""Callbacks: the staged trainer's extension points.

The trainer (:mod:`graftwork.train.trainer`) runs stages of epochs and calls these hooks, in this order::

    on_fit_start
    for each stage:   on_stage_start, then per epoch: loss_term (every step), on_epoch_end; then on_stage_end
    on_fit_end

Unfreezing, drift monitoring and back-off, L2-SP, WiSE-FT, early stopping, best-stage selection, checkpointing
and experiment tracking are callbacks, so the loop itself has no branch for any of them. A hook receives the
trainer (its network, accelerator, validation) and the training state (``state.stage``, ``state.epoch``,
``state.stages``: one record per stage, each with its ``"stage"`` name and ``"history"`` of epoch rows).

An epoch row is a flat dict: ``"epoch"``, ``"train_loss"``, ``"val_loss"``, the task's score (``"val_acc"`` for
classification, ``"val_f1"`` for NER, ...), ``"seconds"`` (the whole epoch) and ``"train_seconds"`` (its training steps).
"""

from __future__ import annotations

from typing import Any

import torch


class Callback:
    """Does nothing at every hook; subclasses override the hooks they need."""

    def on_fit_start(self, trainer: Any, state: Any) -> None:
        """Before the first stage (also when resuming: ``state`` is then the restored one)."""

    def on_stage_start(self, trainer: Any, state: Any) -> None:
        """A stage's optimizer and trainable parameters are set up; its first epoch is next."""

    def loss_term(self, trainer: Any) -> torch.Tensor | None:
        """An extra term added to every training step's loss (L2-SP), or None."""
        return None

    def on_epoch_end(self, trainer: Any, state: Any, row: dict[str, Any]) -> None:
        """After an epoch's validation; ``row`` is the epoch's record (already appended to the stage's history)."""

    def on_stage_end(self, trainer: Any, state: Any, record: dict[str, Any]) -> None:
        """After a stage's last epoch; ``record`` is the stage's record."""

    def on_fit_end(self, trainer: Any, state: Any) -> None:
        """After the last stage; the network holds the kept weights."""
