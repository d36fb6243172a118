"""What graftwork may write over: the one set of rules every command that writes a folder or a file follows.

graftwork never deletes or replaces anything but a folder it wrote itself, whatever the flags. Concretely,
:func:`check_out_dir` (``fit`` for every task, ``export``, ``demo``) and :func:`check_out_file` (``report
--out``) refuse, with or without ``--force``:

- the filesystem root, the home folder, the current working folder, and any folder that contains one of them;
- the data (or, for ``export``, the source run): the same path, a folder inside it, or a folder that contains it;
- a symbolic link as the output (graftwork would replace the link, not what it points to);
- an existing file, and any non-empty folder graftwork did not write.

``--force`` only lets graftwork replace a folder it recognises as its own: a run folder (``config.json`` with
``"format": "graftwork-run/1"``), a demo folder (``graftwork-demo.json`` with ``"format":
"graftwork-demo/1"``) or an ONNX export (``graftwork-onnx.json``), each command naming the kinds it may replace;
for ``report --out``, a report graftwork wrote. Every run folder has carried the format
marker since the first release; a folder without it is still recognised as a run when it holds only run-folder
files, a ``config.json`` that names a backbone and classes (or tags), and a readable ``head.safetensors``.

Every path is resolved (symbolic links followed) before it is compared, so a link cannot smuggle the data in.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from ..errors import RunFolderError

RUN_FORMAT = "graftwork-run/1"
DEMO_FORMAT = "graftwork-demo/1"
DEMO_MARKER = "graftwork-demo.json"
RUN = "graftwork-run"
DEMO = "graftwork-demo"
ONNX = "graftwork-onnx"  # an ONNX export folder (graftwork.export.onnx), marked by its manifest
ONNX_MARKER = "graftwork-onnx.json"
HF = "graftwork-hf"  # a Hugging Face folder written by `export --format hf` (graftwork.export.hf)
HF_MARKER = "graftwork-hf.json"
# the files a run folder may hold (a folder without the format marker is only taken for a run if it holds
# nothing else)
RUN_FILES = frozenset({"config.json", "head.safetensors", "backbone.safetensors", "adapter.safetensors",
                       "metrics.json", "report.html"})
REPORT_MARK = "<title>graftwork report"  # in the <head> of every report.html graftwork has written
_WHAT = {RUN: "run folder", DEMO: "demo folder", ONNX: "ONNX export folder", HF: "Hugging Face export folder"}
_MARKER_MAX_BYTES = 16 << 20
_DATA_LINK_DEPTH = 3  # how deep to look for linked folders inside the data (class folders, split folders)


def _read_json(path: Path) -> Any:
    """A small JSON file's content, or None when it is missing, too large or not JSON."""
    try:
        if not path.is_file() or path.stat().st_size > _MARKER_MAX_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _safetensors_header_ok(path: Path) -> bool:
    """The file starts like a safetensors file: an 8-byte length, then a JSON object of that length."""
    try:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > _MARKER_MAX_BYTES:
                return False
            return isinstance(json.loads(f.read(size)), dict)
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        return False


def _is_unmarked_run(path: Path) -> bool:
    """A run folder written without the format marker: only run files, a run config and a readable head."""
    try:
        entries = list(path.iterdir())
    except OSError:
        return False
    if any(e.name not in RUN_FILES or e.is_symlink() or not e.is_file() for e in entries):
        return False
    config = _read_json(path / "config.json")
    return (isinstance(config, dict) and "backbone" in config and ("classes" in config or "tags" in config)
            and _safetensors_header_ok(path / "head.safetensors"))


def folder_format(path: str | Path) -> str | None:
    """Which kind of graftwork folder ``path`` is (``"graftwork-run"``, ``"graftwork-demo"``), or None."""
    root = Path(path)
    if not root.is_dir() or root.is_symlink():
        return None
    for marker in ("config.json", DEMO_MARKER, ONNX_MARKER, HF_MARKER):
        data = _read_json(root / marker)
        fmt = data.get("format") if isinstance(data, dict) else None
        if isinstance(fmt, str) and fmt.split("/")[0] in _WHAT:
            return fmt.split("/")[0]
    return RUN if _is_unmarked_run(root) else None


def is_run_folder(path: str | Path) -> bool:
    """True when ``path`` is a run folder graftwork wrote (so ``--force`` may replace it)."""
    return folder_format(path) == RUN


def is_report_file(path: str | Path) -> bool:
    """True when ``path`` is an HTML report graftwork wrote (so ``report --out FILE --force`` may replace it)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return False
    return head.lstrip().lower().startswith("<!doctype html") and REPORT_MARK in head


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _protected_places() -> list[tuple[str, Path]]:
    places = []
    try:
        places.append(("your home folder", Path.home().resolve()))
    except (RuntimeError, KeyError):  # no HOME and no password entry: nothing to compare with
        pass
    try:
        places.append(("the current working folder", Path.cwd().resolve()))
    except OSError:  # the working folder was deleted
        pass
    return places


def _refuse_protected(target: Path, option: str, out: str | Path) -> None:
    if target == Path(target.anchor):
        raise RunFolderError(f"{option} {out}: is the root of the filesystem; graftwork never writes its output "
                             "there.", hint=f"choose a new {option} folder, e.g. ./runs/run1.")
    for name, place in _protected_places():
        if target == place or target in place.parents:
            what = name if target == place else f"a folder that contains {name} ({place})"
            raise RunFolderError(f"{option} {out}: is {what}; graftwork never writes its output there, with or "
                                 "without --force.", hint=f"choose a new {option} folder inside it, e.g. "
                                 f"{option} {Path(out) / 'run1'}.")


def _linked_folders(root: Path) -> list[Path]:
    """Where the symbolic links to folders inside ``root`` lead (a few levels down: class and split folders)."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    level = [root]
    for _ in range(_DATA_LINK_DEPTH):
        below = []
        for folder in level:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                if e.is_symlink() and e.is_dir():
                    found.append(Path(e.path).resolve())
                elif e.is_dir(follow_symlinks=False):
                    below.append(Path(e.path))
        level = below
    return found


def _refuse_data_overlap(target: Path, data: str | Path, option: str, out: str | Path) -> None:
    source = _resolved(data)
    for place in [source, *_linked_folders(source)]:
        if target == place:
            how = "is the data"
        elif place in target.parents:
            how = "is inside the data"
        elif target in place.parents:
            how = "would contain the data"
        else:
            continue
        raise RunFolderError(f"{option} {out}: the output folder {how} ({data}); nothing was written or deleted.",
                             hint=f"choose an {option} folder outside the data, e.g. next to it.")


def check_out_dir(out: str | Path, force: bool, data: str | Path | None = None, *,
                  replaces: tuple[str, ...] = (RUN,), option: str = "--out") -> Path:
    """Check that a command may write the folder ``out``; call it before any work starts. Returns ``out``.

    ``data`` is what the command reads (the training data; for ``export``, the source run): the output may not
    be it, be inside it or contain it. ``replaces`` names the kinds of graftwork folder that ``force`` may
    replace (``"graftwork-run"``, ``"graftwork-demo"``); anything else that is not empty is refused, with or
    without ``force``. Raises :class:`RunFolderError` (CLI exit status 2) naming ``option`` and the path.
    """
    path = Path(out).expanduser()
    target = path.resolve()
    _refuse_protected(target, option, out)
    if data is not None:
        _refuse_data_overlap(target, data, option, out)
    if path.is_symlink():
        raise RunFolderError(f"{option} {out}: is a symbolic link (to {target}); graftwork does not replace "
                             "links.", hint=f"pass the folder itself, or choose another {option}.")
    if not path.exists():
        return path
    if not path.is_dir():
        raise RunFolderError(f"{option} {out}: exists and is a file; nothing was overwritten.",
                             hint=f"choose another {option} folder.")
    if not any(path.iterdir()):
        return path
    kind = folder_format(path)
    wanted = " or ".join(f"graftwork {_WHAT[k]}" for k in replaces)
    if kind not in replaces:
        raise RunFolderError(f"{option} {out}: the folder is not empty and is not a {wanted}; nothing was "
                             "written or deleted.", hint=f"graftwork only ever replaces folders it wrote, so "
                             f"--force does not apply here: choose a new {option} folder.")
    if not force:
        raise RunFolderError(f"{option} {out}: the folder exists and holds a {wanted}; nothing was overwritten.",
                             hint=f"choose another {option}, or pass --force to replace it.")
    return path


def check_out_file(out: str | Path, force: bool, *, option: str = "--out") -> Path:
    """Check that a command may write the file ``out`` (a report): a new file, or with ``force`` a report
    graftwork wrote. Anything else that exists (another file, a folder, a link) is refused."""
    path = Path(out).expanduser()
    _refuse_protected(path.resolve(), option, out)
    if path.is_symlink():
        raise RunFolderError(f"{option} {out}: is a symbolic link; graftwork does not replace links.",
                             hint=f"choose another {option} file.")
    if not path.exists():
        return path
    if not path.is_file():
        raise RunFolderError(f"{option} {out}: exists and is not a file; nothing was written.",
                             hint=f"choose a new {option} file name, e.g. {Path(out) / 'report.html'}.")
    if not is_report_file(path):
        raise RunFolderError(f"{option} {out}: the file exists and is not a report graftwork wrote; nothing was "
                             "overwritten.", hint=f"graftwork only replaces its own reports, so --force does not "
                             f"apply here: choose a new {option} file.")
    if not force:
        raise RunFolderError(f"{option} {out}: a report already exists there; nothing was overwritten.",
                             hint=f"choose another {option}, or pass --force to replace it.")
    return path
