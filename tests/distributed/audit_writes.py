"""Installed as ``sitecustomize`` in launched test processes: records every write each process makes under
``$GRAFTWORK_TEST_WATCH`` (file opened for writing, folder made, rename, removal, SQLite database opened) into
``$GRAFTWORK_TEST_AUDIT/rank<RANK>.log``, through Python's audit hooks, so a test can check which process wrote.

Native writers (safetensors, torch.save) are seen through what surrounds them: the staging folder made, the
temporary file opened, the rename into place.
"""

from __future__ import annotations

import os
import sys

_WATCH = os.path.realpath(os.environ.get("GRAFTWORK_TEST_WATCH", "/nonexistent"))
_LOG = os.path.join(os.environ.get("GRAFTWORK_TEST_AUDIT", "/nonexistent"), f"rank{os.environ.get('RANK', 'x')}.log")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "sqlite3.connect"}


def _watched(path: object) -> str | None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        return None
    full = os.path.realpath(os.fspath(path))
    return full if full == _WATCH or full.startswith(_WATCH + os.sep) else None


def _hook(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if not writes:
            return
    elif event not in _EVENTS:
        return
    else:
        path = args[0] if args else None
    full = _watched(path)
    if full is not None:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{event} {full}\n")


if os.environ.get("RANK") is not None:
    sys.addaudithook(_hook)
