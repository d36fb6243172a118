"""``graftwork-onnx.json``: what an ONNX export folder holds and how to use it.

The manifest is the export's marker (a folder with it is recognised as an export, by ``predict``, ``serve`` and
the output-folder guard) and its contract: the format version, the ONNX opset, the graph's input and output
names, the labels, the preprocessing as data, the source run's fingerprint and the parity figures measured when
it was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import RunFolderError

MANIFEST = "graftwork-onnx.json"
FORMAT = "graftwork-onnx/1"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MEL_FILTERS_FILE = "mel_filters.npy"


def is_onnx_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an ONNX export's manifest."""
    return (Path(path).expanduser() / MANIFEST).is_file()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the export folder ``path``, checked for the fields the runtime needs."""
    root = Path(path).expanduser()
    file = root / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{root}: not an ONNX export (no {MANIFEST}).",
                             hint="write one with `graftwork export RUN --format onnx --out DIR`.") from None
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{file}: damaged manifest ({e}).", hint="export the run again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise RunFolderError(f"{file}: 'format' must be {FORMAT!r}. Got {got!r} instead.",
                             hint="export the run again with this version of graftwork.")
    missing = [k for k in ("task", "modality", "labels", "preprocessing", "inputs") if k not in manifest]
    if missing:
        raise RunFolderError(f"{file}: lacks {', '.join(missing)}.", hint="export the run again.")
    if not (root / MODEL_FILE).is_file():
        raise RunFolderError(f"{root}: the export has no {MODEL_FILE}.", hint="export the run again.")
    return manifest


def metrics_summary(metrics: dict[str, Any], task: str = "classification") -> dict[str, Any]:
    """The headline figures of a run's ``metrics.json`` (validation and test), for the manifest and ``/info``."""
    keys = ("f1", "precision", "recall") if task == "ner" else ("accuracy", "macro_f1")
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        m = metrics.get(split)
        if isinstance(m, dict):
            out[split] = {k: m[k] for k in keys if isinstance(m.get(k), int | float)}
    if "kept_stage" in metrics:
        out["kept_stage"] = metrics["kept_stage"]
    return out
