"""One writer per output folder: a lock file beside it, held for the whole command.

Two ``fit`` runs into the same ``--out`` must not both write it (the second would replace the first's run, or
delete its resumable state). The first takes ``.NAME.lock`` beside ``NAME`` with ``fcntl.flock`` and holds it
until it ends; the second is refused at once with the first one's process id. The operating system drops the
lock when its process dies, however it dies, so a crash never leaves a stale lock behind. The lock is
re-entrant within a thread, so a command that holds it may call code that takes it again (``fit`` then
``save``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RunFolderError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the folder checks still apply, one writer is not enforced
    fcntl = None  # type: ignore[assignment]

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (thread that holds it, depth)
_guard = threading.Lock()


def lock_path(out: str | Path) -> Path:
    """The lock file of the output ``out``: ``.NAME.lock`` in the same folder."""
    path = Path(out).expanduser().absolute()
    return path.parent / f".{path.name}.lock"


def _holder(file: Path) -> str:
    try:
        pid = file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "another process"
    return f"process {pid}" if pid.isdigit() else "another process"


def _acquire(file: Path, out: str | Path) -> int:
    """Open and lock ``file``; retried when the file was replaced between open and lock (a holder that was
    just releasing it unlinks it)."""
    assert fcntl is not None
    file.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderError(f"--out {out}: {_holder(file)} is writing this output right now (lock {file}); "
                                 "nothing was changed.", hint="wait for it to finish, or choose another --out."
                                 ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def remove_stale_lock(out: str | Path) -> None:
    """Delete the lock file of ``out`` if no process holds it (its holder was killed before it could)."""
    file = lock_path(out)
    if fcntl is None or file in _held:
        return
    try:
        fd = os.open(file, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(file).st_ino:
            file.unlink()
    except OSError:  # held by a live process, or already gone
        pass
    finally:
        os.close(fd)


def held_here(out: str | Path) -> bool:
    """Whether this process holds the lock of ``out``: it is writing that folder right now."""
    with _guard:
        return lock_path(out) in _held


@contextmanager
def out_lock(out: str | Path) -> Iterator[Path]:
    """Hold the lock of ``out`` for the block; raise :class:`RunFolderError` if another process holds it."""
    file = lock_path(out)
    me = threading.get_ident()
    with _guard:
        owner, depth = _held.get(file, (me, 0))
        if depth and owner == me:
            _held[file] = (me, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield file
        finally:
            with _guard:
                _held[file] = (me, _held[file][1] - 1)
        return
    if fcntl is None:
        yield file
        return
    fd = _acquire(file, out)
    with _guard:
        _held[file] = (me, 1)
    try:
        yield file
    finally:
        with _guard:
            del _held[file]
        try:
            file.unlink()  # before the unlock: a process that opened the old file sees it replaced and retries
        except OSError:
            pass
        os.close(fd)
