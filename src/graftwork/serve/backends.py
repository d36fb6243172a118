"""What the server runs: a PyTorch run folder or an ONNX export behind one small interface.

A backend takes a whole micro-batch (the inputs of several requests) and answers per input, so that one
request's unreadable file is that request's error and not its neighbours': ``classify`` gives a probability
row or the reason the input could not be read; ``entities`` gives ``NerModel.predict``'s dicts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.manifest import is_onnx_export, metrics_summary, read_manifest


class Backend(ABC):
    """``task`` (classification or ner), ``modality``, ``labels``, and the two batch calls."""

    kind = ""
    task = "classification"
    modality = "text"
    labels: list[str] = []

    @abstractmethod
    def classify(self, values: list[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities ``[n, labels]`` (rows of unreadable inputs are NaN) and ``{index: reason}``."""

    @abstractmethod
    def entities(self, texts: list[str]) -> list[dict[str, Any]]:
        """Entities of each text, as ``NerModel.predict`` gives them."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What ``GET /info`` answers: kind, task, modality, labels, backbone, metrics summary."""


class OnnxBackend(Backend):
    kind = "onnx"

    def __init__(self, folder: str | Path):
        from ..runtime import load_export

        self.manifest = read_manifest(folder)
        self.predictor = load_export(folder)
        self.task, self.modality = self.manifest["task"], self.manifest["modality"]
        self.labels = list(self.manifest["labels"])

    def classify(self, values: list[str]) -> tuple[np.ndarray, dict[int, str]]:
        probs, ok, problems = self.predictor.probabilities(values, skip_bad=True)
        out = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        out[ok] = probs
        reasons = {p.where: p.what for p in problems}  # by input: the same bad file twice is bad twice
        return out, {i: reasons[v] for i, v in enumerate(values) if not ok[i] and v in reasons}

    def entities(self, texts: list[str]) -> list[dict[str, Any]]:
        return self.predictor.predict(texts)

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {"kind": self.kind, "task": self.task, "modality": self.modality, "labels": self.labels,
                "backbone": m.get("backbone", {}).get("name"), "metrics": m.get("metrics", {}),
                "opset": m.get("opset"), "parity": m.get("parity")}


class TorchBackend(Backend):
    kind = "run"

    def __init__(self, run: str | Path, device: str = "auto"):
        from ..tasks import task_of_run

        task = task_of_run(run)  # the run's own task loads it; a task without a server says so first
        task.check_servable()
        self.model: Any = task.load(run, device=device)
        self.task = task.name
        self.modality, self.labels = task.serving(self.model)

    def classify(self, values: list[str]) -> tuple[np.ndarray, dict[int, str]]:
        from ..features import extract_features

        m = self.model
        ext = extract_features(m.backbone, m.modality, values, [str(i) for i in range(len(values))], cache=None,
                               device=m.device)  # no feature cache: the server writes nothing anywhere
        out = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        if ext.ok.any():
            out[ext.ok] = m.probabilities(ext.features)
        return out, {int(p.where): p.what for p in ext.problems}

    def entities(self, texts: list[str]) -> list[dict[str, Any]]:
        return self.model.predict(texts)

    def info(self) -> dict[str, Any]:
        m = self.model
        return {"kind": self.kind, "task": self.task, "modality": self.modality, "labels": self.labels,
                "backbone": m.backbone.info.name, "metrics": metrics_summary(m.metrics, self.task),
                "strategy": m.config.get("plan", {}).get("strategy")}


def load_backend(path: str | Path, device: str = "auto") -> Backend:
    """The backend for ``path``: an ONNX export (by its manifest) or a run folder."""
    return OnnxBackend(path) if is_onnx_export(path) else TorchBackend(path, device)
