"""A staged trainer on a classification task with the standard selection callbacks, for tests."""

from __future__ import annotations

from graftwork.classify.task import ClassificationTask
from graftwork.strategies.base import Strategy, TransferNet
from graftwork.train import (
    BestStageSelection,
    Callback,
    EarlyStopping,
    StagedTrainer,
    TrainSettings,
    UnfreezePatience,
)


def make_trainer(backbone, head, train, val, strategy: Strategy, *, epochs: int, patience: int, batch_size: int,
                 seed: int = 0, extra: list[Callback] | None = None, accumulation: int = 1) -> StagedTrainer:
    task = ClassificationTask(backbone, train, val, batch_size=batch_size)
    settings = TrainSettings(stage_epochs=epochs, batch_size=batch_size, seed=seed, cpu=True,
                             gradient_accumulation=accumulation)
    callbacks = [BestStageSelection(), EarlyStopping(patience), UnfreezePatience(1), *(extra or [])]
    return StagedTrainer(TransferNet(backbone, head), task, strategy, settings, callbacks=callbacks)
