"""What an experiment tracker records for one fit, whatever it writes to.

A :class:`Tracker` receives four things, in this order: the settings (``log_params``), every epoch's row
(``log_epoch``, called by :class:`~graftwork.tracking.session.TrackingCallback`), the final metrics and findings
(``log_summary``) and the finished run folder (``log_artifact``); ``close`` ends the record. Implementations
write through the tracking libraries themselves (TensorBoard's event writer, MLflow's client), so the records
open in the tools people already use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError

MAX_SUMMARY_KEYS = 200  # a metrics.json with hundreds of classes would otherwise flood the tracker


class Tracker:
    """Records nothing; subclasses write to TensorBoard, MLflow, ..."""

    name = "none"

    def log_params(self, settings: dict[str, Any]) -> None:
        """The fit's settings (``FitConfig.to_dict()``, plus what was resolved: backbone, strategy)."""

    def log_epoch(self, stage: str, row: dict[str, Any], step: int) -> None:
        """One epoch's row (``train_loss``, ``val_loss``, the task's score, ...) of ``stage``; ``step`` counts
        epochs over the whole fit (from 1), so curves of successive stages follow one another."""

    def log_summary(self, metrics: dict[str, Any], findings: list[dict[str, Any]]) -> None:
        """The final metrics (metrics.json) and the findings of the fit."""

    def log_artifact(self, run_folder: str | Path) -> None:
        """The saved run folder."""

    def close(self, failed: bool = False) -> None:
        """End the record; ``failed`` when the fit raised."""


def missing_package(tracker: str, package: str, extra: str) -> ConfigError:
    """The error for ``--log-to tracker`` when its library is not installed."""
    return ConfigError(f"'log_to': {tracker} needs the {package} package, which is not installed.",
                       hint=f"pip install 'graftwork[{extra}]'  (or pip install {package})")


def numbers(data: Any, prefix: str = "", depth: int = 3) -> Iterator[tuple[str, float]]:
    """The numeric leaves of nested dicts as ("a/b/c", value) pairs, lists skipped (stages, confusion matrices)."""
    if isinstance(data, bool):
        yield prefix, float(data)
    elif isinstance(data, (int, float)):
        yield prefix, float(data)
    elif isinstance(data, dict) and depth > 0:
        for key, value in data.items():
            yield from numbers(value, f"{prefix}/{key}" if prefix else str(key), depth - 1)


def summary_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The final numbers worth a chart or a table column: validation and test scores, timing, the kept stage's
    size; at most :data:`MAX_SUMMARY_KEYS` of them."""
    out: dict[str, float] = {}
    for section in ("val", "test", "timing", "parameters", "control"):
        if isinstance(metrics.get(section), dict):
            for key, value in numbers(metrics[section], section):
                if len(out) < MAX_SUMMARY_KEYS and value == value:  # NaN is not a number a tracker can chart
                    out[key] = value
    return out


def epoch_numbers(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of an epoch row except its epoch counter; nested ones (generation's ``val`` →
    ``loss``) as ``val/loss``."""
    return {k: v for k, v in numbers({k: v for k, v in row.items() if k != "epoch"}, depth=3) if v == v}


def flat_settings(settings: dict[str, Any]) -> dict[str, str]:
    """Settings as strings (trackers store parameters as text), unset (None) ones left out."""
    return {k: str(v) for k, v in settings.items() if v is not None}
