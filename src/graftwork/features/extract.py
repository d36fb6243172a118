"""Batched feature extraction through a frozen backbone, with the on-disk cache in front of it."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..backbones.base import Backbone
from ..console import SILENT, Console
from ..data.dataset import DecodeError
from ..distributed import Processes, device_for
from ..errors import Problem
from .cache import FeatureCache, content_key


@dataclass
class Extracted:
    """Features of the examples that could be read (``ok`` marks them), and problems with the others."""

    features: np.ndarray  # [n_ok, feature_dim]
    ok: np.ndarray  # bool mask over the input items
    problems: list[Problem] = field(default_factory=list)
    computed: int = 0  # examples that went through the backbone (cache misses)
    from_cache: int = 0


class _RawDataset(Dataset):
    """Loads and prepares one example (through the backbone, which may read only part of a file); a bad file
    yields its error instead of raising, so a batch survives."""

    def __init__(self, backbone: Backbone, items: list[str]):
        self.backbone, self.items = backbone, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, Any, str | None]:
        try:
            return i, self.backbone.prepare(self.backbone.load(self.items[i])), None
        except DecodeError as e:
            return i, None, str(e)


def _collate(backbone: Backbone):
    def collate(rows: list[tuple[int, Any, str | None]]) -> tuple[list[int], Any, list[tuple[int, str]]]:
        good = [(i, x) for i, x, err in rows if err is None]
        bad = [(i, err) for i, _, err in rows if err is not None]
        batch = backbone.collate([x for _, x in good]) if good else None
        return [i for i, _ in good], batch, bad

    return collate


def _threaded_batches(dataset: _RawDataset, batch_size: int, collate: Any) -> Iterator[Any]:
    """Batches of ``dataset`` decoded by a thread pool, in order, at most two batches ahead of the model.

    Decoding images (PIL) and audio (libsndfile, resampling) releases the GIL, so threads decode the next
    batches while the network runs on this one, without the start-up cost and memory of worker processes."""
    threads = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads, thread_name_prefix="graftwork-decode") as pool:
        pending: deque[Future] = deque()
        rows: list[Any] = []
        for i in range(len(dataset)):
            pending.append(pool.submit(dataset.__getitem__, i))
            if len(pending) > 2 * batch_size:
                rows.append(pending.popleft().result())
                if len(rows) == batch_size:
                    yield collate(rows)
                    rows = []
        while pending:
            rows.append(pending.popleft().result())
            if len(rows) == batch_size:
                yield collate(rows)
                rows = []
        if rows:
            yield collate(rows)


def resolve_device(device: str) -> torch.device:
    """``--device`` as a torch device; in a run launched on several GPUs, ``auto``/``cuda`` is this process's own
    GPU (:func:`graftwork.distributed.device_for`)."""
    device = device_for(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import ConfigError

        raise ConfigError("'device': cuda was asked for but no CUDA GPU is available.",
                          hint="use --device cpu (or auto).")
    return torch.device(device)


@dataclass
class _Lookup:
    """What the cache already holds for a list of items, and what is left to compute (``todo``)."""

    keys: list[str | None]
    problems: list[Problem]
    todo: list[int]  # item indices left to compute
    found: dict[int, np.ndarray]  # item index -> cached features


def _lookup(modality: str, items: list[str], origins: list[str], cache: FeatureCache | None) -> _Lookup:
    if cache is None:  # nothing to look up: every item is computed, and no file is read twice to hash it
        return _Lookup([None] * len(items), [], list(range(len(items))), {})
    problems: list[Problem] = []
    keys: list[str | None] = []
    for item, origin in zip(items, origins, strict=True):
        try:
            keys.append(content_key(modality, item))
        except OSError as e:
            keys.append(None)
            problems.append(Problem(origin, f"cannot read file ({e.strerror or e})"))
    cached = cache.get_many([k for k in keys if k]) if cache is not None else {}
    found = {i: cached[k] for i, k in enumerate(keys) if k is not None and k in cached}
    todo = [i for i, k in enumerate(keys) if k is not None and i not in found]
    return _Lookup(keys, problems, todo, found)


def _compute(backbone: Backbone, modality: str, items: list[str], origins: list[str], todo: list[int], *,
             batch_size: int, device: torch.device, workers: int, console: Console,
             description: str) -> Iterator[tuple[list[int], np.ndarray | None, list[Problem]]]:
    """Backbone features of ``items[todo]``, batch by batch: (item indices, their features, problems)."""
    if not todo:
        return
    # parameters moved to another device inside inference mode would become inference tensors, which can
    # never be trained again (fine-tuning after extraction would fail on CUDA)
    with torch.inference_mode(False):
        backbone.eval().to(device)
    if modality == "text":  # similar lengths in a batch: little padding (rows are put back by index)
        todo = sorted(todo, key=lambda i: len(items[i]))
    dataset = _RawDataset(backbone, [items[i] for i in todo])
    loader: Any = (_threaded_batches(dataset, batch_size, _collate(backbone)) if workers == 0 and modality != "text"
                   else DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                   collate_fn=_collate(backbone)))
    with console.progress(f"{description} ({backbone.info.name})", len(todo)) as advance:
        for local_idx, batch, bad in loader:
            problems = [Problem(origins[todo[j]], err) for j, err in bad]
            feats = (backbone(backbone.batch_to(batch, device)).float().cpu().numpy() if batch is not None
                     else None)
            yield [todo[j] for j in local_idx], feats, problems
            advance(len(local_idx) + len(bad))


def _collect(procs: Processes, rows: list[int], feats: np.ndarray, problems: list[Problem],
             n: int) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """The features every process computed, in example order (``[n, dim]`` and the mask of the computed rows),
    and every process's problems; in one process, its own."""
    if procs.is_distributed:
        gathered, mask = procs.gather_rows(rows, feats, n)
        return gathered, mask, [p for found in procs.all_gather(problems) for p in found]
    gathered = np.zeros((n, feats.shape[1]), dtype=np.float32)
    mask = np.zeros(n, dtype=bool)
    gathered[rows], mask[rows] = feats, True
    return gathered, mask, problems


@torch.inference_mode()
def extract_features(backbone: Backbone, modality: str, items: list[str], origins: list[str], *,
                     cache: FeatureCache | None, batch_size: int = 32, device: torch.device | None = None,
                     workers: int = 0, console: Console = SILENT, description: str = "features",
                     processes: Processes | None = None) -> Extracted:
    """Features for ``items`` (image or audio paths, or texts), from the cache where possible.

    With ``processes`` of a launched run (every process must call this with the same items), rank 0 looks the
    items up in the cache, each process computes its share of the rest, and every process gets all of them;
    only rank 0 reads and writes the cache (pass ``cache=None`` elsewhere), so the others need not see it (on
    another node, they do not)."""
    procs = processes or Processes()
    device = device or torch.device("cpu")
    n = len(items)
    look = _lookup(modality, items, origins, cache) if procs.is_main else None
    look = procs.broadcast(look)
    out = np.zeros((n, backbone.feature_dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    for i, f in look.found.items():
        out[i], ok[i] = f, True
    problems = list(look.problems)
    rows: list[int] = []
    feats: list[np.ndarray] = []
    bad: list[Problem] = []
    for batch_rows, batch_feats, batch_bad in _compute(backbone, modality, items, origins, procs.shard(look.todo),
                                                       batch_size=batch_size, device=device, workers=workers,
                                                       console=console, description=description):
        bad += batch_bad
        if batch_feats is None:
            continue
        if cache is not None and procs.is_main:  # written as it goes: an interrupted run keeps what it computed
            cache.put_many((look.keys[r], f) for r, f in zip(batch_rows, batch_feats, strict=True))  # type: ignore[misc]
        rows += batch_rows
        feats.append(batch_feats)
    mine = np.concatenate(feats) if feats else np.zeros((0, backbone.feature_dim), dtype=np.float32)
    gathered, computed_mask, bad = _collect(procs, rows, mine, bad, n)
    if cache is not None and procs.is_main:  # rank 0 also stores what the other processes computed
        others = np.flatnonzero(computed_mask & ~np.isin(np.arange(n), rows))
        cache.put_many((look.keys[r], gathered[r]) for r in others)  # type: ignore[misc]
    out[computed_mask], ok[computed_mask] = gathered[computed_mask], True
    problems += bad
    computed = int(computed_mask.sum())
    problems.sort(key=lambda p: p.where)
    return Extracted(out[ok], ok, problems, computed=computed, from_cache=len({look.keys[i] for i in look.found}))
