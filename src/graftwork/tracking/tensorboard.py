"""``--log-to tensorboard``: the fit as TensorBoard event files (PyTorch's ``SummaryWriter``).

Each epoch's numbers are scalars at a step counted over the whole fit (``train_loss``, ``val_loss``, the task's
score, plus ``stage`` as a number so stage changes show); the settings, the findings and the run folder's path
are text; the final validation and test numbers are scalars under ``final/``. View with
``tensorboard --logdir runs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import Tracker, epoch_numbers, flat_settings, missing_package, summary_numbers


def _writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package, which is an optional extra
        raise missing_package("TensorBoard", "tensorboard", "tensorboard") from None
    return SummaryWriter


class TensorBoardTracker(Tracker):
    """Writes event files into ``folder`` (created; a new run gets a folder of its own, see
    :func:`~graftwork.tracking.session.open_trackers`)."""

    name = "tensorboard"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._writer = _writer_class()(log_dir=str(self.folder))
        self._stages: list[str] = []

    def log_params(self, settings: dict[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in flat_settings(settings).items())
        self._writer.add_text("settings", "| setting | value |\n|---|---|\n" + rows, 0)

    def log_epoch(self, stage: str, row: dict[str, Any], step: int) -> None:
        if stage not in self._stages:
            self._stages.append(stage)
            self._writer.add_text("stages", f"{len(self._stages)}: {stage} (from step {step})", step)
        for key, value in epoch_numbers(row).items():
            self._writer.add_scalar(key, value, step)
        self._writer.add_scalar("stage", float(len(self._stages)), step)

    def log_summary(self, metrics: dict[str, Any], findings: list[dict[str, Any]]) -> None:
        for key, value in summary_numbers(metrics).items():
            self._writer.add_scalar(f"final/{key}", value, 0)
        if findings:
            lines = [f"- **{f.get('code')}** ({f.get('severity')}): {f.get('message')}"
                     + (f" *What to do:* {f['advice']}" if f.get("advice") else "") for f in findings]
            self._writer.add_text("findings", "\n".join(lines), 0)
            self._writer.add_text("findings.json", "```\n" + json.dumps(findings, indent=1, default=str) + "\n```", 0)
        if "kept_stage" in metrics:
            self._writer.add_text("kept_stage", str(metrics["kept_stage"]), 0)

    def log_artifact(self, run_folder: str | Path) -> None:
        self._writer.add_text("run_folder", str(Path(run_folder).expanduser().absolute()), 0)

    def close(self, failed: bool = False) -> None:
        if failed:
            self._writer.add_text("status", "failed", 0)
        self._writer.close()
