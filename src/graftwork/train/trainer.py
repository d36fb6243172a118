"""The one staged trainer: every task (through :class:`.task.TrainingTask`) and every strategy (through
:class:`graftwork.strategies.base.Strategy`) trains with it.

A fit is a schedule of stages (one per number of unfrozen layer groups the strategy asks for); a stage is
epochs of training followed by a validation pass on the full validation set. Everything that decides (early
stopping, unfreezing patience, best-stage selection, drift back-off, L2-SP, WiSE-FT, checkpointing, tracking)
is a :class:`.callbacks.Callback`; the loop itself has no branch for any of them. Callbacks share the weights
they keep in ``trainer.snapshots`` (``"best"``: the kept stage so far; ``"stage_best"``: the stage's best
eligible epoch; ``"stage_top"``: its best epoch, where training goes on from).

Device placement, bf16 autocast on CUDA, gradient accumulation, ``backward``, gradient clipping and the DDP
wrapping go through ``accelerate.Accelerator``; the warm-up + cosine schedule is
``transformers.get_cosine_schedule_with_warmup``. Accumulation windows are counted here (with
``Accelerator.no_sync``) rather than by ``Accelerator.accumulate``, which ends a window only at the end of a
DataLoader it prepared and keeps its step count in state shared by every ``Accelerator`` of the process: here a
window always ends with the epoch, so no gradient is lost at a checkpoint. The epoch's example order is drawn here, not by accelerate's
samplers: it is a function of ``(seed, stage, epoch)`` in every process (:func:`.state.seed_epoch`), which is
what makes a run resumed after ``kill -9`` end exactly where an uninterrupted one would (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..console import SILENT, Console
from ..strategies.base import Strategy, TransferNet
from .callbacks import Callback
from .state import Progress, seed_epoch
from .task import TrainingTask, ValScore


@dataclass
class TrainSettings:
    """How the trainer steps; what to train is the strategy's, when to stop the callbacks'."""

    stage_epochs: int
    batch_size: int
    seed: int
    grad_clip: float = 1.0
    warmup_fraction: float = 0.1
    bf16: bool = False  # bf16 autocast (on CUDA only)
    gradient_accumulation: int = 1  # batches whose gradients are summed before each optimizer step
    workers: int = 0  # data-loading processes
    cpu: bool = False  # stay on the CPU even when a GPU is there


class ShardedOrder(Sampler[int]):
    """One seeded permutation of the examples, the same in every process; process ``rank`` of ``world`` takes
    every ``world``-th of its first ``world * (n // world)`` (so all processes run the same number of steps)."""

    def __init__(self, n: int, generator: torch.Generator, rank: int = 0, world: int = 1):
        self.n, self.generator, self.rank, self.world = n, generator, rank, world

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        yield from order[self.rank: len(self) * self.world: self.world]


def make_accelerator(settings: TrainSettings) -> Any:
    from accelerate import Accelerator

    cuda = torch.cuda.is_available() and not settings.cpu
    # accumulation is counted by the trainer (see the module docstring), not by accelerate's shared state
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if settings.bf16 and cuda else "no")


class StagedTrainer:
    """Runs the stages of ``state.schedule`` on ``net`` (a :class:`~graftwork.strategies.base.TransferNet`)."""

    def __init__(self, net: TransferNet, task: TrainingTask, strategy: Strategy, settings: TrainSettings, *,
                 callbacks: list[Callback] | None = None, console: Console = SILENT, accelerator: Any = None):
        self.task, self.strategy, self.s = task, strategy, settings
        self.callbacks = list(callbacks or [])
        self.console = console
        self.accelerator = accelerator or make_accelerator(settings)
        self.device: torch.device = self.accelerator.device
        self.net: TransferNet = net.to(self.device)  # the plain network; ``self.model`` is the one being trained (maybe DDP)
        self.model: nn.Module = self.net
        self._optimizer: torch.optim.Optimizer | None = None  # the stage's (plain) optimizer and schedule
        self.scheduler: Any = None
        self.snapshots: dict[str, dict[str, torch.Tensor]] = {}
        self.last: ValScore | None = None  # the latest validation
        self.resumed_stage = False  # the current stage continues from a checkpoint taken inside it

    # -- what callbacks use ------------------------------------------------------------------------------------
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The current stage's optimizer (plain, not accelerate's wrapper)."""
        assert self._optimizer is not None, "no stage has started"
        return self._optimizer

    @property
    def score_name(self) -> str:
        return self.task.score_name

    def validate(self) -> ValScore:
        """The task's validation of the network as it is now (every process, full validation set). Several
        processes take rank 0's result: GPUs may differ in the last bit, and a near-tie decided two ways would
        send the processes into different epochs (and wait for each other for ever)."""
        self.net.eval()
        with torch.no_grad(), self.accelerator.autocast():
            self.last = self.task.validate(self.net, self.device)
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            self.last = broadcast_object_list([self.last], from_process=0)[0]
        return self.last

    def snapshot(self, copy: bool = True) -> dict[str, torch.Tensor]:
        """The weights a stage can change (the strategy says which)."""
        state = self.strategy.trained_state(self.net)
        return {k: v.detach().clone() for k, v in state.items()} if copy else state

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(state, strict=self.strategy.strict_restore)

    def unfrozen(self, state: Progress) -> int:
        """Layer groups unfrozen in the current stage."""
        return state.schedule[state.stage]

    # -- the schedule ------------------------------------------------------------------------------------------
    def fit(self, state: Progress, resume: dict[str, Any] | None = None) -> Progress:
        """Run (or continue, from checkpoint ``resume``) the schedule; the network ends with the kept weights."""
        self.snapshots["best"] = self.snapshot() if resume is None else resume["best_net"]
        for cb in self.callbacks:
            cb.on_fit_start(self, state)
        while state.stage < len(state.schedule) and not state.done:
            fresh = self._start_stage(state, resume)
            resume = None
            record = state.stages[-1]
            self.resumed_stage = not fresh
            for cb in self.callbacks:
                cb.on_stage_start(self, state)
            n_unfrozen = self.unfrozen(state)
            label = f"stage {state.stage + 1}/{len(state.schedule)}: {self.strategy.stage_label(n_unfrozen)}"
            with self.console.progress(label, self.s.stage_epochs - state.epoch) as advance:
                while state.epoch < self.s.stage_epochs and not state.stop_stage:
                    self._epoch(state, record, n_unfrozen)
                    advance(1)
            state.stage += 1
            state.epoch, state.stop_stage = 0, False
            for cb in self.callbacks:
                cb.on_stage_end(self, state, record)
        self._release()
        for cb in self.callbacks:
            cb.on_fit_end(self, state)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        return state

    def _start_stage(self, state: Progress, resume: dict[str, Any] | None) -> bool:
        """Set up the stage's trainable parameters, optimizer and schedule; True for a fresh stage (not resumed
        inside it)."""
        n_unfrozen = self.unfrozen(state)
        self._release()
        groups, rates = self.strategy.param_groups(self.net, n_unfrozen)
        optimizer = torch.optim.AdamW(groups)
        steps = self.s.stage_epochs * math.ceil(self._batches_per_epoch() / self.s.gradient_accumulation)
        from transformers import get_cosine_schedule_with_warmup

        warmup = max(1, int(round(steps * self.s.warmup_fraction)))
        self.scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, max(steps, warmup + 1))
        # re-prepared every stage: DDP syncs the parameters that were trainable when it wrapped the model
        self.model = self.accelerator.prepare(self.net)
        self._optimizer = optimizer
        fresh = True
        if resume is not None:
            self.restore(resume["net"])
            if state.epoch > 0 and resume["optimizer"] is not None:  # continue inside this stage
                self.optimizer.load_state_dict(resume["optimizer"])
                self.scheduler.load_state_dict(resume["scheduler"])
                fresh = False
                self.snapshots["stage_top"] = resume["stage_best_net"]
                self.snapshots["stage_best"] = resume.get("stage_eligible_net", resume["stage_best_net"])
        if fresh:
            trainable = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
            state.stages.append({"stage": self.strategy.stage_name(n_unfrozen), "unfrozen_groups":
                                 0 if self.strategy.name == "lora" else n_unfrozen, "rates": rates,
                                 "trainable_params": trainable, "history": []})
            state.stage_best, state.stage_top, state.bad_epochs, state.stop_stage = None, None, 0, False
        return fresh

    def _release(self) -> None:
        """Unwrap the trained model (DDP, the autocast wrapper) and drop accelerate's references to the last
        stage's objects, so they do not pile up stage after stage."""
        if self.model is not self.net or self._optimizer is not None:
            self.accelerator.unwrap_model(self.model, keep_fp32_wrapper=False)
            self.accelerator.free_memory()
            self.model = self.net

    def _batches_per_epoch(self) -> int:
        share, bs = self._train_size() // self.accelerator.num_processes, self.s.batch_size
        return share // bs if self._drop_last() else math.ceil(share / bs)

    def _train_size(self) -> int:
        return len(self.task.train_dataset())  # type: ignore[arg-type]

    def _drop_last(self) -> bool:
        """A last batch of a few examples gives noisy BatchNorm statistics and gradients: dropped when there is
        at least one full batch. A task whose network has no BatchNorm (a language model) may keep it with
        ``drop_last = False``, so that every example trains every epoch."""
        if not getattr(self.task, "drop_last", True):
            return False
        return self._train_size() // self.accelerator.num_processes > self.s.batch_size

    def _epoch(self, state: Progress, record: dict[str, Any], n_unfrozen: int) -> None:
        t0 = time.perf_counter()
        generator = seed_epoch(self.s.seed, state.stage, state.epoch)
        train_loss, train_acc = self._train_epoch(n_unfrozen, generator)
        trained = time.perf_counter() - t0
        self._sync_buffers()
        val = self.validate()
        state.epoch += 1
        row: dict[str, Any] = {"epoch": state.epoch, "train_loss": train_loss}
        train_name = getattr(self.task, "train_score_name", "train_acc")
        if train_name:
            row[train_name] = train_acc
        row |= {"val_loss": val.loss, self.score_name: val.score, "seconds": time.perf_counter() - t0,
                "train_seconds": trained}
        record["history"].append(row)
        for cb in self.callbacks:
            cb.on_epoch_end(self, state, row)

    def _sync_buffers(self) -> None:
        """Several processes: each one's last forward updated its own BatchNorm statistics, so all take rank 0's
        (as DDP does before every forward); every process then validates the same network and decides the same."""
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            broadcast(list(self.net.buffers()), from_process=0)

    def _train_epoch(self, n_unfrozen: int, generator: torch.Generator) -> tuple[float, float]:
        acc = self.accelerator
        data = self.task.train_dataset()
        order = ShardedOrder(self._train_size(), generator, acc.process_index, acc.num_processes)
        loader = DataLoader(data, batch_size=self.s.batch_size, sampler=order, generator=generator,
                            collate_fn=self.task.collate, drop_last=self._drop_last(), num_workers=self.s.workers)
        self.strategy.train_mode(self.net, n_unfrozen)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        total, correct, n = 0.0, 0, 0
        window, batches = self.s.gradient_accumulation, len(loader)
        for i, batch in enumerate(loader):
            # an accumulation window also ends with the epoch, so no gradient crosses a checkpoint
            step = (i + 1) % window == 0 or i == batches - 1
            if i % window == 0:  # zeroed at the start of a window: the last step's gradients stay readable
                self.optimizer.zero_grad(set_to_none=True)
                size = min(window, batches - i)  # the window's batches: its gradient is their mean
            with nullcontext() if step else acc.no_sync(self.model):
                with acc.autocast():
                    loss, count, right = self.task.loss(self.model, batch, self.device)
                for cb in self.callbacks:
                    extra = cb.loss_term(self)
                    if extra is not None:
                        loss = loss + extra
                acc.backward(loss / size)
            if step:
                if self.s.grad_clip > 0:
                    acc.clip_grad_norm_(params, self.s.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
            total += float(loss.detach()) * count
            correct += right
            n += count
        return total / max(n, 1), correct / max(n, 1)


