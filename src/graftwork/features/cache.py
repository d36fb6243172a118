"""On-disk cache of backbone features.

One SQLite file per (backbone weights, preprocessing) pair, keyed by a hash of each example's content (file
bytes for images, UTF-8 bytes for text). So a second ``fit`` with other head settings, more epochs, or an
``evaluate`` on the same data costs no backbone time, and a renamed or moved file is still a hit. SQLite gives
atomic, concurrent-safe writes for free.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..data.files import reads_files


def default_cache_dir() -> Path:
    env = os.environ.get("GRAFTWORK_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graftwork"


def content_key(modality: str, item: str) -> str:
    """Hash of an example's content. Files (images, audio) are read here; a read error propagates to the caller."""
    if reads_files(modality):
        data = Path(item).read_bytes()
    else:
        data = item.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class FeatureCache:
    """Features of one backbone+preprocessing, stored as float32 rows."""

    def __init__(self, root: str | Path, backbone_key: str):
        self.path = Path(root) / "features" / f"{backbone_key}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS feats (k TEXT PRIMARY KEY, dim INTEGER, v BLOB)")

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._db.execute(
                f"SELECT k, dim, v FROM feats WHERE k IN ({','.join('?' * len(chunk))})", chunk)
            for k, dim, blob in rows:
                out[k] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return out

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO feats (k, dim, v) VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM feats").fetchone()[0])

    def close(self) -> None:
        self._db.close()
