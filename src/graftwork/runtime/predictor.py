""":class:`OnnxClassifier`: an export folder's ``model.onnx`` run by ONNX Runtime, with ``predict`` and
``predict_proba`` like :class:`graftwork.TransferModel`'s (the same JSON), and nothing of torch.

Inputs are batched; image and audio files are decoded and preprocessed in a thread pool (PIL, libsndfile and
numpy release the GIL, so the decoding of one batch overlaps the network's run of the previous one); texts are
sorted by length so that a batch pads little.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import DecodeError
from ..errors import DataError, Problem
from .manifest import MODEL_FILE, read_manifest
from .preprocess import AudioPre, ImagePre, TextPre

DEFAULT_BATCH = 32


def decode_workers() -> int:
    """Threads that decode files: the cores, at most 8 (more only contend for the same memory bandwidth)."""
    return max(1, min(8, os.cpu_count() or 1))


def inference_session(folder: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for the export's graph, with all graph optimisations on."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(folder / MODEL_FILE), opts, providers=["CPUExecutionProvider"])


def top_predictions(items: Sequence[str], probs: np.ndarray, classes: list[str], top_k: int) -> list[dict[str, Any]]:
    """``predict``'s JSON: for each input, the top label and the ``top_k`` labels with their probabilities."""
    k = max(1, min(top_k, len(classes)))
    out = []
    for item, p in zip(items, probs, strict=True):
        order = np.argsort(-p)[:k]
        out.append({"input": item, "label": classes[order[0]],
                    "top": [{"label": classes[i], "probability": float(p[i])} for i in order]})
    return out


class OnnxClassifier:
    """An exported image, text or audio classifier. Create with :func:`load_export`."""

    def __init__(self, folder: str | Path, *, threads: int | None = None):
        self.folder = Path(folder).expanduser()
        self.manifest = read_manifest(self.folder)
        self.classes: list[str] = list(self.manifest["labels"])
        self.modality: str = self.manifest["modality"]
        self.session = inference_session(self.folder, threads)
        pre = self.manifest["preprocessing"]
        self._image = ImagePre(pre) if self.modality == "image" else None
        self._text = TextPre(self.folder, pre, self.manifest["inputs"]) if self.modality == "text" else None
        self._audio = AudioPre(self.folder, pre) if self.modality == "audio" else None

    def __repr__(self) -> str:
        return f"OnnxClassifier({str(self.folder)!r}, classes={self.classes!r})"

    # -- one batch through the graph ----------------------------------------------------------------------
    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(["probabilities"], feeds)[0], dtype=np.float32)

    def _prepare_file(self, item: str) -> Any:
        from ..data.files import load_raw

        raw = load_raw(self.modality, item)
        return self._image(raw) if self._image is not None else self._audio(raw)  # type: ignore[misc]

    def _file_batch(self, prepared: list[Any]) -> np.ndarray:
        if self._image is not None:
            return self._run({"pixel_values": np.stack(prepared)})
        values = np.concatenate([v for v, _ in prepared])
        lengths = np.concatenate([n for _, n in prepared])
        counts = [len(n) for _, n in prepared]
        weights = np.zeros((len(prepared), len(lengths)), dtype=np.float32)  # each clip: the mean of its windows
        start = 0
        for c, n in enumerate(counts):
            weights[c, start:start + n] = 1.0 / n
            start += n
        return self._run({"values": values, "lengths": lengths, "clip_weights": weights})

    # -- many inputs ---------------------------------------------------------------------------------------
    def _decoded(self, items: list[str]) -> Iterator[tuple[int, Any, str | None]]:
        def one(i: int) -> tuple[int, Any, str | None]:
            try:
                return i, self._prepare_file(items[i]), None
            except DecodeError as e:
                return i, None, str(e)

        with ThreadPoolExecutor(decode_workers()) as pool:
            yield from pool.map(one, range(len(items)))

    def probabilities(self, items: Sequence[str], *, batch_size: int = DEFAULT_BATCH, skip_bad: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
        """(probabilities of the inputs that could be read ``[n_ok, classes]``, the mask of those, problems)."""
        items = list(items)
        out = np.zeros((len(items), len(self.classes)), dtype=np.float32)
        ok = np.zeros(len(items), dtype=bool)
        problems: list[Problem] = []
        if self._text is not None:
            lengths = self._text.lengths(items)
            order = sorted(range(len(items)), key=lengths.__getitem__)  # similar lengths pad little
            for b in range(0, len(order), batch_size):
                rows = order[b:b + batch_size]
                out[rows] = self._run(self._text([items[i] for i in rows]))
            ok[:] = True
        else:
            pending: list[tuple[int, Any]] = []
            for i, x, err in self._decoded(items):
                if err is not None:
                    problems.append(Problem(items[i], err))
                    continue
                pending.append((i, x))
                if len(pending) == batch_size:
                    self._flush(pending, out, ok)
            self._flush(pending, out, ok)
        if problems and not skip_bad:
            raise DataError(f"{len(problems)} input(s) could not be read:", problems=problems,
                            hint="fix or remove these files.")
        return out[ok], ok, problems

    def _flush(self, pending: list[tuple[int, Any]], out: np.ndarray, ok: np.ndarray) -> None:
        if pending:
            rows = [i for i, _ in pending]
            out[rows], ok[rows] = self._file_batch([x for _, x in pending]), True
            pending.clear()

    def predict_proba(self, inputs: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (columns in the order of ``classes``)."""
        return self.probabilities(inputs, batch_size=batch_size)[0]

    def predict(self, inputs: Sequence[str] | str, top_k: int = 3, batch_size: int = DEFAULT_BATCH
                ) -> list[dict[str, Any]]:
        """Top-k labels with probabilities for each input (file paths, or texts): ``predict --json``'s form."""
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        return top_predictions(items, self.predict_proba(items, batch_size), self.classes, top_k)


def load_export(path: str | Path, *, threads: int | None = None) -> Any:
    """The predictor for an ONNX export folder: an :class:`OnnxClassifier`, or an ``OnnxNer`` for NER."""
    manifest = read_manifest(path)
    if manifest["task"] == "ner":
        from .ner import OnnxNer

        return OnnxNer(path, threads=threads)
    return OnnxClassifier(path, threads=threads)
