"""``--log-to mlflow``: the fit as an MLflow run, through MLflow's own client.

By default the run goes to a local file store (``./mlruns``, or the folder ``--log-dir`` names): plain files,
no server, nothing sent anywhere. Only a tracking URI the user gives in ``--log-dir`` (``http(s)://...``,
``sqlite:///...``, ``databricks``, ...) sends the run elsewhere. MLflow's usage telemetry is switched off before
MLflow is imported (``MLFLOW_DISABLE_TELEMETRY``), and MLflow 3's refusal of file stores, which it keeps in
maintenance mode but still reads and writes, is lifted for the local store graftwork chose
(``MLFLOW_ALLOW_FILE_STORE``, set only around graftwork's own calls). View with
``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ./mlruns``.

Recorded: the settings as parameters, every epoch's numbers as metrics at a step counted over the whole fit, the
final validation/test numbers under ``final/``, the findings as ``findings.json`` (and a ``finding.CODE`` tag
with each severity), and the run folder as the artifact ``run/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import Tracker, epoch_numbers, flat_settings, missing_package, summary_numbers

EXPERIMENT = "graftwork"
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # a scheme of 2+ letters: "C:" is a Windows drive, not a URI


def is_tracking_uri(location: str) -> bool:
    """Whether ``--log-dir`` names an MLflow tracking URI (``http://``, ``file:``, ``sqlite:``...) not a folder."""
    return bool(_URI.match(location)) or location in ("databricks", "databricks-uc")


def tracking_uri(log_dir: str | None) -> tuple[str, bool]:
    """(the tracking URI, whether it is a local file store) for ``--log-dir`` (default ``./mlruns``)."""
    if log_dir and is_tracking_uri(log_dir):
        return log_dir, log_dir.startswith("file:")
    return Path(log_dir or "mlruns").expanduser().absolute().as_uri(), True


@contextmanager
def _environment(file_store: bool) -> Iterator[None]:
    """MLflow's switches for a call: no telemetry, and a local file store allowed when graftwork chose one."""
    wanted = {"MLFLOW_DISABLE_TELEMETRY": "true"} | ({"MLFLOW_ALLOW_FILE_STORE": "true"} if file_store else {})
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class MLflowTracker(Tracker):
    """One MLflow run in experiment ``graftwork`` named ``run_name``, at ``log_dir`` (see :func:`tracking_uri`)."""

    name = "mlflow"

    def __init__(self, run_name: str, log_dir: str | None = None):
        self.uri, self._file_store = tracking_uri(log_dir)
        with _environment(self._file_store):
            try:
                from mlflow.entities import Metric, Param
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise missing_package("MLflow", "mlflow-skinny", "mlflow") from None
            self._metric, self._param = Metric, Param
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(EXPERIMENT))
            self.run_id: str = self.client.create_run(experiment_id, run_name=run_name).info.run_id

    def _metrics(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        with _environment(self._file_store):
            self.client.log_batch(self.run_id, metrics=[self._metric(k, v, now, step) for k, v in values.items()])

    def log_params(self, settings: dict[str, Any]) -> None:
        params = [self._param(k, v[:MAX_PARAM]) for k, v in flat_settings(settings).items()]
        with _environment(self._file_store):
            self.client.log_batch(self.run_id, params=params)

    def log_epoch(self, stage: str, row: dict[str, Any], step: int) -> None:
        self._metrics(epoch_numbers(row), step)
        with _environment(self._file_store):
            self.client.set_tag(self.run_id, "last_stage", stage)

    def log_summary(self, metrics: dict[str, Any], findings: list[dict[str, Any]]) -> None:
        final = {f"final/{k}": v for k, v in summary_numbers(metrics).items()}
        if final:
            self._metrics(final, 0)
        with _environment(self._file_store):
            if "kept_stage" in metrics:
                self.client.set_tag(self.run_id, "kept_stage", str(metrics["kept_stage"]))
            self.client.log_text(self.run_id, json.dumps(findings, indent=2, default=str), "findings.json")
            for f in findings:
                self.client.set_tag(self.run_id, f"finding.{f.get('code')}", str(f.get("severity")))

    def log_artifact(self, run_folder: str | Path) -> None:
        with _environment(self._file_store):
            self.client.log_artifacts(self.run_id, str(Path(run_folder).expanduser()), "run")

    def close(self, failed: bool = False) -> None:
        with _environment(self._file_store):
            self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
