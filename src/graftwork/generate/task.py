"""The generation task's contract: everything a task supplies, in one place.

This is the shape the "one task contract" refactor can adopt: what differs per task (reading and checking its
data, building its model, its loss, its selection score, evaluation, the control, its report, loading a run)
is named here once, and the shared machinery (run folder guard, CLI dispatch on ``config.json``'s ``task``,
``fit --resume``) calls these and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .collate import token_loss
from .control import run_control
from .data import load_examples, load_generation_data
from .export import export_run
from .fit import run_fit_generate
from .model import GenerationModel
from .report import render_report
from .settings import unsupported_settings
from .train import GenTrainer


@dataclass(frozen=True)
class TaskContract:
    """The functions one task plugs into the shared pipeline."""

    name: str
    read_data: Callable[..., Any]  # training data (splits + every problem, with file:line)
    read_eval_data: Callable[..., Any]  # evaluation data (problems raised)
    check_settings: Callable[[Any], list[tuple[str, str]]]  # settings the task does not use
    fit: Callable[..., Any]  # data + settings -> trained model (+ run folder)
    loss: Callable[..., Any]  # model, batch -> (summed loss, target count)
    selection_score: Callable[[dict[str, Any]], tuple[float, float]]  # an epoch's row -> higher is better
    control: Callable[..., dict[str, Any]]  # the untrained base model on the same test set
    report: Callable[[dict[str, Any], dict[str, Any]], str]  # config, metrics -> report.html
    load: Callable[..., Any]  # run folder -> model with predict/evaluate
    export: Callable[..., Any]  # run folder -> another standard format


GENERATE = TaskContract(
    name="generate", read_data=load_generation_data, read_eval_data=load_examples,
    check_settings=unsupported_settings, fit=run_fit_generate, loss=token_loss, selection_score=GenTrainer.score,
    control=run_control, report=render_report, load=GenerationModel.load, export=export_run)
