"""The one staged trainer every task and strategy trains with (:mod:`.trainer`), its state, its checkpoint and
its callbacks."""

from .callbacks import Callback
from .checkpoint import CHECKPOINT, Checkpointing, load_checkpoint, save_checkpoint
from .guards import L2SP, DriftWatch, WiseFT
from .selection import BestStageSelection, EarlyStopping, UnfreezePatience
from .state import Progress, Score, seed_epoch
from .task import TrainingTask, ValScore
from .trainer import StagedTrainer, TrainSettings

__all__ = ["Callback", "CHECKPOINT", "Checkpointing", "load_checkpoint", "save_checkpoint", "L2SP", "DriftWatch",
           "WiseFT", "BestStageSelection", "EarlyStopping", "UnfreezePatience", "Progress", "Score", "seed_epoch",
           "TrainingTask", "ValScore", "StagedTrainer", "TrainSettings"]
