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
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import ConfigError

        raise ConfigError("'device': cuda was asked for but no CUDA GPU is available.",
                          hint="use --device cpu (or auto).")
    return torch.device(device)


@torch.inference_mode()
def extract_features(backbone: Backbone, modality: str, items: list[str], origins: list[str], *,
                     cache: FeatureCache | None, batch_size: int = 32, device: torch.device | None = None,
                     workers: int = 0, console: Console = SILENT, description: str = "features") -> Extracted:
    """Features for ``items`` (image or audio paths, or texts), from the cache where possible."""
    device = device or torch.device("cpu")
    n = len(items)
    problems: list[Problem] = []
    keys: list[str | None] = []
    for item, origin in zip(items, origins, strict=True):
        try:
            keys.append(content_key(modality, item))
        except OSError as e:
            keys.append(None)
            problems.append(Problem(origin, f"cannot read file ({e.strerror or e})"))
    found = cache.get_many([k for k in keys if k]) if cache is not None else {}
    todo = [i for i, k in enumerate(keys) if k is not None and k not in found]
    computed = 0
    dim = backbone.feature_dim
    out = np.zeros((n, dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    for i, k in enumerate(keys):
        if k is not None and k in found:
            out[i], ok[i] = found[k], True

    if todo:
        # parameters moved to another device inside inference mode would become inference tensors, which can
        # never be trained again (fine-tuning after extraction would fail on CUDA)
        with torch.inference_mode(False):
            backbone.eval().to(device)
        if modality == "text":  # similar lengths in a batch: little padding (rows are put back by index)
            todo.sort(key=lambda i: len(items[i]))
        dataset = _RawDataset(backbone, [items[i] for i in todo])
        loader: Any = (_threaded_batches(dataset, batch_size, _collate(backbone)) if workers == 0 and modality != "text"
                       else DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                       collate_fn=_collate(backbone)))
        with console.progress(f"{description} ({backbone.info.name})", len(todo)) as advance:
            for local_idx, batch, bad in loader:
                for j, err in bad:
                    problems.append(Problem(origins[todo[j]], err))
                if batch is not None:
                    feats = backbone(backbone.batch_to(batch, device)).float().cpu().numpy()
                    rows = [todo[j] for j in local_idx]
                    out[rows], ok[rows] = feats, True
                    computed += len(rows)
                    if cache is not None:
                        cache.put_many((keys[r], f) for r, f in zip(rows, feats, strict=True))  # type: ignore[misc]
                advance(len(local_idx) + len(bad))
    problems.sort(key=lambda p: p.where)
    return Extracted(out[ok], ok, problems, computed=computed, from_cache=int(len(found)))
