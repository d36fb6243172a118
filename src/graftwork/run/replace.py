"""Writing a folder so that a crash at any moment leaves the old one or the new one, never neither.

A folder ``NAME`` is written in a staging folder beside it, ``.NAME.writing-PID-XXXX`` (marked as graftwork's
with a ``.graftwork-staging`` file until it is complete). Then, if ``NAME`` exists, two renames::

    NAME -> .NAME.old-PID        (1)
    .NAME.writing-PID-XXXX -> NAME   (2)

and ``.NAME.old-PID`` is deleted. A crash before (1) leaves the old folder in place; after (2), the new one.
Between the two, ``NAME`` is missing, and the recovery rule (:func:`recover_folder`) puts the old one back:

- run on the next write of ``NAME`` (holding its lock) and on the next load of ``NAME``;
- if ``NAME`` is missing and a ``.NAME.old-*`` graftwork folder whose writer is gone exists, it is renamed back
  to ``NAME`` (the newest, if there are several): the interrupted replacement did not happen;
- once ``NAME`` exists, leftovers whose writer is gone are deleted: ``.NAME.old-*`` folders that are graftwork
  folders and ``.NAME.writing-*`` folders that carry the staging mark or are graftwork folders. Nothing else
  is ever deleted.

A writer is gone when its process id (in the leftover's name) is not running, or when the caller holds the
lock of ``NAME`` (then no other graftwork process can be writing it). A lock file no process holds is deleted
too.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .guard import folder_format
from .lock import remove_stale_lock

STAGING_MARK = ".graftwork-staging"
T = TypeVar("T")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process, or a platform that cannot tell: assume alive
        return True
    return True


def _leftovers(path: Path, kind: str) -> list[tuple[Path, int]]:
    """``.NAME.<kind>-PID...`` folders beside ``path`` with their writer's pid, newest first."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{kind}-(\d+)(-.*)?")
    found = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
        m = pattern.fullmatch(p.name)
        if m and p.is_dir() and not p.is_symlink():
            found.append((p, int(m.group(1))))
    return sorted(found, key=lambda item: item[0].stat().st_mtime, reverse=True)


def _ours(folder: Path) -> bool:
    return (folder / STAGING_MARK).is_file() or folder_format(folder) is not None


def recover_folder(path: str | Path, *, locked: bool = False) -> None:
    """Apply the recovery rule (module docstring) to ``path``; ``locked``: the caller holds ``path``'s lock.

    Never raises for a folder it cannot change (a read-only copy, say): it leaves it as it is."""
    path = Path(path).expanduser().absolute()
    try:
        if not path.parent.is_dir():
            return
        olds = [(p, pid) for p, pid in _leftovers(path, "old") if locked or not _pid_running(pid)]
        if not path.exists() and not path.is_symlink():
            for old, _ in olds:
                if folder_format(old) is not None:
                    os.replace(old, path)
                    break
        if not path.exists():
            return
        for old, _ in olds:
            if old.exists() and folder_format(old) is not None:
                shutil.rmtree(old, ignore_errors=True)
        for staging, pid in _leftovers(path, "writing"):
            if (locked or not _pid_running(pid)) and _ours(staging):
                shutil.rmtree(staging, ignore_errors=True)
        if not locked:
            remove_stale_lock(path)
    except OSError:
        return


def _swap(staging: Path, path: Path) -> None:
    """Put the complete ``staging`` folder in place of ``path`` (see the module docstring)."""
    if not path.exists():
        os.replace(staging, path)
        return
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    os.replace(path, old)  # (1)
    try:
        os.replace(staging, path)  # (2): a crash just before this line is what recover_folder repairs
    except BaseException:
        os.replace(old, path)  # an error (not a crash) between the renames: the old folder goes back at once
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_folder(path: str | Path, fill: Callable[[Path], T]) -> T:
    """Call ``fill(staging)`` to write the folder's content in a staging folder beside ``path``; when it returns,
    put that folder in place of ``path`` (replacing an old one only now). If ``fill`` fails, the staging folder
    is removed and ``path`` is untouched. The caller has checked that ``path`` may be replaced."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent.absolute(), prefix=f".{path.name}.writing-{os.getpid()}-"))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes an owner-only folder
    try:
        (staging / STAGING_MARK).write_text(json.dumps({"for": path.name, "pid": os.getpid()}), encoding="utf-8")
        result = fill(staging)
        (staging / STAGING_MARK).unlink()
        _swap(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result
