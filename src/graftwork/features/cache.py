"""On-disk cache of backbone features.

One SQLite file per backbone key (:meth:`~graftwork.backbones.base.Backbone.cache_key`: the cache schema, the
weights, the preprocessing settings and files, the preprocessing code's version), keyed by a hash of each
example's content (file bytes for images and audio, streamed 1 MiB at a time; UTF-8 bytes for text). So a second
``fit`` with other head settings, more epochs, or an ``evaluate`` on the same data costs no backbone time, and a
renamed or moved file is still a hit. SQLite gives atomic, concurrent-safe writes for free.

The cache is only ever a copy of what the backbone computes, so a damaged cache file (a crash mid-write on a
file system without proper locking, a disk error, a stray file under its name) is never fatal: it is moved aside
as ``<name>.corrupt-<time>`` (kept, not deleted, for whoever wants to look at it), a warning says so, and an empty
cache is started in its place.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..backbones.base import hash_file
from ..data.files import reads_files

SQLITE_HEADER = b"SQLite format 3\x00"


class CacheWarning(UserWarning):
    """The feature cache was damaged and has been set aside; features are recomputed."""


def default_cache_dir() -> Path:
    env = os.environ.get("GRAFTWORK_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graftwork"


def content_key(modality: str, item: str) -> str:
    """Hash of an example's content. Files (images, audio) are read here in 1 MiB chunks; a read error propagates
    to the caller."""
    if reads_files(modality):
        return hash_file(hashlib.sha256(), item).hexdigest()
    return hashlib.sha256(item.encode("utf-8")).hexdigest()


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    """A damaged database ("file is not a database", "database disk image is malformed"), as opposed to one that
    is busy or on a read-only disk (``OperationalError``), which are not the file's fault."""
    return not isinstance(error, sqlite3.OperationalError) or "malformed" in str(error)


class FeatureCache:
    """Features of one backbone+preprocessing, stored as float32 rows."""

    def __init__(self, root: str | Path, backbone_key: str):
        self.path = Path(root) / "features" / f"{backbone_key}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None  # where a damaged cache file was moved, if one was
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        if self._bad_header():
            self._set_aside("not an SQLite database")
        try:
            return self._connect()
        except sqlite3.DatabaseError as e:
            if not _is_corrupt(e):
                raise
            self._set_aside(str(e))
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS feats (k TEXT PRIMARY KEY, dim INTEGER, v BLOB)")
            db.execute("SELECT k, dim, v FROM feats LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _bad_header(self) -> bool:
        try:
            with self.path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return False
        return len(head) > 0 and head != SQLITE_HEADER  # an empty file is what SQLite itself creates first

    def _set_aside(self, why: str) -> None:
        """Move the damaged database (and its WAL and shared-memory files) aside and warn; never delete it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{target}{suffix}"))
        self.set_aside = target
        warnings.warn(f"feature cache {self.path} was damaged ({why}); moved it to {target.name} and started an "
                      "empty cache: features will be recomputed (nothing else is affected).", CacheWarning,
                      stacklevel=3)

    def _recover(self, error: sqlite3.DatabaseError) -> None:
        if not _is_corrupt(error):
            raise error
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._set_aside(str(error))
        self._db = self._connect()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Cached features of ``keys`` (those found); a damaged database is set aside and reads as empty."""
        try:
            return self._get_many(keys)
        except sqlite3.DatabaseError as e:
            self._recover(e)
            return {}

    def _get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._db.execute(
                f"SELECT k, dim, v FROM feats WHERE k IN ({','.join('?' * len(chunk))})", chunk)
            for k, dim, blob in rows:
                if isinstance(blob, bytes) and isinstance(dim, int) and dim > 0 and len(blob) == 4 * dim:
                    out[k] = np.frombuffer(blob, dtype=np.float32, count=dim)  # else a miss, rewritten later
        return out

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        try:
            self._put(rows)
        except sqlite3.DatabaseError as e:
            self._recover(e)
            self._put(rows)

    def _put(self, rows: list[tuple[str, int, bytes]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO feats (k, dim, v) VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM feats").fetchone()[0])

    def close(self) -> None:
        self._db.close()
