"""The trainer's checkpoint: one file, written atomically at the end of every epoch and of every stage.

Hand-written rather than ``Accelerator.save_state``: that writes a folder of files one after the other (a crash
between them leaves a mixed state) and pickles the optimizer, while this is one ``os.replace`` and loads with
``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only: nothing executes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..console import Console
from ..errors import RunFolderError
from ..run.folder import write_json
from ..run.provenance import partial_dir
from .callbacks import Callback

if TYPE_CHECKING:
    from .state import Progress
    from .trainer import StagedTrainer

CHECKPOINT = "checkpoint.pt"
FORMAT = 1
RESUME_FILE = "fit.json"  # beside the checkpoint: the data and settings `graftwork fit --resume OUT` restarts with


def check_partial(out: str | Path, force: bool, resume: bool) -> None:
    """Before a fit into ``out``: an interrupted fit's checkpoint is never discarded without ``force``, and a
    ``.partial`` folder that is not graftwork's is never touched (every task's fit calls this)."""
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


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Atomic: written to a temporary file in the same folder, then renamed over the old checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, folder / CHECKPOINT)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(folder: Path) -> dict[str, Any]:
    return torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)


class Checkpointing(Callback):
    """Saves the trainer's state after every epoch and every stage, from the main process only."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_epoch_end(self, trainer: StagedTrainer, state: Progress, row: dict[str, Any]) -> None:
        self.save(trainer, state, in_stage=True)

    def on_stage_end(self, trainer: StagedTrainer, state: Progress, record: dict[str, Any]) -> None:
        self.save(trainer, state, in_stage=False)

    def save(self, trainer: StagedTrainer, state: Progress, *, in_stage: bool) -> None:
        if not trainer.accelerator.is_main_process:
            return
        snaps = trainer.snapshots
        top, eligible = snaps.get("stage_top"), snaps.get("stage_best")
        extra = {} if eligible is None or eligible is top else {"stage_eligible_net": eligible}
        save_checkpoint(self.folder, extra | {
            "format": FORMAT, "progress": asdict(state), "net": trainer.snapshot(copy=False),
            "best_net": snaps["best"], "stage_best_net": top,
            "optimizer": trainer.optimizer.state_dict() if in_stage else None,
            "scheduler": trainer.scheduler.state_dict() if in_stage else None, "rng": torch.get_rng_state()})


def start_partial(partial: Path, data: str | Path, settings: dict[str, Any], *, force: bool, signature: str,
                  resume: bool, console: Console, changed: str = "files or labels") -> dict[str, Any] | None:
    """Set up the interrupted-fit folder ``partial`` for this fit (every task's): record what ``--resume`` needs
    (the data, the settings, ``signature`` of the examples) before any training, or, with ``resume``, check the
    data is the same and return the checkpoint to continue from (None when no epoch of fine-tuning had ended).
    ``changed`` names what differs when the data's signature does not match."""
    if resume:
        try:
            saved = json.loads((partial / RESUME_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{partial / RESUME_FILE}: unreadable ({e}); the run cannot be resumed.",
                                 hint="start it again with `graftwork fit DATA --out DIR --force`.") from None
        if saved.get("data_signature") != signature:
            raise RunFolderError(f"{saved.get('data', data)}: the data changed since the interrupted run ({changed} "
                                 "differ), so its checkpoint cannot be resumed.",
                                 hint="start again with `graftwork fit DATA --out DIR --force`.")
        return load_checkpoint(partial) if (partial / CHECKPOINT).is_file() else None
    if partial.exists():  # check_partial let it through: --force, or no checkpoint in it yet
        console.warn(f"discarding the state of an interrupted run in {partial}")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / RESUME_FILE, {"data": str(Path(data).expanduser().absolute()), "fit": settings,
                                       "force": force, "data_signature": signature})
    return None
