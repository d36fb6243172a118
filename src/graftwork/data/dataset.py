"""The in-memory form of a labelled dataset, whatever it was read from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Modality = Literal["image", "text", "audio"]
FILE_MODALITIES = ("image", "audio")  # examples are file paths, read (and hashed for the cache) from disk


class DecodeError(Exception):
    """An example file that cannot be decoded (image or audio); the message says why, the caller says where."""


@dataclass
class Examples:
    """Labelled examples of one split.

    ``items`` are image or audio file paths, or texts; ``origins`` say where each came from (``file:line`` for text) so
    that problems can be reported precisely.
    """

    modality: Modality
    items: list[str]
    labels: list[str]
    origins: list[str]
    groups: list[str] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def subset(self, index: list[int] | np.ndarray) -> Examples:
        idx = [int(i) for i in index]
        return Examples(
            modality=self.modality,
            items=[self.items[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            origins=[self.origins[i] for i in idx],
            groups=None if self.groups is None else [self.groups[i] for i in idx],
        )


@dataclass
class Splits:
    """A dataset's train split and, where the data has them, its val and test splits."""

    source: str
    train: Examples
    val: Examples | None = None
    test: Examples | None = None
    skipped: list[str] = field(default_factory=list)  # "where: why" of inputs skipped with --skip-bad-files
    notes: list[str] = field(default_factory=list)

    @property
    def modality(self) -> Modality:
        return self.train.modality

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.train.labels))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "modality": self.modality, "classes": self.classes}
        for name in ("train", "val", "test"):
            split = getattr(self, name)
            if split is not None:
                out[name] = {"n": len(split), "per_class": split.class_counts()}
        out["skipped"] = list(self.skipped)
        return out


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices into (train, held-out) keeping each class's share.

    Each class gives ``round(fraction * n)`` examples to the held-out part, at least one when it has two or more,
    and always keeps at least one for training.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    train: list[int] = []
    held: list[int] = []
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        rng.shuffle(idx)
        n = len(idx)
        k = int(round(fraction * n)) if fraction > 0 else 0
        if fraction > 0 and n >= 2:
            k = max(k, 1)
        k = min(k, n - 1)
        held += idx[:k].tolist()
        train += idx[k:].tolist()
    return sorted(train), sorted(held)
