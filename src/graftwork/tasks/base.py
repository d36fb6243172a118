"""The task contract: what one task (classification, NER, generation) supplies to the shared commands.

Every command finds its task in one place (:func:`graftwork.tasks.get_task` from ``--task``,
:func:`graftwork.tasks.task_of_run` from a run folder's ``config.json``) and then calls only the methods below,
so no command branches on a task's name. A task module is thin: it points at the fit, load, evaluate, export
and report functions of its package. A new task is one subclass and one line in the registry.

Why an abstract base class and not a Protocol: the few behaviours every task shares (which settings count as
given, refusing an export form a task has no writer for) live here once.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..console import SILENT, Console
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import FitConfig


@dataclass
class Advice:
    """What ``advise`` found: ``data`` is printed by ``--json``, ``lines`` for people."""

    data: dict[str, Any]
    lines: list[str]


@dataclass
class Exported:
    """What ``export`` wrote: the folder, one line saying what it is, and the manifest ``--json`` prints."""

    path: Path
    message: str
    manifest: dict[str, Any] | None = None


@dataclass
class ExportRequest:
    """The export options of the command line and the API, whatever the task."""

    format: str | None = None  # onnx, hf, run; None: the task's default form
    merge: bool = False
    adapter: bool = False
    data: str | None = None  # examples for the parity check
    verify: bool = True
    force: bool = False
    console: Console = field(default=SILENT)


def given_settings(cfg: FitConfig) -> set[str]:
    """Names of the settings of ``cfg`` that differ from their defaults: the ones a user gave."""
    return {f.name for f in fields(cfg) if getattr(cfg, f.name) != f.default}


class Task(ABC):
    """One task: ``name`` is what a run's ``config.json`` says, ``option`` what ``--task`` takes."""

    name: ClassVar[str]
    option: ClassVar[str]
    export_forms: ClassVar[tuple[str, ...]] = ()  # the export forms this task can write, for messages
    # the options of `evaluate` and `predict` that only some tasks read (graftwork.cli.commands.runs): these read
    command_options: ClassVar[dict[str, frozenset[str]]] = {}
    servable: ClassVar[bool] = False  # whether `graftwork serve` answers for this task's runs

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- fit ------------------------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False, callbacks: list[Any] | None = None) -> Any:
        """Train on ``data`` with ``cfg``; save the run folder to ``out`` when given; return the model."""

    @abstractmethod
    def unsupported_settings(self, cfg: FitConfig) -> list[tuple[str, str]]:
        """(setting, why) for each setting given to ``cfg`` that this task does not read: each is an error
        (:func:`graftwork.config.validate`), never silently ignored."""

    @abstractmethod
    def advise(self, data: str | Path, cfg: FitConfig, *, curve: bool = True, console: Console = SILENT) -> Advice:
        """The plan ``fit`` would follow on ``data`` with ``cfg``, and why, without training."""

    # -- use a run folder -----------------------------------------------------------------------------------
    @abstractmethod
    def load(self, run_dir: str | Path, *, device: str = "auto", weights: str | None = None,
             cache_dir: str | Path | None = None, console: Console = SILENT) -> Any:
        """The model of the run folder ``run_dir`` (everything it says checked before use)."""

    @abstractmethod
    def evaluate_command(self, args: argparse.Namespace) -> int:
        """``graftwork evaluate RUN DATA``: the metrics, as tables or ``--json``."""

    @abstractmethod
    def predict_command(self, args: argparse.Namespace) -> int:
        """``graftwork predict RUN INPUT...``: the predictions, as a table or ``--json``."""

    def check_servable(self) -> None:
        """Refuse, before any model is loaded, to serve a run of a task the server has no answer form for."""
        if not self.servable:
            raise ConfigError(f"graftwork serve does not serve {self.name} runs yet.",
                              hint="use `graftwork predict RUN ...` or the Python API (graftwork.load(RUN)).")

    def serving(self, model: Any) -> tuple[str, list[str]]:
        """(modality, labels) of a loaded model, for ``graftwork serve`` (tasks with ``servable``)."""
        raise NotImplementedError

    def export(self, run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
        """Write the run in another form (``request.format``); refused for a form the task has no writer for."""
        raise self.no_export(request.format)

    def no_export(self, form: str | None) -> ConfigError:
        """The error for an export form this task has no writer for, listing the forms it has."""
        forms = ", ".join(self.export_forms) or "none yet"
        what = f"export --format {form}" if form else "export"
        return ConfigError(f"{what}: not available for {self.name} runs.", hint=f"{self.name} runs export as: {forms}.")

    @abstractmethod
    def report_sections(self, config: dict[str, Any], metrics: dict[str, Any]) -> list[Any]:
        """The sections of this task's ``report.html``, in page order (:mod:`graftwork.report` lays them out)."""

    def write_report(self, run_dir: str | Path, *, out: str | Path | None = None, force: bool = False) -> Path:
        """(Re)write the run's self-contained ``report.html`` (or ``out``); return where it was written."""
        from ..report import write_report

        return write_report(run_dir, out=out, force=force)
