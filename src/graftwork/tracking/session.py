"""Tracking wired into a fit: which trackers ``--log-to`` opens, the trainer callback, and the session that
records the settings at the start and the metrics, findings and run folder at the end.

A task's fit uses it as::

    with fit_session(cfg, out, console=console) as tracking:
        model = fit(..., callbacks=[*callbacks, *tracking.callbacks])
        tracking.finish(model.metrics, model.config)

Every task's trainer logs its epochs live through :class:`TrackingCallback`; should none have been logged (a fit
that ended before its first epoch row), :meth:`FitSession.finish` replays the epoch rows of ``metrics["stages"]``
(or a generation run's ``metrics["history"]``). A tracker
that fails while the fit runs (a tracking server gone away) is dropped with a warning: the fit and its run folder
matter more than its record. Only the main process of a distributed fit tracks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import FitConfig
from ..console import SILENT, Console
from ..errors import ConfigError
from ..train.callbacks import Callback
from .base import Tracker


def _is_main_process() -> bool:
    """Rank 0 of a ``torchrun``/``accelerate launch`` fit, or a plain single-process one."""
    return os.environ.get("RANK", "0") == "0"


def _free_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``... when it exists: a new run never writes into an old one's."""
    candidate, n = folder, 1
    while candidate.exists():
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


def open_trackers(cfg: FitConfig, run_name: str) -> list[Tracker]:
    """The trackers ``cfg.log_to`` asks for (none when it is unset), each opened, so a missing package or an
    unusable ``--log-dir`` fails before any training.

    Where they write: TensorBoard into ``<log_dir or ./runs>/<run_name>``; MLflow into the store ``log_dir`` names
    (a folder, default ``./mlruns``, or a tracking URI). With both and a folder, TensorBoard takes its
    ``tensorboard/`` and MLflow its ``mlruns/`` sub-folder; with a tracking URI, TensorBoard writes to ``./runs``.
    """
    if not cfg.log_to:
        return []
    from .mlflow_ import is_tracking_uri

    wanted = list(dict.fromkeys(t.strip() for t in cfg.log_to.split(",")))
    uri = bool(cfg.log_dir) and is_tracking_uri(str(cfg.log_dir))
    if uri and "mlflow" not in wanted:
        raise ConfigError(f"'log_dir': {cfg.log_dir!r} is a tracking URI, which only MLflow reads, but log_to is "
                          f"{cfg.log_to!r}.", hint="give a folder for TensorBoard, or add mlflow to --log-to.")
    both = len(wanted) > 1 and cfg.log_dir and not uri
    trackers: list[Tracker] = []
    try:
        for name in wanted:
            if name == "tensorboard":
                from .tensorboard import TensorBoardTracker

                root = Path(cfg.log_dir if cfg.log_dir and not uri else "runs").expanduser()
                trackers.append(TensorBoardTracker(_free_folder((root / "tensorboard" if both else root) / run_name)))
            elif name == "mlflow":
                from .mlflow_ import MLflowTracker

                where = str(Path(str(cfg.log_dir)) / "mlruns") if both else cfg.log_dir
                trackers.append(MLflowTracker(run_name, where))
    except BaseException:
        for tracker in trackers:
            tracker.close(failed=True)
        raise
    return trackers


class TrackingCallback(Callback):
    """Sends every epoch row the trainer records to the trackers, with its stage's name and a step counted
    over the whole fit (a resumed fit's steps continue from its restored state)."""

    def __init__(self, session: FitSession):
        self.session = session

    def on_epoch_end(self, trainer: Any, state: Any, row: dict[str, Any]) -> None:
        stage, step = _position(state, row)
        if step is None:
            step = self.session.epochs + 1
        self.session.log_epoch(stage, row, step)


def _position(state: Any, row: dict[str, Any]) -> tuple[str, int | None]:
    """(the name of the stage whose history holds ``row``, its rank among all epoch rows so far)."""
    step = 0
    for record in getattr(state, "stages", None) or []:
        for r in record.get("history") or []:
            step += 1
            if r is row:
                return str(record.get("stage", "")), step
    return str(getattr(state, "stage", "")), None


class FitSession:
    """The open trackers of one fit (none: every method does nothing)."""

    def __init__(self, trackers: list[Tracker], console: Console = SILENT):
        self.trackers = trackers
        self.console = console
        self.epochs = 0  # epoch rows logged live

    @property
    def callbacks(self) -> list[Callback]:
        """The trainer callbacks to add to the fit's own (empty when nothing is tracked)."""
        return [TrackingCallback(self)] if self.trackers else []

    def _each(self, what: str, call: Any) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as e:  # noqa: BLE001 - any failure of a tracking library: keep the fit going
                self.console.warn(f"{tracker.name}: could not record {what} ({type(e).__name__}: {e}); "
                                  "tracking to it stops, the fit goes on")
                self.trackers.remove(tracker)

    def log_epoch(self, stage: str, row: dict[str, Any], step: int) -> None:
        self.epochs += 1
        self._each("an epoch", lambda t: t.log_epoch(stage, row, step))

    def finish(self, metrics: dict[str, Any], config: dict[str, Any] | None = None,
               out: str | Path | None = None) -> None:
        """Record the end of a fit: what was resolved (backbone, strategy), the epochs if the trainer did not
        report them live, the final metrics and findings, and the run folder ``out`` when one was saved."""
        config = config or {}
        resolved = {"resolved/task": config.get("task"), "resolved/backbone": (config.get("backbone") or {}).get(
            "name"), "resolved/strategy": (config.get("plan") or {}).get("strategy")}
        self._each("the settings", lambda t: t.log_params(resolved))
        if not self.epochs:
            for stage, row, step in _epoch_rows(metrics):
                self._each("an epoch", lambda t, s=stage, r=row, n=step: t.log_epoch(s, r, n))
        self._each("the metrics", lambda t: t.log_summary(metrics, list(metrics.get("findings") or [])))
        if out is not None and Path(out).expanduser().is_dir():
            self._each("the run folder", lambda t: t.log_artifact(out))

    def close(self, failed: bool = False) -> None:
        self._each("the end of the run", lambda t: t.close(failed=failed))
        self.trackers = []


def _epoch_rows(metrics: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(stage, row, step) of every epoch row a finished fit's metrics hold."""
    step = 0
    stages = metrics.get("stages") or [{"stage": "fine-tuning", "history": metrics.get("history") or []}]
    for record in stages:
        for row in record.get("history") or []:
            step += 1
            yield str(record.get("stage", "")), row, step


@contextmanager
def fit_session(cfg: FitConfig, out: str | Path | None, console: Console = SILENT) -> Iterator[FitSession]:
    """Open the trackers of ``cfg.log_to`` for a fit into ``out`` (named after it), record the settings, and
    close them when the fit ends (marked failed when it raised)."""
    trackers = open_trackers(cfg, Path(out).name if out is not None else "fit") if _is_main_process() else []
    session = FitSession(trackers, console)
    for tracker in trackers:
        console.info(f"tracking: {tracker.name} to {getattr(tracker, 'folder', None) or getattr(tracker, 'uri', '')}")
    session._each("the settings", lambda t: t.log_params(cfg.to_dict()))
    try:
        yield session
    except BaseException:
        session.close(failed=True)
        raise
    session.close()
