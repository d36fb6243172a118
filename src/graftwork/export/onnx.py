"""``graftwork export RUN --format onnx --out DIR``: the run as one ONNX graph, its preprocessing as data, and a
manifest, checked for parity before it is put in place.

What the folder holds::

    model.onnx            backbone + head, softmax probabilities out (LoRA merged, BatchNorm fused)
    graftwork-onnx.json   format, opset, inputs, labels, preprocessing, source fingerprint, parity, versions
    tokenizer.json        text and NER: the run's tokenizer, for the ``tokenizers`` library
    mel_filters.npy       Whisper audio: the feature extractor's mel filter bank

The graph is exported by PyTorch's TorchScript-based exporter (``dynamo=False``) at opset :data:`OPSET`: it
handles the transformers encoders and data-dependent pooling by tracing, and the opset is one every
onnxruntime since 1.14 runs (LayerNormalization is a single operator from 17 on). Axes: the batch is dynamic
everywhere, the sequence length for text and NER, the windows and clips for audio.

The folder is written next to ``--out`` and renamed into place only once the parity check passed
(:func:`graftwork.run.write_folder`): a failed export leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..console import SILENT, Console
from ..run import check_out_dir, out_lock, write_folder, write_json
from ..run.folder import CONFIG
from ..run.guard import ONNX
from ..runtime.manifest import FORMAT, MANIFEST, MODEL_FILE, metrics_summary
from ..strategies.lora import has_lora, remove_lora
from . import assets, graphs, parity

OPSET = 17


def source_fingerprint(run: Path, config: dict[str, Any]) -> dict[str, Any]:
    """What identifies the source run: its recorded file digests when the config has them, else the sha256 of
    its ``config.json`` (which holds the backbone's weight fingerprint)."""
    for key in ("digests", "file_digests", "files"):
        if isinstance(config.get(key), dict):
            return {"kind": "file digests", "digests": config[key]}
    digest = hashlib.sha256((run / CONFIG).read_bytes()).hexdigest()
    return {"kind": "sha256 of config.json", "sha256": digest}


ONNX_TASKS = ("classification", "ner")  # the tasks whose models are one graph: a backbone and a head


def _load(run: Path) -> tuple[Any, str]:
    """The run's model (loaded by its task, on the CPU) and the task's name."""
    from ..tasks import task_of_run

    task = task_of_run(run)
    if task.name not in ONNX_TASKS:
        raise task.no_export("onnx")
    return task.load(run, device="cpu"), task.name


def _merge_lora(model: Any) -> int:
    backbone = model.backbone
    if not has_lora(backbone):
        return 0
    n = remove_lora(backbone, merge=True)
    backbone.refresh_fingerprint()
    return n


def _text_example(tokenizer: Any, max_length: int) -> dict[str, torch.Tensor]:
    return dict(tokenizer(["hello world", "a"], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt"))


def _graph(model: Any, task: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor], dict[str, dict[int, str]], int]:
    """(wrapper module, example inputs by name, dynamic axes, BatchNorm layers fused)."""
    b = model.backbone
    out_axes = {graphs.OUTPUT: {0: "batch"}}
    if task == "ner":
        ex = _text_example(model.net.tokenizer, b.max_length)
        seq = {name: {0: "batch", 1: "sequence"} for name in ex}
        return (graphs.TokenGraph(b.model, model.net.head, list(ex)), ex,
                seq | {graphs.OUTPUT: {0: "batch", 1: "sequence"}}, 0)
    if b.modality == "image":
        g = graphs.ImageGraph(b, model.head)
        crop = b.pre.crop
        return g, {"pixel_values": torch.randn(2, 3, crop, crop)}, {"pixel_values": {0: "batch"}} | out_axes, g.folded
    if b.modality == "text":
        ex = _text_example(b.tokenizer, b.max_length)
        return (graphs.TextGraph(b, model.head, list(ex)), ex,
                {name: {0: "batch", 1: "sequence"} for name in ex} | out_axes, 0)
    from ..data.audio import Waveform

    rng = np.random.default_rng(0)
    clips = [b.prepare(Waveform(rng.normal(0, 0.1, int(b.rate * s)).astype(np.float32), b.rate))
             for s in (0.3, b.window_s * 1.5)]
    batch = b.collate(clips)
    weights = torch.nn.functional.one_hot(batch["owner"]).T.float()
    weights = weights / weights.sum(1, keepdim=True)
    ex = {"values": batch["values"], "lengths": batch["lengths"], "clip_weights": weights}
    axes = {"values": {0: "windows"}, "lengths": {0: "windows"}, "clip_weights": {0: "batch", 1: "windows"}}
    return graphs.AudioGraph(b, model.head), ex, axes | out_axes, 0


def _write_onnx(module: torch.nn.Module, example: dict[str, torch.Tensor], axes: dict[str, dict[int, str]],
                file: Path) -> None:
    import warnings

    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values in the graph, checked by parity
        torch.onnx.export(module, tuple(example.values()), str(file), dynamo=False, opset_version=OPSET,
                          input_names=list(example), output_names=[graphs.OUTPUT], dynamic_axes=axes,
                          do_constant_folding=True)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    from .. import __version__

    return {"graftwork": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def _manifest(model: Any, task: str, run: Path, inputs: list[str], preprocessing: dict[str, Any],
              folded: int, merged: int) -> dict[str, Any]:
    config = model.config
    labels = model.tags if task == "ner" else model.classes
    return {
        "format": FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task, "modality": "text" if task == "ner" else model.modality,
        "model": MODEL_FILE, "opset": OPSET, "inputs": inputs, "outputs": [graphs.OUTPUT],
        "labels": labels, "preprocessing": preprocessing,
        "backbone": {"name": model.backbone.info.name, "fingerprint": model.backbone.info.fingerprint},
        "optimisations": {"lora_layers_merged": merged, "batchnorm_fused": folded},
        "source": {"run": str(run.absolute()), "fingerprint": source_fingerprint(run, config)},
        "metrics": metrics_summary(model.metrics, task),
        "parity": {"checked": False},
        "versions": _versions(),
    }


def _parity(model: Any, task: str, stage: Path, data: str | Path | None) -> parity.Parity:
    from ..runtime import load_export

    exported = load_export(stage)
    with parity.scratch_dir() as tmp:
        if task == "ner":
            from .ner import ner_parity

            return ner_parity(model, exported, data)
        tok = getattr(model.backbone, "tokenizer", None)
        items, kind, source = parity.classification_inputs(model.modality, model.config, data, Path(tmp), tok)
        reference = model.predict_proba(items)
        return parity.compare(reference, exported.predict_proba(items), inputs=kind, source=source,
                              tolerance=parity.TOLERANCE[model.modality])


def export_onnx(run: str | Path, out: str | Path, *, data: str | Path | None = None, verify: bool = True,
                force: bool = False, console: Console = SILENT) -> dict[str, Any]:
    """Write the ONNX export of ``run`` to ``out`` and return its manifest (see the module docstring).

    ``out`` may not be the run (or inside it, or around it); ``force`` replaces an earlier ONNX export only."""
    run = Path(run).expanduser()
    with out_lock(out):
        check_out_dir(out, force, data=run, replaces=(ONNX,))
        model, task = _load(run)
        merged = _merge_lora(model)

        def fill(stage: Path) -> dict[str, Any]:
            module, example, axes, folded = _graph(model, task)
            console.info(f"exporting {model.backbone.info.name} + head to ONNX (opset {OPSET})")
            _write_onnx(module, example, axes, stage / MODEL_FILE)
            tok = model.net.tokenizer if task == "ner" else None
            pre = assets.record(model.backbone, stage, tok)
            if task == "ner":
                pre["num_special_tokens"] = int(tok.num_special_tokens_to_add(pair=False))
            manifest = _manifest(model, task, run, list(example), pre, folded, merged)
            write_json(stage / MANIFEST, manifest)
            if verify:
                result = _parity(model, task, stage, data)
                manifest["parity"] = {"checked": True, **result.to_dict()}
                write_json(stage / MANIFEST, manifest)
                parity.check(result, run)
            _shareable(stage)
            return manifest

        return write_folder(out, fill)


def _shareable(stage: Path) -> None:
    """Files as readable as the user's other files (some writers make owner-only ones)."""
    mask = os.umask(0)
    os.umask(mask)
    for file in stage.iterdir():
        if file.is_file():
            os.chmod(file, 0o666 & ~mask)


def describe(manifest: dict[str, Any]) -> str:
    """One line for people: what was written and how it compares."""
    p = manifest["parity"]
    check = ("parity not checked (--no-verify)" if not p.get("checked") else
             f"parity on {p['examples']} {p['inputs']} inputs: max |Δp| {p['max_abs_diff']:.1e}, "
             f"top-1 agreement {p['top1_agreement']:.0%}")
    return f"{manifest['task']} ({manifest['modality']}), opset {manifest['opset']}; {check}"


__all__ = ["export_onnx", "describe", "OPSET"]
