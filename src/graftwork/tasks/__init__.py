"""The task registry: one lookup for every command.

* :func:`get_task` maps a task name (``--task classify``, a run's ``"classification"``, ``ner``, ``generate``) to
  its :class:`~.base.Task`;
* :func:`task_of_run` reads a run folder's ``config.json`` to find the task that wrote it;
* :func:`detect_task` tells NER data (CoNLL files, JSONL ``tokens``/``tags``) from classification data;
* :func:`fit` and :func:`resume` run any task's fit.

``fit``, ``load``, ``evaluate``, ``predict``, ``export``, ``report``, ``advise`` and ``serve`` go through these;
no command tests a task's name. Importing this package loads no torch: the task modules import their packages
only when a method runs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import SILENT, Console
from ..errors import ConfigError, RunFolderError
from .base import Advice, Exported, ExportRequest, Task
from .classify import ClassifyTask
from .generate import GenerateTask
from .ner import NerTask

if TYPE_CHECKING:
    from ..config import FitConfig

__all__ = ["Advice", "ExportRequest", "Exported", "Task", "detect_task", "fit", "get_task", "resume",
           "task_names", "task_of_run"]

_TASKS: dict[str, Task] = {t.name: t for t in (ClassifyTask(), NerTask(), GenerateTask())}
_ALIASES = {t.option: t.name for t in _TASKS.values()}  # --task classify -> "classification"


def task_names() -> list[str]:
    """The ``--task`` values, in the order ``fit --help`` lists them."""
    return [t.option for t in _TASKS.values()]


def get_task(name: str) -> Task:
    """The task called ``name`` (``--task`` value or a run's ``config.json`` name); an unknown name is a
    :class:`ConfigError` naming the choices."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    if key in _TASKS:
        return _TASKS[key]
    close = difflib.get_close_matches(str(name), [*_ALIASES, *_TASKS], n=1)
    raise ConfigError(f"'task' must be one of {', '.join(task_names())}. Got {name!r} instead.",
                      hint=f"did you mean {close[0]!r}?" if close else "e.g. --task ner for named entities.")


def task_of_run(run_dir: str | Path) -> Task:
    """The task of the run folder ``run_dir``, from its ``config.json`` (a folder that is not a run is a
    :class:`RunFolderError` saying so)."""
    from ..run.schema import run_task

    return get_task(run_task(run_dir))


_CONLL = {".conll", ".bio", ".iob", ".iob2"}  # suffixes only NER data has (.txt/.tsv are ambiguous)


def detect_task(data: str | Path) -> str:
    """``"ner"`` when ``data`` looks like tagged tokens (a CoNLL file, JSONL of ``tokens``/``tags``, or a folder
    of them), else ``"classify"``; generation data is never guessed (``--task generate`` says so)."""
    root = Path(data).expanduser()
    files = sorted(f for f in root.iterdir() if f.is_file()) if root.is_dir() else [root] if root.is_file() else []
    return "ner" if any(_is_tagged(f) for f in files[:20]) else "classify"


def _is_tagged(file: Path) -> bool:
    suffix = file.suffix.lower()
    if suffix in _CONLL:
        return True
    if suffix != ".jsonl":
        return False
    try:
        with file.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
        row = json.loads(first) if first else None
    except (OSError, ValueError):
        return False  # the reader of the task chosen reports what is wrong with the file
    return isinstance(row, dict) and "tokens" in row and "tags" in row


def fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
        console: Console = SILENT, resume: bool = False, callbacks: list[Any] | None = None) -> Any:
    """Train ``cfg.task``'s model on ``data`` (see :meth:`Task.fit`)."""
    task = get_task(cfg.task)
    if task.name != "classification":  # only its fit shares the work of launched processes (graftwork.distributed)
        from ..distributed import require_one_process

        require_one_process(f"--task {cfg.task}")
    return task.fit(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)


def resume(out: str | Path, *, console: Console = SILENT, callbacks: list[Any] | None = None) -> Any:
    """Continue the interrupted ``fit --out OUT`` of any task from its last checkpoint, with its original settings
    (``.OUT.partial/fit.json``, which every task's fit writes)."""
    from ..config import FitConfig
    from ..run import check_out_dir
    from ..run.provenance import partial_dir

    partial = partial_dir(out)
    saved_file = partial / "fit.json"
    if not saved_file.is_file():
        raise RunFolderError(f"--resume {out}: no interrupted run to resume (looked for {partial}).",
                             hint="start it again with `graftwork fit DATA --out DIR`.")
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
        cfg = FitConfig.from_dict(saved["fit"])
        data = saved["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFolderError(f"{saved_file}: damaged ({e}); the run cannot be resumed.",
                             hint="start it again with `graftwork fit DATA --out DIR`.") from None
    if not saved.get("force"):
        check_out_dir(out, force=False)  # the folder may have been filled since: never overwrite without --force
    console.info(f"resuming the fit of {data} into {out}")
    return fit(data, cfg, out=out, force=bool(saved.get("force")), console=console, resume=True,
               callbacks=callbacks)
