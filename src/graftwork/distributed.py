"""Which process this is when ``fit`` runs on several: ``accelerate launch`` and ``torchrun``.

Both launchers start N copies of ``python -m graftwork fit ...`` and tell each one its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`processes`
reads it through accelerate's ``PartialState``, which joins the process group (gloo on CPU, NCCL on GPUs) and is
the same state the trainer's ``Accelerator`` later uses, so there is one process group per run.

Every process runs the whole fit and takes the same decisions on the same numbers; the work that is worth
splitting is split (frozen feature extraction: :meth:`Processes.shard`, then :meth:`Processes.gather_rows`;
training batches: the trainer's accelerator), and the side effects happen once: rank 0 alone takes the output's
lock, writes the feature cache, the checkpoints and the run folder, and talks to the user.

Hand-written only where accelerate has no helper: putting gathered rows back in the original order (accelerate
gathers in rank order) and a single process that needs no process group at all.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .errors import GraftworkError

T = TypeVar("T")


class PeerStopped(GraftworkError):
    """Another process of a launched run stopped (its own error says why), so this one cannot go on."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def is_main_process() -> bool:
    """True in a single process and in rank 0 of a launched run; read from the environment, so it is cheap and
    needs no process group (for deciding who talks to the user)."""
    return _env_int("RANK", 0) == 0


@dataclass(frozen=True)
class Processes:
    """This process's place among the ``world`` processes of a run; one process (``world == 1``) needs no
    process group, and every collective below is then a no-op."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and talks to the user."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world > 1

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """A collective that fails because a peer is gone (its error, a refused ``--out`` say, is already on
        the screen) is that, not a bug of this process: said so, with the exit status of a user error."""
        try:
            yield
        except RuntimeError as e:
            raise PeerStopped(f"process {self.rank} of {self.world} stopped: another process of this run did not "
                              f"reach the same point ({what}: {str(e).splitlines()[0][:200]}).",
                              hint="the first error printed (usually rank 0's) says why; the launcher's report "
                                   "names the process that failed.") from e

    def barrier(self) -> None:
        """Wait until every process has reached this point."""
        if self.is_distributed:
            with self._collective("barrier"):
                _state().wait_for_everyone()

    def shard(self, indices: Sequence[int]) -> list[int]:
        """This process's share of ``indices``: every ``world``-th one from position ``rank``.

        Strided rather than in blocks, so that a list sorted by cost (texts by length) gives every process the
        same mix of short and long examples, and the shares differ in size by at most one."""
        return list(indices[self.rank::self.world])

    def all_gather(self, value: T) -> list[T]:
        """``value`` of every process, in rank order (any picklable object)."""
        if not self.is_distributed:
            return [value]
        from accelerate.utils import gather_object

        with self._collective("gather"):
            return list(gather_object([value]))

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` in every process (what the others pass is ignored)."""
        if not self.is_distributed:
            return value
        from accelerate.utils import broadcast_object_list

        box: list[Any] = [value if self.is_main else None]
        with self._collective("broadcast"):
            broadcast_object_list(box, from_process=0)
        return box[0]

    def gather_rows(self, indices: Sequence[int], rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Every process's ``rows`` (row ``j`` belongs to example ``indices[j]`` of ``n``) put back in example
        order: an ``[n, ...]`` array, and the mask of the examples some process sent a row for."""
        parts = self.all_gather((list(indices), rows))
        width = next((r.shape[1:] for _, r in parts if r.ndim > 1), rows.shape[1:])
        out = np.zeros((n, *width), dtype=rows.dtype)
        seen = np.zeros(n, dtype=bool)
        for idx, part in parts:
            if len(idx):
                out[idx] = part
                seen[idx] = True
        return out, seen


def _state() -> Any:
    """accelerate's process state, joining the process group on first use (gloo on CPU: ``--cpu`` to
    ``accelerate launch``, or no GPU on the machine)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    fresh = not PartialState._shared_state
    state = PartialState(cpu=cpu)
    if fresh:
        atexit.register(state.destroy_process_group)  # a clean exit, without torch's warning about a live group
    return state


def processes() -> Processes:
    """This process's place, from the launcher's environment; a plain ``graftwork fit`` is rank 0 of 1."""
    if _env_int("WORLD_SIZE", 1) <= 1:
        return Processes()
    state = _state()
    return Processes(rank=int(state.process_index), world=int(state.num_processes),
                     local_rank=int(state.local_process_index))


def require_one_process(what: str) -> None:
    """Refuse ``what`` (a fit that does not share its work yet) in a launched run: its N processes would each
    lock and write the same ``--out``."""
    world = _env_int("WORLD_SIZE", 1)
    if world > 1:
        from .errors import ConfigError

        raise ConfigError(f"{what} does not run on several processes yet (WORLD_SIZE={world}): only the fit of "
                          "a classifier shares its work across them.",
                          hint="run it as a single process: python -m graftwork fit ...")


def device_for(device: str) -> str:
    """``--device`` in a launched run on GPUs: ``auto`` and ``cuda`` mean this process's own GPU (its local
    rank), as accelerate assigns it; anything else, and a single process, as given."""
    if device not in ("auto", "cuda") or _env_int("WORLD_SIZE", 1) <= 1:
        return device
    state = _state()
    return str(state.device) if state.device.type == "cuda" else device
